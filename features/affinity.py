"""Category affinity: what a customer buys, what goes together in their basket, how varied it is."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES
from features.catalogue import ATTACH_PAIRS
from features.history import History, per_customer_sum, safe_ratio

WINDOW_DAYS = 365


def has_category(cat_mask: np.ndarray, category: str) -> np.ndarray:
    """Whether each visit's basket holds ``category`` (from the visit's category bit mask)."""
    return (cat_mask >> CATEGORIES.index(category)) & 1 == 1


def affinity_features(h: History) -> pd.DataFrame:
    """The 'affinity' family over the last 365 days."""
    start = h.since(WINDOW_DAYS)
    lines = h.lines
    in_window = lines["ts_ns"].to_numpy() >= start
    buys = in_window & ~lines["is_refund"].to_numpy() & (lines["cat"].to_numpy() >= 0)
    cust, cat = lines["cust"].to_numpy()[buys], lines["cat"].to_numpy()[buys].astype("int64")
    amount, product = lines["amount"].to_numpy()[buys], lines["product"].to_numpy()[buys]
    n_cat = len(CATEGORIES)
    spend = np.bincount(cust * n_cat + cat, weights=amount, minlength=h.n_customers * n_cat)
    spend = spend[: h.n_customers * n_cat].reshape(h.n_customers, n_cat)
    total = spend.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    for i, c in enumerate(CATEGORIES):
        out[f"spend_share_{c}"] = safe_ratio(spend[:, i], total)

    v = h.visits
    recent = v["ts_ns"].to_numpy() >= start
    v_cust, mask = v["cust"].to_numpy()[recent], v["cat_mask"].to_numpy()[recent]
    n_visits = per_customer_sum(h, v_cust)
    for c in CATEGORIES:
        out[f"visit_share_{c}"] = safe_ratio(per_customer_sum(h, v_cust[has_category(mask, c)]), n_visits)
    for target, given in ATTACH_PAIRS:
        with_given = has_category(mask, given)
        both = with_given & has_category(mask, target)
        out[f"attach_{target}_given_{given}"] = safe_ratio(
            per_customer_sum(h, v_cust[both]), per_customer_sum(h, v_cust[with_given])
        )
    out["distinct_products_365d"] = _distinct_per_customer(h, cust, product)
    out["distinct_categories_365d"] = _distinct_per_customer(h, cust, cat)
    return pd.DataFrame(out)


def _distinct_per_customer(h: History, cust: np.ndarray, values: np.ndarray) -> np.ndarray:
    if not len(cust):
        return np.zeros(h.n_customers, dtype="int64")
    width = int(values.max()) + 1
    pairs = np.unique(cust.astype("int64") * width + values)
    return per_customer_sum(h, pairs // width).astype("int64")
