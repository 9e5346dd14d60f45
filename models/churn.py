"""Churn risk: a calibrated LightGBM classifier over one customer's profile as of a date."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from models.tabular import check_frame, learn_layout, to_matrix

CALIBRATION_METHODS = ("isotonic", "sigmoid", "none")


def check_binary_target(y, n_rows: int, model: str) -> np.ndarray:
    """y as a 0/1 int array of the right length with both classes present."""
    y = np.asarray(y)
    if y.shape[0] != n_rows:
        raise ValueError(f"{model}: y must have one label per row of X ({n_rows}), got {y.shape[0]}")
    y = y.astype(float)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{model}: y must hold only 0/1 labels, got values {np.unique(y)[:5]}")
    if np.unique(y).size < 2:
        raise ValueError(f"{model}: y must contain both classes to fit, got only {np.unique(y)}")
    return y.astype(int)


class ChurnModel(ClassifierMixin, BaseEstimator):
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
        import lightgbm as lgb

        name = type(self).__name__
        X = check_frame(X, name)
        y = check_binary_target(y, X.shape[0], name)
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(
                f"{name}: calibration must be one of {list(CALIBRATION_METHODS)}, got {self.calibration!r}"
            )
        if not 0 < self.calibration_fraction < 1:
            raise ValueError(f"{name}: calibration_fraction must be in (0, 1), got {self.calibration_fraction}")
        self.feature_names_in_, self.categories_ = learn_layout(X)
        self.feature_names_in_ = np.asarray(self.feature_names_in_, dtype=object)
        M = to_matrix(X, list(self.feature_names_in_), self.categories_, name)
        M_fit, M_cal, y_fit, y_cal = train_test_split(
            M, y, test_size=self.calibration_fraction, random_state=self.random_state, stratify=y
        )
        self.booster_model_ = lgb.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        self.booster_model_.fit(
            M_fit, y_fit, eval_X=(M_cal,), eval_y=(y_cal,),
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        raw = self.booster_model_.predict_proba(M_cal)[:, 1]
        if self.calibration == "isotonic":
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(raw, y_cal)
        elif self.calibration == "sigmoid":
            self.calibrator_ = LogisticRegression().fit(_logit(raw).reshape(-1, 1), y_cal)
        else:
            self.calibrator_ = None
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(self.feature_names_in_)
        self.best_iteration_ = int(self.booster_model_.best_iteration_ or self.n_estimators)
        self.feature_importances_ = pd.Series(
            self.booster_model_.booster_.feature_importance(importance_type="gain"),
            index=list(self.feature_names_in_),
        )
        return self

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "booster_model_")
        X = check_frame(X, type(self).__name__)
        M = to_matrix(X, list(self.feature_names_in_), self.categories_, type(self).__name__)
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

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
