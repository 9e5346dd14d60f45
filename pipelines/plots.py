"""Evaluation plots as matplotlib figures (Agg backend): ROC, precision-recall, calibration, lift, importance.

Each function takes ``curves``: model name -> (y_true, y_score) on the validation rows, and returns a
Figure; ``pipelines.train`` logs them to MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from models.metrics import lift_curve, pr_auc, roc_auc  # noqa: E402

Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]


def _figure(title: str):
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig, ax


def roc_figure(curves: Curves, title: str = "ROC (out-of-time validation)"):
    fig, ax = _figure(title)
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(y, s):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def precision_recall_figure(curves: Curves, title: str = "Precision-recall (out-of-time validation)"):
    fig, ax = _figure(title)
    for name, (y, s) in curves.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, label=f"{name} (AP {pr_auc(y, s):.3f})")
    base = float(np.mean(next(iter(curves.values()))[0]))
    ax.axhline(base, color="grey", linestyle="--", linewidth=1, label=f"positive rate {base:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def calibration_figure(curves: Curves, n_bins: int = 10, title: str = "Calibration (out-of-time validation)"):
    fig, ax = _figure(title)
    for name, (y, s) in curves.items():
        frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "s": np.asarray(s, dtype=float)})
        frame["bin"] = np.clip((frame["s"] * n_bins).astype(int), 0, n_bins - 1)
        g = frame.groupby("bin").agg(pred=("s", "mean"), obs=("y", "mean"))
        ax.plot(g["pred"], g["obs"], marker="o", label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def lift_figure(curves: Curves, title: str = "Lift by score decile (out-of-time validation)"):
    fig, ax = _figure(title)
    width = 0.8 / max(1, len(curves))
    for i, (name, (y, s)) in enumerate(curves.items()):
        lc = lift_curve(y, s)
        ax.bar(lc["bin"] + (i - (len(curves) - 1) / 2) * width, lc["lift"], width=width, label=name)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("score decile (1 = highest scores)")
    ax.set_ylabel("lift over the average")
    ax.set_xticks(range(1, 11))
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def importance_figure(importances: pd.Series, top: int = 25, title: str = "Feature importance (total gain)"):
    top_imp = importances.sort_values(ascending=False).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.28 * len(top_imp) + 1)), dpi=100)
    ax.barh(top_imp.index.astype(str), top_imp.to_numpy())
    ax.set_title(title)
    ax.set_xlabel("total gain")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
