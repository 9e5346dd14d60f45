"""The churn model starts from BG/NBD: fitted inside fit, on the training rows only; and it does not memorise
customers repeated across stacked snapshots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.bgnbd import BetaGeoModel
from models.churn import BGNBD_FEATURES, BGNBD_INPUTS, ChurnModel
from models.tabular import MissingFeaturesError
from tests.unit.models.test_bgnbd import simulate


@pytest.fixture(scope="module")
def rfm_frame():
    x, t_x, T = simulate({"r": 0.5, "alpha": 20.0, "a": 0.6, "b": 2.5}, n=3000, seed=1, T_low=60, T_high=300)
    rng = np.random.default_rng(2)
    X = pd.DataFrame({BGNBD_INPUTS[0]: x, BGNBD_INPUTS[1]: t_x, BGNBD_INPUTS[2]: T, "noise": rng.normal(size=len(x))})
    y = ((T - t_x) > 90).astype(int)  # long silence: churned
    return X, y


def test_bgnbd_is_fitted_inside_fit_on_the_training_rows(rfm_frame):
    X, y = rfm_frame
    model = ChurnModel(n_estimators=30, bgnbd_horizon_days=60).fit(X, y)
    alone = BetaGeoModel(penalizer_coef=0.01).fit(X[BGNBD_INPUTS[0]], X[BGNBD_INPUTS[1]], X[BGNBD_INPUTS[2]])
    assert model.bgnbd_.params_ == pytest.approx(alone.params_)
    assert list(model.feature_names_in_) == [*BGNBD_INPUTS, "noise"]  # what a caller gives
    assert model.booster_feature_names_[-3:] == list(BGNBD_FEATURES)  # what the trees also read
    # Scoring never refits: other rows, same BG/NBD.
    before = model.predict_proba(X.head(5))[:, 1]
    after = model.predict_proba(pd.concat([X.head(5), X.tail(500)]))[:5, 1]
    np.testing.assert_allclose(before, after)
    assert dict(model.bgnbd_.params_) == pytest.approx(alone.params_)


def test_without_the_bgnbd_inputs_the_error_names_them(rfm_frame):
    X, y = rfm_frame
    with pytest.raises(MissingFeaturesError, match=r"bgnbd_horizon_days=60.*\['days_since_first_visit'\]"):
        ChurnModel(n_estimators=5, bgnbd_horizon_days=60).fit(X.drop(columns="days_since_first_visit"), y)
    with pytest.raises(ValueError, match="bgnbd_horizon_days must be >= 1"):
        ChurnModel(bgnbd_horizon_days=0).fit(X, y)


def test_customer_groups_stop_the_model_memorising_stacked_snapshots():
    # 400 customers x 5 snapshots with near-identical rows and a label that is pure noise per customer.
    rng = np.random.default_rng(0)
    n, copies = 400, 5
    finger = rng.normal(size=(n, 3))
    rows = np.repeat(np.arange(n), copies)
    X = pd.DataFrame(finger[rows] + rng.normal(scale=1e-3, size=(n * copies, 3)), columns=["a", "b", "c"])
    y = (rng.random(n) < 0.5).astype(int)[rows]
    free = ChurnModel(n_estimators=200, min_child_samples=5).fit(X, y)
    grouped = ChurnModel(n_estimators=200, min_child_samples=5).fit(X, y, groups=rows)
    assert grouped.best_iteration_ * 3 < free.best_iteration_
    with pytest.raises(ValueError, match="groups must have one value per row"):
        ChurnModel().fit(X, y, groups=rows[:10])
