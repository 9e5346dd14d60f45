"""Coercing raw values (CSV text or loosely typed Parquet) to the schema's dtypes.

A value that cannot be coerced (``'abc'`` in an int column, an unparseable timestamp) becomes
null in the coerced frame and is recorded in ``CoercionResult.failures`` so the row can be
quarantined with a reason instead of failing the whole table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_contracts.rules import validation_dtypes
from data_contracts.schema import Column, Table

_BOOL_WORDS = {w: True for w in ("true", "t", "1", "yes", "y")} | {w: False for w in ("false", "f", "0", "no", "n")}


@dataclass
class CoercionResult:
    """The coerced frame (validation dtypes) and, per column, the rows that could not be coerced."""

    frame: pd.DataFrame
    failures: dict[str, pd.Series] = field(default_factory=dict)  # column -> bool mask

    def failed_rows(self) -> pd.Index:
        """Index labels of rows with at least one value that could not be coerced."""
        if not self.failures:
            return self.frame.index[:0]
        mask = np.logical_or.reduce([m.to_numpy(dtype=bool) for m in self.failures.values()])
        return self.frame.index[mask]


def coerce_table(t: Table, raw: pd.DataFrame) -> CoercionResult:
    """Coerce the schema columns of ``raw`` to their validation dtypes; extra columns are dropped."""
    columns: dict[str, pd.Series] = {}
    failures: dict[str, pd.Series] = {}
    for column in t.columns:
        values, failed = coerce_column(column, raw[column.name])
        columns[column.name] = values
        if failed.any():
            failures[column.name] = failed
    return CoercionResult(pd.DataFrame(columns, index=raw.index), failures)


def coerce_column(column: Column, raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``(values in validation dtype, mask of non-null raw values that could not be coerced)``."""
    values = _COERCERS[column.type](raw)
    present = _is_present(raw) if column.type == "string_list" else raw.notna()
    failed = present & values.isna()
    canonical, *nullable = validation_dtypes(column)
    values = values.astype(nullable[0] if nullable and values.isna().any() else canonical)
    return values, failed.astype(bool)


def _is_present(raw: pd.Series) -> pd.Series:
    # ``notna`` on an object column of arrays is elementwise-safe: arrays count as present.
    return pd.Series([v is not None and not (isinstance(v, float) and np.isnan(v)) for v in raw], index=raw.index)


def _to_string(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(raw.dtype) and raw.dtype != object:
        return raw
    return raw.map(lambda v: v if isinstance(v, str) or pd.isna(v) else str(v)).astype("str")


def _to_int(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(raw.dtype):
        return raw
    numbers = _to_numeric(raw)
    whole = numbers.isna() | (numbers == np.floor(numbers))
    return numbers.where(whole).astype("Int64")


def _to_float(raw: pd.Series) -> pd.Series:
    return _to_numeric(raw).astype("float64")


def _to_numeric(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return pd.Series(np.nan, index=raw.index)  # True is not a number here
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.astype("float64")
    return pd.to_numeric(_stripped_text(raw), errors="coerce").astype("float64")


def _to_bool(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("boolean")
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.map({0: False, 1: True}).astype("boolean")
    words = _stripped_text(raw).str.lower()
    return words.map(_BOOL_WORDS).astype("boolean")


def _stripped_text(raw: pd.Series) -> pd.Series:
    """Values as text without surrounding blanks (vectorised; nulls stay null)."""
    if raw.dtype == object:
        raw = raw.map(lambda v: v if isinstance(v, str) or v is None or (np.isscalar(v) and pd.isna(v)) else str(v))
    return raw.astype("str").str.strip()


def _to_timestamp(raw: pd.Series) -> pd.Series:
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_localize(None).astype("datetime64[ns]")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return raw.astype("datetime64[ns]")
    return parse_timestamps(raw)


# A time of day followed by a UTC offset ('Z', '+02:00', '-0530', '+09'); group 1 is the time.
_OFFSET = r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


def parse_timestamps(raw: pd.Series) -> pd.Series:
    """Text to wall-clock timestamps (datetime64[ns]); unparseable values become NaT.

    Timestamps are store-local: a UTC offset, when present, is ignored and the time as written is
    kept, so a column mixing offsets ('+02:00', 'Z', none) reads like one without any.
    """
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw.dtype):
        return _to_timestamp(raw)
    text = _stripped_text(raw)
    try:
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):  # offsets that differ between rows cannot share one dtype
        parsed = pd.to_datetime(text.str.replace(_OFFSET, r"\1", regex=True), errors="coerce", format="ISO8601")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    if parsed.dtype == object:  # pandas leaves mixed-offset results as objects in some versions
        parsed = pd.to_datetime(text.str.replace(_OFFSET, r"\1", regex=True), errors="coerce", format="ISO8601")
    return parsed.astype("datetime64[ns]")


def _to_string_list(raw: pd.Series) -> pd.Series:
    return pd.Series([_parse_list(v) for v in raw], index=raw.index, dtype=object)


def _parse_list(v: object) -> list[str] | None:
    """A list of str from a list/array, a JSON array text or '|'-separated text; None if impossible."""
    if isinstance(v, (list, tuple, np.ndarray)):
        items = list(v)
    elif isinstance(v, str):
        text = v.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                return None
            if not isinstance(items, list):
                return None
        else:
            items = [part.strip() for part in text.split("|")] if text else []
    else:
        return None
    if not all(isinstance(item, str) for item in items):
        return None
    return [str(item) for item in items]


_COERCERS = {
    "string": _to_string,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "timestamp": _to_timestamp,
    "string_list": _to_string_list,
}


def narrowed(t: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with nullable int/bool columns that hold no nulls back in their canonical numpy dtype."""
    from data_contracts.schema import pandas_dtype

    casts = {
        c.name: pandas_dtype(c)
        for c in t.columns
        if str(frame[c.name].dtype) != pandas_dtype(c) and not frame[c.name].isna().any()
        and c.type in ("int", "bool")
    }
    return frame.astype(casts) if casts else frame


def to_canonical(t: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Valid rows in the canonical dtypes of ``schema.pandas_dtype`` (nulls must already be gone)."""
    from data_contracts.schema import pandas_dtype

    return frame.astype({c.name: pandas_dtype(c) for c in t.columns})
