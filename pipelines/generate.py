"""`rewards generate`: write a synthetic loyalty data set (its tables plus ground_truth/)."""

from __future__ import annotations

import importlib
import sys
import time
from enum import Enum
from pathlib import Path

import typer

from pipelines.config import SAMPLE_END_DATE, raw_dir

# Scenario name -> module with generate(n_customers=, days=, seed=, end_date=) and write(data, out_dir, fmt=).
SCENARIOS: dict[str, str] = {
    "coffee": "pipelines.synthetic",
    "grocery": "pipelines.scenarios.grocery",
    "webshop": "pipelines.scenarios.webshop",
}


class FileFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"


Scenario = Enum("Scenario", {name: name for name in SCENARIOS}, type=str)


def generate_command(
    customers: int = typer.Option(5000, "--customers", min=1, help="Number of loyalty members."),
    days: int = typer.Option(365, "--days", min=7, help="Days of history before the end date."),
    seed: int = typer.Option(42, "--seed", help="Random seed; the same seed gives the same data."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: the raw data folder, data/raw)."),
    fmt: FileFormat = typer.Option(FileFormat.parquet, "--format", help="File format of the tables."),
    end_date: str = typer.Option(SAMPLE_END_DATE, "--end-date", help="Exclusive end of the data (YYYY-MM-DD)."),
    scenario: Scenario = typer.Option("coffee", "--scenario", help="Which generated program: " + ", ".join(SCENARIOS) + "."),
) -> None:
    """Generate a synthetic loyalty data set with planted habits, churn and offer response (default: the coffee sample)."""
    import pandas as pd

    module = importlib.import_module(SCENARIOS[Scenario(scenario).value])
    generate, write = module.generate, module.write

    try:
        end = pd.Timestamp(end_date)
    except (ValueError, TypeError):
        typer.echo(f"error: --end-date must be a date like 2026-06-30, got '{end_date}'", err=True)
        sys.exit(2)
    out_dir = Path(out) if out is not None else raw_dir()
    started = time.perf_counter()
    data = generate(n_customers=customers, days=days, seed=seed, end_date=end)
    generated = time.perf_counter() - started
    try:
        write(data, out_dir, fmt=fmt.value)
    except OSError as err:
        typer.echo(f"error: cannot write to '{out_dir}': {err}", err=True)
        sys.exit(1)
    total = time.perf_counter() - started
    for name, frame in data.tables.items():
        typer.echo(f"{name:<14} {len(frame):>10,} rows")
    typer.echo(f"ground truth   {', '.join(data.ground_truth)} in {out_dir / 'ground_truth'}")
    typer.echo(f"generated in {generated:.1f} s, written in {total - generated:.1f} s -> {out_dir}")
