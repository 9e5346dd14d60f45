"""Uplift: the incremental effect of an offer, learned from randomised control events. Pure code.

``UpliftModel`` is a T-learner on LightGBM (one regressor on the treated rows, one on the control rows;
uplift = the difference of their predictions), following the scikit-learn contract: ``fit(X, y, treatment)``
and ``predict(X)`` -> the estimated incremental outcome of sending the offer. (causalml 0.18 offers the same
learners but pulls in a compiled build and a dependency tree pinned differently from ours; a T-learner is a
few lines on the LightGBM we already use.) The outcome is the customer's margin after the send net of the
reward cost, minus the same-length margin before it: subtracting a pre-treatment quantity leaves the effect
unchanged under randomisation and removes most of the between-customer noise.

Metrics follow Radcliffe's Qini: sort rows by predicted uplift, and at each cut the Qini value is the
treated outcome sum minus the control outcome sum scaled to the treated count. The Qini coefficient is the
area between that curve and the random line, normalised by the number of rows (higher is better).
``incremental_value`` is the ranking the policy can use: the model's incremental margin per customer x offer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from models.tabular import check_frame, learn_layout, to_matrix


class UpliftError(ValueError):
    """Uplift training or evaluation inputs are unusable."""


class UpliftModel(RegressorMixin, BaseEstimator):
    """T-learner on LightGBM: predict(X) = mu_treated(X) - mu_control(X) (incremental outcome of the offer)."""

    def __init__(self, n_estimators: int = 200, learning_rate: float = 0.05, num_leaves: int = 7,
                 min_child_samples: int = 40, subsample: float = 0.8, colsample_bytree: float = 0.8,
                 reg_lambda: float = 5.0, random_state: int = 0, n_jobs: int = 2):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _regressor(self):
        import lightgbm as lgb

        return lgb.LGBMRegressor(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, subsample=self.subsample, subsample_freq=1,
            colsample_bytree=self.colsample_bytree, reg_lambda=self.reg_lambda, random_state=self.random_state,
            n_jobs=self.n_jobs, deterministic=True, force_row_wise=True, verbose=-1,
        )

    def fit(self, X: pd.DataFrame, y, treatment) -> "UpliftModel":
        name = type(self).__name__
        X = check_frame(X, name)
        y = np.asarray(y, dtype=float)
        t = np.asarray(treatment).astype(bool)
        if len(y) != len(X) or len(t) != len(X):
            raise UpliftError(f"{name}: X has {len(X)} rows but y has {len(y)} and treatment {len(t)}")
        if not np.isfinite(y).all():
            raise UpliftError(f"{name}: y must be finite; found {int((~np.isfinite(y)).sum())} missing or infinite")
        for arm, mask in (("treated", t), ("control", ~t)):
            if mask.sum() < 2 * self.min_child_samples:
                raise UpliftError(f"{name}: {int(mask.sum())} {arm} rows, need at least {2 * self.min_child_samples}; "
                                  "collect more randomised control events")
        names, self.categories_ = learn_layout(X)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        M = to_matrix(X, names, self.categories_, name)
        self.treated_model_ = self._regressor().fit(M[t], y[t])
        self.control_model_ = self._regressor().fit(M[~t], y[~t])
        self.n_features_in_ = len(names)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Estimated incremental outcome of treating each row."""
        check_is_fitted(self, "treated_model_")
        X = check_frame(X, type(self).__name__)
        M = to_matrix(X, list(self.feature_names_in_), self.categories_, type(self).__name__)
        return self.treated_model_.predict(M) - self.control_model_.predict(M)


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def _check(y, treatment, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, t, s = np.asarray(y, dtype=float), np.asarray(treatment).astype(bool), np.asarray(score, dtype=float)
    if not len(y) == len(t) == len(s):
        raise UpliftError(f"uplift metrics: y ({len(y)}), treatment ({len(t)}) and score ({len(s)}) differ in length")
    if t.all() or not t.any():
        raise UpliftError("uplift metrics need both treated and control rows")
    return y, t, s


def qini_curve(y, treatment, score, points: int = 101) -> pd.DataFrame:
    """Qini curve: at each share of rows targeted (highest score first), treated outcome sum minus control
    outcome sum scaled to the treated count; columns ``share``, ``qini``, ``random``."""
    y, t, s = _check(y, treatment, score)
    order = np.argsort(-s, kind="stable")
    y, t = y[order], t[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    q = y_t - y_c * np.divide(n_t, n_c, out=np.zeros(len(y)), where=n_c > 0)
    share = np.arange(1, len(y) + 1) / len(y)
    at = np.unique(np.clip(np.round(np.linspace(0, 1, points) * len(y)).astype(int) - 1, 0, len(y) - 1))
    total = q[-1]
    return pd.DataFrame({"share": np.r_[0.0, share[at]], "qini": np.r_[0.0, q[at]], "random": np.r_[0.0, share[at] * total]})


def qini_coefficient(y, treatment, score) -> float:
    """Area between the Qini curve and the random line, per row (higher: a better uplift ranking)."""
    y, t, s = _check(y, treatment, score)
    curve = qini_curve(y, t, s, points=len(y) + 1)
    gap = curve["qini"] - curve["random"]
    return float(np.trapezoid(gap, curve["share"]))


def uplift_at_k(y, treatment, score, k: float = 0.2) -> float:
    """Mean treated outcome minus mean control outcome among the top ``k`` share of rows by score."""
    if not 0 < k <= 1:
        raise UpliftError(f"uplift_at_k: k must be in (0, 1], got {k}")
    y, t, s = _check(y, treatment, score)
    top = np.argsort(-s, kind="stable")[: max(1, int(round(k * len(y))))]
    yt, tt = y[top], t[top]
    if tt.all() or not tt.any():
        return float("nan")
    return float(yt[tt].mean() - yt[~tt].mean())


def top_share_total(value, score, k: float = 0.2) -> float:
    """Sum of ``value`` over the top ``k`` share of rows by ``score`` (e.g. true incremental margin targeted)."""
    value, score = np.asarray(value, dtype=float), np.asarray(score, dtype=float)
    top = np.argsort(-score, kind="stable")[: max(1, int(round(k * len(value))))]
    return float(value[top].sum())


def uplift_metrics(y, treatment, score) -> dict[str, float]:
    """Qini coefficient and uplift at 10/20/30% of rows targeted."""
    return {"qini": qini_coefficient(y, treatment, score),
            **{f"uplift_at_{int(k * 100)}": uplift_at_k(y, treatment, score, k) for k in (0.1, 0.2, 0.3)}}


# --------------------------------------------------------------------------------------------------
# The ranking the policy uses with --objective uplift
# --------------------------------------------------------------------------------------------------


def incremental_value(model: UpliftModel, offer_rows: pd.DataFrame) -> np.ndarray:
    """Incremental expected margin (net of the reward cost) of sending each customer x offer row: the value
    the policy ranks by under the uplift objective (rows built by ``models.offer_response.offer_features``)."""
    return model.predict(offer_rows)
