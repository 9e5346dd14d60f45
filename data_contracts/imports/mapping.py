"""The mapping file of `rewards import csv` (``mapping.toml``): which source column feeds each canonical column.

Validated like the program file: an unknown key, a wrong type or a missing required column is an
error naming the key. Reading is pure (text in, model out); :func:`load_mapping` opens the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from data_contracts.imports.values import DEFAULT_CURRENCY_SYMBOLS
from data_contracts.program import validation_problems
from data_contracts.schema import TABLES

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
SQUARE_ITEM_SALES = MAPPINGS_DIR / "square_item_sales.toml"
TableName = Literal["customers", "transactions", "offers", "offer_events", "feedback"]


class MappingError(ValueError):
    """A mapping file is missing, unreadable or breaks the mapping schema; names the key."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, list(problems)
        super().__init__(
            f"mapping file '{source}': {'; '.join(problems)}. Fix the file (see the example "
            f"'{SQUARE_ITEM_SALES.name}' and README 'Importing your exports')"
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SourceFormat(_Strict):
    """How the export writes its values."""

    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator of the file.")
    encoding: str = Field("utf-8", description="Text encoding of the file, e.g. 'utf-8', 'cp1252'.")
    date_format: str | None = Field(
        None, description="strptime format of timestamps (after joining their source columns with a space), "
        "e.g. '%m/%d/%Y %H:%M:%S'; absent: ISO-like text, any UTC offset ignored.")
    decimal_separator: Literal[".", ","] = Field(".", description="Decimal separator of numbers.")
    thousands_separator: Literal["", ",", ".", " ", "'"] = Field("", description="Thousands separator, if any.")
    currency_symbols: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CURRENCY_SYMBOLS),
        description="Symbols stripped from numbers ('$8.00' -> 8.0); '(8.00)' reads as -8.0.")
    absolute_values: list[str] = Field(
        default_factory=list, description="Canonical columns whose sign is dropped (e.g. a negative quantity on "
        "refund lines; the refund is the amount's sign).")
    hash_customer_id: bool = Field(
        False, description="Replace customer_id by a salted hash (use it when the id is an email or a phone).")


class Mapping(_Strict):
    """One export's mapping to one canonical table."""

    description: str = Field("", description="What export this maps, in a sentence.")
    table: TableName = Field("transactions", description="The canonical table the file becomes.")
    currency: str | None = Field(
        None, pattern=r"^[A-Z]{3}$", description="ISO 4217 currency of the amounts (written into an inferred program).")
    format: SourceFormat = Field(default_factory=SourceFormat)
    columns: dict[str, str | list[str]] = Field(
        description="Canonical column -> source column, or a list of source columns joined with a space "
        "(e.g. ts = ['Date', 'Time']).")
    constants: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Canonical column -> one value for every row (e.g. channel = 'store').")

    _source: str = PrivateAttr(default="<in memory>")

    @model_validator(mode="after")
    def _columns_of_the_table(self) -> Mapping:
        declared = TABLES[self.table].column_names
        problems = [f"unknown key '{part}.{name}'; expected a column of table '{self.table}': {declared}"
                    for part in ("columns", "constants") for name in getattr(self, part) if name not in declared]
        both = sorted(set(self.columns) & set(self.constants))
        if both:
            problems.append(f"columns {both} are given both in [columns] and [constants]; expected one of the two")
        missing = [c for c in TABLES[self.table].required_columns if c not in self.columns and c not in self.constants]
        problems += [f"key 'columns.{c}' is missing; expected the source column of required column "
                     f"'{self.table}.{c}'" for c in missing]
        problems += [f"key 'columns.{c}': expected a source column name or a non-empty list of them; found "
                     f"{v!r}" for c, v in self.columns.items() if not v or (isinstance(v, list) and not all(v))]
        problems += [f"key 'format.absolute_values': '{c}' is not a mapped column of '{self.table}'"
                     for c in self.format.absolute_values if c not in self.columns]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def source(self) -> str:
        return self._source

    def source_columns(self) -> list[str]:
        """Every source column the mapping reads, in order, once."""
        out: list[str] = []
        for value in self.columns.values():
            for name in [value] if isinstance(value, str) else value:
                if name not in out:
                    out.append(name)
        return out


def parse_mapping(text: str, source: str = "<text>") -> Mapping:
    """The mapping declared by TOML ``text``; MappingError naming each bad key otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise MappingError(source, [f"not valid TOML: {err}"]) from err
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as err:
        problems = [_reworded(p) for p in validation_problems(err)]
        raise MappingError(source, problems) from None
    mapping._source = source
    return mapping


def _reworded(problem: str) -> str:
    problem = problem.replace("the program schema", "the mapping schema")
    if problem.startswith("key '(top level)': "):  # the checks of the whole mapping name their own keys
        problem = problem.removeprefix("key '(top level)': ").removesuffix("; found a table")
    return problem


def load_mapping(path: Path | str) -> Mapping:
    """Read and check the mapping file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(str(path), ["no such file; expected a mapping.toml"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise MappingError(str(path), [f"cannot be read as UTF-8 text: {err}"]) from err
    return parse_mapping(text, str(path))
