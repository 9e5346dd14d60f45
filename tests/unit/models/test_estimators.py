"""The estimator contract on tiny seeded frames: fit returns self, learned attributes, clear errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from models.baselines import BGNBDBaseline, PopularityBaseline, RecencyRuleBaseline
from models.churn import ChurnModel
from models.offer_response import OfferResponseModel
from models.tabular import MissingFeaturesError


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 1500
    x1 = rng.normal(size=n)
    kind = rng.choice(["a", "b", "c"], size=n)
    X = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "x1": x1, "x2": rng.normal(size=n),
         "kind": pd.Series(kind, dtype="str"), "flag": rng.random(n) > 0.5}
    )
    logit = 1.5 * x1 + np.where(kind == "a", 1.0, -0.5)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _small(cls, **kw):
    return cls(n_estimators=60, min_child_samples=10, **kw)


@pytest.mark.parametrize("cls", [ChurnModel, OfferResponseModel])
def test_fit_returns_self_learns_and_ranks(cls, frame):
    X, y = frame
    model = _small(cls)
    assert model.fit(X, y) is model
    assert list(model.feature_names_in_) == ["x1", "x2", "kind", "flag"]  # keys are not features
    assert model.categories_ == {"kind": ["a", "b", "c"]}
    p = model.predict_proba(X)
    assert p.shape == (len(X), 2) and np.allclose(p.sum(axis=1), 1)
    from models.metrics import roc_auc
    assert roc_auc(y, p[:, 1]) > 0.75
    assert set(model.predict(X)) <= {0, 1}


@pytest.mark.parametrize("cls", [ChurnModel, OfferResponseModel])
def test_unfitted_and_missing_features_fail_clearly(cls, frame):
    X, y = frame
    with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted yet"):
        cls().predict_proba(X)
    model = _small(cls).fit(X, y)
    with pytest.raises(MissingFeaturesError, match=r"1 missing: \['x2'\]"):
        model.predict_proba(X.drop(columns="x2"))
    with pytest.raises(ValueError, match="y must contain both classes"):
        _small(cls).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="one label per row"):
        _small(cls).fit(X, y[:10])


def test_unknown_category_at_predict_is_treated_as_missing(frame):
    X, y = frame
    model = _small(OfferResponseModel).fit(X, y)
    p = model.predict_proba(X.assign(kind="zzz"))[:, 1]
    assert np.isfinite(p).all()


def test_churn_calibration_options_and_bad_value(frame):
    X, y = frame
    for method in ("isotonic", "sigmoid", "none"):
        p = _small(ChurnModel, calibration=method).fit(X, y).predict_proba(X)[:, 1]
        assert ((p >= 0) & (p <= 1)).all()
    with pytest.raises(ValueError, match="calibration must be one of"):
        ChurnModel(calibration="platt").fit(X, y)


def test_contributions_sum_to_the_log_odds(frame):
    X, y = frame
    model = _small(OfferResponseModel).fit(X, y)
    contrib = model.contributions(X.head(20))
    assert list(contrib.columns) == ["x1", "x2", "kind", "flag", "bias"]
    assert contrib.index.equals(X.head(20).index)
    p = model.predict_proba(X.head(20))[:, 1]
    np.testing.assert_allclose(contrib.sum(axis=1), np.log(p / (1 - p)), atol=1e-6)


def test_recency_rule_ranks_long_absence_as_risk():
    X = pd.DataFrame({"days_since_last_visit": [1.0, 2, 3, 80, 90, 100, np.nan]})
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    p = RecencyRuleBaseline().fit(X, y).predict_proba(X)[:, 1]
    assert p[:3].max() < p[3:].min()


def test_bgnbd_baseline_fits_and_scores_from_rfm():
    rng = np.random.default_rng(1)
    n = 400
    T = rng.uniform(100, 300, n)
    freq = rng.poisson(T / 20).astype(float)
    rec = np.where(freq > 0, rng.uniform(0.2, 1.0, n) * T, 0)
    X = pd.DataFrame({"frequency": freq, "recency": rec, "T": T})
    y = ((T - rec) > 60).astype(int)
    model = BGNBDBaseline(horizon_days=60).fit(X, y)
    assert set(model.params_) == {"r", "alpha", "a", "b"}
    e = model.expected_purchases(X)
    assert (e >= 0).all()
    from models.metrics import roc_auc
    assert roc_auc(y, model.predict_proba(X)[:, 1]) > 0.7
    with pytest.raises(ValueError, match=r"must contain columns \['T'\]"):
        model.predict_proba(X.drop(columns="T"))


def test_popularity_baseline_smooths_and_handles_unseen_keys():
    X = pd.DataFrame({"offer_id": ["o1"] * 10 + ["o2"] * 10})
    y = np.array([1] * 8 + [0] * 2 + [1] * 1 + [0] * 9)
    model = PopularityBaseline(key="offer_id", smoothing=0.0).fit(X, y)
    assert model.rates_ == {"o1": 0.8, "o2": 0.1}
    smoothed = PopularityBaseline(key="offer_id", smoothing=10.0).fit(X, y)
    assert 0.45 < smoothed.rates_["o1"] < 0.8
    p = model.predict_proba(pd.DataFrame({"offer_id": ["o1", "o2", "new"]}))[:, 1]
    assert p[0] > p[1]
