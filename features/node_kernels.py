"""The long node features (``features.catalogue.NODE_FEATURES``) computed on integer codes.

``node_features_from_lines(lines, nodes)`` returns exactly the aggregation of
``features.node_affinity.node_affinity_features`` (same rows, order, dtypes and NaN/0 conventions) for
purchase lines as ``purchase_lines`` gives them (customer_id, transaction_id, product_id, amount,
age_days) and the product -> node table of ``features.hierarchy.product_nodes``. The string keys are
factorised once; each line's node at a level is a numpy take; visits and (customer, node) cells are
integer keys aggregated with ``np.bincount`` / ``np.minimum.at``; the string columns are built at the end.
Pure: frames in, frame out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHARE_WINDOW_DAYS = 365
COUNT_WINDOWS = (30, 90, 180)
KEYS = ("customer_id", "level", "node")
LINE_COLUMNS = ("customer_id", "transaction_id", "product_id", "amount", "age_days")


class PurchaseLinesError(ValueError):
    """The purchase lines given to the node kernel miss a column or hold a null key."""


def _check(lines: pd.DataFrame, nodes: pd.DataFrame) -> None:
    missing = [c for c in LINE_COLUMNS if c not in lines.columns]
    if missing:
        raise PurchaseLinesError(
            f"node_features_from_lines: the purchase lines lack column(s) {missing}; expected {list(LINE_COLUMNS)} "
            f"(what features.node_affinity.purchase_lines returns), found {list(lines.columns)}")
    if "product_id" not in nodes.columns:
        raise PurchaseLinesError(
            "node_features_from_lines: the product -> node table lacks 'product_id'; expected product_id then one "
            f"column per level (features.hierarchy.product_nodes), found {list(nodes.columns)}")


def _codes(lines: pd.DataFrame, column: str, sort: bool = False) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(lines[column], sort=sort)
    if column != "product_id" and len(codes) and codes.min() < 0:
        raise PurchaseLinesError(
            f"node_features_from_lines: purchase lines column '{column}' holds {int((codes < 0).sum())} null value(s); "
            "expected none (purchase_lines writes every key as a string): drop or fill those lines first")
    return codes.astype(np.int64, copy=False), uniques


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="str" if c in KEYS else "float64") for c in columns})


def _level_nodes(nodes: pd.DataFrame, level: str, product_names: pd.Index) -> tuple[np.ndarray, pd.Index]:
    """Each line product's node code at ``level`` (-1: no node), and the level's node names, sorted."""
    values = nodes[level]
    known = values.notna().to_numpy()
    local, names = pd.factorize(values[known].astype("str"), sort=True)
    code = np.full(len(nodes), -1, dtype=np.int64)
    code[known] = local
    pos = pd.Index(nodes["product_id"]).get_indexer(product_names)
    return np.where(pos >= 0, code[pos], -1), names


def node_features_from_lines(lines: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """Long frame: customer_id, level, node, then the ``NODE_FEATURES`` columns, sorted by the keys.

    ``lines``: purchase lines (refunds left out) with age_days to as_of; ``nodes``: product_id then one
    column per level. One row per (customer, level, node) with at least one visit at that node.
    """
    from features.catalogue import node_feature_names

    _check(lines, nodes)
    levels = [c for c in nodes.columns if c != "product_id"]
    columns = list(KEYS) + node_feature_names()
    if not levels:
        return _empty(columns)
    cust, cust_names = _codes(lines, "customer_id", sort=True)
    tx, tx_names = _codes(lines, "transaction_id")
    prod, prod_names = _codes(lines, "product_id")
    age = lines["age_days"].to_numpy(dtype="float64")
    amount = lines["amount"].to_numpy(dtype="float64")
    n_cust = len(cust_names)

    # one code per visit (customer, transaction); a visit's customer
    visit, visit_keys = pd.factorize(cust * max(len(tx_names), 1) + tx)
    visit_cust = visit_keys // max(len(tx_names), 1)
    recent = age <= SHARE_WINDOW_DAYS
    total_spend = np.bincount(cust[recent], weights=amount[recent], minlength=n_cust).astype("float64")
    seen = np.zeros(len(visit_keys), dtype=bool)
    seen[visit[recent]] = True
    total_visits = np.bincount(visit_cust[seen], minlength=n_cust).astype("float64")
    absent = np.bincount(cust[recent], minlength=n_cust) == 0  # no line in the window: shares NaN
    total_spend[absent] = np.nan
    total_visits[absent] = np.nan
    recent_amount = np.where(recent, amount, 0.0)

    parts = []
    for level in sorted(levels):
        prod_node, names = _level_nodes(nodes, level, prod_names)
        node = np.where(prod >= 0, prod_node[np.maximum(prod, 0)], -1) if len(prod_node) else np.full(len(prod), -1)
        at = node >= 0
        width = max(len(names), 1)
        # one row per visit and node: its youngest line, and its spend in the window
        pair, pair_keys = pd.factorize(visit[at] * width + node[at])
        pair_age = np.full(len(pair_keys), np.inf)
        np.minimum.at(pair_age, pair, age[at])
        pair_spend = np.bincount(pair, weights=recent_amount[at], minlength=len(pair_keys))
        pair_node = pair_keys % width
        cell, cell_keys = pd.factorize(visit_cust[pair_keys // width] * width + pair_node, sort=True)
        n_cells = len(cell_keys)
        days_since = np.full(n_cells, np.inf)
        np.minimum.at(days_since, cell, pair_age)
        counts = {d: np.bincount(cell[pair_age <= d], minlength=n_cells).astype("int64") for d in COUNT_WINDOWS}
        n365 = np.bincount(cell[pair_age <= SHARE_WINDOW_DAYS], minlength=n_cells)
        spend = np.bincount(cell, weights=pair_spend, minlength=n_cells)
        cell_cust = cell_keys // width
        with np.errstate(divide="ignore", invalid="ignore"):
            parts.append({
                "cust": cell_cust, "node": cell_keys % width, "names": names,
                "spend_share_365d": spend / total_spend[cell_cust],
                "visit_share_365d": n365 / total_visits[cell_cust],
                "days_since_last_purchase": days_since,
                **{f"visits_{d}d": counts[d] for d in COUNT_WINDOWS},
            })

    # levels in name order, each sorted by (customer, node): a stable sort on the customer gives the key order
    level_of = np.repeat(np.arange(len(parts)), [len(p["cust"]) for p in parts])
    order = np.argsort(np.concatenate([p["cust"] for p in parts]), kind="stable")
    offsets = np.cumsum([0] + [len(p["names"]) for p in parts])
    node_names = pd.Index(np.concatenate([np.asarray(p["names"], dtype=object) for p in parts]), dtype="str")
    node_code = np.concatenate([p["node"] + offsets[k] for k, p in enumerate(parts)])[order]
    level_names = pd.Index(sorted(levels), dtype="str")
    out = {
        "customer_id": cust_names.take(np.concatenate([p["cust"] for p in parts])[order]),
        "level": level_names.take(level_of[order]),
        "node": node_names.take(node_code),
    }
    for name in node_feature_names():
        out[name] = np.concatenate([p[name] for p in parts])[order]
    frame = pd.DataFrame({k: (v.array if isinstance(v, pd.Index) else v) for k, v in out.items()})
    return frame[columns]
