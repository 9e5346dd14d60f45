"""Evaluation metrics as stateless functions over arrays and frames.

Classification metrics take ``y_true`` (0/1) and ``y_score`` (probabilities). Ranking metrics take a
frame with one row per (user, item) and keyword arguments naming its columns, so any frame fits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm


class MetricInputError(ValueError):
    """The inputs of a metric do not have the shape or values the metric needs."""


def _check_binary(y_true, y_score, metric: str) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_score = np.asarray(y_score, dtype=float).ravel()
    if y_true.shape != y_score.shape:
        raise MetricInputError(
            f"{metric}: y_true and y_score must have the same length, got {y_true.size} and {y_score.size}"
        )
    if y_true.size == 0:
        raise MetricInputError(f"{metric}: expected at least one row, got none")
    if not np.isin(y_true, (0.0, 1.0)).all():
        raise MetricInputError(f"{metric}: y_true must hold only 0 and 1, got values {np.unique(y_true)[:5]}")
    return y_true, y_score


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y_true, y_score = _check_binary(y_true, y_score, "roc_auc")
    if np.unique(y_true).size < 2:
        return float("nan")
    return float(skm.roc_auc_score(y_true, y_score))


def pr_auc(y_true, y_score) -> float:
    """Area under the precision-recall curve (average precision); NaN without positives."""
    y_true, y_score = _check_binary(y_true, y_score, "pr_auc")
    if y_true.sum() == 0:
        return float("nan")
    return float(skm.average_precision_score(y_true, y_score))


def log_loss(y_true, y_score, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood of the labels under the predicted probabilities."""
    y_true, y_score = _check_binary(y_true, y_score, "log_loss")
    p = np.clip(y_score, eps, 1 - eps)
    return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))


def brier_score(y_true, y_score) -> float:
    """Mean squared difference between probability and label."""
    y_true, y_score = _check_binary(y_true, y_score, "brier_score")
    return float(np.mean((y_score - y_true) ** 2))


