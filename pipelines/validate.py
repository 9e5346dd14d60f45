"""`rewards validate`: check raw tables against their data contracts with Great Expectations.

Reads ``<table>.parquet`` or ``<table>.csv``, coerces values to the schema dtypes, validates them with
GX suites built from the schema, quarantines failing rows with their reasons, writes the valid rows
(canonical dtypes) for later steps and a JSON report. Parents are validated before the tables that
point to them, so a row whose parent was quarantined is quarantined too.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from data_contracts.errors import (
    ContractError,
    EmptyTableError,
    ForeignKeyUnavailableError,
    MissingColumnsError,
    MissingTableError,
    TooManyInvalidRowsError,
    UnreadableTableError,
    WrongDtypeError,
)
from data_contracts.schema import TABLES, Table, pandas_dtype
from pipelines import config
from pipelines.io import find_table_file, write_frame

REPORT_FILE = "validation_report.json"
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


@dataclass
class ValidationResult:
    """Per-table reports, the errors that stop the run, and where outputs were written."""

    run_date: pd.Timestamp
    tables: dict[str, TableReport]
    errors: list[ContractError]
    report_path: Path | None = None
    written: bool = False  # validated tables written (only when no table failed hard)

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows_quarantined for r in self.tables.values())

    @property
    def exit_code(self) -> int:
        """0 clean, 1 some rows quarantined, 2 a table failed hard."""
        if self.errors:
            return 2
        return 1 if self.rows_quarantined else 0


# --------------------------------------------------------------------------------------------------
# Reading raw files
# --------------------------------------------------------------------------------------------------


def read_raw_table(name: str, path: Path) -> pd.DataFrame:
    """The raw table as stored: Parquet with its own types, CSV as text (empty cell = null)."""
    path = Path(path)
    try:
        if path.suffix == ".csv":
            if path.stat().st_size == 0:
                raise EmptyTableError(name, f"file '{path}' is empty; expected a header and at least 1 row")
            frame = pd.read_csv(path, dtype="str", keep_default_na=False, na_values=[""], encoding="utf-8")
        else:
            frame = pd.read_parquet(path)
    except UnicodeDecodeError as err:
        raise UnreadableTableError(
            name, f"file '{path}' is not valid UTF-8: {_first_bad_utf8(path)}; expected UTF-8 text, re-export the file as UTF-8"
        ) from err
    except ContractError:
        raise
    except Exception as err:  # pandas/pyarrow raise many types for a corrupt file
        raise UnreadableTableError(name, f"file '{path}' cannot be read as {path.suffix[1:]}: {err}") from err
    return frame.reset_index(drop=True)


def _first_bad_utf8(path: Path) -> str:
    """Where the first byte that is not UTF-8 sits, e.g. 'byte 0xe9 on line 3'."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return f"byte 0x{line[err.start]:02x} on line {number}"
    return "undecodable bytes"


# --------------------------------------------------------------------------------------------------
# Checking one table in memory (GX decides; coercion failures are found before GX sees the rows)
# --------------------------------------------------------------------------------------------------


