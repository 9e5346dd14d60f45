"""`rewards init DIR`: write a first DIR/program.toml from the tables in DIR, for the user to review."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from data_contracts.errors import ContractError
from data_contracts.program import PROGRAM_FILE, parse_program, program_to_toml
from data_contracts.schema import CATALOGUE_TABLES, TABLES
from pipelines.io import atomic_path, find_table_file


def read_tables(directory: Path) -> dict:
    """Every table file in ``directory`` as read (CSV as text); an unreadable one stops with its error."""
    from pipelines.validate import read_raw_table

    tables = {}
    for name in (*TABLES, *CATALOGUE_TABLES):
        path = find_table_file(directory, name)
        if path is not None:
            tables[name] = read_raw_table(name, path)
    return tables


def init_program(
    directory: Path, force: bool = False, name: str | None = None, economics: dict | None = None
) -> tuple[Path, list[str]]:
    """Infer and write ``directory/program.toml``; ``(path, decisions)``. FileExistsError unless ``force``.

    ``economics`` sets keys of ``[economics]`` the caller knows (`rewards import`: the export's currency).
    """
    from data_contracts.inference import infer_program

    directory = Path(directory)
    target = directory / PROGRAM_FILE
    if target.exists() and not force:
        raise FileExistsError(f"'{target}' exists; expected no program file there: pass --force to overwrite it")
    tables = read_tables(directory)
    if "transactions" not in tables:
        raise ContractError(
            "transactions", f"no file 'transactions.parquet' or 'transactions.csv' in '{directory}'; a program needs "
            "at least a purchase log (customer_id, ts, amount)"
        )
    program, decisions = infer_program(tables, name or directory.resolve().name, economics=economics)
    text = (
        f"# Written by `rewards init` on {date.today()} from the tables in '{directory}'.\n"
        "# Review it (tier order, vocabularies, economics), then run `rewards validate`.\n"
        + program_to_toml(program)
    )
    parse_program(text, str(target))  # what is written must read back
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target, decisions


def init_command(
    directory: Annotated[Path, typer.Argument(help="Folder with the program's <table>.parquet or <table>.csv files.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing program.toml.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Program name (default: the folder's name).")] = None,
) -> None:
    """Inspect the tables in DIRECTORY and write DIRECTORY/program.toml; print what was decided."""
    try:
        target, decisions = init_program(directory, force=force, name=name)
    except (FileExistsError, ContractError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    for decision in decisions:
        typer.echo(f"- {decision}")
    typer.echo(f"wrote {target}: review it, then run `rewards validate {directory}`")
