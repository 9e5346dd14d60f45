"""Reading and writing table files. Parquet and CSV both; writes are atomic (temp file, rename)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from data_contracts.errors import MissingTableError
from data_contracts.schema import CATALOGUE_TABLES, TABLE_NAMES

SUPPORTED_SUFFIXES = (".parquet", ".csv")


def find_table_file(directory: Path, name: str) -> Path | None:
    """The file holding table ``name`` in ``directory`` (``name.parquet`` preferred over ``name.csv``)."""
    for suffix in SUPPORTED_SUFFIXES:
        candidate = Path(directory) / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds.

    The temporary file is ``.<name>.<pid>.<random>.tmp``: a run killed before it could clean up
    leaves it behind, and ``remove_stale`` (called by the next run) knows it by the dead pid.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(directory: Path, name: str) -> list[Path]:
    """Remove the temporary files (``atomic_path``) and scratch folders (``.<name>.scratch-<pid>-*``)
    that a killed process left next to ``directory/name``; those of live processes stay. Returns
    what was removed."""
    import re
    import shutil

    directory = Path(directory)
    if not directory.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(name)}\.(?:scratch-)?(\d+)[.-]")
    removed = []
    for entry in directory.iterdir():
        m = pattern.match(entry.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` (.parquet or .csv) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            raise ValueError(f"cannot write '{path}': expected a .parquet or .csv file, got '{path.suffix}'")
    return path


def write_validated(tables: dict[str, pd.DataFrame], directory: Path) -> Path:
    """Write tables that are valid by construction (the generator's, in tests and benchmarks) where
    ``read_validated`` finds them, skipping ``rewards validate``."""
    directory = Path(directory)
    for name, frame in tables.items():
        write_frame(frame, directory / f"{name}.parquet")
    return directory


class MissingValidatedTableError(MissingTableError, FileNotFoundError):
    """A validated table is not where ``rewards validate`` writes it."""


def read_validated_table(directory: Path, name: str) -> pd.DataFrame:
    """One validated table (Parquet, canonical dtypes), or MissingValidatedTableError naming it."""
    path = Path(directory) / f"{name}.parquet"
    if not path.exists():
        raise MissingValidatedTableError(name, f"not found at '{path}'; run `rewards validate` first")
    return pd.read_parquet(path)


def read_validated(directory: Path) -> dict[str, pd.DataFrame]:
    """Read the validated tables (Parquet, canonical dtypes) written by ``rewards validate``: every table
    of ``TABLE_NAMES``, and the catalogue tables (``products``, ``offer_products``) when present."""
    directory = Path(directory)
    tables: dict[str, pd.DataFrame] = {}
    missing = []
    for name in TABLE_NAMES:
        path = directory / f"{name}.parquet"
        if not path.exists():
            missing.append(str(path))
            continue
        tables[name] = pd.read_parquet(path)
    if missing:
        raise MissingValidatedTableError(
            ", ".join(n for n in TABLE_NAMES if str(directory / f"{n}.parquet") in missing),
            f"validated data in '{directory}' is incomplete: missing {missing}; run `rewards validate` first"
        )
    for name in CATALOGUE_TABLES:
        path = directory / f"{name}.parquet"
        if path.exists():
            tables[name] = pd.read_parquet(path)
    return tables


def read_validated_program(directory: Path):
    """``(program, note)``: the program file `rewards validate` copied into ``directory``, note None;
    or, when there is none (tables written without validation, or validated before the program file
    travelled with the data), the built-in sample program and a note saying so."""
    from data_contracts.program import PROGRAM_FILE, coffee_program, load_program

    path = Path(directory) / PROGRAM_FILE
    if path.exists():
        return load_program(path), None
    return coffee_program(), f"no {PROGRAM_FILE} in '{directory}': using the built-in sample program"
