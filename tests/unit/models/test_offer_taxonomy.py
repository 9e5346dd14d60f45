"""On the coffee sample (one level: category; offers on a whole category) the taxonomy columns reproduce
the old per-category columns and are computed the same for a new offer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import build_profiles
from models.offer_response import offer_features
from models.offer_taxonomy import taxonomy_columns

AS_OF = pd.Timestamp("2026-05-01")


@pytest.fixture(scope="module")
def rows(sample):
    tables = sample.tables
    ids = np.sort(tables["customers"]["customer_id"].unique())[:300]
    small = {k: (v[v["customer_id"].isin(ids)] if "customer_id" in v.columns else v) for k, v in tables.items()}
    profiles = build_profiles(small, AS_OF)
    offers = tables["offers"]
    new = offers.iloc[[0]].assign(offer_id="never_seen", reward_category="tea")
    offers = pd.concat([offers, new], ignore_index=True)
    context = {"timestamp": AS_OF, "channel": "app"}
    return offer_features(profiles, offers, context, tables=small), offer_features(profiles, offers, context)


def test_width_is_fixed_and_taxonomy_is_only_added(rows):
    with_taxonomy, without = rows
    assert list(with_taxonomy.columns) == list(without.columns) + taxonomy_columns()
    assert with_taxonomy[list(without.columns)].equals(without)


def test_node_columns_reproduce_the_per_category_columns(rows):
    got, _ = rows
    assert got["cust_share_of_reward_category"].notna().sum() > 1000
    np.testing.assert_allclose(got["node_d0_spend_share_365d"], got["cust_share_of_reward_category"], atol=1e-9)
    np.testing.assert_allclose(got["node_d0_visit_share_365d"], got["cust_visit_share_reward_category"], atol=1e-9)
    assert got[[c for c in got.columns if c.startswith("node_d1_")]].isna().all().all()  # coffee has one level


def test_an_offer_never_seen_is_scored_from_its_node(rows):
    got, _ = rows
    new = got[got["offer_id"] == "never_seen"].reset_index(drop=True)
    tea = got[(got["reward_category"] == "tea") & (got["offer_id"] != "never_seen")].drop_duplicates("customer_id")
    tea = tea.set_index("customer_id").loc[new["customer_id"]].reset_index()
    for col in taxonomy_columns()[:6] + ["offer_products_bought_share", "offer_product_purchases"]:
        np.testing.assert_allclose(new[col], tea[col], equal_nan=True, err_msg=col)
    assert new["offer_product_purchases"].sum() > 0
