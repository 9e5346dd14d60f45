"""Great Expectations suites built from the schema: one expectation per rule of ``table_rules``.

Each expectation carries ``meta={"rule_id": i, "rule": kind, "columns": [...]}`` where ``i`` is
the rule's position in ``table_rules(table)``, so a validation result maps back to its rule.
Three rule families get a small custom expectation here: list elements in a set
(``eligible_tiers``, ``channels``), the pandas dtype of a column (GX's type-list check cannot name
pandas 3's ``str`` dtype), and foreign keys. A foreign key could be ``expect_column_values_to_be_in_set``
with the parent's keys as ``value_set``, but GX re-serialises an expectation's pydantic configuration on
every metric lookup: with 3000 customer ids that was half the validation time of the sample, with 100k
it dominates. So the key values stay out of the configuration: ``ReferenceValues`` holds them and the
expectation names them by a key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import itertools
import threading

import great_expectations as gx
import pandas as pd
import great_expectations.expectations as gxe
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation, ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial
from great_expectations.expectations.row_conditions import Column as RowColumn

from data_contracts.program import Program
from data_contracts.rules import References, Rule, run_date_cutoff, table_rules
from data_contracts.schema import Table

# Rules checked on the file as read (before coercion) versus on the coerced values.
FILE_KINDS = ("columns", "row_count")


class ColumnValuesListElementsInSet(ColumnMapMetricProvider):
    """Per row: every element of the list value belongs to ``value_set``."""

    condition_metric_name = "column_values.list_elements_in_set"
    condition_value_keys = ("value_set",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, value_set, **kwargs):
        allowed = frozenset(value_set)
        return column.map(lambda v: allowed.issuperset(v) if isinstance(v, list) else True).astype(bool)


class ExpectColumnListElementsToBeInSet(ColumnMapExpectation):
    """Expect every element of each list value in the column to belong to ``value_set``."""

    value_set: list
    map_metric = "column_values.list_elements_in_set"
    success_keys = ("value_set", "mostly")
    args_keys = ("column", "value_set")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["reward-recommender"], "contributors": []}


class ExpectColumnDtypeToBeIn(BatchExpectation):
    """Expect the pandas dtype of ``column`` to be called one of ``dtypes`` (e.g. ``str``, ``Int64``)."""

    column: str
    dtypes: list[str]
    metric_dependencies = ("table.column_types",)
    success_keys = ("column", "dtypes")
    args_keys = ("column", "dtypes")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["reward-recommender"], "contributors": []}

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        kwargs = self.configuration.kwargs
        types = {d["name"]: d["type"] for d in metrics["table.column_types"]}
        observed = str(types[kwargs["column"]]) if kwargs["column"] in types else None
        return {"success": observed in kwargs["dtypes"], "result": {"observed_value": observed}}


class ReferenceValues:
    """Key values of parent tables that foreign-key expectations check against, by key."""

    _values: ClassVar[dict[str, pd.Index]] = {}
    _counter = itertools.count()
    _lock = threading.Lock()

    @classmethod
    def register(cls, name: str, values) -> str:
        """Store ``values`` and return the key an expectation uses to find them."""
        with cls._lock:
            key = f"{name}#{next(cls._counter)}"
            cls._values[key] = pd.Index(pd.unique(pd.Series(values).dropna()))
        return key

    @classmethod
    def get(cls, key: str) -> pd.Index:
        try:
            return cls._values[key]
        except KeyError:
            raise KeyError(f"no reference values registered under '{key}'") from None

    @classmethod
    def release(cls, key: str) -> None:
        cls._values.pop(key, None)


class ColumnValuesInReference(ColumnMapMetricProvider):
    """Per row: the value exists among the registered reference values (a foreign key)."""

    condition_metric_name = "column_values.in_reference"
    condition_value_keys = ("reference",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, reference, **kwargs):
        return column.isin(ReferenceValues.get(reference))


class ExpectColumnValuesToBeInReference(ColumnMapExpectation):
    """Expect each value to exist among the reference values registered under ``reference``."""

    reference: str
    map_metric = "column_values.in_reference"
    success_keys = ("reference", "mostly")
    args_keys = ("column", "reference")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["reward-recommender"], "contributors": []}


def expectation_for(
    rule: Rule, rule_id: int, run_date=None, references: References | None = None
) -> gxe.Expectation:
    """The GX expectation that checks ``rule``."""
    # "reads": the columns the check needs (none = the whole table), so a big frame can be validated
    # in narrow column groups.
    reads = [] if rule.kind in FILE_KINDS else [*rule.columns, *([rule.unless] if rule.unless else [])]
    meta = {"rule_id": rule_id, "rule": rule.kind, "columns": list(rule.columns), "reads": reads}
    if rule.kind == "columns":
        return gxe.ExpectTableColumnsToMatchSet(column_set=list(rule.columns), exact_match=False, meta=meta)
    if rule.kind == "row_count":
        return gxe.ExpectTableRowCountToBeBetween(min_value=1, max_value=None, meta=meta)
    if rule.kind == "dtype":
        return ExpectColumnDtypeToBeIn(column=rule.column, dtypes=list(rule.dtypes), meta=meta)
    if rule.kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=rule.column, meta=meta)
    if rule.kind == "unique":
        if len(rule.columns) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=rule.column, meta=meta)
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(rule.columns), meta=meta)
    if rule.kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(column=rule.column, value_set=list(rule.allowed), meta=meta)
    if rule.kind == "elements_in_set":
        return ExpectColumnListElementsToBeInSet(column=rule.column, value_set=list(rule.allowed), meta=meta)
    if rule.kind == "not_empty":
        return gxe.ExpectColumnValueLengthsToBeBetween(column=rule.column, min_value=1, meta=meta)
    if rule.kind == "range":
        return gxe.ExpectColumnValuesToBeBetween(
            column=rule.column, min_value=rule.min, max_value=rule.max, strict_min=rule.min_strict, meta=meta
        )
    if rule.kind == "not_after_run_date":
        if run_date is None:
            raise ValueError(f"table '{rule.table}': a run date is needed to check {rule.column}")
        return gxe.ExpectColumnValuesToBeBetween(
            column=rule.column, max_value=run_date_cutoff(run_date), strict_max=True, meta=meta
        )
    if rule.kind == "ordered":
        earlier, later = rule.columns
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=later, column_B=earlier, or_equal=True, ignore_row_if="either_value_is_missing", meta=meta
        )
    if rule.kind == "non_negative_unless":
        return gxe.ExpectColumnValuesToBeBetween(
            column=rule.column, min_value=0, row_condition=RowColumn(rule.unless) == False, meta=meta  # noqa: E712
        )
    if rule.kind == "foreign_key":
        if references is None or rule.ref not in references:
            raise KeyError(f"table '{rule.table}': no reference values given for foreign key {rule.describe()}")
        key = ReferenceValues.register(".".join(rule.ref), references[rule.ref])
        return ExpectColumnValuesToBeInReference(column=rule.column, reference=key, meta=meta)
    raise ValueError(f"table '{rule.table}': rule kind '{rule.kind}' has no expectation")


def build_suite(
    t: Table,
    kinds: Iterable[str],
    run_date=None,
    references: References | None = None,
    name: str | None = None,
    program: Program | None = None,
) -> gx.ExpectationSuite:
    """A suite with one expectation per rule of table ``t`` (under ``program``) whose kind is in ``kinds``."""
    kinds = set(kinds)
    expectations = [
        expectation_for(rule, rule_id, run_date, references)
        for rule_id, rule in enumerate(table_rules(t, program))
        if rule.kind in kinds
    ]
    # Passing the list to the constructor (not add_expectation) needs no active GX context.
    return gx.ExpectationSuite(name=name or f"{t.name}.{'+'.join(sorted(kinds))}", expectations=expectations)


def file_suite(t: Table, program: Program | None = None) -> gx.ExpectationSuite:
    """Checks on the file as read: required columns present, at least one row (required tables)."""
    return build_suite(t, FILE_KINDS, name=f"{t.name}.file", program=program)


def value_suite(
    t: Table, run_date, references: References | None = None, program: Program | None = None
) -> gx.ExpectationSuite:
    """Checks on the coerced values: dtypes, nulls, keys, allowed values, ranges, times, foreign keys."""
    kinds = {r.kind for r in table_rules(t, program)} - set(FILE_KINDS)
    return build_suite(t, kinds, run_date, references, name=f"{t.name}.values", program=program)

