"""Offer products: a customer's history with exactly the products an offer covers, point in time.

Per (customer, offer): purchases of the covered products (the offer's ``offer_products`` rows, or
every product under its reward_category node), how recently, and which share of those products the
customer ever bought, from purchase lines strictly before ``as_of``. Columns declared in
``features.catalogue.OFFER_PRODUCT_FEATURES``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.hierarchy import offer_products
from features.node_affinity import purchase_lines

RECENT_DAYS = 90


def offer_product_features(
    tables: dict[str, pd.DataFrame], as_of, pairs: pd.DataFrame, covered: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per row of ``pairs`` (customer_id, offer_id), in order: the pair, then the declared columns.

    A customer with no purchase of the offer's products has 0 purchases, NaN recency and share 0;
    an offer covering no product has NaN share.
    """
    from features.catalogue import offer_product_feature_names

    covered = offer_products(tables) if covered is None else covered
    pairs = pairs[["customer_id", "offer_id"]].astype("str").reset_index(drop=True)
    lines = purchase_lines(tables, as_of, pairs["customer_id"].unique())
    per_product = lines.assign(recent=lines["age_days"] <= RECENT_DAYS).groupby(["customer_id", "product_id"]).agg(
        purchases=("age_days", "size"),
        recent=("recent", "sum"),
        youngest=("age_days", "min"),
    ).reset_index()
    n_covered = covered.groupby("offer_id").size()
    exploded = pairs.reset_index().merge(covered, on="offer_id").merge(
        per_product, on=["customer_id", "product_id"], how="inner")
    g = exploded.groupby("index")
    out = pd.DataFrame(index=pairs.index)
    out["offer_product_purchases"] = g["purchases"].sum().reindex(out.index).fillna(0).astype("int64")
    out[f"offer_product_purchases_{RECENT_DAYS}d"] = g["recent"].sum().reindex(out.index).fillna(0).astype("int64")
    out["days_since_offer_product_purchase"] = g["youngest"].min().reindex(out.index).astype("float64")
    bought = g["product_id"].nunique().reindex(out.index).fillna(0).to_numpy(dtype=float)
    size = pairs["offer_id"].map(n_covered).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["offer_products_bought_share"] = np.where(size > 0, bought / size, np.nan)
    return pd.concat([pairs, out[offer_product_feature_names()]], axis=1)
