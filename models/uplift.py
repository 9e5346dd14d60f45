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

from models.lgbm import booster_params
from models.tabular import check_frame, learn_layout, to_matrix


class UpliftError(ValueError):
    """Uplift training or evaluation inputs are unusable."""


class UpliftModel(RegressorMixin, BaseEstimator):
    """T-learner on LightGBM: predict(X) = mu_treated(X) - mu_control(X) (incremental outcome of the offer)."""

    # Few, shallow, well-populated leaves: the outcome's noise (a month of visits) dwarfs the effect.
    def __init__(self, n_estimators: int = 150, learning_rate: float = 0.05, num_leaves: int = 4,
                 min_child_samples: int = 200, subsample: float = 0.8, colsample_bytree: float = 0.8,
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

        return lgb.LGBMRegressor(**booster_params(self))

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


# --------------------------------------------------------------------------------------------------
# Training rows from randomised control events
# --------------------------------------------------------------------------------------------------


def _window_sums(transactions: pd.DataFrame, values: np.ndarray, customers: pd.Series, start: pd.Series,
                 end: pd.Series) -> np.ndarray:
    """Per (customer, [start, end)) row: the sum of ``values`` over that customer's transactions in the window."""
    codes, uniques = pd.factorize(transactions["customer_id"].astype(str))
    t0 = transactions["ts"].min()
    sec = ((transactions["ts"] - t0).dt.total_seconds().to_numpy()).astype(np.int64)
    key = codes.astype(np.int64) * 10**10 + sec
    order = np.argsort(key, kind="stable")
    key, cum = key[order], np.r_[0.0, np.cumsum(np.asarray(values, dtype=float)[order])]
    c = pd.Index(uniques).get_indexer(customers.astype(str))

    def pos(ts: pd.Series) -> np.ndarray:
        s = ((ts - t0).dt.total_seconds().to_numpy()).astype(np.int64)
        return np.searchsorted(key, c.astype(np.int64) * 10**10 + s, side="left")

    out = cum[pos(end)] - cum[pos(start)]
    return np.where(c >= 0, out, 0.0)


def uplift_training_set(tables: dict[str, pd.DataFrame], window_days: int = 30, margin_rate: float = 0.65,
                        since: pd.Timestamp | None = None, program=None,
                        ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
    """(X offer_features columns, y outcome, treatment, meta) from the offer events with a randomised control.

    One row per event (sent, or held back as control) sent at or after ``since`` whose window is observed.
    y = gross margin in [sent_at, sent_at + window) - the reward cost when this offer was redeemed in it -
    the gross margin in the same-length window before; profiles as of the send date's midnight, in
    ``program``'s catalogue (default: the built-in program's).
    """
    from features import build_profiles
    from models.offer_response import offer_features, send_dayparts
    from models.tabular import KEY_COLUMNS
    from models.training_sets import observed_until

    events, offers, tx = tables["offer_events"], tables["offers"], tables["transactions"]
    if since is not None:
        events = events[events["sent_at"] >= pd.Timestamp(since)]
    window = pd.Timedelta(days=window_days)
    # Windows end at the observed end at the latest (a simulated window ends at midnight): both arms alike.
    events = events[events["sent_at"].dt.normalize() + window <= observed_until(tables)].reset_index(drop=True)
    t = ~events["is_control"].astype(bool).to_numpy()
    if not len(events) or t.all() or not t.any():
        raise UpliftError(
            f"uplift training needs offer events with both sends and control rows (is_control) whose {window_days}-day "
            f"window is observed; found {int(t.sum())} sent and {int((~t).sum())} control"
            + (f" since {since}" if since is not None else ""))
    margin = tx["amount"].to_numpy(dtype=float) * margin_rate
    after = _window_sums(tx, margin, events["customer_id"], events["sent_at"], events["sent_at"] + window)
    before = _window_sums(tx, margin, events["customer_id"], events["sent_at"] - window, events["sent_at"])
    redeemed = (events["redeemed_at"].notna() & (events["redeemed_at"] < events["sent_at"] + window)).to_numpy()
    cost = events["offer_id"].map(offers.set_index("offer_id")["cost_per_redemption"]).to_numpy(dtype=float)
    y = after - np.where(redeemed, cost, 0.0) - before
    events = events.assign(as_of=events["sent_at"].dt.normalize(), customer_id=events["customer_id"].astype(str))
    profiles = []
    for as_of, group in events.groupby("as_of", sort=True):
        ids = set(group["customer_id"])
        sub = {**tables, "customers": tables["customers"][tables["customers"]["customer_id"].isin(ids)],
               "transactions": tx[tx["customer_id"].isin(ids)],
               "offer_events": tables["offer_events"][tables["offer_events"]["customer_id"].isin(ids)],
               "feedback": tables["feedback"][tables["feedback"]["customer_id"].isin(ids)]}
        prof = build_profiles(sub, as_of, program=program)
        profiles.append(prof.assign(as_of=as_of))
    profiles = pd.concat(profiles, ignore_index=True)
    profiles["customer_id"] = profiles["customer_id"].astype(str)
    has = pd.MultiIndex.from_frame(events[["customer_id", "as_of"]]).isin(
        pd.MultiIndex.from_frame(profiles[["customer_id", "as_of"]]))
    events, y, t, redeemed = events[has].reset_index(drop=True), y[has], t[has], redeemed[has]
    from models.offer_taxonomy import has_hierarchy

    # the taxonomy columns too, as the response model has them (they are compared on the same rows)
    context = events[["customer_id", "offer_id", "as_of", "sent_at", "channel"]].assign(
        daypart=send_dayparts(events["sent_at"], program))  # as the policy's Context names it
    rows = offer_features(profiles, offers, context, tables=tables if has_hierarchy(tables) else None)
    X = rows[[c for c in rows.columns if c not in KEY_COLUMNS]]
    meta = pd.DataFrame({"customer_id": events["customer_id"].to_numpy(), "offer_id": events["offer_id"].astype(str).to_numpy(),
                         "sent_at": events["sent_at"].to_numpy(), "treated": t, "redeemed": redeemed, "outcome": y})
    return X, y, t, meta
