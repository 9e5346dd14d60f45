"""`rewards import shopify|csv`: a shop's own exports to a folder of canonical tables plus a program.toml.

The edges of importing: reads the export files (as text), the program file, the mapping and the salt;
hands the frames to the pure converters in :mod:`data_contracts.imports`; writes the tables (CSV), the
quarantined source rows with their reasons (``DIR/quarantine/<export>.parquet``), an import report
(``DIR/import_report.json``) and the program file, so that `rewards validate DIR` can run next.

Customer ids are salted hashes: the salt is ``$REWARDS_CUSTOMER_SALT``, else the key file given by
``--salt-file``, else ``$XDG_CONFIG_HOME/rewards/customer_salt`` (``~/.config/...``), created on first use.
It never lives in the output folder. Keep it: the same salt keeps a customer's id across imports.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from data_contracts.imports.pseudonyms import SaltError, check_salt
from data_contracts.imports.result import ExportFormatError, ImportResult
from data_contracts.program import PROGRAM_FILE, Economics, ProgramError, load_program, program_digest
from pipelines.io import atomic_path, write_frame

SALT_ENV = "REWARDS_CUSTOMER_SALT"
REPORT_FILE = "import_report.json"
QUARANTINE_DIR = "quarantine"
SHOPIFY_TABLES = ("transactions", "customers", "offers", "offer_events", "products")
# Exit codes: 0 written, every row converted (cancelled/voided orders aside); 1 written, some rows
# quarantined; 2 nothing written (an export, mapping, program file or salt problem).
EXIT_CLEAN, EXIT_QUARANTINED, EXIT_FAILED = 0, 1, 2

app = typer.Typer(
    name="import", no_args_is_help=True, add_completion=False,
    help="Import a shop's own exports (Shopify, any POS CSV) as canonical tables plus a program.toml.",
)


def default_salt_file() -> Path:
    """``$XDG_CONFIG_HOME/rewards/customer_salt`` (``~/.config`` when unset): outside any output folder."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "rewards" / "customer_salt"


def resolve_salt(salt_file: Path | None, out: Path) -> tuple[bytes, str]:
    """``(salt, where it came from)``: the env var, else the key file (created with a random salt if absent)."""
    from_env = os.environ.get(SALT_ENV)
    if from_env:
        return check_salt(from_env.encode("utf-8"), f"${SALT_ENV}"), f"${SALT_ENV}"
    path = Path(salt_file) if salt_file else default_salt_file()
    if path.resolve().is_relative_to(Path(out).resolve()):
        raise SaltError(f"salt file '{path}' lies inside the output folder '{out}'; expected it outside, so the "
                        "salt never travels with the data: pass --salt-file elsewhere")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(secrets.token_hex(32) + "\n")
            tmp.chmod(0o600)
        return check_salt(path.read_text().strip().encode(), str(path)), f"{path} (created: keep it)"
    return check_salt(path.read_text().strip().encode(), str(path)), str(path)


def read_export(path: Path, what: str, delimiter: str = ",", encoding: str = "utf-8") -> pd.DataFrame:
    """An export file as text cells (empty cell = null); ExportFormatError naming the file otherwise."""
    path = Path(path)
    if not path.exists():
        raise ExportFormatError(f"{what} '{path}'", "no such file")
    try:
        return pd.read_csv(path, dtype="str", keep_default_na=False, na_values=[""], encoding=encoding,
                           sep=delimiter, encoding_errors="strict")
    except UnicodeDecodeError as err:
        raise ExportFormatError(f"{what} '{path}'", f"is not valid {encoding} text ({err.reason} at byte "
                                f"{err.start}); expected the encoding the mapping's format.encoding names") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise ExportFormatError(f"{what} '{path}'", f"cannot be read as CSV: {err}") from None


