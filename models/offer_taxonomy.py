"""The offer model's taxonomy columns: the customer's history with the offer's node at every level and
with the offer's own products, joined per (customer, offer, as_of).

The width is fixed whatever the taxonomy: the offer's node at the finest ``DEPTHS`` levels
(``node_d0_*`` its finest node, ``node_d1_*`` the level above, ...) times ``NODE_FEATURES``, plus
``OFFER_PRODUCT_FEATURES``. An offer covering several nodes at one level sums their shares and
counts (shares capped at 1) and takes the most recent purchase. Nothing here names an offer, so an
offer the model never saw is scored from its nodes and products on day one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import node_feature_names, offer_product_feature_names
from features.hierarchy import offer_nodes, offer_products, product_nodes
from features.node_affinity import node_affinity_features
from features.offer_products import offer_product_features

DEPTHS = 3  # levels joined, from the finest up; a deeper program's coarsest levels are not joined


def taxonomy_columns() -> list[str]:
    """The model-facing taxonomy columns, in order."""
    node = [f"node_d{d}_{name}" for d in range(DEPTHS) for name in node_feature_names()]
    return node + offer_product_feature_names()


def _node_block(pairs: pd.DataFrame, affinity: pd.DataFrame, nodes_of_offer: pd.DataFrame,
                levels: list[str], has_visits: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    keyed = pairs.reset_index()[["index", "customer_id", "offer_id"]]
    for d in range(DEPTHS):
        names = [f"node_d{d}_{n}" for n in node_feature_names()]
        if d >= len(levels):
            out.update({n: np.full(len(pairs), np.nan) for n in names})
            continue
        level = levels[len(levels) - 1 - d]
        on = nodes_of_offer[nodes_of_offer["level"] == level][["offer_id", "node"]]
        reach = keyed.merge(on, on="offer_id")  # pairs whose offer has a node at this level
        aff = affinity[affinity["level"] == level].drop(columns="level")
        joined = reach.merge(aff, on=["customer_id", "node"], how="left")
        g = joined.groupby("index")
        reached = np.zeros(len(pairs), dtype=bool)
        reached[reach["index"].unique()] = True
        for name in node_feature_names():
            col = f"node_d{d}_{name}"
            if name == "days_since_last_purchase":
                values = g[name].min().reindex(pairs.index).to_numpy(dtype=float)
            else:
                values = g[name].sum(min_count=0).reindex(pairs.index).fillna(0).to_numpy(dtype=float)
                if name.endswith("_share_365d"):
                    values = np.where(has_visits, np.minimum(values, 1.0), np.nan)
            out[col] = np.where(reached, values, np.nan)
    return out


def offer_taxonomy_features(tables: dict[str, pd.DataFrame], rows: pd.DataFrame) -> pd.DataFrame:
    """``taxonomy_columns()`` for each row of ``rows`` (customer_id, offer_id, as_of), same index order.

    Each row sees only history strictly before its own ``as_of``.
    """
    nodes = product_nodes(tables)
    levels = [c for c in nodes.columns if c != "product_id"]
    nodes_of_offer = offer_nodes(tables, nodes)
    covered = offer_products(tables, nodes)
    rows = rows[["customer_id", "offer_id", "as_of"]].reset_index(drop=True)
    rows = rows.assign(customer_id=rows["customer_id"].astype("str"), offer_id=rows["offer_id"].astype("str"))
    out = pd.DataFrame(index=rows.index, columns=taxonomy_columns(), dtype="float64")
    for as_of, group in rows.groupby("as_of", sort=True):
        ids = group["customer_id"].unique()
        affinity = node_affinity_features(tables, as_of, ids, nodes)
        pairs = group[["customer_id", "offer_id"]].reset_index(drop=True)
        visited = set(affinity["customer_id"])
        has_visits = pairs["customer_id"].isin(visited).to_numpy()
        block = _node_block(pairs, affinity, nodes_of_offer, levels, has_visits)
        products = offer_product_features(tables, as_of, pairs, covered)
        for name in offer_product_feature_names():
            block[name] = products[name].to_numpy(dtype=float)
        out.loc[group.index, list(block)] = np.column_stack([block[c] for c in block])
    return out.astype("float64")
