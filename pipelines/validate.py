"""`rewards validate`: check raw tables against their data contracts with Great Expectations.

The edges of validation: reads ``<table>.parquet`` or ``<table>.csv`` and the program file, hands
each table to the GX validator (:mod:`data_contracts.validator`), writes the valid rows (canonical
dtypes) for later steps, the quarantined rows with their reasons, a JSON report and a copy of the
program file. Parents are validated before the tables that point to them, so a row whose parent
was quarantined is quarantined too. Only ``transactions`` is required: an absent ``customers`` is
derived from it, other absent tables are validated as empty.
"""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from data_contracts.errors import (
    ContractError,
    EmptyTableError,
    ForeignKeyUnavailableError,
    MissingTableError,
    UnreadableTableError,
)
from data_contracts.program import PROGRAM_FILE, Program, ProgramError, coffee_program, load_program, program_digest
from data_contracts.schema import Table, empty_frame, tables_for
from data_contracts.validator import TableCheck, TableReport, Validator, ValidatorError  # noqa: F401 (re-exported)
from pipelines import config
from pipelines.io import atomic_path, find_table_file, write_frame

REPORT_FILE = "validation_report.json"
DERIVED = "derived from transactions"
ABSENT = "absent (validated as empty)"

# Exit codes of `rewards validate` (the README's table lists them).
EXIT_CLEAN, EXIT_QUARANTINED, EXIT_FAILED, EXIT_INTERNAL = 0, 1, 2, 3


@dataclass
class ValidationResult:
    """Per-table reports, the errors that stop the run, and where outputs were written."""

    run_date: pd.Timestamp
    tables: dict[str, TableReport]
    errors: list[ContractError]
    program: Program
    program_is_default: bool = False  # no program file given or found: the built-in sample program
    report_path: Path | None = None
    written: bool = False  # validated tables written (only when no table failed hard)

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows_quarantined for r in self.tables.values())

    @property
    def exit_code(self) -> int:
        """0 clean, 1 some rows quarantined, 2 a table failed hard."""
        if self.errors:
            return EXIT_FAILED
        return EXIT_QUARANTINED if self.rows_quarantined else EXIT_CLEAN


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
            _check_csv_header(name, path)
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


def _check_csv_header(name: str, path: Path) -> None:
    """Duplicated column names fail (pandas would rename one silently); a one-column header that
    holds ';' or a tab gets a hint about the delimiter."""
    with open(path, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), [])
    counts = {c: header.count(c) for c in header}
    dupes = [c for c, k in counts.items() if k > 1]
    if dupes:
        raise UnreadableTableError(
            name,
            f"file '{path}' repeats column {dupes[0]!r} {counts[dupes[0]]} times in its header"
            + (f" (also {dupes[1:]})" if len(dupes) > 1 else "")
            + "; expected every column name once: rename or drop the duplicate",
        )
    if len(header) == 1:
        for delimiter, word in ((";", "semicolons"), ("\t", "tabs")):
            if delimiter in header[0]:
                raise UnreadableTableError(
                    name,
                    f"file '{path}' reads as one column {header[0][:60]!r}: it looks separated by {word}; "
                    "expected comma-separated values: re-export the file with ',' as the delimiter",
                )


