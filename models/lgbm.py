"""The LightGBM base of both estimators (churn, offer response): one fit and predict path.

Subclasses keep their own ``__init__`` (the scikit-learn contract: it only stores hyperparameters,
which must include the booster settings read by ``_booster``) and add what is theirs: calibration
for churn, contributions for offer response.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GroupShuffleSplit, train_test_split
from sklearn.utils.validation import check_is_fitted

from models.tabular import check_frame, learn_layout, to_matrix


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


def booster_params(estimator) -> dict:
    """LightGBM settings from an estimator's hyperparameters (``n_estimators`` ... ``n_jobs``), deterministic
    and row-wise, as every booster of this project is built."""
    return dict(
        n_estimators=estimator.n_estimators,
        learning_rate=estimator.learning_rate,
        num_leaves=estimator.num_leaves,
        min_child_samples=estimator.min_child_samples,
        subsample=estimator.subsample,
        subsample_freq=1,
        colsample_bytree=estimator.colsample_bytree,
        reg_lambda=estimator.reg_lambda,
        random_state=estimator.random_state,
        n_jobs=estimator.n_jobs,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


class LightGBMBinaryClassifier(ClassifierMixin, BaseEstimator):
    """Binary LightGBM over a feature frame: the layout is learned at fit (``feature_names_in_``,
    ``categories_``) and applied the same way at predict (``models.tabular.to_matrix``)."""

    def _booster(self):
        import lightgbm as lgb

        return lgb.LGBMClassifier(**booster_params(self))

    def _check_fit_inputs(self, X, y) -> tuple[pd.DataFrame, np.ndarray]:
        name = type(self).__name__
        X = check_frame(X, name)
        return X, check_binary_target(y, X.shape[0], name)

    def _fit_booster(self, X: pd.DataFrame, y: np.ndarray, holdout_fraction: float, groups=None,
                     init_score: np.ndarray | None = None):
        """Learn the layout and fit the booster, early-stopping on a ``holdout_fraction`` of the rows (none
        when 0): stratified by y, or made of whole ``groups`` when given (stacked snapshots repeat a customer
        almost unchanged, so a row split would let the booster memorise customers). Boosting starts from
        ``init_score`` (raw log-odds per row) when given. Returns the held-out (matrix, labels, init score),
        or (None, None, None)."""
        import lightgbm as lgb

        name = type(self).__name__
        names, self.categories_ = learn_layout(X)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        M = to_matrix(X, names, self.categories_, name)
        self.booster_model_ = self._booster()
        M_hold = y_hold = i_hold = None
        if holdout_fraction > 0:
            init = np.zeros(len(y)) if init_score is None else np.asarray(init_score, dtype=float)
            M_fit, M_hold, y_fit, y_hold, i_fit, i_hold = _holdout_split(
                M, y, init, groups, holdout_fraction, self.random_state, name
            )
            if init_score is None:
                i_fit = i_hold = None
            self.booster_model_.fit(
                M_fit, y_fit, init_score=i_fit, eval_X=(M_hold,), eval_y=(y_hold,),
                eval_init_score=None if i_hold is None else [i_hold],
                callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
            )
        else:
            self.booster_model_.fit(M, y, init_score=init_score)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(names)
        self.best_iteration_ = int(self.booster_model_.best_iteration_ or self.n_estimators)
        self.feature_importances_ = pd.Series(
            self.booster_model_.booster_.feature_importance(importance_type="gain"), index=names
        )
        return M_hold, y_hold, i_hold

    def _matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "booster_model_")
        X = check_frame(X, type(self).__name__)
        return to_matrix(X, list(self.feature_names_in_), self.categories_, type(self).__name__)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def holdout_rows(y: np.ndarray, groups, fraction: float, seed: int, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows) as positions, the split ``_fit_booster`` makes: stratified by y, or made
    of whole groups when given. A subclass that learns something before boosting (the churn model's
    start) calls it to learn on the fit rows only."""
    y = np.asarray(y)
    if groups is None:
        fit_rows, hold_rows = train_test_split(np.arange(len(y)), test_size=fraction, random_state=seed, stratify=y)
        return fit_rows, hold_rows
    groups = np.asarray(groups)
    if groups.shape[0] != len(y):
        raise ValueError(f"{model}: groups must have one value per row of X ({len(y)}), got {groups.shape[0]}")
    return next(GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed).split(y, y, groups))


def _holdout_split(M, y, init, groups, fraction: float, seed: int, model: str):
    """(M_fit, M_hold, y_fit, y_hold, init_fit, init_hold): stratified by y, or by whole groups when given."""
    fit_rows, hold_rows = holdout_rows(y, groups, fraction, seed, model)
    return M.iloc[fit_rows], M.iloc[hold_rows], y[fit_rows], y[hold_rows], init[fit_rows], init[hold_rows]
