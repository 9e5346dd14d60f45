"""Table schemas (the single source of truth), Great Expectations suites built from them, quarantine."""

from data_contracts.schema import TABLE_NAMES, TABLES, Column, Table, table

__all__ = ["TABLES", "TABLE_NAMES", "Column", "Table", "table"]
