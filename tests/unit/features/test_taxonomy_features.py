"""Node affinity and offer-product features: hand-computed on a two-level toy taxonomy, and point in time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from features.catalogue import node_feature_names, offer_product_feature_names
from features.hierarchy import hierarchy_levels, offer_nodes, offer_products
from features.node_affinity import node_affinity_features
from features.offer_products import offer_product_features
from models.offer_taxonomy import offer_taxonomy_features, taxonomy_columns

AS_OF = pd.Timestamp("2026-03-01")
T = pd.Timestamp


def toy() -> dict[str, pd.DataFrame]:
    """Two customers; dairy > (milk, cheese), bakery > bread. a1 buys milk often, cheese once, bread once."""
    customers = pd.DataFrame({"customer_id": ["a1", "a2"], "signup_date": [T("2025-01-01"), T("2025-01-01")]})
    rows = [  # transaction_id, customer, ts, product, category, amount, is_refund
        ("v1", "a1", T("2026-02-20 10:00"), "m1", "milk", 2.0, False),
        ("v1", "a1", T("2026-02-20 10:00"), "b1", "bread", 3.0, False),
        ("v2", "a1", T("2026-01-01 10:00"), "m1", "milk", 2.0, False),
        ("v2", "a1", T("2026-01-01 10:00"), "c1", "cheese", 5.0, False),
        ("v3", "a1", T("2025-10-01 10:00"), "m2", "milk", 8.0, False),
        ("v4", "a1", T("2026-02-25 10:00"), "m1", "milk", -2.0, True),  # a refund: no visit, no spend
        ("v5", "a2", T("2026-02-28 09:00"), "b1", "bread", 3.0, False),
    ]
    tx = pd.DataFrame(rows, columns=["transaction_id", "customer_id", "ts", "product_id", "category", "amount", "is_refund"])
    products = pd.DataFrame({"product_id": ["m1", "m2", "c1", "b1", "b2"],
                             "department": ["dairy", "dairy", "dairy", "bakery", "bakery"],
                             "commodity": ["milk", "milk", "cheese", "bread", "bread"]})
    offers = pd.DataFrame({"offer_id": ["o_milk", "o_dairy", "o_m2"],
                           "reward_category": ["milk", "dairy", "milk"]})
    offer_products_ = pd.DataFrame({"offer_id": ["o_m2"], "product_id": ["m2"]})
    return {"customers": customers, "transactions": tx, "products": products, "offers": offers,
            "offer_products": offer_products_}


def test_offers_cover_their_products_or_their_whole_node():
    t = toy()
    assert hierarchy_levels(t) == ["department", "commodity"]
    covered = offer_products(t).sort_values(["offer_id", "product_id"]).values.tolist()
    assert covered == [["o_dairy", "c1"], ["o_dairy", "m1"], ["o_dairy", "m2"], ["o_m2", "m2"],
                       ["o_milk", "m1"], ["o_milk", "m2"]]
    nodes = offer_nodes(t).sort_values(["offer_id", "level"]).values.tolist()
    # an offer on a department reaches no commodity; an offer on a commodity reaches its department
    assert nodes == [["o_dairy", "department", "dairy"], ["o_m2", "commodity", "milk"],
                     ["o_m2", "department", "dairy"], ["o_milk", "commodity", "milk"],
                     ["o_milk", "department", "dairy"]]


def test_node_affinity_by_hand():
    got = node_affinity_features(toy(), AS_OF).set_index(["customer_id", "level", "node"])
    assert list(got.columns) == node_feature_names()
    milk = got.loc[("a1", "commodity", "milk")]
    # a1: spend 2+3+2+5+8 = 20, milk 12; visits v1, v2, v3: milk in all three; last milk 2026-02-20 10:00
    assert milk["spend_share_365d"] == pytest.approx(12 / 20)
    assert milk["visit_share_365d"] == pytest.approx(1.0)
    assert milk["days_since_last_purchase"] == pytest.approx(8 + 14 / 24)
    assert (milk["visits_30d"], milk["visits_90d"], milk["visits_180d"]) == (1, 2, 3)
    dairy = got.loc[("a1", "department", "dairy")]
    assert dairy["spend_share_365d"] == pytest.approx(17 / 20) and dairy["visits_180d"] == 3
    bread = got.loc[("a2", "commodity", "bread")]
    assert bread["spend_share_365d"] == 1.0 and bread["days_since_last_purchase"] == pytest.approx(15 / 24)
    assert ("a2", "commodity", "milk") not in got.index  # never bought: no row (readers take 0)
    assert len(got) == 7  # a1: 3 commodities + 2 departments; a2: bread + bakery


def test_offer_product_features_by_hand():
    pairs = pd.DataFrame({"customer_id": ["a1", "a1", "a1", "a2"], "offer_id": ["o_milk", "o_m2", "o_dairy", "o_m2"]})
    got = offer_product_features(toy(), AS_OF, pairs)
    assert list(got.columns) == ["customer_id", "offer_id", *offer_product_feature_names()]
    assert got["offer_product_purchases"].tolist() == [3, 1, 4, 0]
    assert got["offer_product_purchases_90d"].tolist() == [2, 0, 3, 0]  # m2 was bought 151 days ago
    assert got["days_since_offer_product_purchase"].iloc[1] == pytest.approx((AS_OF - T("2025-10-01 10:00")).days
                                                                              + 14 / 24)
    assert np.isnan(got["days_since_offer_product_purchase"].iloc[3])
    assert got["offer_products_bought_share"].tolist() == [1.0, 1.0, 1.0, 0.0]


def test_offer_taxonomy_joins_every_level_at_fixed_width():
    rows = pd.DataFrame({"customer_id": ["a1", "a1", "a2"], "offer_id": ["o_milk", "o_dairy", "o_milk"],
                         "as_of": [AS_OF] * 3})
    got = offer_taxonomy_features(toy(), rows)
    assert list(got.columns) == taxonomy_columns()  # the same columns whatever the taxonomy
    assert got.loc[0, "node_d0_spend_share_365d"] == pytest.approx(12 / 20)  # milk
    assert got.loc[0, "node_d1_spend_share_365d"] == pytest.approx(17 / 20)  # dairy
    assert np.isnan(got.loc[1, "node_d0_spend_share_365d"])  # a department offer has no commodity
    assert got.loc[1, "node_d1_visits_180d"] == 3
    assert got.loc[2, "node_d0_spend_share_365d"] == 0.0 and got.loc[2, "node_d0_visits_90d"] == 0  # a2: no milk
    assert got[[c for c in got.columns if c.startswith("node_d2_")]].isna().all().all()  # two levels only


def _with_future(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    t = {k: v.copy() for k, v in t.items()}
    future = pd.DataFrame([
        ("f1", "a1", AS_OF, "m2", "milk", 50.0, False),  # exactly at the cutoff
        ("f2", "a2", AS_OF + pd.Timedelta(days=2), "m1", "milk", 9.0, False),
        ("f3", "a1", AS_OF + pd.Timedelta(hours=1), "c1", "cheese", 1.0, False),
    ], columns=t["transactions"].columns)
    t["transactions"] = pd.concat([t["transactions"], future], ignore_index=True)
    t["customers"] = pd.concat([t["customers"], pd.DataFrame({"customer_id": ["a3"], "signup_date": [AS_OF]})],
                               ignore_index=True)
    return t


def test_rows_at_or_after_as_of_change_no_taxonomy_feature():
    t, later = toy(), _with_future(toy())
    pdt.assert_frame_equal(node_affinity_features(t, AS_OF), node_affinity_features(later, AS_OF))
    pairs = pd.DataFrame({"customer_id": ["a1", "a2", "a2"], "offer_id": ["o_m2", "o_milk", "o_dairy"]})
    pdt.assert_frame_equal(offer_product_features(t, AS_OF, pairs), offer_product_features(later, AS_OF, pairs))
    rows = pairs.assign(as_of=AS_OF)
    pdt.assert_frame_equal(offer_taxonomy_features(t, rows), offer_taxonomy_features(later, rows))
    # ... and the same rows do count once they are in the past
    seen = offer_product_features(later, AS_OF + pd.Timedelta(days=3), pairs)
    assert seen["offer_product_purchases"].tolist() == [2, 1, 1]


def test_without_a_products_table_the_category_is_the_one_level():
    t = toy()
    del t["products"], t["offer_products"]
    assert hierarchy_levels(t) == ["category"]
    got = node_affinity_features(t, AS_OF)
    assert set(got["level"]) == {"category"}
    milk = got.set_index(["customer_id", "node"]).loc[("a1", "milk")]
    assert milk["spend_share_365d"] == pytest.approx(12 / 20)


def test_the_lookup_grid_equals_the_pairs_on_the_toy_taxonomy():
    """offer_matrix's grid (customers x offers) and the reference rows (one per pair) agree cell for cell,
    with a customer unknown to the lookup reading as one without purchases."""
    from models.offer_taxonomy import TaxonomyLookup

    t = toy()
    t["offers"] = pd.concat([t["offers"], pd.DataFrame({"offer_id": ["o_bakery"], "reward_category": ["bakery"]})],
                            ignore_index=True)
    lookup = TaxonomyLookup(t, AS_OF, ["a1", "a2"], t["offers"])
    customers, offers = ["a2", "nobody", "a1"], ["o_m2", "o_bakery", "o_milk", "o_dairy"]
    grid = lookup.grid(customers, offers)
    cust = np.repeat(customers, len(offers))
    pairs = lookup.pairs(cust, np.tile(offers, len(customers)))
    for name in taxonomy_columns():
        np.testing.assert_allclose(grid[name].ravel(), pairs[name], equal_nan=True, err_msg=name)
    rows = pd.DataFrame({"customer_id": cust, "offer_id": np.tile(offers, len(customers)), "as_of": AS_OF})
    rows = rows[rows["customer_id"] != "nobody"]
    ref = offer_taxonomy_features(t, rows)
    for name in taxonomy_columns():
        np.testing.assert_allclose(ref[name], np.delete(pairs[name], np.arange(4, 8)), equal_nan=True, err_msg=name)
    assert grid["node_d1_visits_180d"][2, 3] == 3 and np.isnan(grid["node_d1_spend_share_365d"][1, 0])
    assert grid["offer_product_purchases"][1].tolist() == [0, 0, 0, 0]


def test_a_lookup_of_some_offers_ignores_the_product_rows_of_the_others():
    from models.offer_taxonomy import TaxonomyLookup

    t = toy()
    some = t["offers"][t["offers"]["offer_id"] == "o_milk"]
    lookup = TaxonomyLookup(t, AS_OF, ["a1"], some)  # offer_products still names o_m2
    assert lookup.grid(["a1"], ["o_milk"])["node_d0_spend_share_365d"][0, 0] == pytest.approx(12 / 20)
