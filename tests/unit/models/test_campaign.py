"""Budget pass of a campaign list: which offers stay within budget, and what the rows look like after."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.campaign import STATUS_BUDGET, budget_keep, withdraw_offers


def test_each_budgeted_offer_keeps_its_best_customers_within_expected_redemptions():
    offer = np.array([0, 0, 0, 0, 1, 1, 2])
    score = np.array([1.0, 5.0, 3.0, 3.0, 2.0, 1.0, 9.0])
    p = np.array([0.5, 0.6, 0.3, 0.3, 0.9, 0.9, 0.7])
    remaining = np.array([1.0, 5.0, np.inf])
    keep = budget_keep(offer, score, p, remaining)
    # offer 0 by score: 5.0 (0.6) -> 3.0 (0.3, first in list order) = 0.9 <= 1 -> next 3.0 makes 1.2: stop
    assert keep.tolist() == [False, True, True, False, True, True, True]
    assert budget_keep(offer, score, p, np.array([0.0, 0.5, 0.0])).tolist() == [False] * 7
    assert budget_keep(np.array([], dtype=int), np.array([]), np.array([]), remaining).tolist() == []


def _rows():
    return pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "c", "d"],
        "status": ["ok", "ok", "ok", "ok", "control_group", "ok"],
        "holdout": [False, False, False, False, True, False],
        "rank": pd.array([1, 2, 3, 1, pd.NA, 1], dtype="Int64"),
        "offer_id": pd.array(["X", "Y", "Z", "X", pd.NA, "Y"], dtype="str"),
        "p_redeem": [0.5, 0.4, 0.2, 0.6, np.nan, 0.3],
        "reasons": [["r1"], ["r2"], ["r3"], ["r4"], [], ["r5"]],
        "churn_risk": [0.1, 0.1, 0.1, 0.2, 0.3, 0.4],
    })


def test_withdrawn_offers_leave_the_rest_ranked_and_customers_without_offers_excluded():
    rows = _rows()
    out = withdraw_offers(rows, np.array([True, False, False, True, False, False]))
    a = out[out["customer_id"] == "a"]
    assert a["offer_id"].tolist() == ["Y", "Z"] and a["rank"].tolist() == [1, 2]
    b = out[out["customer_id"] == "b"]
    assert len(b) == 1 and b["status"].item() == STATUS_BUDGET and pd.isna(b["offer_id"].item())
    assert b["rank"].isna().all() and b["reasons"].item() == [] and b["churn_risk"].item() == 0.2
    assert out.loc[out["customer_id"] == "c", "status"].item() == "control_group"
    assert out["customer_id"].tolist() == ["a", "a", "b", "c", "d"]  # every customer still there, in order
    assert withdraw_offers(rows, np.zeros(6, dtype=bool)) is rows
