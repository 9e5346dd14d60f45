"""The rules each table obeys, derived from the schema, and a plain-pandas evaluation of them.

``table_rules`` turns the declarations in :mod:`data_contracts.schema` into a flat list of
:class:`Rule` objects. Great Expectations suites (:mod:`data_contracts.expectations`) are built
from these rules, one expectation per rule; ``failing_rows`` evaluates the same rules with plain
pandas and serves as the reference the GX verdict is tested (and benchmarked) against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import pandas as pd

from data_contracts.program import Program, coffee_program
from data_contracts.schema import TABLES, Column, Table, pandas_dtype

RuleKind = Literal[
    "columns",
    "row_count",
    "dtype",
    "not_null",
    "unique",
    "in_set",
    "elements_in_set",
    "not_empty",
    "range",
    "not_after_run_date",
    "ordered",
    "non_negative_unless",
    "foreign_key",
]

# Rules about the whole table (file or column dtype): failing one stops the table.
TABLE_LEVEL_KINDS: tuple[RuleKind, ...] = ("columns", "row_count", "dtype")
# Rules that single out rows: their failures are quarantined row by row.
ROW_LEVEL_KINDS: tuple[RuleKind, ...] = tuple(k for k in get_args(RuleKind) if k not in TABLE_LEVEL_KINDS)

# Reference values for foreign keys: (ref_table, ref_column) -> the valid key values.
References = Mapping[tuple[str, str], "pd.Series | pd.Index | list"]


@dataclass(frozen=True)
class Rule:
    """One checkable rule of one table."""

    kind: RuleKind
    table: str
    columns: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_strict: bool = False
    dtypes: tuple[str, ...] = ()  # accepted dtype names while validating
    ref: tuple[str, str] | None = None  # (table, column) a foreign key points to
    unless: str | None = None  # bool column that exempts a row (non_negative_unless)
    vocabulary: str | None = None  # where allowed values come from, e.g. "vocabulary 'regions' of program file X"

    @property
    def column(self) -> str:
        return self.columns[0]

    @property
    def label(self) -> str:
        """The column(s) the rule is about, for messages."""
        return "+".join(self.columns) if self.kind not in ("columns", "row_count") else "*"

    def describe(self, run_date: pd.Timestamp | None = None) -> str:
        """The rule as a short sentence: what a valid value looks like."""
        source = f" ({self.vocabulary})" if self.vocabulary else ""
        if self.kind == "columns":
            return f"has columns {list(self.columns)}"
        if self.kind == "row_count":
            return "has at least 1 row"
        if self.kind == "dtype":
            return f"{self.column} has dtype {' or '.join(self.dtypes)}"
        if self.kind == "not_null":
            return f"{self.column} is not null"
        if self.kind == "unique":
            return f"({', '.join(self.columns)}) is unique"
        if self.kind == "in_set":
            return f"{self.column} is one of {list(self.allowed or ())}{source}"
        if self.kind == "elements_in_set":
            return f"every element of {self.column} is one of {list(self.allowed or ())}{source}"
        if self.kind == "not_empty":
            return f"{self.column} is not empty text{source}"
        if self.kind == "range":
            low = "" if self.min is None else f"{'>' if self.min_strict else '>='} {self.min:g}"
            high = "" if self.max is None else f"<= {self.max:g}"
            return f"{self.column} {' and '.join(p for p in (low, high) if p)}"
        if self.kind == "not_after_run_date":
            when = "the run date" if run_date is None else f"the run date {run_date.date()}"
            return f"{self.column} is not after {when}"
        if self.kind == "ordered":
            return f"{self.columns[0]} <= {self.columns[1]} where both are set"
        if self.kind == "non_negative_unless":
            return f"{self.column} >= 0 unless {self.unless} is true"
        if self.kind == "foreign_key":
            ref = ".".join(self.ref or ("?", "?"))
            return f"{self.column} exists in {ref} (parent row missing or quarantined)"
        raise ValueError(f"rule kind '{self.kind}' has no description")


def validation_dtypes(column: Column) -> tuple[str, ...]:
    """Dtypes a column may have while being validated: the canonical one, or its nullable variant.

    A non-nullable int column holding a null (to be quarantined) cannot be ``int64`` yet, so it is
    ``Int64`` until then; without nulls it stays ``int64``, which GX compares vectorised (it maps a
    Python function over ``Int64`` values: 3 s per million rows).
    """
    canonical = pandas_dtype(column)
    nullable = {"int": "Int64", "bool": "boolean"}.get(column.type, canonical)
    return tuple(dict.fromkeys((canonical, nullable)))


def table_rules(t: Table, program: Program | None = None) -> tuple[Rule, ...]:
    """Every rule table ``t`` obeys under ``program`` (default: the built-in sample program), in a stable order.

    The file must hold the required columns (absent optional ones are filled with their defaults)
    and, for a required table, at least one row. A column with a listed vocabulary must hold its
    values; one with an open vocabulary any non-empty text.
    """
    program = program or coffee_program()
    rules: list[Rule] = [Rule("columns", t.name, tuple(t.required_columns))]
    if t.required:
        rules.append(Rule("row_count", t.name))
    rules += [Rule("dtype", t.name, (c.name,), dtypes=validation_dtypes(c)) for c in t.columns]
    rules += [Rule("not_null", t.name, (c.name,)) for c in t.columns if not c.nullable]
    rules.append(Rule("unique", t.name, tuple(t.primary_key)))
    for c in t.columns:
        if c.vocabulary is None:
            continue
        allowed, source = program.allowed(c.vocabulary), program.describe_vocabulary(c.vocabulary)
        if allowed is not None:
            kind: RuleKind = "elements_in_set" if c.type == "string_list" else "in_set"
            rules.append(Rule(kind, t.name, (c.name,), allowed=tuple(allowed), vocabulary=source))
        elif c.type == "string":
            rules.append(Rule("not_empty", t.name, (c.name,), vocabulary=source))
    rules += [
        Rule("range", t.name, (c.name,), min=c.min, max=c.max, min_strict=c.min_strict)
        for c in t.columns
        if c.min is not None or c.max is not None
    ]
    rules += [Rule("not_after_run_date", t.name, (name,)) for name in t.not_after_run_date]
    rules += [Rule("ordered", t.name, (earlier, later)) for earlier, later in t.ordered_pairs]
    rules += [
        Rule("non_negative_unless", t.name, (c.name,), unless=c.negative_only_when)
        for c in t.columns
        if c.negative_only_when is not None
    ]
    rules += [
        Rule("foreign_key", t.name, (fk.column,), ref=(fk.ref_table, fk.ref_column))
        for fk in t.foreign_keys
    ]
    return tuple(rules)


def run_date_cutoff(run_date: pd.Timestamp) -> pd.Timestamp:
    """First instant after the run date: timestamps must lie strictly before it."""
    return pd.Timestamp(run_date).normalize() + pd.Timedelta(days=1)


def validation_order(tables: Mapping[str, Table] | None = None) -> tuple[str, ...]:
    """Table names with every foreign-key parent before its children (products first: lines read it)."""
    tables = TABLES if tables is None else tables
    order: list[str] = [n for n in ("products",) if n in tables]

    def visit(name: str) -> None:
        if name in order:
            return
        for fk in tables[name].foreign_keys:
            if fk.ref_table != name and fk.ref_table in tables:
                visit(fk.ref_table)
        order.append(name)

    for name in tables:
        visit(name)
    return tuple(order)


def failing_rows(
    rule: Rule, frame: pd.DataFrame, run_date: pd.Timestamp, references: References | None = None
) -> pd.Index:
    """Index labels of the rows of ``frame`` that break a row-level ``rule`` (plain pandas)."""
    if rule.kind in TABLE_LEVEL_KINDS:
        raise ValueError(f"rule '{rule.kind}' is checked on the whole table, not row by row")
    col = frame[rule.column]
    present = col.notna()
    if rule.kind == "not_null":
        bad = ~present
    elif rule.kind == "unique":
        keys = frame[list(rule.columns)]
        bad = keys.duplicated(keep=False) & keys.notna().any(axis=1)
    elif rule.kind == "in_set":
        bad = present & ~col.isin(rule.allowed or ())
    elif rule.kind == "elements_in_set":
        allowed = frozenset(rule.allowed or ())
        bad = present & ~col.map(lambda v: allowed.issuperset(v) if isinstance(v, list) else True).astype(bool)
    elif rule.kind == "not_empty":
        bad = present & col.astype("str").str.len().eq(0)
    elif rule.kind == "range":
        bad = pd.Series(False, index=frame.index)
        if rule.min is not None:
            bad |= (col <= rule.min) if rule.min_strict else (col < rule.min)
        if rule.max is not None:
            bad |= col > rule.max
        bad = present & bad.fillna(False).astype(bool)
    elif rule.kind == "not_after_run_date":
        bad = present & (col >= run_date_cutoff(run_date))
    elif rule.kind == "ordered":
        later = frame[rule.columns[1]]
        bad = present & later.notna() & (later < col)
    elif rule.kind == "non_negative_unless":
        applies = frame[rule.unless].eq(False).fillna(False).astype(bool)
        bad = applies & present & (col < 0)
    elif rule.kind == "foreign_key":
        if references is None or rule.ref not in references:
            raise KeyError(f"table '{rule.table}': no reference values given for foreign key {rule.describe()}")
        bad = present & ~col.isin(references[rule.ref])
    else:  # pragma: no cover - every kind is handled above
        raise ValueError(f"unknown rule kind '{rule.kind}'")
    return frame.index[bad.fillna(False).to_numpy(dtype=bool)]
