"""Splitting a table into valid rows and quarantined rows, each quarantined row with its reasons."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

REASON_COLUMN = "reason"
ROW_NUMBER_COLUMN = "row_number"  # 0-based position of the row in the raw file
REASON_SEPARATOR = "; "


class RowReasons:
    """Why each failing row is invalid: index label -> reasons, in the order they were found."""

    def __init__(self) -> None:
        self._reasons: dict[object, list[str]] = defaultdict(list)

    def add(self, labels: Iterable[object], reason: str | Mapping[object, str]) -> None:
        """Record ``reason`` (one text for all, or one per label) for each row in ``labels``."""
        for label in labels:
            text = reason if isinstance(reason, str) else reason[label]
            if text not in self._reasons[label]:
                self._reasons[label].append(text)

    def __len__(self) -> int:
        return len(self._reasons)

    def __contains__(self, label: object) -> bool:
        return label in self._reasons

    @property
    def labels(self) -> list[object]:
        return list(self._reasons)

    def as_series(self) -> pd.Series:
        """One text per failing row, reasons joined with '; '."""
        return pd.Series(
            {label: REASON_SEPARATOR.join(reasons) for label, reasons in self._reasons.items()}, dtype="str"
        )


def format_value(value: object) -> str:
    """A value as it should appear in a reason: repr for text, compact for the rest."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, tuple):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(pd.Timestamp(value))
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "null"
    if isinstance(value, (np.generic,)):
        value = value.item()
    return repr(value)


def split(
    raw: pd.DataFrame, coerced: pd.DataFrame, reasons: RowReasons
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(valid rows of coerced, quarantined rows of raw + row_number + reason)``; every row lands once."""
    bad = coerced.index.isin(reasons.labels)
    valid = coerced.loc[~bad]
    quarantined = _writable(raw.loc[bad]).copy()
    quarantined.insert(0, ROW_NUMBER_COLUMN, np.flatnonzero(bad))
    quarantined[REASON_COLUMN] = reasons.as_series().reindex(quarantined.index).to_numpy()
    if len(valid) + len(quarantined) != len(raw):
        raise AssertionError(
            f"rows do not add up: {len(raw)} read != {len(valid)} valid + {len(quarantined)} quarantined"
        )
    return valid, quarantined.reset_index(drop=True)


def _writable(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw values that Parquet can store: object columns of mixed scalars become text."""
    out = {}
    for name in raw.columns:
        col = raw[name]
        if col.dtype == object and not col.map(lambda v: isinstance(v, (list, np.ndarray)) or v is None).all():
            col = col.map(lambda v: None if v is None or (np.isscalar(v) and pd.isna(v)) else str(v)).astype("str")
        out[name] = col
    return pd.DataFrame(out, index=raw.index)
