import numpy as np
import pandas as pd
import pytest

from models import metrics as m


def test_perfect_scores_reach_the_bounds():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = y.astype(float)
    assert m.roc_auc(y, s) == 1.0
    assert m.pr_auc(y, s) == 1.0
    assert m.brier_score(y, s) == 0.0
    assert m.expected_calibration_error(y, s) == 0.0
    assert m.log_loss(y, s) < 1e-10


def test_reversed_scores_have_zero_auc_and_constant_scores_half():
    y = np.array([0, 1, 0, 1])
    assert m.roc_auc(y, 1 - y) == 0.0
    assert m.roc_auc(y, np.full(4, 0.3)) == 0.5


def test_ece_of_a_constant_miscalibrated_score_is_the_gap():
    y = np.array([1, 0, 0, 0])  # rate 0.25
    assert m.expected_calibration_error(y, np.full(4, 0.75)) == pytest.approx(0.5)


def test_lift_and_capture_in_top_decile():
    y = np.zeros(100, dtype=int)
    y[:10] = 1
    score = np.linspace(1, 0, 100)  # positives ranked first
    assert m.lift_at(y, score, 0.1) == pytest.approx(10.0)
    assert m.capture_at(y, score, 0.1) == pytest.approx(1.0)
    curve = m.lift_curve(y, score)
    assert curve["cumulative_capture"].iloc[-1] == pytest.approx(1.0)
    assert curve["lift"].iloc[0] == pytest.approx(10.0)


def test_single_class_gives_nan_not_an_error():
    assert np.isnan(m.roc_auc([0, 0], [0.1, 0.2]))
    assert np.isnan(m.pr_auc([0, 0], [0.1, 0.2]))


def test_bad_inputs_are_named():
    with pytest.raises(m.MetricInputError, match="roc_auc: y_true and y_score must have the same length"):
        m.roc_auc([0, 1], [0.5])
    with pytest.raises(m.MetricInputError, match="y_true must hold only 0 and 1"):
        m.brier_score([0, 2], [0.5, 0.5])


def _ranking(scores, labels, users=None):
    users = users or ["a"] * len(scores)
    return pd.DataFrame({"customer_id": users, "score": scores, "label": labels})


def test_a_perfect_ranking_scores_one():
    frame = _ranking([0.9, 0.8, 0.1, 0.05], [1, 1, 0, 0])
    for fn in (m.hit_rate_at_k, m.ndcg_at_k, m.map_at_k):
        assert fn(frame, 3) == pytest.approx(1.0)


def test_worst_ranking_scores_zero_and_partial_ranking_in_between():
    worst = _ranking([0.9, 0.8, 0.7, 0.1], [0, 0, 0, 1])
    assert m.hit_rate_at_k(worst, 3) == 0.0
    assert m.ndcg_at_k(worst, 3) == 0.0
    assert m.map_at_k(worst, 3) == 0.0
    second = _ranking([0.9, 0.8, 0.1], [0, 1, 0])
    assert m.ndcg_at_k(second, 3) == pytest.approx(1 / np.log2(3))
    assert m.map_at_k(second, 3) == pytest.approx(0.5)
    assert m.hit_rate_at_k(second, 1) == 0.0


def test_users_without_relevant_items_are_skipped_and_ties_earn_nothing():
    frame = _ranking([0.9, 0.1, 0.5, 0.5], [1, 0, 0, 0], users=["a", "a", "b", "b"])
    assert m.ndcg_at_k(frame, 1) == 1.0  # user b has nothing relevant: not counted
    tied = _ranking([0.5, 0.5, 0.5], [0, 0, 1])
    assert m.hit_rate_at_k(tied, 1) == 0.0
    assert np.isnan(m.ndcg_at_k(_ranking([0.5], [0]), 3))


def test_ranking_metrics_use_given_column_names_and_check_k():
    frame = pd.DataFrame({"u": ["x", "x"], "p": [0.2, 0.9], "y": [0, 1]})
    assert m.ndcg_at_k(frame, 2, user_col="u", score_col="p", label_col="y") == 1.0
    with pytest.raises(m.MetricInputError, match=r"must contain columns \['customer_id'"):
        m.ndcg_at_k(frame, 2)
    with pytest.raises(m.MetricInputError, match="k must be a positive integer"):
        m.map_at_k(frame, 0, user_col="u", score_col="p", label_col="y")
