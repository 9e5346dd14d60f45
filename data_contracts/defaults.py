"""Defaults for absent optional columns and tables, so validated tables always hold every column.

Pure functions: a raw table (as read, before coercion) and the program in, the table with every
declared column out. What each default is, in words, is ``Column.default`` in the schema (and the
README); this module is the one implementation of it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from data_contracts.program import Program
from data_contracts.schema import UNKNOWN, Table

TIER_WHEN_NO_TIERS = "none"


def fill_defaults(
    t: Table, raw: pd.DataFrame, program: Program, context: Mapping[str, pd.DataFrame] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """``(raw with every absent optional column of t filled, names of the columns filled)``.

    ``context`` holds other tables: validated ``products`` (a line's category), raw ``transactions``
    (a member's first purchase as signup date).
    """
    absent = [c for c in t.columns if c.name not in raw.columns]
    missing_required = [c.name for c in absent if c.required]
    if missing_required:
        raise ValueError(f"table '{t.name}': required columns {missing_required} are absent; check them before")
    if not absent:
        return raw, []
    frame = raw.copy()
    n = len(frame)
    for column in absent:  # declaration order: transaction_id after ts, product_id after category
        frame[column.name] = _default(t.name, column.name, frame, n, program, context or {})
    return frame, [c.name for c in absent]


def _default(table: str, column: str, frame: pd.DataFrame, n: int, program: Program, context) -> object:
    key = (table, column)
    if key == ("customers", "tier"):
        return program.lowest_tier or TIER_WHEN_NO_TIERS
    if key == ("customers", "marketing_consent"):
        return program.customers.marketing_consent
    if key == ("customers", "points_balance"):
        return 0
    if key == ("customers", "signup_date"):
        log = context.get("transactions")
        if log is None:
            return pd.Series([None] * n, index=frame.index, dtype=object)
        first = derive_customers(log).set_index("customer_id")["signup_date"]
        return frame["customer_id"].map(first).to_numpy()
    if key == ("transactions", "transaction_id"):
        return frame["customer_id"].astype("str") + "@" + frame["ts"].astype("str")
    if key == ("transactions", "category"):
        return _category_from_products(frame, program, context.get("products"))
    if key == ("transactions", "product_id"):
        return frame["category"] if "category" in frame.columns else UNKNOWN
    if key == ("transactions", "quantity"):
        return 1
    if key == ("transactions", "is_refund"):
        return pd.to_numeric(frame["amount"], errors="coerce").lt(0).to_numpy()
    if key == ("offers", "name"):
        return frame["offer_id"]
    if key == ("offers", "eligible_tiers"):
        return _same_list(n, frame.index, program.allowed("tiers") or ())
    if key == ("offers", "channels"):
        return _same_list(n, frame.index, program.allowed("offer_channels") or ())
    if key in (("offers", "value"), ("offers", "cost_per_redemption"), ("offers", "min_spend")):
        return 0.0
    if key == ("offer_events", "is_control"):
        return False
    if key in (("customers", "birth_year"), ("offers", "budget_redemptions"), ("offer_events", "viewed_at"),
               ("feedback", "comment")):
        return pd.Series([None] * n, index=frame.index, dtype=object)
    return UNKNOWN  # region, store_id, channel, reward_category, offer_type


def _same_list(n: int, index: pd.Index, values: tuple[str, ...]) -> pd.Series:
    return pd.Series([list(values) for _ in range(n)], index=index, dtype=object)


def _category_from_products(frame: pd.DataFrame, program: Program, products: pd.DataFrame | None) -> object:
    finest = program.hierarchy.levels[-1]
    if products is None or "product_id" not in frame.columns or finest not in products.columns or not len(products):
        return UNKNOWN
    mapping = pd.Series(products[finest].to_numpy(), index=products["product_id"].to_numpy())
    return frame["product_id"].map(mapping).fillna(UNKNOWN).to_numpy()


def derive_customers(transactions: pd.DataFrame) -> pd.DataFrame:
    """A raw customers table from a raw purchase log: one member per customer_id, first purchase as signup."""
    from data_contracts.coercion import parse_timestamps

    ids = transactions["customer_id"]
    ts = parse_timestamps(transactions["ts"])
    keep = ids.notna().to_numpy() & ts.notna().to_numpy()
    first = pd.Series(ts.to_numpy()[keep], index=ids.to_numpy()[keep]).groupby(level=0, sort=True).min()
    extra = sorted(set(ids.dropna()) - set(first.index))  # members whose every line has a bad ts
    signup = np.concatenate([first.to_numpy(), np.full(len(extra), np.datetime64("NaT"), dtype="datetime64[ns]")])
    return pd.DataFrame({"customer_id": list(first.index) + extra, "signup_date": signup})
