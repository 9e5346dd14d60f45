"""Node affinity: a customer's history with each node of the product hierarchy, kept long.

One row per (customer, level, node) the customer bought from strictly before ``as_of``; nothing
is one column per category, so the width does not grow with the taxonomy. The columns are
declared in ``features.catalogue.NODE_FEATURES``. A customer with purchases but none of a node has
no row for it: readers take shares 0, counts 0 and recency NaN (``features.catalogue`` says so).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.hierarchy import product_nodes
from features.history import NS_PER_DAY, to_as_of

SHARE_WINDOW_DAYS = 365
COUNT_WINDOWS = (30, 90, 180)
KEYS = ("customer_id", "level", "node")


def purchase_lines(tables: dict[str, pd.DataFrame], as_of, customer_ids=None) -> pd.DataFrame:
    """Purchase lines (refunds left out) strictly before ``as_of`` of customers signed up before it:
    customer_id, transaction_id, product_id, amount, age_days (days from the line to as_of)."""
    as_of = to_as_of(as_of)
    cust = tables["customers"]
    members = cust.loc[cust["signup_date"] < as_of, "customer_id"].astype("str")
    if customer_ids is not None:
        members = members[members.isin(pd.Index(customer_ids).astype("str"))]
    tx = tables["transactions"]
    keep = (tx["ts"] < as_of).to_numpy() & ~tx["is_refund"].to_numpy(dtype=bool)
    keep &= tx["customer_id"].astype("str").isin(members).to_numpy()
    lines = tx.loc[keep, ["customer_id", "transaction_id", "product_id", "amount", "ts"]]
    age = (as_of.value - lines["ts"].to_numpy(dtype="datetime64[ns]").view("int64")) / NS_PER_DAY
    return pd.DataFrame({
        "customer_id": lines["customer_id"].astype("str").to_numpy(),
        "transaction_id": lines["transaction_id"].astype("str").to_numpy(),
        "product_id": lines["product_id"].astype("str").to_numpy(),
        "amount": lines["amount"].to_numpy(dtype="float64"),
        "age_days": age,
    })


def node_affinity_features(
    tables: dict[str, pd.DataFrame], as_of, customer_ids=None, nodes: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Long frame: customer_id, level, node, then ``NODE_FEATURES`` columns in catalogue order."""
    from features.catalogue import node_feature_names

    nodes = product_nodes(tables) if nodes is None else nodes
    levels = [c for c in nodes.columns if c != "product_id"]
    lines = purchase_lines(tables, as_of, customer_ids)
    recent = lines[lines["age_days"] <= SHARE_WINDOW_DAYS]
    total_spend = recent.groupby("customer_id")["amount"].sum()
    total_visits = recent.groupby("customer_id")["transaction_id"].nunique()
    frames = []
    for level in levels:
        node = lines["product_id"].map(nodes.set_index("product_id")[level])
        at = lines.assign(node=node.to_numpy()).dropna(subset=["node"])
        # one row per visit and node: its youngest line (a receipt's lines share one timestamp)
        visits = at.groupby(["customer_id", "node", "transaction_id"], sort=False)["age_days"].min().reset_index()
        g = visits.groupby(["customer_id", "node"])
        out = pd.DataFrame({"days_since_last_purchase": g["age_days"].min()})
        for days in COUNT_WINDOWS:
            out[f"visits_{days}d"] = (visits["age_days"] <= days).groupby(
                [visits["customer_id"], visits["node"]]).sum().astype("int64")
        in_window = at[at["age_days"] <= SHARE_WINDOW_DAYS]
        spend = in_window.groupby(["customer_id", "node"])["amount"].sum()
        n365 = visits[visits["age_days"] <= SHARE_WINDOW_DAYS].groupby(["customer_id", "node"]).size()
        out = out.reset_index()
        idx = pd.MultiIndex.from_frame(out[["customer_id", "node"]])
        cust = out["customer_id"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["spend_share_365d"] = (spend.reindex(idx).fillna(0).to_numpy()
                                       / cust.map(total_spend).to_numpy(dtype=float))
            out["visit_share_365d"] = (n365.reindex(idx).fillna(0).to_numpy()
                                       / cust.map(total_visits).to_numpy(dtype=float))
        out["level"] = level
        frames.append(out)
    cols = list(KEYS) + node_feature_names()
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="str" if c in KEYS else "float64") for c in cols})
    out = pd.concat(frames, ignore_index=True)[cols]
    out["node"] = out["node"].astype("str")
    return out.sort_values(list(KEYS), kind="stable", ignore_index=True)