class Validator:
    """One ephemeral GX context with a pandas data source; checks tables one at a time."""

    # Above this many rows, expectations run in groups on frames holding only the columns they read:
    # GX copies the whole batch for every null filter and row condition, which dominated at 10M rows.
    GROUP_ROWS = 1_000_000

    def __init__(self, run_date: pd.Timestamp):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints every in-memory batch under 1 GB (md5 of hash_pandas_object): half the time of a
        # 3.5M-row validation. Nothing here uses the fingerprint (ephemeral context, no stores).
        pandas_execution_engine.HASH_THRESHOLD = 0
        self.run_date = pd.Timestamp(run_date)
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
    ) -> TableCheck:
        """Coerce, validate and split one raw table; hard failures come back in ``TableCheck.error``."""
        from data_contracts.coercion import coerce_table, narrowed, to_canonical
        from data_contracts.expectations import ReferenceValues, file_suite, value_suite
        from data_contracts.quarantine import RowReasons, split
        from data_contracts.rules import table_rules

        raw = raw.reset_index(drop=True)  # row labels are row numbers from here on
        report = TableReport(table=t.name, file=file, rows_read=len(raw))
        report.extra_columns = [c for c in raw.columns if c not in t.column_names]
        rules = table_rules(t)

        # 1. The file as read: required columns, at least one row.
        for result in self.run(file_suite(t), raw, t.name).results:
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

        # 2. Coercion to the schema dtypes: unparseable values quarantine their row.
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
        suite = value_suite(t, self.run_date, references)
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
                raise RuntimeError(
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
        assert report.rows_valid + report.rows_quarantined == report.rows_read, report
        check = TableCheck(
            report,
            valid=to_canonical(t, valid).reset_index(drop=True),
            quarantined=quarantined,
            rule_failures=rule_failures,
        )
        fraction = len(quarantined) / len(raw)
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


# --------------------------------------------------------------------------------------------------
# The whole directory
# --------------------------------------------------------------------------------------------------


def validate_directory(
    raw_dir: Path,
    out_dir: Path,
    quarantine_dir: Path,
    report_dir: Path,
    run_date: pd.Timestamp | str | None = None,
    max_invalid_fraction: float = 0.01,
    validator: Validator | None = None,
) -> ValidationResult:
    """Validate every table in ``raw_dir``; write valid rows, quarantined rows and a JSON report.

    Valid tables are written to ``out_dir`` only when no table failed hard, so later steps never
    read a mix of fresh and stale tables. ``validator`` reuses a GX context (its run date wins).
    """
    from data_contracts.rules import validation_order

    run_date = pd.Timestamp.today().normalize() if run_date is None else pd.Timestamp(run_date)
    raw_dir, out_dir, quarantine_dir, report_dir = map(Path, (raw_dir, out_dir, quarantine_dir, report_dir))
    if validator is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validator = Validator(run_date)
    run_date = validator.run_date

    checks: dict[str, TableCheck] = {}
    references: dict[tuple[str, str], pd.Series] = {}
    for name in validation_order():
        t = TABLES[name]
        checks[name] = check = _check_file(validator, t, raw_dir, references, max_invalid_fraction)
        if check.valid is not None:
            for column in t.column_names:
                references[(name, column)] = check.valid[column]
        if check.quarantined is not None:
            _write_quarantine(quarantine_dir, name, check.quarantined)

    errors = [c.error for c in checks.values() if c.error is not None]
    written = False
    if not errors:
        for name, check in checks.items():
            write_frame(check.valid, out_dir / f"{name}.parquet")
        written = True
    result = ValidationResult(run_date, {n: c.report for n, c in checks.items()}, errors, written=written)
    result.report_path = _write_report(report_dir, raw_dir, result, max_invalid_fraction)
    return result


def _check_file(validator: Validator, t: Table, raw_dir: Path, references, max_invalid_fraction) -> TableCheck:
    path = find_table_file(raw_dir, t.name)
    try:
        if path is None:
            raise MissingTableError(
                t.name, f"no file '{t.name}.parquet' or '{t.name}.csv' in '{raw_dir}'; expected one of them"
            )
        for fk in t.foreign_keys:
            if (fk.ref_table, fk.ref_column) not in references:
                raise ForeignKeyUnavailableError(
                    t.name,
                    f"cannot check foreign key '{fk.column}' -> {fk.ref_table}.{fk.ref_column} because table "
                    f"'{fk.ref_table}' failed; fix that table first",
                )
        raw = read_raw_table(t.name, path)
    except ContractError as err:
        return TableCheck(TableReport(table=t.name, file=str(path) if path else None, error=str(err)), error=err)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return validator.check_table(t, raw, references, max_invalid_fraction, file=str(path))


def _write_quarantine(quarantine_dir: Path, name: str, quarantined: pd.DataFrame) -> None:
    path = quarantine_dir / f"{name}.parquet"
    if len(quarantined):
        write_frame(quarantined, path)
    elif path.exists():
        path.unlink()  # a stale file from an earlier run would contradict this run's counts


def _write_report(report_dir: Path, raw_dir: Path, result: ValidationResult, max_invalid_fraction: float) -> Path:
    def table_dict(r: TableReport) -> dict:
        d = asdict(r)
        d["expectations_passed"], d["expectations_failed"] = r.passed, r.failed
        return d

    body = {
        "raw_dir": str(raw_dir),
        "run_date": str(result.run_date.date()),
        "max_invalid_fraction": max_invalid_fraction,
        "exit_code": result.exit_code,
        "validated_written": result.written,
        "errors": [str(e) for e in result.errors],
        "tables": {name: table_dict(r) for name, r in result.tables.items()},
    }
    path = report_dir / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    from pipelines.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(body, indent=2, default=str))
    return path


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def print_summary(result: ValidationResult) -> None:
    """Per table: rows in = valid + quarantined, expectations passed/failed; then each failure."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RichTable

    console = Console(width=200)
    summary = RichTable(title=f"rewards validate (run date {result.run_date.date()})")
    for heading in ("table", "rows", "valid", "quarantined", "not checked", "expectations passed", "failed", "status"):
        summary.add_column(heading, justify="left" if heading in ("table", "status") else "right")
    for r in result.tables.values():
        status = "FAILED" if r.error else ("quarantined" if r.rows_quarantined else "ok")
        assert r.rows_read == r.rows_valid + r.rows_quarantined + r.rows_unchecked, r
        summary.add_row(r.table, str(r.rows_read), str(r.rows_valid), str(r.rows_quarantined),
                        str(r.rows_unchecked), str(r.passed), str(r.failed), status)
    console.print(summary)

    failures = RichTable(title="failed expectations")
    for heading in ("table", "column", "expectation", "rule", "count", "example"):
        failures.add_column(heading, overflow="fold")
    for r in result.tables.values():
        for e in r.expectations:
            if not e.success:
                example = e.examples[0] if e.examples else _fmt(e.observed)
                cells = (r.table, "+".join(e.columns), e.expectation, e.description, str(e.unexpected_count), example)
                failures.add_row(*map(escape, cells))
    if failures.row_count:
        console.print(failures)
    total_in = sum(r.rows_read for r in result.tables.values())
    total_valid = sum(r.rows_valid for r in result.tables.values())
    total_unchecked = sum(r.rows_unchecked for r in result.tables.values())
    assert total_in == total_valid + result.rows_quarantined + total_unchecked
    console.print(
        f"rows read {total_in} = valid {total_valid} + quarantined {result.rows_quarantined}"
        + (f" + not checked {total_unchecked} (table failed)" if total_unchecked else "")
    )
    for r in result.tables.values():
        if r.extra_columns:
            console.print(escape(f"note: table '{r.table}' has columns the schema does not declare, not kept: {r.extra_columns}"))
    if result.report_path:
        console.print(f"report: {result.report_path}")


def validate_command(
    raw_dir: Annotated[Path, typer.Argument(help="Folder with <table>.parquet or <table>.csv files.")],
    out: Annotated[Path | None, typer.Option("--out", help="Where valid rows go (default: data/validated).")] = None,
    quarantine: Annotated[
        Path | None, typer.Option("--quarantine", help="Where invalid rows go (default: data/quarantine).")
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Where the JSON report goes (default: data/reports).")
    ] = None,
    run_date: Annotated[
        str | None, typer.Option("--run-date", help="YYYY-MM-DD; no timestamp may lie after it (default: today).")
    ] = None,
    max_invalid_fraction: Annotated[
        float, typer.Option("--max-invalid-fraction", min=0.0, max=1.0, help="Fail a table above this share of invalid rows.")
    ] = 0.01,
) -> None:
    """Check raw tables against their data contracts; write valid rows, quarantine the rest.

    Exit code 0: all rows valid. 1: some rows quarantined (under the threshold). 2: a table failed.
    """
    when = None
    if run_date is not None:
        try:
            when = pd.Timestamp(run_date)
        except ValueError:
            when = pd.NaT
        if pd.isna(when):
            typer.echo(f"error: --run-date '{run_date}' is not a date; expected YYYY-MM-DD", err=True)
            raise typer.Exit(2)
    result = validate_directory(
        raw_dir,
        out or config.validated_dir(),
        quarantine or config.quarantine_dir(),
        report_dir or config.reports_dir(),
        run_date=when,
        max_invalid_fraction=max_invalid_fraction,
    )
    print_summary(result)
    for err in result.errors:
        expectation = getattr(err, "expectation", None)
        typer.echo(f"error: {err}" + (f" [{expectation}]" if expectation else ""), err=True)
    raise typer.Exit(result.exit_code)
