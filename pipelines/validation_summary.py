"""What `rewards validate` prints: per-table counts, failed expectations, open vocabularies, errors."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from data_contracts.quarantine import format_value


def print_summary(result) -> None:
    """Per table: rows in = valid + quarantined, expectations passed/failed; then each failure."""
    console = Console(width=200)
    summary = RichTable(title=f"rewards validate (run date {result.run_date.date()}, program '{result.program.name}')")
    for heading in ("table", "source", "rows", "valid", "quarantined", "not checked", "expectations passed", "failed", "status"):
        summary.add_column(heading, justify="left" if heading in ("table", "source", "status") else "right")
    for r in result.tables.values():
        status = "FAILED" if r.error else ("quarantined" if r.rows_quarantined else "ok")
        _check_adds_up(r.rows_read, r.rows_valid + r.rows_quarantined + r.rows_unchecked, r.table)
        summary.add_row(r.table, r.source, str(r.rows_read), str(r.rows_valid), str(r.rows_quarantined),
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
    _check_adds_up(total_in, total_valid + result.rows_quarantined + total_unchecked, "all tables")
    console.print(
        f"rows read {total_in} = valid {total_valid} + quarantined {result.rows_quarantined}"
        + (f" + not checked {total_unchecked} (table failed)" if total_unchecked else "")
    )
    for r in result.tables.values():
        if r.defaulted_columns and r.source == "file":
            console.print(escape(f"note: table '{r.table}' has no columns {r.defaulted_columns}: filled with their defaults"))
        if r.extra_columns:
            console.print(escape(f"note: table '{r.table}' has columns the schema does not declare, not kept: {r.extra_columns}"))
        for column, seen in r.open_values.items():
            shown = ", ".join(seen["values"][:8]) + (", ..." if seen["distinct"] > 8 else "") or "(no values)"
            console.print(escape(f"open vocabulary: {r.table}.{column} holds {seen['distinct']} distinct values: {shown}"))
    if result.report_path:
        console.print(f"report: {result.report_path}")


def print_problems(result, raw_dir: Path) -> None:
    """Errors on stderr; a hint to run `rewards init` when the built-in program did not fit the data."""
    for err in result.errors:
        expectation = getattr(err, "expectation", None)
        typer.echo(f"error: {err}" + (f" [{expectation}]" if expectation else ""), err=True)
    if result.program_is_default and (result.errors or result.rows_quarantined):
        typer.echo(
            f"hint: '{raw_dir}' has no program.toml, so its tables were checked against the built-in sample "
            f"program ({result.program.source}). If this is another program, run `rewards init {raw_dir}` to "
            "write a program.toml from your tables, review it, and validate again.",
            err=True,
        )


def _check_adds_up(read: int, accounted: int, what: str) -> None:
    if read != accounted:
        raise RuntimeError(f"rows of {what} do not add up: {read} read != {accounted} valid + quarantined + not checked")


def _fmt(value: object) -> str:
    text = format_value(value)
    return text if len(text) <= 80 else text[:77] + "..."
