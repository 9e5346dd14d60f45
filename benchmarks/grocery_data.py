"""Grocery benchmark data, cached under data/bench/ (never committed) so that reruns are fast.

`raw(n, days, seed)`: `pipelines.scenarios.grocery.generate` written by its own writer (what
`rewards generate --scenario grocery` writes). `by_construction(raw_dir)`: the tables as `rewards
validate` would write them (schema defaults filled, coerced to the canonical dtypes, absent optional
tables empty, program.toml alongside), without the GX checks: the generator's rows are valid by
construction, and GX over 25M lines is the validate benchmark's subject, not these.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "data" / "bench"
END_DATE = "2026-06-30"


def raw(customers: int, days: int = 365, seed: int = 42) -> tuple[Path, float | None]:
    """The raw grocery folder (generated once); the generation seconds when it ran now."""
    from pipelines.scenarios.grocery import generate, write

    out = CACHE / f"grocery_{customers}_{days}_{seed}" / "raw"
    if (out / "program.toml").exists():
        return out, None
    started = time.perf_counter()
    data = generate(n_customers=customers, days=days, seed=seed, end_date=END_DATE)
    seconds = time.perf_counter() - started
    tmp = out.with_name("raw.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(data, tmp)
    del data
    tmp.rename(out)
    return out, seconds


def validated_tables(raw_dir: Path) -> dict[str, pd.DataFrame]:
    """Every table of the raw folder's program as validation writes it (defaults, canonical dtypes), no GX."""
    from data_contracts.coercion import coerce_table, narrowed, to_canonical
    from data_contracts.defaults import fill_defaults
    from data_contracts.program import PROGRAM_FILE, load_program
    from data_contracts.rules import validation_order
    from data_contracts.schema import empty_frame, tables_for

    program = load_program(Path(raw_dir) / PROGRAM_FILE)
    schemas = tables_for(program)
    out: dict[str, pd.DataFrame] = {}
    for name in validation_order(schemas):
        t = schemas[name]
        path = Path(raw_dir) / f"{name}.parquet"
        if not path.exists():
            out[name] = empty_frame(t)
            continue
        context = {"products": out["products"]} if name == "transactions" and "products" in out else {}
        frame, _ = fill_defaults(t, pd.read_parquet(path), program, context)
        coerced = coerce_table(t, frame)
        if len(coerced.failed_rows()):
            raise ValueError(f"table '{name}': {len(coerced.failed_rows())} generated rows do not coerce; "
                             "expected none (the generator's rows are valid by construction)")
        out[name] = to_canonical(t, narrowed(t, coerced.frame)[t.column_names]).reset_index(drop=True)
    return out


def by_construction(raw_dir: Path) -> Path:
    """``validated_tables`` written where `rewards features/score` read them (cached), program.toml alongside."""
    from data_contracts.program import PROGRAM_FILE
    from pipelines.io import write_frame

    out = Path(raw_dir).with_name("validated")
    if (out / PROGRAM_FILE).exists():
        return out
    tmp = out.with_name("validated.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, frame in validated_tables(raw_dir).items():
        write_frame(frame, tmp / f"{name}.parquet")
    shutil.copyfile(Path(raw_dir) / PROGRAM_FILE, tmp / PROGRAM_FILE)
    tmp.rename(out)
    return out
