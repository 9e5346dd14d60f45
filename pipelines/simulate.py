"""`rewards simulate`: continue a generated program past a campaign list's date, with a planted treatment effect.

The effect classes and the program state are in ``pipelines.simulation.effects``, one simulated window and
the campaign / exploration waves in ``pipelines.simulation.window``; this module reads and writes programs
and is the command. The output folder is the whole program (history plus the simulated days), so a simulated
program can be scored, simulated and measured again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from data_contracts.schema import TABLE_NAMES
from pipelines.io import write_frame
from pipelines.measure import list_meta
from pipelines.simulation.effects import (  # noqa: F401  (EFFECT_CLASSES, class_probabilities: the module's public names)
    EFFECT_CLASSES,
    SIMULATION_FILE,
    TRUTH_FILE,
    Program,
    SimulationError,
    class_probabilities,
)
from pipelines.simulation.window import (  # noqa: F401  (continue_program ...: the module's public names)
    continue_program,
    exploration_assignment,
    list_assignment,
    next_receipt_number,
    simulate_campaign,
    simulate_exploration,
    simulate_window,
)
from pipelines.synthetic import PERSONAS


def read_program(data_dir: Path) -> Program:
    """The tables (Parquet) and ground truth of a generated program."""
    data_dir = Path(data_dir)
    truth_dir = data_dir / "ground_truth"
    needed = [truth_dir / "customers.parquet", truth_dir / "products.parquet"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise SimulationError(
            f"--data '{data_dir}': {missing} not found; only a program written by `rewards generate` "
            "(tables plus ground_truth/) can be continued"
        )
    tables = {}
    for name in TABLE_NAMES:
        path = data_dir / f"{name}.parquet"
        if not path.exists():
            raise SimulationError(f"--data '{data_dir}': table '{name}' not found at '{path}' (Parquet expected)")
        tables[name] = pd.read_parquet(path)
    truth = {p.stem: pd.read_parquet(p) for p in sorted(truth_dir.glob("*.parquet"))}
    gt = truth["customers"].set_index("customer_id").reindex(tables["customers"]["customer_id"])
    if gt["persona"].isna().any():
        raise SimulationError(f"--data '{data_dir}': ground_truth/customers.parquet does not cover every customer")
    persona = gt["persona"].map({p: i for i, p in enumerate(PERSONAS)}).to_numpy(dtype=np.int64)
    churn = pd.to_datetime(gt["churn_date"]).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    churn = np.where(pd.isna(gt["churn_date"]).to_numpy(), np.iinfo(np.int64).max, churn)
    stores = gt["home_store"].astype(str).to_numpy()
    return Program(tables, truth, persona, gt["visit_rate"].to_numpy(dtype=float), churn, stores)


def write_program(program: Program, source: Path, out: Path, meta: dict) -> Path:
    """Write the continued program (all tables, ground truth, ``simulation.json``) to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in program.tables.items():
        write_frame(frame, out / f"{name}.parquet")
    for name, frame in program.truth.items():
        write_frame(frame, out / "ground_truth" / f"{name}.parquet")
    history = []
    previous = Path(source) / SIMULATION_FILE
    if previous.exists():
        history = json.loads(previous.read_text()).get("history", [])
    (out / SIMULATION_FILE).write_text(json.dumps({**meta, "history": [*history, meta]}, indent=2, default=str) + "\n")
    return out


def _fail(message: str) -> None:
    typer.secho(f"rewards simulate: {message}", fg="red", err=True)
    raise typer.Exit(2)


def simulate_command(
    campaign: Path | None = typer.Option(None, "--campaign", help="The campaign list written by `rewards score`."),
    data: Path = typer.Option(..., "--data", help="The generated program to continue (tables plus ground_truth/)."),
    days: int = typer.Option(30, "--days", min=1, help="Days to simulate after the list is sent (per wave with --explore-waves)."),
    out: Path = typer.Option(..., "--out", help="Folder for the continued program (history plus simulated days)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the simulation."),
    explore_waves: int = typer.Option(0, "--explore-waves", min=0, help="Instead of a list: this many randomised exploration campaigns, --days apart (uplift training data)."),
    control_fraction: float = typer.Option(0.5, "--control-fraction", help="With --explore-waves: share of each wave kept as control."),
) -> None:
    """Continue a generated program past a campaign list: the list's offers go out, the holdout gets none."""
    if (campaign is None) == (explore_waves == 0):
        _fail("give either --campaign LIST or --explore-waves N (not both)")
    if campaign is not None and not Path(campaign).exists():
        _fail(f"--campaign '{campaign}' does not exist; write it with `rewards score`")
    if not 0.0 < control_fraction < 1.0:
        _fail(f"--control-fraction must be in (0, 1), got {control_fraction}")
    try:
        program = read_program(data)
        end = program.tables["transactions"]["ts"].max()
        if explore_waves:
            start = end.normalize() + pd.Timedelta(days=1)
            program = simulate_exploration(program, start, explore_waves, days, control_fraction, seed)
            info = {"exploration_waves": explore_waves, "every_days": days, "control_fraction": control_fraction,
                    "seed": seed, "window_start": start + pd.Timedelta(hours=9),
                    "window_end": start + pd.Timedelta(days=explore_waves * days)}
            write_program(program, data, out, info)
            eff = program.truth[TRUTH_FILE]
            typer.echo(f"{explore_waves} exploration waves from {start.date()}, {days} days apart: "
                       f"{int(eff['treated'].sum()):,} sent, {int((~eff['treated']).sum()):,} control")
            typer.echo(f"program continued -> {out}; train with `rewards train uplift --data {out} --since {start.date()}`")
            return
        meta = list_meta(campaign)
        listed = pd.read_parquet(campaign)
        if meta["send_at"] < end.normalize():
            _fail(f"the list was sent at {meta['send_at']}, before the program's data ends ({end}); "
                  "simulation continues a program, so score the list as of the end of the data")
        program, window = simulate_campaign(program, listed, meta["send_at"], days, meta["channel"], seed)
    except SimulationError as err:
        _fail(str(err))
    info = {"campaign": meta["campaign"], "list": str(Path(campaign).resolve()), "send_at": meta["send_at"],
            "days": days, "seed": seed, "channel": meta["channel"],
            "window_start": meta["send_at"], "window_end": meta["send_at"].normalize() + pd.Timedelta(days=days)}
    write_program(program, data, out, info)
    eff = window.effects
    typer.echo(f"simulated {days} days after {meta['send_at']} for {program.tables['customers'].shape[0]:,} customers")
    typer.echo(f"new receipt lines {len(window.transactions):,}, offers sent {int(eff['treated'].sum()):,}, "
               f"redeemed {int(eff['redeemed'].sum()):,}")
    typer.echo("effect classes: " + ", ".join(f"{k} {v:,}" for k, v in eff["effect_class"].value_counts().items()))
    typer.echo(f"program continued -> {out} (truth in {Path(out) / 'ground_truth' / (TRUTH_FILE + '.parquet')})")
    sys.stdout.flush()
