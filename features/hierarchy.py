"""The product hierarchy as the taxonomy features see it: each product's node per level, each offer's nodes.

Levels come from the products table (``product_id`` then one column per level, coarsest first, as
validation writes it); without a products table (or with an empty one) the transactions'
``category`` is the one level. An offer covers the products named in ``offer_products``; an offer
without rows there covers its ``reward_category`` node (every product under it). Pure functions:
tables in, frames out.
"""

from __future__ import annotations

import pandas as pd

FALLBACK_LEVEL = "category"


def hierarchy_levels(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The levels, coarsest first: the products table's level columns, else ``['category']``."""
    products = tables.get("products")
    if products is not None and len(products):
        levels = [c for c in products.columns if c != "product_id"]
        if levels:
            return levels
    return [FALLBACK_LEVEL]


def product_nodes(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per product: ``product_id`` and its node at every level (str); as a products table, it
    keeps a one-level program's map of the whole log with a cut of its purchases (``with_product_nodes``).

    From the products table when there is one; otherwise each product's most frequent ``category``
    in the transactions. A product missing from the products table takes its transactions'
    category at the finest level and no node above it.
    """
    levels = hierarchy_levels(tables)
    products = tables.get("products")
    tx = tables["transactions"][["product_id", "category"]]
    from_tx = (tx.groupby(["product_id", "category"], observed=True).size().rename("n").reset_index()
               .sort_values(["product_id", "n"], ascending=[True, False], kind="stable")
               .drop_duplicates("product_id"))
    from_tx = from_tx[["product_id", "category"]].astype("str")
    if products is None or not len(products) or (levels == [FALLBACK_LEVEL] and FALLBACK_LEVEL not in products):
        return from_tx.reset_index(drop=True)
    products = products[["product_id", *levels]].astype("str").drop_duplicates("product_id")
    unknown = from_tx[~from_tx["product_id"].isin(products["product_id"])]
    extra = pd.DataFrame({"product_id": unknown["product_id"], levels[-1]: unknown["category"]})
    return pd.concat([products, extra], ignore_index=True)


def with_product_nodes(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``tables`` with a products table: its own, else each product's category in the whole purchase log
    (so a cut of the customer-keyed tables still covers every product of an offer's node)."""
    products = tables.get("products")
    if products is not None and len(products) and any(c != "product_id" for c in products.columns):
        return tables
    return {**tables, "products": product_nodes(tables)}


def offer_products(tables: dict[str, pd.DataFrame], nodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """``offer_id, product_id``: the products each offer covers (its offer_products rows, else every product
    under its reward_category node at any level). An offer whose node has no product covers none."""
    nodes = product_nodes(tables) if nodes is None else nodes
    levels = [c for c in nodes.columns if c != "product_id"]
    offers = tables["offers"][["offer_id", "reward_category"]].astype("str")
    named = tables.get("offer_products")
    named = (named[["offer_id", "product_id"]].astype("str") if named is not None and len(named)
             else pd.DataFrame({"offer_id": pd.Series(dtype="str"), "product_id": pd.Series(dtype="str")}))
    rest = offers[~offers["offer_id"].isin(named["offer_id"])]
    by_node = pd.concat([nodes[["product_id", lvl]].rename(columns={lvl: "node"}) for lvl in levels],
                        ignore_index=True).drop_duplicates()
    on_node = rest.merge(by_node, left_on="reward_category", right_on="node")[["offer_id", "product_id"]]
    return pd.concat([named, on_node], ignore_index=True).drop_duplicates(ignore_index=True)


def offer_nodes(tables: dict[str, pd.DataFrame], nodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """``offer_id, level, node``: the offer's node(s) at every level it reaches.

    An offer naming products has the nodes of those products at every level; an offer on a whole
    node has that node at its level and the node's ancestors above it (none below it).
    """
    nodes = product_nodes(tables) if nodes is None else nodes
    levels = [c for c in nodes.columns if c != "product_id"]
    offers = tables["offers"][["offer_id", "reward_category"]].astype("str")
    named = tables.get("offer_products")
    named = named[["offer_id", "product_id"]].astype("str") if named is not None and len(named) else None
    frames = []
    covered = set()
    if named is not None:
        joined = named.merge(nodes, on="product_id")
        covered = set(named["offer_id"])
        for lvl in levels:
            frames.append(joined[["offer_id", lvl]].rename(columns={lvl: "node"}).assign(level=lvl))
    rest = offers[~offers["offer_id"].isin(covered)]
    if levels == [FALLBACK_LEVEL]:
        # One level read from the transactions: the nodes seen depend on whose purchases these are (a list
        # chunk, a sample), so an offer's node is its reward category whether or not anyone here bought it
        # (then its shares are 0 for every customer with visits, as in the whole log, not unknown).
        frames.append(rest[["offer_id"]].assign(node=rest["reward_category"], level=FALLBACK_LEVEL))
        rest = rest.iloc[:0]
    for k, lvl in enumerate(levels):
        at = rest.merge(nodes[levels[: k + 1]].drop_duplicates(), left_on="reward_category", right_on=lvl)
        for up in levels[: k + 1]:
            frames.append(at[["offer_id", up]].rename(columns={up: "node"}).assign(level=up))
    if not frames:
        return pd.DataFrame({"offer_id": pd.Series(dtype="str"), "level": pd.Series(dtype="str"),
                             "node": pd.Series(dtype="str")})
    return pd.concat(frames, ignore_index=True)[["offer_id", "level", "node"]].drop_duplicates(ignore_index=True)
