"""Simple references every model must beat, as estimators scored on the same split.

Churn: a recency rule (longer since the last visit, more likely gone) and BG/NBD expected purchases
over the label horizon. Offers: offer popularity and reward-category popularity (smoothed
redemption rates). Each learns a monotone map from its score to a probability on the training
rows, so log-loss and calibration compare fairly with the models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted

from data_contracts.errors import MissingColumnsError
from models.bgnbd import BetaGeoModel
from models.churn import check_binary_target
from models.tabular import check_frame

RFM_COLUMNS: tuple[str, ...] = ("frequency", "recency", "T")


def _require(X: pd.DataFrame, columns, who: str) -> None:
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise MissingColumnsError(who, missing, list(X.columns))


class _ScoreToProbability(ClassifierMixin, BaseEstimator):
    """Shared part: a raw score per row, made a probability by isotonic regression fitted on y."""

    def _score(self, X: pd.DataFrame) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_map(self, X: pd.DataFrame, y: np.ndarray) -> None:
        self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(self._score(X), y)
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        X = check_frame(X, type(self).__name__)
        s = self._score(X)
        # Keep the baseline's own ordering inside isotonic steps (ties would understate its ranking).
        p = np.clip(self.calibrator_.predict(s) + 1e-9 * (s - np.nanmean(s)) / (np.nanstd(s) + 1e-12), 0, 1)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class RecencyRuleBaseline(_ScoreToProbability):
    """Churn risk grows with days since the last visit (customers without a visit count as most at risk)."""

    def __init__(self, recency_column: str = "days_since_last_visit"):
        self.recency_column = recency_column

    def _score(self, X: pd.DataFrame) -> np.ndarray:
        _require(X, [self.recency_column], type(self).__name__)
        days = pd.to_numeric(X[self.recency_column], errors="coerce").to_numpy(dtype=float)
        return np.where(np.isnan(days), self.never_visited_score_, days)

    def fit(self, X: pd.DataFrame, y) -> "RecencyRuleBaseline":
        X = check_frame(X, type(self).__name__)
        y = check_binary_target(y, len(X), type(self).__name__)
        _require(X, [self.recency_column], type(self).__name__)
        days = pd.to_numeric(X[self.recency_column], errors="coerce")
        self.never_visited_score_ = float(np.nanmax(days.to_numpy(dtype=float), initial=0.0) + 1.0)
        self._fit_map(X, y)
        return self


class BGNBDBaseline(_ScoreToProbability):
    """BG/NBD (``models.bgnbd.BetaGeoModel``) on frequency/recency/T in days; fewer expected purchases over
    the horizon means more churn risk. Fitted on at most ``max_fit_rows`` rows for speed."""

    def __init__(self, horizon_days: int = 60, penalizer_coef: float = 0.01, max_fit_rows: int = 20_000,
                 random_state: int = 0):
        self.horizon_days = horizon_days
        self.penalizer_coef = penalizer_coef
        self.max_fit_rows = max_fit_rows
        self.random_state = random_state

    def _rfm(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _require(X, RFM_COLUMNS, type(self).__name__)
        f, r, t = (pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float) for c in RFM_COLUMNS)
        t = np.maximum(np.nan_to_num(t, nan=1e-3), 1e-3)
        return np.maximum(np.nan_to_num(f), 0.0), np.clip(np.nan_to_num(r), 0.0, t), t

    def expected_purchases(self, X: pd.DataFrame) -> np.ndarray:
        """Expected purchase days in the next ``horizon_days`` given each row's history."""
        check_is_fitted(self, "bgf_")
        return self.bgf_.conditional_expected_purchases(self.horizon_days, *self._rfm(X))

    def _score(self, X: pd.DataFrame) -> np.ndarray:
        return -np.nan_to_num(self.expected_purchases(X), nan=0.0)

    def fit(self, X: pd.DataFrame, y) -> "BGNBDBaseline":
        X = check_frame(X, type(self).__name__)
        y = check_binary_target(y, len(X), type(self).__name__)
        f, r, t = self._rfm(X)
        rng = np.random.default_rng(self.random_state)
        idx = np.arange(len(f)) if len(f) <= self.max_fit_rows else rng.choice(len(f), self.max_fit_rows, replace=False)
        self.bgf_ = BetaGeoModel(penalizer_coef=self.penalizer_coef).fit(f[idx], r[idx], t[idx])
        self.params_ = dict(self.bgf_.params_)
        self._fit_map(X, y)
        return self


class PopularityBaseline(_ScoreToProbability):
    """Redemption rate of the row's ``key`` (offer_id, reward_category, ...) in training, shrunk toward
    the overall rate with ``smoothing`` pseudo-sends; unseen keys get the overall rate."""

    def __init__(self, key: str = "offer_id", smoothing: float = 20.0):
        self.key = key
        self.smoothing = smoothing

    def _score(self, X: pd.DataFrame) -> np.ndarray:
        _require(X, [self.key], type(self).__name__)
        return X[self.key].astype("str").map(self.rates_).fillna(self.global_rate_).to_numpy(dtype=float)

    def fit(self, X: pd.DataFrame, y) -> "PopularityBaseline":
        X = check_frame(X, type(self).__name__)
        y = check_binary_target(y, len(X), type(self).__name__)
        _require(X, [self.key], type(self).__name__)
        if self.smoothing < 0:
            raise ValueError(f"PopularityBaseline: smoothing must be >= 0, got {self.smoothing}")
        self.global_rate_ = float(y.mean())
        grouped = pd.DataFrame({"k": X[self.key].astype("str").to_numpy(), "y": y}).groupby("k")["y"].agg(["sum", "count"])
        self.rates_ = ((grouped["sum"] + self.smoothing * self.global_rate_) / (grouped["count"] + self.smoothing)).to_dict()
        self._fit_map(X, y)
        return self