def expected_calibration_error(y_true, y_score, n_bins: int = 10) -> float:
    """ECE: bin-size-weighted mean |observed rate - mean predicted probability| over equal-width bins."""
    y_true, y_score = _check_binary(y_true, y_score, "expected_calibration_error")
    if n_bins < 1:
        raise MetricInputError(f"expected_calibration_error: n_bins must be >= 1, got {n_bins}")
    bins = np.clip((y_score * n_bins).astype(int), 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        mask = bins == b
        total += mask.sum() * abs(y_true[mask].mean() - y_score[mask].mean())
    return float(total / y_true.size)


def _top_fraction_mask(y_score: np.ndarray, fraction: float, metric: str) -> np.ndarray:
    if not 0 < fraction <= 1:
        raise MetricInputError(f"{metric}: fraction must be in (0, 1], got {fraction}")
    n_top = max(1, int(round(fraction * y_score.size)))
    order = np.argsort(-y_score, kind="stable")
    mask = np.zeros(y_score.size, dtype=bool)
    mask[order[:n_top]] = True
    return mask


def lift_at(y_true, y_score, fraction: float = 0.1) -> float:
    """Positive rate among the top ``fraction`` by score, divided by the overall positive rate."""
    y_true, y_score = _check_binary(y_true, y_score, "lift_at")
    base = y_true.mean()
    if base == 0:
        return float("nan")
    mask = _top_fraction_mask(y_score, fraction, "lift_at")
    return float(y_true[mask].mean() / base)


def capture_at(y_true, y_score, fraction: float = 0.1) -> float:
    """Share of all positives found in the top ``fraction`` by score."""
    y_true, y_score = _check_binary(y_true, y_score, "capture_at")
    if y_true.sum() == 0:
        return float("nan")
    mask = _top_fraction_mask(y_score, fraction, "capture_at")
    return float(y_true[mask].sum() / y_true.sum())


def lift_curve(y_true, y_score, n_bins: int = 10) -> pd.DataFrame:
    """Per score decile (1 = highest scores): positive rate, lift and cumulative capture."""
    y_true, y_score = _check_binary(y_true, y_score, "lift_curve")
    order = np.argsort(-y_score, kind="stable")
    groups = np.array_split(order, n_bins)
    base = y_true.mean() if y_true.mean() > 0 else np.nan
    rows, captured = [], 0.0
    for i, idx in enumerate(groups, start=1):
        pos = y_true[idx].sum()
        captured += pos
        rate = y_true[idx].mean() if idx.size else np.nan
        rows.append(
            {"bin": i, "rows": idx.size, "positive_rate": rate, "lift": rate / base,
             "cumulative_capture": captured / y_true.sum() if y_true.sum() else np.nan}
        )
    return pd.DataFrame(rows)


def classification_report(y_true, y_score, top_fraction: float = 0.1) -> dict[str, float]:
    """All the binary-classification metrics we log, by name."""
    return {
        "roc_auc": roc_auc(y_true, y_score),
        "pr_auc": pr_auc(y_true, y_score),
        "log_loss": log_loss(y_true, y_score),
        "brier": brier_score(y_true, y_score),
        "ece": expected_calibration_error(y_true, y_score),
        "lift_top_decile": lift_at(y_true, y_score, top_fraction),
        "capture_top_decile": capture_at(y_true, y_score, top_fraction),
        "positive_rate": float(np.mean(np.asarray(y_true, dtype=float))),
    }


# ----------------------------------------------------------------------------------------------
# Ranking metrics: per user, rank the items by score; users without any relevant item are skipped.


def _ranked(
    frame: pd.DataFrame, user_col: str, score_col: str, label_col: str, metric: str
) -> pd.DataFrame:
    missing = [c for c in (user_col, score_col, label_col) if c not in frame.columns]
    if missing:
        raise MetricInputError(
            f"{metric}: frame must contain columns {missing}; found columns {list(frame.columns)}"
        )
    ranked = frame[[user_col, score_col, label_col]].copy()
    ranked[label_col] = ranked[label_col].astype(float)
    relevant_users = ranked.groupby(user_col, sort=False)[label_col].transform("max") > 0
    ranked = ranked[relevant_users]
    # Ties broken pessimistically (relevant items last) so a constant score earns no credit.
    ranked = ranked.sort_values([user_col, score_col, label_col], ascending=[True, False, True], kind="stable")
    ranked["rank"] = ranked.groupby(user_col, sort=False).cumcount() + 1
    return ranked


def _check_k(k: int, metric: str) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise MetricInputError(f"{metric}: k must be a positive integer, got {k!r}")


def hit_rate_at_k(
    frame: pd.DataFrame, k: int = 3, *, user_col: str = "customer_id", score_col: str = "score",
    label_col: str = "label",
) -> float:
    """Share of users with a relevant item among their top ``k``; NaN when no user has one."""
    _check_k(k, "hit_rate_at_k")
    ranked = _ranked(frame, user_col, score_col, label_col, "hit_rate_at_k")
    if ranked.empty:
        return float("nan")
    top = ranked[ranked["rank"] <= k]
    return float(top.groupby(user_col)[label_col].max().reindex(ranked[user_col].unique(), fill_value=0).mean())


def ndcg_at_k(
    frame: pd.DataFrame, k: int = 3, *, user_col: str = "customer_id", score_col: str = "score",
    label_col: str = "label",
) -> float:
    """Mean over users of DCG@k / ideal DCG@k with binary gains; NaN when no user has a relevant item."""
    _check_k(k, "ndcg_at_k")
    ranked = _ranked(frame, user_col, score_col, label_col, "ndcg_at_k")
    if ranked.empty:
        return float("nan")
    discount = 1.0 / np.log2(ranked["rank"].to_numpy() + 1.0)
    gains = ranked[label_col].to_numpy() * discount * (ranked["rank"].to_numpy() <= k)
    dcg = pd.Series(gains, index=ranked.index).groupby(ranked[user_col]).sum()
    n_rel = ranked.groupby(user_col)[label_col].sum().clip(upper=k).astype(int)
    ideal_table = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))])
    idcg = pd.Series(ideal_table[n_rel.to_numpy()], index=n_rel.index)
    return float((dcg.reindex(idcg.index) / idcg).mean())


def map_at_k(
    frame: pd.DataFrame, k: int = 3, *, user_col: str = "customer_id", score_col: str = "score",
    label_col: str = "label",
) -> float:
    """Mean average precision at ``k`` (normalised by min(k, relevant items)); NaN without relevant items."""
    _check_k(k, "map_at_k")
    ranked = _ranked(frame, user_col, score_col, label_col, "map_at_k")
    if ranked.empty:
        return float("nan")
    rel = ranked[label_col].to_numpy()
    hits_so_far = ranked.assign(_rel=rel).groupby(user_col, sort=False)["_rel"].cumsum().to_numpy()
    precision = np.where((rel > 0) & (ranked["rank"].to_numpy() <= k), hits_so_far / ranked["rank"].to_numpy(), 0.0)
    ap_sum = pd.Series(precision, index=ranked.index).groupby(ranked[user_col]).sum()
    n_rel = ranked.groupby(user_col)[label_col].sum().clip(upper=k)
    return float((ap_sum.reindex(n_rel.index) / n_rel).mean())


def ranking_report(
    frame: pd.DataFrame, ks: tuple[int, ...] = (1, 3, 5), *, user_col: str = "customer_id",
    score_col: str = "score", label_col: str = "label",
) -> dict[str, float]:
    """hit-rate, NDCG and MAP at each k, plus the number of users ranked."""
    cols = {"user_col": user_col, "score_col": score_col, "label_col": label_col}
    out: dict[str, float] = {}
    for k in ks:
        out[f"hit_rate_at_{k}"] = hit_rate_at_k(frame, k, **cols)
        out[f"ndcg_at_{k}"] = ndcg_at_k(frame, k, **cols)
        out[f"map_at_{k}"] = map_at_k(frame, k, **cols)
    ranked = _ranked(frame, user_col, score_col, label_col, "ranking_report")
    out["ranked_users"] = float(ranked[user_col].nunique())
    return out
