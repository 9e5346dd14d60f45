"""One holdout rule and one budget allocation for the offer API and the campaign lists, on tiny hand-built inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.policy import (
    STATUS_BUDGET,
    STATUS_OK,
    Decisions,
    PolicyConfig,
    PolicyError,
    holdout_salt,
    is_holdout,
)
from models.policy.budget import BudgetAllocation, budget_keep, rerank_after_withdrawal, withdraw_for_budget
from models.policy.setup import Campaign


def test_a_campaign_salts_the_holdout_the_same_way_for_api_and_list():
    ids = [f"C{i:04d}" for i in range(2000)]
    api = PolicyConfig(campaign="spring", holdout_fraction=0.1)
    listed = Campaign(name="spring", send_at="2026-06-30 09:00", channel="email", holdout_fraction=0.1).policy()
    assert api.holdout_salt == listed.holdout_salt == holdout_salt("spring") == "campaign:spring"
    assert (api.holdout(ids) == listed.holdout(ids)).all()
    assert (api.holdout(ids) == is_holdout(ids, 0.1, "campaign:spring")).all()
    other = PolicyConfig(campaign="autumn", holdout_fraction=0.1).holdout(ids)
    assert 150 < api.holdout(ids).sum() < 250 and (other != api.holdout(ids)).any()  # another campaign, another group
    assert PolicyConfig().holdout_salt == holdout_salt(None)  # no campaign: the API's default salt


def test_a_salt_that_contradicts_the_campaign_is_refused():
    with pytest.raises(PolicyError, match="holdout_salt 'x' conflicts with campaign 'spring'"):
        PolicyConfig(campaign="spring", holdout_salt="x")
    with pytest.raises(PolicyError, match="campaign must not be empty"):
        PolicyConfig(campaign=" ")
    with pytest.raises(PolicyError, match="k must be a positive integer, got 0"):
        Campaign(name="spring", send_at="2026-06-30", channel="email", k=0)


def test_the_allocation_over_blocks_equals_budget_keep_over_the_whole_list():
    offer = np.array(["A", "B", None, "A", "A", "B", "C"], dtype=object)
    given = np.array([True, True, False, True, True, True, True])
    score = np.array([3.0, 1.0, 0.0, 2.0, 5.0, 4.0, 1.0])
    p = np.array([0.5, 0.4, 0.0, 0.5, 0.6, 0.7, 0.9])
    allocation = BudgetAllocation({"A": 1.1, "B": 1.0, "C": np.inf})
    allocation.note(offer[:3], given[:3], score[:3], p[:3])
    allocation.note(offer[3:], given[3:], score[3:], p[3:])
    # A: by priority rows 4 (0.6), 0 (0.5 -> 1.1 fits), 3 withdrawn; B: row 5 (0.7), row 1 (1.1 > 1) withdrawn.
    assert allocation.withdrawn().tolist() == [False, True, False, True, False, False, False]
    codes = np.array([0, 1, 0, 0, 1])
    rows = np.flatnonzero(given & (offer != "C"))
    keep = budget_keep(codes, score[rows], p[rows], np.array([1.1, 1.0]))
    assert (~keep).tolist() == allocation.withdrawn()[rows].tolist()


def test_withdrawal_moves_the_other_offers_up_and_flags_customers_left_with_none():
    kept, ranks, lost = rerank_after_withdrawal(np.array(["a", "a", "a", "b"], dtype=object),
                                                np.array([True, False, False, True]))
    assert kept.tolist() == [False, True, True, False] and ranks.tolist() == [1, 2] and lost.tolist() == ["b"]

    decisions = Decisions(
        offer_columns={
            "customer_id": np.array(["a", "a", "b"], dtype=object), "rank": np.array([1, 2, 1]),
            "offer_id": np.array(["O1", "O2", "O1"], dtype=object), "name": np.array(["n1", "n2", "n1"], dtype=object),
            "reward_category": np.array(["coffee", "bakery", "coffee"], dtype=object),
            "offer_type": np.array(["bogo", "bogo", "bogo"], dtype=object), "p_redeem": np.array([0.3, 0.2, 0.1]),
            "expected_value": np.array([1.0, 0.5, 0.2]), "score": np.array([2.0, 1.0, 0.5]),
            "reasons": [["r1"], ["r2"], ["r3"]],
        },
        customer_columns={
            "customer_id": np.array(["a", "b", "c"], dtype=object),
            "status": np.array([STATUS_OK, STATUS_OK, "no_eligible_offer"], dtype=object),
            "cold_start": np.zeros(3, bool), "control_group": np.zeros(3, bool), "churn_risk": np.array([0.1, 0.2, 0.3]),
            "n_candidates": np.array([2, 1, 0]), "n_offers": np.array([2, 1, 0]),
        },
    )
    out = withdraw_for_budget(decisions, {("a", "O1"), ("b", "O1")})
    assert out.offers[["customer_id", "rank", "offer_id"]].to_dict("records") == [
        {"customer_id": "a", "rank": 1, "offer_id": "O2"}]
    assert out.offers["reasons"].tolist() == [["r2"]]
    assert out.customers["status"].tolist() == [STATUS_OK, STATUS_BUDGET, "no_eligible_offer"]
    assert out.customers["n_offers"].tolist() == [1, 0, 0]
    assert withdraw_for_budget(decisions, set()) is decisions
    pd.testing.assert_frame_equal(withdraw_for_budget(decisions, {("c", "O1")}).offers, decisions.offers)