def write_import(result: ImportResult, out: Path, source: Path, owned_tables, salt_source: str | None) -> dict:
    """Write the tables, the quarantine and the report into ``out``; the report (as written)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in owned_tables:  # a stale table from an earlier import would contradict this one
        for suffix in (".csv", ".parquet"):
            (out / f"{name}{suffix}").unlink(missing_ok=True)
    written = {}
    for name, frame in result.tables.items():
        write_frame(frame, out / f"{name}.csv")
        written[name] = len(frame)
    quarantine = out / QUARANTINE_DIR / f"{source.stem}.parquet"
    if len(result.quarantined):
        write_frame(result.quarantined, quarantine)
    else:
        quarantine.unlink(missing_ok=True)
    report = {
        "source": result.source, "file": str(source), "rows_read": result.rows_read,
        "rows_converted": result.rows_converted, "rows_quarantined": result.rows_quarantined,
        "quarantined_by_reason": result.reasons(),
        "quarantine_file": str(quarantine) if len(result.quarantined) else None,
        "tables_written": written, "counts": result.counts, "notes": result.notes,
        "customer_ids": f"salted hash (salt from {salt_source.split(' ')[0]})" if salt_source else "as in the export",
    }
    _write_report(out, report)
    return report


def _write_report(out: Path, report: dict) -> None:
    with atomic_path(out / REPORT_FILE) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=str))


def place_program(out: Path, program: Path | None, currency: str | None, name: str | None) -> tuple[str, list[str]]:
    """Put the program file in ``out``: --program copied, an existing one kept, else inferred like `rewards init`."""
    from pipelines.init import init_program

    target = out / PROGRAM_FILE
    if program is not None:
        if Path(program).resolve() != target.resolve():
            with atomic_path(target) as tmp:
                shutil.copyfile(program, tmp)
        return f"copied from {program}", []
    if target.exists():
        return "kept (it was there: delete it or pass --program to change it)", []
    _, decisions = init_program(out, name=name, economics={"currency": currency} if currency else None)
    return "inferred from the imported tables: review it", decisions


def program_economics(out: Path, program: Path | None) -> Economics | None:
    """The economics of --program, else of ``out/program.toml`` if there, else None (to be inferred)."""
    path = program if program is not None else out / PROGRAM_FILE
    return load_program(path).economics if program is not None or path.exists() else None


def _finish(result: ImportResult, out: Path, source: Path, owned, salt_source: str | None, program: Path | None,
            name: str | None) -> None:
    from data_contracts.errors import ContractError

    report = write_import(result, out, source, owned, salt_source)
    try:
        how, decisions = place_program(out, program, result.currency, name)
        report["program"] = {"file": str(out / PROGRAM_FILE), "how": how,
                             "digest": program_digest(load_program(out / PROGRAM_FILE))}
    except ContractError as err:  # e.g. a customers table imported before any purchase log
        how, decisions = f"not written ({err}): import the transactions too, or run `rewards init {out}` later", []
        report["program"] = None
    _write_report(out, report)
    not_purchases = int(result.counts.get("rows_not_purchases", 0))
    typer.echo(f"{result.source}: rows read {result.rows_read} = converted {result.rows_converted} + quarantined "
               f"{result.rows_quarantined}" + (f" ({not_purchases} not purchases: cancelled or voided orders)"
                                               if not_purchases else ""))
    for reason, n in result.reasons().items():
        typer.echo(f"  quarantined {n}: {reason}")
    for note in result.notes:
        typer.echo(f"- {note}")
    typer.echo("wrote " + ", ".join(f"{t}.csv ({n} rows)" for t, n in report["tables_written"].items())
               + f" to {out}; report {out / REPORT_FILE}" + (f"; quarantine {report['quarantine_file']}"
                                                             if report["quarantine_file"] else ""))
    typer.echo(f"customer ids: salted hashes, salt from {salt_source}" if salt_source else
               "customer ids: as in the export (the mapping's format.hash_customer_id is off)")
    typer.echo(f"program: {out / PROGRAM_FILE} {how}")
    for decision in decisions:
        typer.echo(f"  - {decision}")
    typer.echo(f"next: rewards validate {out}")
    problems = result.rows_quarantined - not_purchases
    raise typer.Exit(EXIT_QUARANTINED if problems else EXIT_CLEAN)


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(EXIT_FAILED) from None


_OUT = typer.Option("--out", help="Folder to write the canonical tables, program.toml and import report to.")
_PROGRAM = typer.Option("--program", help="Program file to use and copy (default: OUT/program.toml if there, "
                        "else one inferred from the imported tables).")
_SALT = typer.Option("--salt-file", help=f"Key file holding the salt of customer ids (used when ${SALT_ENV} is "
                     "unset; created if absent; default: ~/.config/rewards/customer_salt).")
_NAME = typer.Option("--name", help="Program name of an inferred program.toml (default: OUT's folder name).")


@app.command("shopify")
def shopify_command(
    orders: Annotated[Path, typer.Option("--orders", help="Shopify orders export (orders_export.csv).")],
    out: Annotated[Path, _OUT],
    products: Annotated[Path | None, typer.Option("--products", help="Shopify products export: categories by SKU.")] = None,
    customers: Annotated[Path | None, typer.Option("--customers", help="Shopify customers export: marketing consent.")] = None,
    program: Annotated[Path | None, _PROGRAM] = None,
    salt_file: Annotated[Path | None, _SALT] = None,
    name: Annotated[str | None, _NAME] = None,
) -> None:
    """Convert a Shopify orders export (plus its products and customers exports) into OUT.

    Exit 0: written, every row converted (cancelled/voided orders aside). 1: written, some rows
    quarantined (see the report). 2: nothing written.
    """
    from data_contracts.imports.shopify import convert_orders, main_currency
    from data_contracts.inference import DEFAULT_CURRENCY, DEFAULT_GROSS_MARGIN_RATE

    try:
        salt, salt_source = resolve_salt(salt_file, out)
        frame = read_export(orders, "orders export")
        extra = {k: read_export(p, f"{k} export") for k, p in (("products", products), ("customers", customers)) if p}
        economics = program_economics(out, program) or Economics(
            currency=main_currency(frame) or DEFAULT_CURRENCY, operating_cost_per_month=0.0,
            gross_margin_rate=DEFAULT_GROSS_MARGIN_RATE)
        result = convert_orders(frame, economics=economics, salt=salt, **extra)
    except (ExportFormatError, ProgramError, SaltError) as err:
        _fail(err)
    _finish(result, out, Path(orders), SHOPIFY_TABLES, salt_source, program, name)


@app.command("csv")
def csv_command(
    file: Annotated[Path, typer.Argument(help="The export to convert (a CSV file).")],
    mapping: Annotated[Path, typer.Option("--map", help="Mapping file (TOML): source column per canonical column.")],
    out: Annotated[Path, _OUT],
    program: Annotated[Path | None, _PROGRAM] = None,
    salt_file: Annotated[Path | None, _SALT] = None,
    name: Annotated[str | None, _NAME] = None,
) -> None:
    """Convert any export into one canonical table in OUT, as the mapping file says.

    Exit 0: every row converted. 1: some rows quarantined with a reason (see the report). 2: nothing written.
    """
    from data_contracts.imports.generic import convert_with_mapping
    from data_contracts.imports.mapping import MappingError, load_mapping

    try:
        spec = load_mapping(mapping)
        salt, salt_source = resolve_salt(salt_file, out) if spec.format.hash_customer_id else (None, None)
        frame = read_export(file, "export", spec.format.delimiter, spec.format.encoding)
        result = convert_with_mapping(frame, spec, salt, source=f"export '{file}'")
        if program is not None:
            load_program(program)
    except (ExportFormatError, MappingError, ProgramError, SaltError) as err:
        _fail(err)
    _finish(result, out, Path(file), (spec.table,), salt_source, program, name)
