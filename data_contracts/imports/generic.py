"""Any export to one canonical table, as a mapping file says (`rewards import csv`).

Each canonical column is read from its source column(s) by the type the schema declares: numbers
with the declared decimal and thousands separators and currency symbols stripped, timestamps in the
declared format, yes/no words. A row with a value that cannot be read, or an empty required value, is
quarantined with a reason naming the canonical and the source column; an empty optional text becomes
``unknown``. Only the mapped source columns are kept in the quarantine (a hashed customer id stays hashed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.imports.mapping import Mapping
from data_contracts.imports.pseudonyms import pseudonymise
from data_contracts.imports.result import ImportResult, merge_repeated_lines, require_columns, split_rows
from data_contracts.imports.values import format_times, parse_bools, parse_numbers, parse_times, shown, text
from data_contracts.quarantine import RowReasons
from data_contracts.schema import TABLES, UNKNOWN, Column


def convert_with_mapping(frame: pd.DataFrame, mapping: Mapping, salt: bytes | None = None,
                         source: str = "export") -> ImportResult:
    """The canonical ``mapping.table`` for ``frame`` (text cells, as read); ``salt`` when customer ids are hashed."""
    require_columns(frame, mapping.source_columns(), source,
                    f"expected the source columns that mapping '{mapping.source}' names (fix [columns] or the export)")
    if mapping.format.hash_customer_id and salt is None:
        raise ValueError("convert_with_mapping: format.hash_customer_id is set but no salt was given")
    raw = frame.reset_index(drop=True)
    t = TABLES[mapping.table]
    reasons = RowReasons()
    kept = raw[mapping.source_columns()].copy()
    out: dict[str, pd.Series] = {}
    filled: dict[str, int] = {}
    for column in t.columns:
        if column.name in mapping.constants:
            out[column.name] = pd.Series([mapping.constants[column.name]] * len(raw), index=raw.index, dtype=object)
            continue
        if column.name not in mapping.columns:
            continue  # absent: validation fills the schema's default
        sources = mapping.columns[column.name]
        sources = [sources] if isinstance(sources, str) else list(sources)
        values = _joined(raw, sources)
        described = f"{column.name} (source {' + '.join(repr(s) for s in sources)})"
        parsed, failed = _read(column, values, mapping)
        empty = values.isna()
        if column.name in mapping.format.absolute_values:
            parsed = parsed.abs()
        if column.name == "customer_id" and mapping.format.hash_customer_id:
            parsed = pseudonymise(parsed.str.strip().str.lower(), salt)
            for name in sources:
                kept[name] = parsed
        if empty.any() and not column.nullable:
            if column.required or column.type != "string":
                reasons.add(raw.index[empty.to_numpy()], f"{described}: empty; expected a value")
            else:
                parsed = parsed.fillna(UNKNOWN)
                filled[column.name] = int(empty.sum())
        bad = raw.index[failed.to_numpy()]
        reasons.add(bad, {i: f"{described}: expected {_expected(column, mapping)}, got {shown(values[i])}" for i in bad})
        out[column.name] = parsed
    converted = pd.DataFrame(out, index=raw.index)
    good, quarantined = split_rows(kept, converted, reasons)
    good = good.assign(**{c.name: format_times(good[c.name]) for c in t.columns
                          if c.type == "timestamp" and c.name in good.columns and c.name not in mapping.constants})
    table, merged = merge_repeated_lines(good) if mapping.table == "transactions" else (good, 0)
    notes = [f"{mapping.table}: {len(table)} rows from {len(good)} converted; columns {list(table.columns)}"]
    if merged:
        notes.append(f"{merged} rows repeating a product of the same transaction summed into its first line")
    notes += [f"{c}: {n} empty values read as '{UNKNOWN}'" for c, n in filled.items()]
    if mapping.format.hash_customer_id:
        notes.append("customer_id replaced by a salted hash of the source value")
    counts = {"empty_as_unknown": filled, "lines_merged": merged}
    return ImportResult(source, {mapping.table: table.reset_index(drop=True)}, quarantined, len(raw), len(good),
                        counts, notes, mapping.currency)


def _joined(raw: pd.DataFrame, sources: list[str]) -> pd.Series:
    """The source columns' non-empty texts joined with a space (null when every part is empty)."""
    parts = pd.concat([text(raw[s]) for s in sources], axis=1)
    joined = parts.apply(lambda row: " ".join(v for v in row if isinstance(v, str)), axis=1) if len(sources) > 1 \
        else parts.iloc[:, 0]
    return text(joined) if len(raw) else parts.iloc[:, 0]


def _read(column: Column, values: pd.Series, mapping: Mapping) -> tuple[pd.Series, pd.Series]:
    """``(parsed values, mask of non-empty values that could not be read)`` for one canonical column."""
    f = mapping.format
    if column.type in ("float", "int"):
        parsed = parse_numbers(values, f.decimal_separator, f.thousands_separator, f.currency_symbols)
        if column.type == "int":
            parsed = parsed.where(parsed.isna() | parsed.eq(np.floor(parsed)))
            failed = values.notna() & parsed.isna()
            return parsed.astype("Int64"), failed
    elif column.type == "timestamp":
        parsed = parse_times(values, f.date_format)
    elif column.type == "bool":
        parsed = parse_bools(values)
    else:  # string, string_list: kept as text (lists as JSON or '|'-separated, validation reads them)
        parsed = values
    return parsed, values.notna() & parsed.isna()


def _expected(column: Column, mapping: Mapping) -> str:
    f = mapping.format
    if column.type == "float":
        return f"a number (decimal separator {f.decimal_separator!r}, currency symbols {f.currency_symbols} stripped)"
    if column.type == "int":
        return "a whole number"
    if column.type == "timestamp":
        return f"a time in format {f.date_format!r}" if f.date_format else "an ISO-like time (YYYY-MM-DD HH:MM:SS)"
    if column.type == "bool":
        return "yes/no or true/false"
    return "a value"
