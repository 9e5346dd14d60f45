"""Out-of-time splits, model-vs-baseline comparison and the champion promotion gate: pure functions."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.metrics import classification_report, ranking_report

# The metric each model is promoted on (higher is better) and the sanity bound on calibration.
PRIMARY_METRIC = {"churn": "pr_auc", "offers": "ndcg_at_3"}
DEFAULT_MARGIN = 0.0
DEFAULT_MAX_ECE = 0.05


class SplitError(ValueError):
    """An out-of-time split leaves one side empty or with a single class."""


def churn_time_split(meta: pd.DataFrame, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate on the latest snapshot; train on snapshots whose label window closes by then (no overlap)."""
    as_of = pd.to_datetime(meta["as_of"])
    valid_as_of = as_of.max()
    valid = (as_of == valid_as_of).to_numpy()
    train = (as_of + pd.Timedelta(days=horizon_days) <= valid_as_of).to_numpy()
    if not train.any():
        raise SplitError(
            f"churn_time_split: no snapshot ends its {horizon_days}-day label window by the validation date "
            f"{valid_as_of.date()}; snapshots are {sorted(str(d.date()) for d in as_of.unique())}; add earlier ones"
        )
    return train, valid


def offer_time_split(meta: pd.DataFrame, valid_days: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Validate on sends in the last ``valid_days`` days; train on earlier sends whose label window closed before."""
    sent = pd.to_datetime(meta["sent_at"])
    cutoff = sent.max().normalize() - pd.Timedelta(days=valid_days - 1)
    valid = (sent >= cutoff).to_numpy()
    train = ((sent < cutoff) & (pd.to_datetime(meta["label_end"]) < cutoff)).to_numpy()
    if not train.any() or not valid.any():
        raise SplitError(
            f"offer_time_split: cutoff {cutoff.date()} leaves {int(train.sum())} training and {int(valid.sum())} "
            "validation sends; need both non-empty (try another valid_days)"
        )
    return train, valid


def churn_metrics(y_true, y_score) -> dict[str, float]:
    """The churn report: ROC-AUC, PR-AUC, log-loss, Brier, ECE, top-decile lift and capture."""
    return classification_report(y_true, y_score)


def offer_metrics(y_true, y_score, customer_ids, ks: tuple[int, ...] = (1, 3, 5)) -> dict[str, float]:
    """Classification metrics plus per-customer ranking of the offers each customer was sent."""
    report = classification_report(y_true, y_score)
    frame = pd.DataFrame(
        {"customer_id": np.asarray(customer_ids), "score": np.asarray(y_score, dtype=float),
         "label": np.asarray(y_true, dtype=int)}
    )
    report.update(ranking_report(frame, ks))
    return report


def comparison_table(results: Mapping[str, Mapping[str, float]], metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per model (the candidate first, as given), one column per metric."""
    table = pd.DataFrame({name: dict(values) for name, values in results.items()}).T
    if metrics is not None:
        table = table[[m for m in metrics if m in table.columns]]
    table.index.name = "model"
    return table


@dataclass(frozen=True)
class BaselineRuns:
    """Validation scores of the baselines that fitted, and why the others did not (name -> error)."""

    scores: dict[str, np.ndarray]
    failed: dict[str, str]

    def as_tags(self) -> dict[str, str]:
        tags = {f"baseline.{name}.status": "ok" for name in self.scores}
        for name, error in self.failed.items():
            tags[f"baseline.{name}.status"] = "failed"
            tags[f"baseline.{name}.error"] = error[:500]
        return tags


def run_baselines(runs: Mapping[str, Callable[[], np.ndarray]]) -> BaselineRuns:
    """Call each baseline's fit-and-score function; one that raises is recorded as failed, never re-raised.

    A baseline is only a yardstick: a fit that does not converge must not stop the model's training,
    it leaves the comparison and the failure is reported.
    """
    scores: dict[str, np.ndarray] = {}
    failed: dict[str, str] = {}
    for name, run in runs.items():
        try:
            values = np.asarray(run(), dtype=float)
            if not np.isfinite(values).all():
                raise FloatingPointError(f"{int((~np.isfinite(values)).sum())} non-finite scores")
            scores[name] = values
        except Exception as err:  # noqa: BLE001 - any failure of a yardstick is reported, not raised
            failed[name] = f"{type(err).__name__}: {err}"
    return BaselineRuns(scores, failed)


# What "better" means for the metrics the margin over baselines is reported on.
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "brier": False, "log_loss": False}


