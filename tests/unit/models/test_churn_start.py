"""Where the churn booster starts: a logistic regression over the reference scores, fitted on the booster's fit
rows only; chosen from what the inputs allow; bad choices fail clearly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.churn import BGNBD_INPUTS, REFERENCE_INPUTS, ChurnModel, reference_scores
from models.lgbm import holdout_rows
from models.metrics import roc_auc
from models.tabular import MissingFeaturesError


def _weekly_shop(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Poisson visitors whose rates differ tenfold; a quarter stopped some time before the snapshot.
    Label: stopped. Silence alone ranks them less well than silence measured in the customer's own visits."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.03, 0.5, n)  # visits per day
    tenure = rng.uniform(120, 365, n)
    stopped = rng.random(n) < 0.25
    stop_ago = np.where(stopped, rng.uniform(0, 60, n), 0.0)
    visits = rng.poisson(rate * (tenure - stop_ago))
    # the last visit: an exponential wait back from the stop (capped by the tenure)
    silence = np.minimum(stop_ago + rng.exponential(1 / rate), tenure)
    X = pd.DataFrame({"days_since_last_visit": silence, "repeat_visit_days": np.maximum(visits - 1, 0),
                      "days_since_first_visit": tenure, "noise": rng.normal(size=n)})
    X[BGNBD_INPUTS[1]] = np.maximum(tenure - silence, 0.0)
    return X, stopped.astype(int)


def test_auto_starts_from_the_references_when_the_profile_has_them():
    X, y = _weekly_shop()
    assert ChurnModel(n_estimators=20).fit(X, y).start_ == "references"
    assert ChurnModel(n_estimators=20, bgnbd_horizon_days=60).fit(X, y).start_ == "references"
    without = X.drop(columns="days_since_last_visit")
    assert ChurnModel(n_estimators=20, bgnbd_horizon_days=60).fit(without, y).start_ == "bgnbd"
    assert ChurnModel(n_estimators=20).fit(without, y).start_ == "constant"


def test_the_reference_start_weighs_silence_by_the_customers_own_rate():
    X, y = _weekly_shop()
    model = ChurnModel(n_estimators=1, learning_rate=1e-6, calibration="none").fit(X, y)
    # Nearly no trees: the start alone. It beats silence alone, which cannot tell a slow customer from a gone one.
    held_out = _weekly_shop(seed=1)
    start = model.predict_proba(held_out[0])[:, 1]
    assert roc_auc(held_out[1], start) > roc_auc(held_out[1], held_out[0]["days_since_last_visit"]) + 0.008


def test_the_reference_start_is_fitted_on_the_boosters_fit_rows_only():
    X, y = _weekly_shop()
    groups = np.arange(len(y)) // 3
    model = ChurnModel(n_estimators=5, random_state=3).fit(X, y, groups=groups)
    fit_rows, hold_rows = holdout_rows(y, groups, model.calibration_fraction, 3, "test")
    assert len(set(groups[fit_rows]) & set(groups[hold_rows])) == 0
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    R = reference_scores(X, model.reference_pseudo_days_)
    alone = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(R[fit_rows], y[fit_rows])
    np.testing.assert_allclose(model.reference_start_[-1].coef_, alone[-1].coef_)
    everything = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(R, y)
    assert not np.allclose(model.reference_start_[-1].coef_, everything[-1].coef_)


def test_reference_scores_treat_a_customer_without_visits_as_silent_since_signup():
    X = pd.DataFrame({"days_since_last_visit": [np.nan, 10.0], "repeat_visit_days": [0, 4],
                      "days_since_first_visit": [40.0, 100.0]})
    R = reference_scores(X, pseudo_days=10.0)
    np.testing.assert_allclose(R[0, 0], np.log1p(40.0))  # silence = days since signup
    np.testing.assert_allclose(R[1, 2], 5 / 110 * 10.0)  # rate x silence
    assert R.shape == (2, 5) and reference_scores(X, 10.0, np.zeros(2)).shape == (2, 6)


def test_bad_start_choices_fail_clearly():
    X, y = _weekly_shop(n=600)
    choices = r"\['auto', 'references', 'bgnbd', 'constant'\]"
    with pytest.raises(ValueError, match=rf"start must be one of {choices}, got 'recency'"):
        ChurnModel(start="recency").fit(X, y)
    with pytest.raises(MissingFeaturesError, match=r"start='references'.*days_since_last_visit"):
        ChurnModel(start="references").fit(X.drop(columns="days_since_last_visit"), y)
    with pytest.raises(ValueError, match="start='bgnbd' needs BG/NBD: set bgnbd_horizon_days"):
        ChurnModel(start="bgnbd").fit(X, y)
    assert set(REFERENCE_INPUTS) <= set(X.columns)
