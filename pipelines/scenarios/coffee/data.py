"""The generated data set (``SyntheticData``) and writing it as table files plus ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from data_contracts.schema import TABLE_NAMES, table
from pipelines.io import write_frame


@dataclass
class SyntheticData:
    """Generated canonical tables plus the ground truth the pipeline must never read."""

    tables: dict[str, pd.DataFrame]
    ground_truth: dict[str, pd.DataFrame] = field(default_factory=dict)




def write(data: SyntheticData, out_dir: str | Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write each table as ``<table>.<fmt>`` and the ground truth as ``ground_truth/<name>.parquet``."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"write: fmt must be 'parquet' or 'csv', got '{fmt}'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in TABLE_NAMES:
        frame = data.tables[name]
        if fmt == "csv":
            frame = _csv_ready(name, frame)
        paths[name] = write_frame(frame, out / f"{name}.{fmt}")
    for name, frame in data.ground_truth.items():
        paths[f"ground_truth/{name}"] = write_frame(frame, out / "ground_truth" / f"{name}.parquet")
    return paths


def _csv_ready(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """List columns become JSON arrays in CSV (a readable, unambiguous text form)."""
    import json

    t = table(name)
    list_cols = [c.name for c in t.columns if c.type == "string_list"]
    if not list_cols:
        return frame
    frame = frame.copy()
    for col in list_cols:
        frame[col] = frame[col].map(json.dumps)
    return frame
