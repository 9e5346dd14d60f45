"""Churn risk: a calibrated LightGBM classifier over one customer's profile as of a date."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from models.lgbm import LightGBMBinaryClassifier, check_binary_target  # noqa: F401  (check_binary_target: old address)

CALIBRATION_METHODS = ("isotonic", "sigmoid", "none")


class ChurnModel(LightGBMBinaryClassifier):
    """LightGBM on profile features; probabilities calibrated on a held-out slice of the training rows.

    The held-out slice also serves for early stopping. ``calibration`` is ``"sigmoid"`` (Platt, the
    default: on the sample it matched isotonic on ECE with a lower log-loss), ``"isotonic"`` or ``"none"``.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        subsample: float = 0.5,
        colsample_bytree: float = 0.5,
        reg_lambda: float = 1.0,
        calibration: str = "sigmoid",
        calibration_fraction: float = 0.2,
        early_stopping_rounds: int = 30,
        random_state: int = 0,
        n_jobs: int = 2,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: pd.DataFrame, y) -> "ChurnModel":
        name = type(self).__name__
        X, y = self._check_fit_inputs(X, y)
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(
                f"{name}: calibration must be one of {list(CALIBRATION_METHODS)}, got {self.calibration!r}"
            )
        if not 0 < self.calibration_fraction < 1:
            raise ValueError(f"{name}: calibration_fraction must be in (0, 1), got {self.calibration_fraction}")
        M_cal, y_cal = self._fit_booster(X, y, self.calibration_fraction)
        raw = self.booster_model_.predict_proba(M_cal)[:, 1]
        if self.calibration == "isotonic":
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(raw, y_cal)
        elif self.calibration == "sigmoid":
            self.calibrator_ = LogisticRegression().fit(_logit(raw).reshape(-1, 1), y_cal)
        else:
            self.calibrator_ = None
        return self

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        M = self._matrix(X)
        return self.booster_model_.predict_proba(M)[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Columns: P(stays), P(churns within the label horizon)."""
        raw = self._raw(X)
        if self.calibration == "isotonic":
            # Isotonic steps tie many rows; a tiny raw-score term keeps the model's ranking within a step.
            p = self.calibrator_.predict(raw) + 1e-6 * (raw - 0.5)
        elif self.calibration == "sigmoid":
            p = self.calibrator_.predict_proba(_logit(raw).reshape(-1, 1))[:, 1]
        else:
            p = raw
        p = np.clip(p, 0.0, 1.0)
        return np.column_stack([1 - p, p])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
