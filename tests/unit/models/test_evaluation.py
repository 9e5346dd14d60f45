import math

import numpy as np
import pandas as pd
import pytest

from models.evaluation import (
    SplitError,
    churn_time_split,
    comparison_table,
    offer_metrics,
    offer_time_split,
    promotion_decision,
)

GOOD = {"pr_auc": 0.60, "roc_auc": 0.85, "ece": 0.01}


def test_first_sane_version_is_promoted():
    d = promotion_decision(GOOD, None, metric="pr_auc")
    assert d.promote and d.alias == "champion" and d.champion_value is None
    assert d.as_tags()["gate.champion_value"] == "none"


def test_candidate_beating_champion_by_margin_is_promoted():
    d = promotion_decision(GOOD, {"pr_auc": 0.58}, metric="pr_auc", margin=0.005)
    assert d.promote and d.candidate_value == 0.60 and d.champion_value == 0.58
    assert d.as_tags()["gate.decision"] == "promoted"


def test_tie_or_gain_within_margin_stays_challenger():
    tie = promotion_decision(GOOD, {"pr_auc": 0.60}, metric="pr_auc", margin=0.0)
    assert not tie.promote and tie.alias == "challenger"
    small = promotion_decision(GOOD, {"pr_auc": 0.598}, metric="pr_auc", margin=0.005)
    assert not small.promote and "does not beat champion" in small.reason


def test_insane_candidate_is_never_promoted():
    nan = promotion_decision({**GOOD, "log_loss": math.nan}, None, metric="pr_auc")
    assert not nan.promote and "metric 'log_loss' is nan" in nan.reason
    bad_cal = promotion_decision({**GOOD, "pr_auc": 0.9, "ece": 0.2}, {"pr_auc": 0.5}, metric="pr_auc", max_ece=0.05)
    assert not bad_cal.promote and "exceeds the bound 0.05" in bad_cal.reason


def test_gate_rejects_bad_arguments():
    with pytest.raises(KeyError, match="lack the primary metric 'ndcg_at_3'"):
        promotion_decision(GOOD, None, metric="ndcg_at_3")
    with pytest.raises(ValueError, match="margin must be >= 0"):
        promotion_decision(GOOD, None, metric="pr_auc", margin=-1)


def test_churn_split_leaves_a_gap_of_one_horizon():
    dates = pd.to_datetime(["2026-01-01", "2026-01-31", "2026-03-02", "2026-04-01"])
    meta = pd.DataFrame({"as_of": np.repeat(dates, 2)})
    train, valid = churn_time_split(meta, horizon_days=60)
    assert valid.sum() == 2 and meta.loc[valid, "as_of"].eq(dates[-1]).all()
    assert set(meta.loc[train, "as_of"]) == set(dates[:2])  # 2026-03-02 + 60d overlaps the validation window
    with pytest.raises(SplitError, match="no snapshot ends its 60-day label window"):
        churn_time_split(meta[meta["as_of"] > dates[1]], horizon_days=60)


def test_offer_split_trains_on_closed_offers_before_cutoff():
    meta = pd.DataFrame(
        {"sent_at": pd.to_datetime(["2026-01-01", "2026-03-01", "2026-05-20", "2026-06-10"]),
         "label_end": pd.to_datetime(["2026-01-15", "2026-05-30", "2026-06-01", "2026-06-20"])}
    )
    train, valid = offer_time_split(meta, valid_days=30)
    assert train.tolist() == [True, False, False, False]
    assert valid.tolist() == [False, False, True, True]


def test_offer_metrics_and_comparison_table():
    m = offer_metrics([1, 0, 0, 1], [0.9, 0.1, 0.2, 0.8], ["a", "a", "b", "b"])
    assert m["ndcg_at_3"] == 1.0 and m["roc_auc"] == 1.0 and m["ranked_users"] == 2
    table = comparison_table({"model": m, "baseline": {**m, "roc_auc": 0.5}}, ["roc_auc", "ndcg_at_3"])
    assert list(table.index) == ["model", "baseline"] and list(table.columns) == ["roc_auc", "ndcg_at_3"]


def test_a_baseline_that_fails_is_recorded_and_the_others_still_score():
    from models.evaluation import run_baselines

    def diverges():
        raise RuntimeError("The model did not converge")

    runs = run_baselines({"recency": lambda: np.array([0.2, 0.8]), "bgnbd": diverges,
                          "broken": lambda: np.array([np.nan, 0.5])})
    assert list(runs.scores) == ["recency"]
    assert runs.failed["bgnbd"] == "RuntimeError: The model did not converge"
    assert runs.failed["broken"].startswith("FloatingPointError: 1 non-finite")
    assert runs.as_tags()["baseline.bgnbd.status"] == "failed" and runs.as_tags()["baseline.recency.status"] == "ok"


def test_the_gate_says_which_baselines_it_compared_against():
    from models.evaluation import BaselineRuns

    runs = BaselineRuns({"recency": np.zeros(2)}, {"bgnbd": "ConvergenceError: no"})
    tags = promotion_decision(GOOD, None, metric="pr_auc", baselines=runs).as_tags()
    assert tags["gate.baselines"] == "recency"
    assert tags["gate.baselines_failed"] == "bgnbd (ConvergenceError: no)"
    assert promotion_decision(GOOD, None, metric="pr_auc").as_tags()["gate.baselines"] == "none"


def test_margins_over_baselines_are_positive_when_the_model_is_ahead():
    from models.evaluation import margins_over_baselines

    metrics = {"model": {"roc_auc": 0.80, "brier": 0.10},
               "baseline_recency": {"roc_auc": 0.75, "brier": 0.14}, "baseline_bgnbd": {"roc_auc": 0.78, "brier": 0.12}}
    got = margins_over_baselines(metrics)
    assert got["roc_auc"] == pytest.approx(0.02) and got["brier"] == pytest.approx(0.02)
    assert math.isnan(margins_over_baselines({"model": {"roc_auc": 0.8, "brier": 0.1}})["roc_auc"])
