"""The cold-start prior (models.policy.cold_start) on a tiny program built through the real node-affinity and
offer-node functions: affinity to the offer's node and the offer's value relative to the basket raise it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.hierarchy import offer_nodes
from features.node_affinity import node_affinity_features
from models.policy.cold_start import (DEFAULT_BASE_RATE, ColdStartInputError, base_redemption_rate, cold_start_prior,
                                      cold_start_priors, offer_affinity, value_ratio)

AS_OF = pd.Timestamp("2026-06-30")


@pytest.fixture(scope="module")
def program():
    products = pd.DataFrame({"product_id": ["croissant", "baguette", "latte", "espresso"],
                             "department": ["bakery", "bakery", "drinks", "drinks"],
                             "category": ["pastry", "bread", "coffee", "coffee"]})
    # baker: nearly all spend on bakery; drinker: only drinks; both 10 visits of 5.00
    rows = []
    for cust, basket in (("baker", ["croissant"] * 8 + ["latte"] * 2), ("drinker", ["latte"] * 6 + ["espresso"] * 4)):
        for i, product in enumerate(basket):
            rows.append({"customer_id": cust, "transaction_id": f"{cust}-{i}", "product_id": product,
                         "category": products.set_index("product_id").loc[product, "category"], "amount": 5.0,
                         "ts": AS_OF - pd.Timedelta(days=3 * i + 1), "is_refund": False})
    tables = {
        "customers": pd.DataFrame({"customer_id": ["baker", "drinker", "newcomer"],
                                   "signup_date": pd.to_datetime(["2025-01-01"] * 3)}),
        "transactions": pd.DataFrame(rows),
        "products": products,
        "offers": pd.DataFrame({"offer_id": ["pastry-1", "pastry-5", "coffee-1"],
                                "reward_category": ["pastry", "pastry", "coffee"],
                                "value": [1.0, 5.0, 1.0]}),
    }
    return {"tables": tables, "affinity": node_affinity_features(tables, AS_OF), "nodes": offer_nodes(tables)}


def _pairs(*pairs):
    return pd.DataFrame(pairs, columns=["customer_id", "offer_id"])


def test_base_rate_is_the_programs_rate_of_sent_offers_else_the_documented_constant():
    events = pd.DataFrame({"redeemed_at": [pd.Timestamp("2026-01-02"), None, None, None, pd.Timestamp("2026-01-03")],
                           "is_control": [False, False, False, False, True]})
    assert base_redemption_rate(events) == pytest.approx(0.25)  # the control row's redemption does not count
    assert base_redemption_rate(None) == DEFAULT_BASE_RATE
    assert base_redemption_rate(events[events["is_control"]]) == DEFAULT_BASE_RATE
    with pytest.raises(ColdStartInputError, match=r"offer_events lacks columns \['redeemed_at'\]"):
        base_redemption_rate(events.drop(columns="redeemed_at"))


def test_affinity_to_the_offers_node_raises_the_prior(program):
    pairs = _pairs(("baker", "pastry-1"), ("drinker", "pastry-1"), ("baker", "coffee-1"), ("drinker", "coffee-1"))
    affinity = offer_affinity(pairs, program["affinity"], program["nodes"])
    # baker: 80% of spend and visits at pastry/bakery; drinker: none there, all of it at coffee/drinks
    np.testing.assert_allclose(affinity, [0.8, 0.0, 0.2, 1.0])
    prior = cold_start_prior(0.1, affinity, np.full(4, 0.2))
    assert prior[0] > prior[1] and prior[3] > prior[2]
    assert prior[3] > 0.1 > prior[1]  # above and below the base rate around the reference affinity


def test_a_larger_reward_relative_to_the_basket_raises_the_prior(program):
    pairs = _pairs(("baker", "pastry-1"), ("baker", "pastry-5"))
    ratio = value_ratio(pairs, program["tables"]["offers"].set_index("offer_id")["value"], {"baker": 5.0})
    np.testing.assert_allclose(ratio, [0.2, 1.0])
    prior = cold_start_prior(0.1, np.array([0.5, 0.5]), ratio)
    assert prior[1] > prior[0]
    # the same reward counts more to a smaller basket
    small = value_ratio(pairs.head(1), {"pastry-1": 1.0}, {"baker": 2.0})
    assert cold_start_prior(0.1, np.array([0.5]), small)[0] > prior[0]


def test_unknown_inputs_leave_the_base_rate_and_the_prior_stays_a_probability(program):
    pairs = _pairs(("newcomer", "pastry-1"), ("baker", "no-such-offer"))
    affinity = offer_affinity(pairs, program["affinity"], program["nodes"])
    assert np.isnan(affinity).all()  # no purchase history / an offer on no node: unknown, not zero
    ratio = value_ratio(pairs, {"pastry-1": 1.0}, {"baker": 5.0})
    assert np.isnan(ratio[0])  # the newcomer has no average basket
    odds = 0.3 / 0.7 * (1.0 / 1.2)  # unknown affinity; an offer without a value: 0 vs the 0.2 reference
    np.testing.assert_allclose(cold_start_prior(0.3, affinity, ratio), [0.3, odds / (1 + odds)])
    extreme = cold_start_prior(0.9, np.array([1.0]), np.array([1e6]))
    assert 0 < extreme[0] < 1


def test_the_whole_prior_in_one_call_and_bad_inputs_fail_clearly(program):
    pairs = _pairs(("baker", "pastry-5"), ("drinker", "pastry-1"))
    events = pd.DataFrame({"redeemed_at": [pd.Timestamp("2026-01-02"), None, None, None]})
    prior = cold_start_priors(pairs, node_affinity=program["affinity"], offer_nodes=program["nodes"],
                              offer_value={"pastry-1": 1.0, "pastry-5": 5.0}, avg_basket={"baker": 5.0, "drinker": 5.0},
                              offer_events=events)
    expected = cold_start_prior(0.25, offer_affinity(pairs, program["affinity"], program["nodes"]),
                                np.array([1.0, 0.2]))
    np.testing.assert_allclose(prior, expected)
    with pytest.raises(ColdStartInputError, match=r"node_affinity lacks columns \['visit_share_365d'\]"):
        offer_affinity(pairs, program["affinity"].drop(columns="visit_share_365d"), program["nodes"])
    with pytest.raises(ValueError, match=r"base_rate must be in \(0, 1\), got 1.5"):
        cold_start_prior(1.5, np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="affinity and ratio must have one value per pair"):
        cold_start_prior(0.1, np.zeros(2), np.zeros(3))
