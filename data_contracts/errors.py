"""Error classes for contract failures. Messages say who, what was expected, what was found."""

from __future__ import annotations


class ContractError(ValueError):
    """A table does not meet its data contract badly enough to stop the run."""

    def __init__(self, table: str, message: str):
        self.table = table
        super().__init__(f"table '{table}': {message}")


class MissingTableError(ContractError):
    """The file for a table is not there."""


class UnreadableTableError(ContractError):
    """The file exists but cannot be parsed (encoding, format)."""


class EmptyTableError(ContractError):
    """The file holds no rows."""


class MissingColumnsError(ContractError):
    """Required columns are absent."""

    def __init__(self, table: str, missing: list[str], found: list[str]):
        self.missing = list(missing)
        super().__init__(
            table,
            f"must contain columns {list(missing)}, but they were missing; found columns {list(found)}",
        )


class TooManyInvalidRowsError(ContractError):
    """The invalid fraction of a table exceeds the allowed threshold."""


class WrongDtypeError(ContractError):
    """A column does not have the dtype the schema declares after coercion."""


class ForeignKeyUnavailableError(ContractError):
    """A foreign key cannot be checked because the table it points to failed."""
