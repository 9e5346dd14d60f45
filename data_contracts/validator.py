"""The Great Expectations validator: one table in memory against its contract under a program.

Pure of files: a raw frame (as read) in, valid rows (canonical dtypes), quarantined rows with their
reasons and a report out. ``pipelines/validate.py`` reads the files and writes the results.
Steps per table: required columns present (GX), absent optional columns filled with their defaults,
values coerced to the schema dtypes (a value that cannot be read quarantines its row), then one GX
expectation per schema rule on the coerced values; failing rows are quarantined with a reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from data_contracts.errors import (
    ContractError,
    EmptyTableError,
    MissingColumnsError,
    TooManyInvalidRowsError,
    WrongDtypeError,
)
from data_contracts.program import Program, coffee_program
from data_contracts.schema import Table, pandas_dtype

class ValidatorError(RuntimeError):
    """GX could not evaluate an expectation: a fault of this program, not of the data (exit 3)."""


EXAMPLES = 5  # example values kept per failed expectation


@dataclass
class ExpectationOutcome:
    """How one expectation (or the coercion of one column) fared on one table."""

    expectation: str
    rule: str
    columns: list[str]
    description: str
    success: bool
    unexpected_count: int = 0
    examples: list[str] = field(default_factory=list)
    observed: Any = None


@dataclass
class TableReport:
    """Everything `rewards validate` learned about one table."""

    table: str
    file: str | None = None
    rows_read: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_unchecked: int = 0  # rows of a table that failed as a whole (nothing written for them)
    extra_columns: list[str] = field(default_factory=list)  # in the file, not in the schema: not kept
    source: str = "file"  # "file", "derived from transactions" or "absent (validated as empty)"
    defaulted_columns: list[str] = field(default_factory=list)  # absent optional columns, filled with defaults
    open_values: dict[str, dict] = field(default_factory=dict)  # open vocabulary column -> values seen
    expectations: list[ExpectationOutcome] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> int:
        return sum(e.success for e in self.expectations)

    @property
    def failed(self) -> int:
        return sum(not e.success for e in self.expectations)


@dataclass
class TableCheck:
    """The in-memory outcome of checking one table: valid rows, quarantined rows, report."""

    report: TableReport
    valid: pd.DataFrame | None = None  # canonical dtypes
    quarantined: pd.DataFrame | None = None  # raw values + row_number + reason
    error: ContractError | None = None
    rule_failures: dict[int, list] = field(default_factory=dict)  # rule id -> row labels GX named


class Validator:
    """One ephemeral GX context with a pandas data source; checks tables one at a time."""

    # Above this many rows, expectations run in groups on frames holding only the columns they read:
    # GX copies the whole batch for every null filter and row condition, which dominated at 10M rows.
    GROUP_ROWS = 1_000_000

    def __init__(self, run_date: pd.Timestamp, program: Program | None = None):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints every in-memory batch under 1 GB (md5 of hash_pandas_object): half the time of a
        # 3.5M-row validation. Nothing here uses the fingerprint (ephemeral context, no stores).
        pandas_execution_engine.HASH_THRESHOLD = 0
        self.run_date = pd.Timestamp(run_date)
        self.program = program or coffee_program()
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("rewards")

    def run(self, suite, frame: pd.DataFrame, asset_name: str):
        """Validate ``frame`` (its index kept for unexpected_index_list) against ``suite``."""
        names = {a.name for a in self.source.assets}
        asset = self.source.get_asset(asset_name) if asset_name in names else self.source.add_dataframe_asset(asset_name)
        batch_definition = asset.add_batch_definition_whole_dataframe(f"{suite.name}.{len(asset.batch_definitions)}")
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        try:
            return batch.validate(suite, result_format={"result_format": "COMPLETE"})
        finally:
            batch.data.execution_engine.batch_manager.reset_batch_cache()  # don't keep frames alive

    def validate(self, suite, frame: pd.DataFrame, asset_name: str) -> list:
        """Results of ``suite`` on ``frame``; a big frame is validated in narrow column groups."""
        import great_expectations as gx

        if len(frame) < self.GROUP_ROWS:
            return list(self.run(suite, frame, asset_name).results)
        groups: dict[tuple[str, ...], list] = {}
        for expectation in suite.expectations:
            groups.setdefault(tuple(dict.fromkeys(expectation.meta["reads"])), []).append(expectation)
        results = []
        for columns, expectations in groups.items():
            part = gx.ExpectationSuite(name=f"{suite.name}[{'+'.join(columns)}]", expectations=expectations)
            results += self.run(part, frame[list(columns)] if columns else frame, asset_name).results
        return results

    def check_table(
        self,
        t: Table,
        raw: pd.DataFrame,
        references: dict[tuple[str, str], pd.Series] | None = None,
        max_invalid_fraction: float = 0.01,
        file: str | None = None,
        context: Mapping[str, pd.DataFrame] | None = None,
    ) -> TableCheck:
        """Coerce, validate and split one raw table; hard failures come back in ``TableCheck.error``.

        ``context``: other tables that defaults are derived from (see ``defaults.fill_defaults``).
        """
        from data_contracts.coercion import coerce_table, narrowed, to_canonical
        from data_contracts.defaults import fill_defaults
        from data_contracts.expectations import ReferenceValues, file_suite, value_suite
        from data_contracts.quarantine import RowReasons, split
        from data_contracts.rules import table_rules

        raw = raw.reset_index(drop=True)  # row labels are row numbers from here on
        report = TableReport(table=t.name, file=file, rows_read=len(raw))
        report.extra_columns = [c for c in raw.columns if c not in t.column_names]
        rules = table_rules(t, self.program)

        # 1. The file as read: required columns, at least one row (a required table).
        for result in self.run(file_suite(t, self.program), raw, t.name).results:
            outcome = _outcome(result, rules, self.run_date)
            report.expectations.append(outcome)
            if outcome.success:
                continue
            if outcome.rule == "columns":
                missing = result.result["details"]["mismatched"].get("missing", [])
                err = MissingColumnsError(t.name, missing, list(raw.columns))
            else:
                err = EmptyTableError(t.name, f"file '{file}' holds no rows; expected at least 1")
            err.expectation = outcome.expectation
            report.error, report.rows_unchecked = str(err), len(raw)
            return TableCheck(report, error=err)

        # 2. Absent optional columns get their defaults; coercion to the schema dtypes: unparseable
        # values quarantine their row.
        raw, report.defaulted_columns = fill_defaults(t, raw, self.program, context)
        reasons = RowReasons()
        coerced = coerce_table(t, raw)
        for column, failed in coerced.failures.items():
            labels = raw.index[failed.to_numpy()]
            dtype = pandas_dtype(t.column(column))
            reasons.add(labels, {i: _coercion_reason(t, column, raw.at[i, column], dtype) for i in labels})
            report.expectations.append(
                ExpectationOutcome(
                    expectation=f"coerce_to_{dtype}",
                    rule="coercion",
                    columns=[column],
                    description=f"{column} can be read as {t.column(column).type} ({dtype})",
                    success=False,
                    unexpected_count=len(labels),
                    examples=[_fmt(v) for v in raw.loc[labels[:EXAMPLES], column]],
                )
            )
        frame = narrowed(t, coerced.frame.drop(index=coerced.failed_rows()))

        # 3. GX on the coerced values: one expectation per schema rule; rows it names are quarantined.
        suite = value_suite(t, self.run_date, references, self.program)
        try:
            results = self.validate(suite, frame, t.name)
        finally:
            for expectation in suite.expectations:
                if getattr(expectation, "reference", None):
                    ReferenceValues.release(expectation.reference)
        results = sorted(results, key=lambda r: r.expectation_config.meta["rule_id"])  # reasons in rule order
        rule_failures: dict[int, list] = {}
        for result in results:
            outcome = _outcome(result, rules, self.run_date)
            report.expectations.append(outcome)
            if result.exception_info and result.exception_info.get("raised_exception"):
                raise ValidatorError(
                    f"table '{t.name}': GX could not evaluate {outcome.expectation} on {outcome.columns}: "
                    f"{result.exception_info.get('exception_message')}"
                )
            if outcome.success:
                continue
            rule = rules[result.expectation_config.meta["rule_id"]]
            if rule.kind == "dtype":
                err = WrongDtypeError(
                    t.name,
                    f"column '{rule.column}' has dtype {outcome.observed} after coercion, expected one of {list(rule.dtypes)} "
                    f"({outcome.expectation})",
                )
                err.expectation = outcome.expectation
                report.error, report.rows_unchecked = str(err), len(raw)
                return TableCheck(report, error=err)
            labels = result.result.get("unexpected_index_list") or []
            rule_failures[result.expectation_config.meta["rule_id"]] = list(labels)
            reasons.add(labels, {i: _rule_reason(rule, outcome, frame, i, self.run_date) for i in labels})

        # 4. Split; every row is valid or quarantined, and the counts must add up.
        valid, quarantined = split(raw, coerced.frame, reasons)
        report.rows_valid, report.rows_quarantined = len(valid), len(quarantined)
        report.open_values = open_values_seen(t, valid, self.program)
        check = TableCheck(
            report,
            valid=to_canonical(t, valid).reset_index(drop=True),
            quarantined=quarantined,
            rule_failures=rule_failures,
        )
        fraction = len(quarantined) / len(raw) if len(raw) else 0.0
        if fraction > max_invalid_fraction:
            worst = sorted((e for e in report.expectations if not e.success), key=lambda e: -e.unexpected_count)
            details = "; ".join(
                f"column '{'+'.join(e.columns)}' failed {e.expectation} ({e.description}) on "
                f"{e.unexpected_count} rows, e.g. {', '.join(e.examples[:2])}"
                for e in worst[:3]
            )
            check.error = TooManyInvalidRowsError(
                t.name,
                f"{len(quarantined)} of {len(raw)} rows ({fraction:.2%}) are invalid, more than the allowed "
                f"{max_invalid_fraction:.2%}: {details}",
            )
            check.error.expectation = worst[0].expectation if worst else None
            report.error = str(check.error)
        return check


OPEN_VALUES_SHOWN = 50  # values of an open vocabulary listed in the report


def open_values_seen(t: Table, valid: pd.DataFrame, program: Program) -> dict[str, dict]:
    """Per column with an open vocabulary: how many distinct values the valid rows hold, and the commonest."""
    seen = {}
    for c in t.columns:
        if c.vocabulary is None or program.allowed(c.vocabulary) is not None:
            continue
        values = valid[c.name].dropna()
        if c.type == "string_list":
            values = values.explode().dropna()
        counts = values.astype("str").value_counts()
        seen[c.name] = {
            "vocabulary": program.describe_vocabulary(c.vocabulary),
            "distinct": int(len(counts)),
            "values": [str(v) for v in counts.index[:OPEN_VALUES_SHOWN]],
        }
    return seen


def _outcome(result, rules, run_date) -> ExpectationOutcome:
    config_ = result.expectation_config
    rule = rules[config_.meta["rule_id"]]
    res = result.result or {}
    examples = res.get("partial_unexpected_list") or []
    if rule.kind == "ordered":  # GX lists pairs as (column_A, column_B) = (later, earlier)
        examples = [tuple(reversed(e)) if isinstance(e, (tuple, list)) else e for e in examples]
    count = res.get("unexpected_count")
    if count is None and not result.success:
        count = 1  # a table-level expectation fails as a whole
    return ExpectationOutcome(
        expectation=config_.type,
        rule=rule.kind,
        columns=list(rule.columns) if rule.kind != "columns" else ["*"],
        description=rule.describe(run_date),
        success=bool(result.success),
        unexpected_count=int(count or 0),
        examples=[_fmt(v) for v in examples[:EXAMPLES]],
        observed=_jsonable(res.get("observed_value")) if rule.kind in ("columns", "row_count", "dtype") else None,
    )


def _coercion_reason(t: Table, column: str, value: object, dtype) -> str:
    return f"{column}: cannot read {_fmt(value)} as {t.column(column).type} ({dtype}) [coercion]"


def _rule_reason(rule, outcome: ExpectationOutcome, frame: pd.DataFrame, label, run_date) -> str:
    if len(rule.columns) == 1:
        got = _fmt(frame.at[label, rule.column])
    else:
        got = "(" + ", ".join(_fmt(frame.at[label, c]) for c in rule.columns) + ")"
    return f"{rule.label}: expected {rule.describe(run_date)} [{outcome.expectation}], got {got}"


def _fmt(value: object) -> str:
    from data_contracts.quarantine import format_value

    text = format_value(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


