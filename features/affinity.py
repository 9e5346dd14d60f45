"""Category affinity: how concentrated and varied a customer's spend is over categories (per-category
spend is long: ``features.node_affinity``), and the visit shares and attach rates of the nodes the program
file names under ``[habits]`` (none by default)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.history import History, distinct_per_customer, per_customer_sum, per_customer_sums, safe_ratio

WINDOW_DAYS = 365


def has_category(cat_mask: np.ndarray, category: str, habit_nodes: tuple[str, ...]) -> np.ndarray:
    """Whether each visit's basket holds ``category``, one of the program's habit nodes (visit bit mask)."""
    return (cat_mask >> habit_nodes.index(category)) & 1 == 1


def affinity_features(h: History) -> pd.DataFrame:
    """The 'affinity' family over the last 365 days."""
    start = h.since(WINDOW_DAYS)
    lines = h.lines
    in_window = lines["ts_ns"] >= start
    buys = in_window & ~lines["is_refund"] & (lines["cat"] >= 0)
    cust, cat = lines["cust"][buys], lines["cat"][buys].astype("int64")
    amount, product = lines["amount"][buys], lines["product"][buys]
    n_categories = max(int(lines["cat"].max()) + 1 if len(lines["cat"]) else 0, 1)
    spend = per_customer_sums(h, cust, cat, n_categories, amount)
    total = spend.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        share = spend / total[:, None]
    out["top_category_spend_share_365d"] = safe_ratio(spend.max(axis=1) if spend.shape[1] else total * 0, total)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(share > 0, -share * np.log(np.where(share > 0, share, 1.0)), 0.0)
    out["category_spend_entropy_365d"] = np.where(total > 0, terms.sum(axis=1) + 0.0, np.nan)

    v = h.visits
    recent = v["ts_ns"] >= start
    v_cust, mask = v["cust"][recent], v["cat_mask"][recent]
    n_visits = per_customer_sum(h, v_cust)
    habits = h.program.habits
    nodes = habits.nodes
    for c in habits.visit_share_nodes:
        out[f"visit_share_{c}"] = safe_ratio(per_customer_sum(h, v_cust[has_category(mask, c, nodes)]), n_visits)
    for target, given in habits.attach_pairs:
        with_given = has_category(mask, given, nodes)
        both = with_given & has_category(mask, target, nodes)
        out[f"attach_{target}_given_{given}"] = safe_ratio(
            per_customer_sum(h, v_cust[both]), per_customer_sum(h, v_cust[with_given])
        )
    out["distinct_products_365d"] = distinct_per_customer(h, cust, product)
    bought = per_customer_sums(h, cust, cat, n_categories) > 0  # free items (amount 0) count too
    out["distinct_categories_365d"] = bought.sum(axis=1).astype("int64")
    return pd.DataFrame(out)
