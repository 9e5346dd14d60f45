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
from features.node_kernels import (  # noqa: F401  (the windows and keys are declared once, there)
    COUNT_WINDOWS,
    KEYS,
    SHARE_WINDOW_DAYS,
    node_features_from_lines,
    purchase_lines_arrow,
)


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
    customer_id, transaction_id, product_id, amount, age_days (days from the line to as_of). One cut:
    ``PurchaseLog`` indexes the log once for many cuts."""
    return purchase_lines_arrow(tables, as_of, customer_ids)


def node_affinity_features(
    tables: dict[str, pd.DataFrame], as_of, customer_ids=None, nodes: pd.DataFrame | None = None,
    lines: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long frame: customer_id, level, node, then ``NODE_FEATURES`` columns in catalogue order.
    ``lines``: ``purchase_lines(tables, as_of, customer_ids)`` when the caller has them already. The
    aggregation runs on integer codes (``features.node_kernels.node_features_from_lines``)."""
    nodes = product_nodes(tables) if nodes is None else nodes
    lines = purchase_lines(tables, as_of, customer_ids) if lines is None else lines
    return node_features_from_lines(lines, nodes)