def _first_bad_utf8(path: Path) -> str:
    """Where the first byte that is not UTF-8 sits, e.g. 'byte 0xe9 on line 3'."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return f"byte 0x{line[err.start]:02x} on line {number}"
    return "undecodable bytes"


def resolve_program(raw_dir: Path, program_file: Path | None = None) -> tuple[Program, Path, bool]:
    """``(program, its file, whether it is the built-in default)``: --program, else DIR/program.toml, else the built-in one."""
    if program_file is not None:
        return load_program(program_file), Path(program_file), False
    candidate = Path(raw_dir) / PROGRAM_FILE
    if candidate.exists():
        return load_program(candidate), candidate, False
    program = coffee_program()
    return program, Path(program.source), True


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
    program_file: Path | None = None,
) -> ValidationResult:
    """Validate every table in ``raw_dir``; write valid rows, quarantined rows, a JSON report, the program.

    Valid tables are written to ``out_dir`` only when no table failed hard, so later steps never
    read a mix of fresh and stale tables. ``validator`` reuses a GX context (its run date and
    program win); otherwise the program is ``program_file``, ``raw_dir/program.toml`` or the built-in sample program.
    """
    from data_contracts.rules import validation_order

    raw_dir, out_dir, quarantine_dir, report_dir = map(Path, (raw_dir, out_dir, quarantine_dir, report_dir))
    if validator is None:
        program, program_path, is_default = resolve_program(raw_dir, program_file)
        run_date = pd.Timestamp.today().normalize() if run_date is None else pd.Timestamp(run_date)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validator = Validator(run_date, program)
    else:
        program, is_default = validator.program, program_file is None and validator.program is coffee_program()
        program_path = Path(program_file) if program_file else Path(program.source)
    run_date = validator.run_date

    tables = tables_for(program)
    raw_log = _read_raw_log(raw_dir)
    checks: dict[str, TableCheck] = {}
    references: dict[tuple[str, str], pd.Series] = {}
    for name in validation_order(tables):
        t = tables[name]
        context = {"transactions": raw_log} if name == "customers" and raw_log is not None else {}
        if name == "transactions" and checks.get("products") and checks["products"].valid is not None:
            context = {"products": checks["products"].valid}
        checks[name] = check = _check_file(validator, t, raw_dir, references, max_invalid_fraction, raw_log, context)
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
        with atomic_path(out_dir / PROGRAM_FILE) as tmp:
            shutil.copyfile(program_path, tmp)
        written = True
    result = ValidationResult(
        run_date, {n: c.report for n, c in checks.items()}, errors, program, is_default, written=written
    )
    result.report_path = _write_report(report_dir, raw_dir, result, max_invalid_fraction)
    return result


def _read_raw_log(raw_dir: Path) -> pd.DataFrame | None:
    """The raw transactions, to derive members from when customers is absent (None if unreadable)."""
    path = find_table_file(raw_dir, "transactions")
    if path is None or find_table_file(raw_dir, "customers") is not None:
        return None
    try:
        frame = read_raw_table("transactions", path)
    except ContractError:
        return None  # the transactions check reports it
    return frame if {"customer_id", "ts"} <= set(frame.columns) else None


def _check_file(
    validator: Validator, t: Table, raw_dir: Path, references, max_invalid_fraction, raw_log, context
) -> TableCheck:
    path = find_table_file(raw_dir, t.name)
    source = "file"
    if path is None and not t.required and not (t.name == "customers" and raw_log is not None):
        return TableCheck(TableReport(table=t.name, file=None, source=ABSENT), valid=empty_frame(t), quarantined=None)
    try:
        for fk in t.foreign_keys:
            if (fk.ref_table, fk.ref_column) not in references:
                raise ForeignKeyUnavailableError(
                    t.name,
                    f"cannot check foreign key '{fk.column}' -> {fk.ref_table}.{fk.ref_column} because table "
                    f"'{fk.ref_table}' failed; fix that table first",
                )
        if path is None:
            if t.required:
                raise MissingTableError(
                    t.name, f"no file '{t.name}.parquet' or '{t.name}.csv' in '{raw_dir}'; expected one of them"
                )
            from data_contracts.defaults import derive_customers

            raw, source = derive_customers(raw_log), DERIVED
        else:
            raw = read_raw_table(t.name, path)
    except ContractError as err:
        return TableCheck(TableReport(table=t.name, file=str(path) if path else None, error=str(err)), error=err)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check = validator.check_table(
            t, raw, references, max_invalid_fraction, file=str(path) if path else None, context=context
        )
    check.report.source = source
    return check


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
        "program": {
            "name": result.program.name,
            "file": result.program.source,
            "digest": program_digest(result.program),
            "built_in_default": result.program_is_default,
        },
        "max_invalid_fraction": max_invalid_fraction,
        "exit_code": result.exit_code,
        "validated_written": result.written,
        "errors": [str(e) for e in result.errors],
        "tables": {name: table_dict(r) for name, r in result.tables.items()},
    }
    path = report_dir / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(body, indent=2, default=str))
    return path


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


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
    program: Annotated[
        Path | None,
        typer.Option("--program", help="Program file (default: RAW_DIR/program.toml, else the built-in sample program)."),
    ] = None,
) -> None:
    """Check raw tables against their data contracts; write valid rows, quarantine the rest.

    Exit code 0: all rows valid. 1: some rows quarantined (under the threshold). 2: a table or the
    program file failed. 3: an internal error of rewards itself (please report it).
    """
    from pipelines.validation_summary import print_problems, print_summary

    when = None
    if run_date is not None:
        try:
            when = pd.Timestamp(run_date)
        except ValueError:
            when = pd.NaT
        if pd.isna(when):
            typer.echo(f"error: --run-date '{run_date}' is not a date; expected YYYY-MM-DD", err=True)
            raise typer.Exit(EXIT_FAILED)
    try:
        result = validate_directory(
            raw_dir,
            out or config.validated_dir(),
            quarantine or config.quarantine_dir(),
            report_dir or config.reports_dir(),
            run_date=when,
            max_invalid_fraction=max_invalid_fraction,
            program_file=program,
        )
        print_summary(result)
    except ProgramError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except Exception as err:  # a bug of ours, not a data problem: its own exit code, distinct from 1 and 2
        import traceback

        typer.echo(
            f"internal error: {type(err).__name__}: {err}\nThis is a fault in rewards, not in the data; "
            "please report it with the traceback below (exit code 3).",
            err=True,
        )
        typer.echo("".join(traceback.format_exception(err)), err=True)
        raise typer.Exit(EXIT_INTERNAL) from None
    print_problems(result, raw_dir)
    raise typer.Exit(result.exit_code)
