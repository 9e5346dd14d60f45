"""What an import produces: canonical tables, the quarantined source rows with reasons, counts that add up."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from data_contracts.quarantine import REASON_COLUMN, RowReasons, split


class ExportFormatError(ValueError):
    """An export file is not in the format the importer reads (missing columns, bad mapping); names the file."""

    def __init__(self, source: str, message: str):
        self.source = source
        super().__init__(f"{source}: {message}")


@dataclass
class ImportResult:
    """Canonical tables (text-ready frames) plus every source row not converted, with its reason.

    ``rows_read == rows_converted + rows_quarantined`` always holds (checked on construction).
    """

    source: str
    tables: dict[str, pd.DataFrame]
    quarantined: pd.DataFrame  # source rows (personal columns removed) + row_number + reason
    rows_read: int
    rows_converted: int
    counts: dict[str, int | float | dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    currency: str | None = None

    def __post_init__(self) -> None:
        if self.rows_read != self.rows_converted + self.rows_quarantined:
            raise AssertionError(
                f"{self.source}: rows do not add up: {self.rows_read} read != {self.rows_converted} converted + "
                f"{self.rows_quarantined} quarantined"
            )

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)

    def reasons(self) -> dict[str, int]:
        """Quarantined rows per reason (the first reason of a row; its column or kind), most first."""
        if not len(self.quarantined):
            return {}
        first = self.quarantined[REASON_COLUMN].str.split(":", n=1).str[0]
        return {str(k): int(v) for k, v in first.value_counts().items()}


def require_columns(frame: pd.DataFrame, columns, source: str, what_to_do: str) -> None:
    """ExportFormatError naming the columns ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ExportFormatError(
            source, f"must contain columns {missing}, but they were missing; found columns {list(frame.columns)[:30]}"
            f"{' ...' if len(frame.columns) > 30 else ''}; {what_to_do}"
        )


def split_rows(kept_source: pd.DataFrame, converted: pd.DataFrame, reasons: RowReasons):
    """``(converted rows without a reason, quarantined source rows + row_number + reason)``."""
    return split(kept_source, converted, reasons)


LINE_KEY = ("transaction_id", "product_id")


def merge_repeated_lines(lines: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``(lines, how many were merged)``: lines of one product in one visit (the transactions key) summed into
    one (quantity, amount), other columns from the first; an export may list a product twice in an order."""
    keys = [k for k in LINE_KEY if k in lines.columns]
    if len(keys) < len(LINE_KEY) or not len(lines):
        return lines, 0
    how = {c: ("sum" if c in ("quantity", "amount") else "first") for c in lines.columns if c not in keys}
    merged = lines.groupby(keys, sort=False, as_index=False, dropna=False).agg(how)[list(lines.columns)]
    return merged.reset_index(drop=True), len(lines) - len(merged)
