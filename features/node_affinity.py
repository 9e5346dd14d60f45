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


class PurchaseLog:
    """The purchase lines (refunds left out) of the transactions, indexed once by customer, so the lines of
    a few customers strictly before an ``as_of`` are cut without scanning the whole table (training builds
    one cut per send day)."""

    def __init__(self, tables: dict[str, pd.DataFrame]):
        tx = tables["transactions"]
        buys = tx.loc[~tx["is_refund"].to_numpy(dtype=bool), ["customer_id", "transaction_id", "product_id", "amount", "ts"]]
        cust = buys["customer_id"].astype("str").to_numpy(dtype=object)
        codes, uniques = pd.factorize(cust)
        order = np.argsort(codes, kind="stable")  # integer sort: fast (by first appearance, then row order)
        self.customer_id = cust[order]
        self.transaction_id = buys["transaction_id"].astype("str").to_numpy(dtype=object)[order]
        self.product_id = buys["product_id"].astype("str").to_numpy(dtype=object)[order]
        self.amount = buys["amount"].to_numpy(dtype="float64")[order]
        self.ts = buys["ts"].to_numpy(dtype="datetime64[ns]").view("int64")[order]
        self.customers = pd.Index(uniques)
        sorted_codes = codes[order]
        self.starts = np.searchsorted(sorted_codes, np.arange(len(uniques)), side="left")
        self.ends = np.searchsorted(sorted_codes, np.arange(len(uniques)), side="right")
        signup = tables["customers"][["customer_id", "signup_date"]]
        self.signup = pd.Series(signup["signup_date"].to_numpy(), index=signup["customer_id"].astype("str"))

    def lines(self, as_of, customer_ids=None) -> pd.DataFrame:
        """customer_id, transaction_id, product_id, amount, age_days of the lines strictly before ``as_of``
        of customers signed up before it (``customer_ids`` only, when given)."""
        as_of = to_as_of(as_of)
        members = self.signup.index[(self.signup < as_of).to_numpy()]
        if customer_ids is not None:
            members = members[members.isin(pd.Index(customer_ids).astype("str"))]
        pos = self.customers.get_indexer(members)
        pos = np.sort(pos[pos >= 0])
        counts = self.ends[pos] - self.starts[pos]
        total = int(counts.sum())
        rows = (np.repeat(self.starts[pos] - np.cumsum(counts) + counts, counts) + np.arange(total)) if total else (
            np.zeros(0, dtype=np.int64))
        rows = rows[self.ts[rows] < as_of.value]
        return pd.DataFrame({
            "customer_id": self.customer_id[rows],
            "transaction_id": self.transaction_id[rows],
            "product_id": self.product_id[rows],
            "amount": self.amount[rows],
            "age_days": (as_of.value - self.ts[rows]) / NS_PER_DAY,
        })


def purchase_lines(tables: dict[str, pd.DataFrame], as_of, customer_ids=None) -> pd.DataFrame:
    """Purchase lines (refunds left out) strictly before ``as_of`` of customers signed up before it:
    customer_id, transaction_id, product_id, amount, age_days (days from the line to as_of)."""
    return PurchaseLog(tables).lines(as_of, customer_ids)


def node_affinity_features(
    tables: dict[str, pd.DataFrame], as_of, customer_ids=None, nodes: pd.DataFrame | None = None,
    lines: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long frame: customer_id, level, node, then ``NODE_FEATURES`` columns in catalogue order.
    ``lines``: ``purchase_lines(tables, as_of, customer_ids)`` when the caller has them already."""
    from features.catalogue import node_feature_names

    nodes = product_nodes(tables) if nodes is None else nodes
    levels = [c for c in nodes.columns if c != "product_id"]
    lines = purchase_lines(tables, as_of, customer_ids) if lines is None else lines
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
        window = visits[visits["age_days"] <= SHARE_WINDOW_DAYS]
        n365 = window.groupby(["customer_id", "node"]).size()
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
