"""Uplift metrics on hand-computed cases, and the T-learner on a planted heterogeneous effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from models.uplift import UpliftError, UpliftModel, qini_coefficient, qini_curve, top_share_total, uplift_at_k


def test_uplift_at_k_is_treated_minus_control_mean_in_the_top_rows():
    y = np.array([10.0, 2.0, 8.0, 0.0, 1.0, 1.0])
    t = np.array([True, False, True, False, True, False])
    score = np.array([6, 5, 4, 3, 2, 1])
    assert uplift_at_k(y, t, score, k=0.5) == pytest.approx((10 + 8) / 2 - 2)
    assert uplift_at_k(y, t, score, k=1.0) == pytest.approx(19 / 3 - 3 / 3)


def test_qini_curve_ends_at_the_total_uplift_and_a_perfect_ranking_beats_a_reversed_one():
    rng = np.random.default_rng(0)
    n = 4000
    effect = rng.uniform(-2, 4, n)
    t = rng.random(n) < 0.5
    y = rng.normal(0, 1, n) + effect * t
    curve = qini_curve(y, t, effect)
    total = y[t].sum() - y[~t].sum() * t.sum() / (~t).sum()
    assert curve["qini"].iloc[-1] == pytest.approx(total)
    assert curve["share"].iloc[0] == 0 and curve["share"].iloc[-1] == 1
    assert qini_coefficient(y, t, effect) > 0 > qini_coefficient(y, t, -effect)


def test_top_share_total_sums_the_value_of_the_best_scored_rows():
    assert top_share_total([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], k=0.4) == 3


def test_uplift_model_ranks_a_planted_heterogeneous_effect():
    rng = np.random.default_rng(1)
    n = 8000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y"], n)})
    effect = np.where(X["a"] > 0, 3.0, -1.0)
    t = rng.random(n) < 0.5
    y = 5 * X["b"].to_numpy() + rng.normal(0, 2, n) + effect * t
    model = UpliftModel(random_state=0).fit(X, y, t)
    pred = model.predict(X)
    assert pred[X["a"] > 0].mean() > 2.0 and pred[X["a"] <= 0].mean() < 0.0
    assert np.corrcoef(pred, effect)[0, 1] > 0.8


def test_uplift_model_errors_name_what_is_missing():
    X = pd.DataFrame({"a": np.arange(100.0)})
    with pytest.raises(NotFittedError):
        UpliftModel().predict(X)
    with pytest.raises(UpliftError, match=r"UpliftModel: 0 control rows, need at least 40"):
        UpliftModel(min_child_samples=20).fit(X, np.zeros(100), np.ones(100, dtype=bool))
    with pytest.raises(UpliftError, match="X has 100 rows but y has 3"):
        UpliftModel().fit(X, np.zeros(3), np.ones(100, dtype=bool))
    with pytest.raises(UpliftError, match="need both treated and control rows"):
        qini_coefficient([1.0, 2.0], [True, True], [0.1, 0.2])
