"""Reading an export's text values: money like "$8.00" or "(1,50 €)", dates in a declared format, yes/no.

Each parser returns the parsed values with null where a non-empty text could not be read, so the caller
quarantines exactly those rows with a reason naming the column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from data_contracts.coercion import parse_timestamps

DEFAULT_CURRENCY_SYMBOLS = ("$", "€", "£", "¥")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def text(values: pd.Series) -> pd.Series:
    """Values as stripped text; empty text becomes null."""
    out = values.astype("str").str.strip()
    return out.where(values.notna() & out.str.len().gt(0))


def present(values: pd.Series) -> pd.Series:
    """True where a value is given (not null, not blank)."""
    return text(values).notna()


def parse_numbers(
    values: pd.Series,
    decimal_separator: str = ".",
    thousands_separator: str = "",
    currency_symbols: Sequence[str] = DEFAULT_CURRENCY_SYMBOLS,
    negative_in_parentheses: bool = True,
) -> pd.Series:
    """Numbers from text such as '8.00', '$8.00', '-$1.50', '($1.50)', '1.234,56 €' (float; NaN if unreadable)."""
    t = text(values)
    negative = pd.Series(False, index=values.index)
    if negative_in_parentheses:
        wrapped = t.str.match(r"^\(.*\)$").fillna(False).astype(bool)
        negative = wrapped
        t = t.where(~wrapped, t.str.slice(1, -1))
    for symbol in currency_symbols:
        t = t.str.replace(symbol, "", regex=False)
    t = t.str.replace(r"\s+", "", regex=True)
    if thousands_separator:
        t = t.str.replace(thousands_separator, "", regex=False)
    if decimal_separator != ".":
        t = t.str.replace(decimal_separator, ".", regex=False)
    t = t.str.replace(r"^([+-]?)[^\d.+-]*", r"\1", regex=True)  # a code before the number: 'USD 8.00'
    numbers = pd.to_numeric(t.where(t.str.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)").fillna(False).astype(bool)),
                            errors="coerce").astype("float64")
    return numbers.where(~negative, -numbers)


def parse_times(values: pd.Series, fmt: str | None = None) -> pd.Series:
    """Wall-clock timestamps: with ``fmt`` (strptime codes) exactly that format, else ISO-like text with
    any UTC offset ignored (the project's rule, :func:`data_contracts.coercion.parse_timestamps`)."""
    t = text(values)
    if fmt is None:
        return parse_timestamps(t)
    parsed = pd.to_datetime(t, format=fmt, errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def parse_bools(values: pd.Series) -> pd.Series:
    """yes/no, true/false, 1/0 (any case) to a nullable boolean; anything else null."""
    words = text(values).str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[words.isin(_TRUE).fillna(False).astype(bool)] = True
    out[words.isin(_FALSE).fillna(False).astype(bool)] = False
    return out


def shown(value: object) -> str:
    """A raw value as a reason shows it."""
    return "an empty value" if value is None or (isinstance(value, float) and value != value) else repr(str(value))


def format_times(ts: pd.Series) -> pd.Series:
    """Timestamps as 'YYYY-MM-DD HH:MM:SS' text (what the written CSV tables hold)."""
    return ts.dt.strftime("%Y-%m-%d %H:%M:%S")


_CODE = re.compile(r"^[A-Z]{3}$")


def is_currency_code(value: str) -> bool:
    return bool(_CODE.fullmatch(value))