def margins_over_baselines(metrics: Mapping[str, Mapping[str, float]],
                           names: tuple[str, ...] = ("roc_auc", "brier")) -> dict[str, float]:
    """Per metric: how far the model ("model") is ahead of the best baseline ("baseline_*"); > 0 means ahead.

    NaN when no baseline has the metric (every baseline failed).
    """
    out = {}
    for name in names:
        higher = HIGHER_IS_BETTER[name]
        values = [float(m[name]) for who, m in metrics.items() if who.startswith("baseline_") and name in m]
        if not values:
            out[name] = math.nan
            continue
        best = max(values) if higher else min(values)
        model = float(metrics["model"][name])
        out[name] = model - best if higher else best - model
    return out


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the candidate becomes champion, with the numbers and the reason."""

    promote: bool
    alias: str  # "champion" or "challenger"
    metric: str
    candidate_value: float
    champion_value: float | None
    margin: float
    reason: str
    baselines: tuple[str, ...] = ()  # baselines the candidate was compared against (their fits succeeded)
    baselines_failed: dict[str, str] = field(default_factory=dict)  # left out of the comparison: name -> error

    def as_tags(self) -> dict[str, str]:
        return {
            "gate.decision": "promoted" if self.promote else "challenger",
            "gate.metric": self.metric,
            "gate.candidate_value": f"{self.candidate_value:.6f}",
            "gate.champion_value": "none" if self.champion_value is None else f"{self.champion_value:.6f}",
            "gate.margin": f"{self.margin:g}",
            "gate.reason": self.reason,
            "gate.baselines": ", ".join(self.baselines) or "none",
            "gate.baselines_failed": "; ".join(f"{k} ({v})" for k, v in self.baselines_failed.items())[:1000] or "none",
        }


def sanity_problems(metrics: Mapping[str, float], max_ece: float = DEFAULT_MAX_ECE) -> list[str]:
    """What makes a metric set unfit for promotion: NaN/inf values, calibration error above the bound."""
    problems = [f"metric '{k}' is {v}" for k, v in metrics.items() if v is None or not math.isfinite(float(v))]
    ece = metrics.get("ece")
    if ece is not None and math.isfinite(float(ece)) and float(ece) > max_ece:
        problems.append(f"calibration error ece={float(ece):.4f} exceeds the bound {max_ece}")
    return problems


def promotion_decision(
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    *,
    metric: str,
    margin: float = DEFAULT_MARGIN,
    max_ece: float = DEFAULT_MAX_ECE,
    baselines: BaselineRuns | None = None,
) -> PromotionDecision:
    """Promote only a sane candidate that beats the champion's ``metric`` by more than ``margin`` (ties stay).

    With no champion, a sane candidate is promoted. Higher ``metric`` is better. ``baselines`` only
    records which yardsticks the candidate was compared against and which failed to fit.
    """
    if metric not in candidate_metrics:
        raise KeyError(f"promotion_decision: candidate metrics lack the primary metric '{metric}'; "
                       f"have {sorted(candidate_metrics)}")
    if margin < 0:
        raise ValueError(f"promotion_decision: margin must be >= 0, got {margin}")
    cand = float(candidate_metrics[metric])
    problems = sanity_problems(candidate_metrics, max_ece)
    champ = None if champion_metrics is None else champion_metrics.get(metric)
    champ = None if champ is None else float(champ)

    compared = tuple(baselines.scores) if baselines is not None else ()
    failed = dict(baselines.failed) if baselines is not None else {}

    def decide(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(promote, "champion" if promote else "challenger", metric, cand, champ, margin, reason,
                                 compared, failed)

    if problems:
        return decide(False, "failed sanity checks: " + "; ".join(problems))
    if champ is None or not math.isfinite(champ):
        return decide(True, "no current champion (or its metric is unknown); candidate is sane")
    if cand > champ + margin:
        return decide(True, f"{metric} {cand:.4f} beats champion {champ:.4f} by more than {margin:g}")
    return decide(False, f"{metric} {cand:.4f} does not beat champion {champ:.4f} by more than {margin:g}")
