"""The long node features (``features.catalogue.NODE_FEATURES``) computed on integer codes.

``node_features_from_lines(lines, nodes)`` returns exactly the aggregation of
``features.node_affinity.node_affinity_features`` (same rows, order, dtypes and NaN/0 conventions) for
purchase lines as ``purchase_lines`` gives them (customer_id, transaction_id, product_id, amount,
age_days) and the product -> node table of ``features.hierarchy.product_nodes``. The string keys are
factorised once; each line's node at a level is a numpy take; the lines are grouped once by (customer,
visit) (no sort when they come grouped, as ``PurchaseLog`` cuts them), then per level a stable radix sort
on the int16 node code keeps each (node, customer, visit) together, and visits and (customer, node) cells
are reduced with ``np.minimum.reduceat`` / ``np.add.reduceat`` / ``np.bincount``; the string columns are
built at the end. Spend shares may differ from pandas' Kahan-compensated group sums in the last bits.
``purchase_lines_arrow`` is ``purchase_lines`` without the round trip through numpy object arrays.
Pure: frames in, frame out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.history import NS_PER_DAY, to_as_of

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


def _visits_per_customer(cust: np.ndarray, tx: np.ndarray, n_cust: int, n_tx: int) -> np.ndarray:
    """Distinct transactions per customer (a transaction id may recur across customers)."""
    owner = np.full(n_tx, -1, dtype=np.int64)
    owner[tx] = cust
    if np.array_equal(owner[tx], cust):  # each transaction id belongs to one customer: no sort needed
        return np.bincount(owner[owner >= 0], minlength=n_cust)
    keys = np.unique(cust * n_tx + tx)
    return np.bincount(keys // n_tx, minlength=n_cust)


def _group_by_visit(cust: np.ndarray, tx: np.ndarray, n_cust: int, n_tx: int) -> np.ndarray | None:
    """None when each customer's lines are contiguous and each visit's lines contiguous within them; else the
    order sorting the lines by (customer, transaction)."""
    if not len(cust):
        return None
    new_cust = cust[1:] != cust[:-1]
    runs = int(new_cust.sum()) + 1
    visit_runs = int((new_cust | (tx[1:] != tx[:-1])).sum()) + 1
    if runs == n_cust and visit_runs == int(_visits_per_customer(cust, tx, n_cust, n_tx).sum()):
        return None
    if n_cust * n_tx < 2**62:
        return np.argsort(cust * n_tx + tx)
    return np.lexsort((tx, cust))


def purchase_lines_arrow(tables: dict[str, pd.DataFrame], as_of, customer_ids=None) -> pd.DataFrame:
    """``features.node_affinity.purchase_lines`` (the same frame) with the key columns taken as Arrow-backed
    strings: no round trip through numpy object arrays, which dominates once the kernel is fast."""
    as_of = to_as_of(as_of)
    cust = tables["customers"]
    members = cust.loc[cust["signup_date"] < as_of, "customer_id"].astype("str")
    if customer_ids is not None:
        members = members[members.isin(pd.Index(customer_ids).astype("str"))]
    tx = tables["transactions"]
    ids = tx["customer_id"].astype("str")
    keep = (tx["ts"] < as_of).to_numpy() & ~tx["is_refund"].to_numpy(dtype=bool)
    keep &= ids.isin(members).to_numpy()
    rows = np.flatnonzero(keep)
    ts = tx["ts"].to_numpy(dtype="datetime64[ns]").view("int64")[rows]
    return pd.DataFrame({
        "customer_id": ids.array.take(rows),
        "transaction_id": tx["transaction_id"].astype("str").array.take(rows),
        "product_id": tx["product_id"].astype("str").array.take(rows),
        "amount": tx["amount"].to_numpy(dtype="float64")[rows],
        "age_days": (as_of.value - ts) / NS_PER_DAY,
    })


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

    n_tx = max(len(tx_names), 1)
    recent = age <= SHARE_WINDOW_DAYS
    total_spend = np.bincount(cust[recent], weights=amount[recent], minlength=n_cust).astype("float64")
    total_visits = _visits_per_customer(cust[recent], tx[recent], n_cust, n_tx).astype("float64")
    absent = np.bincount(cust[recent], minlength=n_cust) == 0  # no line in the window: shares NaN
    total_spend[absent] = np.nan
    total_visits[absent] = np.nan
    # lines grouped by customer, and by visit within a customer (purchase lines usually are already)
    order = _group_by_visit(cust, tx, n_cust, n_tx)
    if order is not None:
        cust, tx, prod, age, amount = cust[order], tx[order], prod[order], age[order], amount[order]
    recent_amount = np.where(age <= SHARE_WINDOW_DAYS, amount, 0.0)
    # each line's visit ordinal (lines are grouped by visit now), each visit's customer and youngest line
    new_visit = np.ones(len(cust), dtype=bool)
    new_visit[1:] = (cust[1:] != cust[:-1]) | (tx[1:] != tx[:-1])
    visit_first = np.flatnonzero(new_visit)
    vis = (np.cumsum(new_visit) - 1).astype(np.int32 if len(visit_first) < 2**31 else np.int64)
    visit_cust = cust[visit_first]
    visit_age = np.minimum.reduceat(age, visit_first) if len(visit_first) else np.zeros(0)
    one_age = bool(len(visit_first) == 0 or np.array_equal(np.maximum.reduceat(age, visit_first), visit_age))
    del new_visit

    parts = []
    for level in sorted(levels):
        prod_node, names = _level_nodes(nodes, level, prod_names)
        small = np.int16 if len(names) < 2**15 else np.int64
        node = (np.where(prod >= 0, prod_node[np.maximum(prod, 0)], -1) if len(prod_node)
                else np.full(len(prod), -1)).astype(small)
        # a stable sort by node keeps each node's lines grouped by (customer, visit): a radix sort on int16 codes
        by_node = np.argsort(node, kind="stable")
        by_node = by_node[int((node < 0).sum()):]  # lines without a node at this level come first: left out
        nodes_s, vis_s = node[by_node], vis[by_node]
        new_pair = np.ones(len(by_node), dtype=bool)
        new_pair[1:] = (nodes_s[1:] != nodes_s[:-1]) | (vis_s[1:] != vis_s[:-1])
        # one row per visit and node: its youngest line (a receipt's lines may differ in time)
        first = np.flatnonzero(new_pair)
        del new_pair
        pair_vis, pair_node = vis_s[first], nodes_s[first]
        del vis_s, nodes_s
        if one_age:  # every line of a visit has the visit's age: no per-line gather
            pair_age = visit_age[pair_vis]
        else:
            pair_age = np.minimum.reduceat(age[by_node], first) if len(first) else np.zeros(0)
        pair_cust = visit_cust[pair_vis]
        pair_new_cell = np.ones(len(first), dtype=bool)
        pair_new_cell[1:] = (pair_node[1:] != pair_node[:-1]) | (pair_cust[1:] != pair_cust[:-1])
        cell_first = np.flatnonzero(pair_new_cell)
        n_cells = len(cell_first)
        cell = np.cumsum(pair_new_cell) - 1  # each pair's cell
        days_since = np.minimum.reduceat(pair_age, cell_first) if n_cells else np.zeros(0)
        counts = {d: np.bincount(cell[pair_age <= d], minlength=n_cells).astype("int64") for d in COUNT_WINDOWS}
        n365 = np.bincount(cell[pair_age <= SHARE_WINDOW_DAYS], minlength=n_cells)
        spend = np.add.reduceat(recent_amount[by_node], first[cell_first]) if n_cells else np.zeros(0)
        cell_cust, cell_node = pair_cust[cell_first], pair_node[cell_first].astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            parts.append({
                "cust": cell_cust, "node": cell_node, "names": names,
                "spend_share_365d": spend / total_spend[cell_cust],
                "visit_share_365d": n365 / total_visits[cell_cust],
                "days_since_last_purchase": days_since,
                **{f"visits_{d}d": counts[d] for d in COUNT_WINDOWS},
            })

    # rows sorted by (customer, level, node): levels in name order, node codes in name order within a level
    level_of = np.repeat(np.arange(len(parts)), [len(p["cust"]) for p in parts])
    offsets = np.cumsum([0] + [len(p["names"]) for p in parts])
    node_code = np.concatenate([p["node"] + offsets[k] for k, p in enumerate(parts)])
    cust_code = np.concatenate([p["cust"] for p in parts])
    order = np.argsort(cust_code * max(int(offsets[-1]), 1) + node_code)
    node_code = node_code[order]
    node_names = pd.Index(np.concatenate([np.asarray(p["names"], dtype=object) for p in parts]), dtype="str")
    level_names = pd.Index(sorted(levels), dtype="str")
    out = {
        "customer_id": cust_names.take(cust_code[order]),
        "level": level_names.take(level_of[order]),
        "node": node_names.take(node_code),
    }
    for name in node_feature_names():
        out[name] = np.concatenate([p[name] for p in parts])[order]
    frame = pd.DataFrame({k: (v.array if isinstance(v, pd.Index) else v) for k, v in out.items()})
    return frame[columns]
