"""Campaign measurement against the holdout: incremental differences with 95% intervals, and ROI. Pure code.

The holdout is drawn at random among every customer the campaign considered (``models.policy.is_holdout``),
before the policy's other rules (consent, contact caps, no eligible offer) leave some of the others without
an offer. So the comparison is made between *all* considered customers outside the holdout and the holdout
(intention to treat), and divided by the share of the former who were treated: the effect per treated
customer (Bloom's estimator; the holdout never receives an offer, so nobody is treated there).

Outcomes are adjusted for each customer's same-length pre-period (CUPED: ``y - theta * (x - mean x)``, theta
the pooled regression slope); randomisation keeps the adjusted difference unbiased and it is far less noisy.
Intervals are percentile bootstrap intervals (customers resampled within each group), and the two-sided
p-value is the bootstrap's share of replicates on the other side of zero.

ROI = (incremental margin - reward cost - operating cost) / (reward cost + operating cost), where the
incremental margin is the effect per treated customer on margin times the customers treated, the reward cost
is what the treated customers' redemptions cost, and the operating cost is the program's monthly cost
prorated to the window and to the treated customers' share of members.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
DEFAULT_BOOTSTRAP = 2000
OUTCOMES: tuple[str, ...] = ("revenue", "margin", "visits")
# Churn-risk bands for segments: [0, 0.2), [0.2, 0.5), [0.5, 1].
CHURN_BANDS: tuple[tuple[str, float, float], ...] = (("low", 0.0, 0.2), ("medium", 0.2, 0.5), ("high", 0.5, 1.01))


class MeasurementError(ValueError):
    """A campaign cannot be measured (no holdout, nobody treated, an empty window)."""


@dataclass(frozen=True)
class Economics:
    """The program's economics (the program file's [economics] table)."""

    gross_margin_rate: float = 0.65
    operating_cost_per_month: float = 1500.0
    currency: str = "EUR"
    gross_margin_by_node: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if not 0.0 <= self.gross_margin_rate <= 1.0:
            raise MeasurementError(f"economics.gross_margin_rate must be in [0, 1], got {self.gross_margin_rate}")
        if self.operating_cost_per_month < 0:
            raise MeasurementError(
                f"economics.operating_cost_per_month must be >= 0, got {self.operating_cost_per_month}")
        bad = {k: v for k, v in self.gross_margin_by_node.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise MeasurementError(f"economics.gross_margin_by_node rates must be in [0, 1], got {bad}")


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval and two-sided p-value."""

    value: float
    low: float
    high: float
    p_value: float

    @property
    def includes_zero(self) -> bool:
        return self.low <= 0.0 <= self.high

    def scaled(self, factor: float, shift: float = 0.0) -> "Estimate":
        lo, hi = sorted((self.low * factor + shift, self.high * factor + shift))
        return Estimate(self.value * factor + shift, lo, hi, self.p_value)

    def as_dict(self) -> dict:
        return {k: _round(v) for k, v in asdict(self).items()}


def _round(v: float, digits: int = 4) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), digits)


# --------------------------------------------------------------------------------------------------
# Outcomes per customer
# --------------------------------------------------------------------------------------------------


def line_margin(transactions: pd.DataFrame, economics: Economics) -> np.ndarray:
    """Gross margin of each receipt line: the category's rate when the program gives one, else the overall rate."""
    rate = transactions["category"].map(dict(economics.gross_margin_by_node)).astype(float)
    return transactions["amount"].to_numpy(dtype=float) * rate.fillna(economics.gross_margin_rate).to_numpy()


def window_outcomes(transactions: pd.DataFrame, customer_ids, start: pd.Timestamp, end: pd.Timestamp,
                    economics: Economics) -> pd.DataFrame:
    """Revenue, margin and visits (receipts) per customer in [start, end), zero for customers with none."""
    tx = transactions[(transactions["ts"] >= start) & (transactions["ts"] < end)]
    frame = pd.DataFrame({"customer_id": tx["customer_id"].astype(str).to_numpy(),
                          "transaction_id": tx["transaction_id"].astype(str).to_numpy(),
                          "amount": tx["amount"].to_numpy(dtype=float), "margin": line_margin(tx, economics),
                          "refund": tx["is_refund"].to_numpy(dtype=bool)})
    g = frame.groupby("customer_id")
    out = pd.DataFrame({"revenue": g["amount"].sum(), "margin": g["margin"].sum(),
                        "visits": frame[~frame["refund"]].groupby("customer_id")["transaction_id"].nunique()})
    return out.reindex(pd.Index(list(customer_ids), name="customer_id")).fillna(0.0)


# --------------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------------


def cuped(y: np.ndarray, x: np.ndarray | None) -> np.ndarray:
    """``y`` adjusted for the pre-period covariate ``x`` (unchanged when x is missing or constant)."""
    if x is None or len(x) < 2 or np.var(x) == 0:
        return np.asarray(y, dtype=float)
    theta = np.cov(y, x)[0, 1] / np.var(x, ddof=1)
    return y - theta * (x - x.mean())


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 250) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``values``; 2-D values give one column per series."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    out = []
    for done in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - done), n))
        out.append(values[idx].mean(axis=1))
    return np.concatenate(out)


def _interval(point: float, replicates: np.ndarray) -> Estimate:
    alpha = 1.0 - CONFIDENCE
    replicates = replicates[np.isfinite(replicates)]
    lo, hi = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    p = 2 * min((replicates <= 0).mean(), (replicates >= 0).mean())
    return Estimate(float(point), float(lo), float(hi), float(min(1.0, max(p, 1.0 / len(replicates)))))


def effect_per_treated(y: np.ndarray, held_out: np.ndarray, treated: np.ndarray, pre: np.ndarray | None = None,
                       n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> Estimate:
    """Incremental ``y`` per treated customer: (mean outside the holdout - mean in it) / share treated outside it."""
    held_out, treated = np.asarray(held_out, bool), np.asarray(treated, bool)
    if treated[held_out].any():
        raise MeasurementError("a held-out customer was treated: the holdout must receive no offer")
    n_h, n_a = int(held_out.sum()), int((~held_out).sum())
    if n_h == 0:
        raise MeasurementError("no customer is held out: there is nothing to compare the treated with")
    if not treated.any():
        raise MeasurementError("no customer was treated: there is no effect to measure")
    adj = cuped(np.asarray(y, dtype=float), None if pre is None else np.asarray(pre, dtype=float))
    rng = np.random.default_rng(seed)
    a = np.column_stack([adj[~held_out], treated[~held_out]])
    boot_a = _bootstrap_means(a, n_boot, rng) if n_a else np.zeros((n_boot, 2))
    boot_h = _bootstrap_means(adj[held_out], n_boot, rng)
    share = boot_a[:, 1]
    replicates = np.where(share > 0, (boot_a[:, 0] - boot_h) / np.where(share > 0, share, 1.0), np.nan)
    point = (adj[~held_out].mean() - adj[held_out].mean()) / treated[~held_out].mean()
    return _interval(point, replicates)


def difference_vs_holdout(y: np.ndarray, group: np.ndarray, held_out: np.ndarray, pre: np.ndarray | None = None,
                          n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> Estimate:
    """mean(y | group) - mean(y | holdout), pre-period adjusted: for groups that were not randomised
    (offers), an indication rather than a causal estimate."""
    adj = cuped(np.asarray(y, dtype=float), None if pre is None else np.asarray(pre, dtype=float))
    group, held_out = np.asarray(group, bool), np.asarray(held_out, bool)
    rng = np.random.default_rng(seed)
    reps = _bootstrap_means(adj[group], n_boot, rng) - _bootstrap_means(adj[held_out], n_boot, rng)
    return _interval(adj[group].mean() - adj[held_out].mean(), reps)


def roi(incremental_margin: Estimate, reward_cost: float, operating_cost: float) -> Estimate:
    """(incremental margin - reward cost - operating cost) / (reward cost + operating cost), interval mapped
    through (costs are incurred, not estimated; the uncertainty is the incremental margin's)."""
    cost = reward_cost + operating_cost
    if cost <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), incremental_margin.p_value)
    return incremental_margin.scaled(1.0 / cost, -1.0)


def churn_band(risk: pd.Series) -> pd.Series:
    """The churn-risk band of each customer (``CHURN_BANDS``); "unknown" without a score."""
    out = pd.Series("unknown", index=risk.index, dtype=object)
    for name, lo, hi in CHURN_BANDS:
        out[(risk >= lo) & (risk < hi)] = name
    return out


# --------------------------------------------------------------------------------------------------
# A whole campaign
# --------------------------------------------------------------------------------------------------


def group_summary(frame: pd.DataFrame) -> dict:
    """Per group (treated, other considered, held out): customers and per-customer means."""
    out = {}
    groups = {"treated": frame["treated"], "not_treated_not_held_out": ~frame["treated"] & ~frame["held_out"],
              "held_out": frame["held_out"]}
    for name, mask in groups.items():
        g = frame[mask]
        out[name] = {"customers": int(len(g)),
                     **{f"{k}_per_customer": _round(g[k].mean()) if len(g) else None for k in OUTCOMES},
                     "redemption_rate": _round(g["redemptions"].gt(0).mean()) if len(g) else None}
    return out


def measure_campaign(frame: pd.DataFrame, economics: Economics, window_days: int, members: int,
                     segments: tuple[str, ...] = ("tier", "churn_band"), n_boot: int = DEFAULT_BOOTSTRAP,
                     seed: int = 0) -> dict:
    """Measure a campaign from one row per considered customer.

    ``frame`` columns: held_out, treated (bool); revenue, margin, visits (the window) and pre_revenue,
    pre_margin, pre_visits (the same length before it); redemptions and reward_cost (the campaign's offers);
    offer_id (the customer's first offer, None when not treated); plus the ``segments`` columns and, optionally,
    habit_tags (a list per customer: one segment per tag).
    """
    missing = [c for c in ("held_out", "treated", *OUTCOMES, "redemptions", "reward_cost") if c not in frame.columns]
    if missing:
        raise MeasurementError(f"measure_campaign: the customer frame lacks columns {missing}")
    held, treated = frame["held_out"].to_numpy(bool), frame["treated"].to_numpy(bool)
    n_treated, n_held = int(treated.sum()), int(held.sum())

    def effects(sub: pd.DataFrame, boot: int) -> dict:
        return {k: effect_per_treated(sub[k].to_numpy(), sub["held_out"].to_numpy(bool), sub["treated"].to_numpy(bool),
                                      sub[f"pre_{k}"].to_numpy() if f"pre_{k}" in sub else None, boot, seed)
                for k in OUTCOMES}

    overall = effects(frame, n_boot)
    reward_cost = float(frame.loc[treated, "reward_cost"].sum())
    operating = operating_cost_share(economics, window_days, n_treated, members)
    inc_margin_total = overall["margin"].scaled(n_treated)
    roi_est = roi(inc_margin_total, reward_cost, operating)
    result = {
        "customers_considered": int(len(frame)),
        "customers_treated": n_treated,
        "customers_held_out": n_held,
        "customers_not_treated_not_held_out": int((~treated & ~held).sum()),
        "members": int(members),
        "groups": group_summary(frame),
        "incremental_per_treated": {k: v.as_dict() for k, v in overall.items()},
        "incremental_revenue_total": overall["revenue"].scaled(n_treated).as_dict(),
        "incremental_margin_total": inc_margin_total.as_dict(),
        "redemptions": int(frame.loc[treated, "redemptions"].sum()),
        "reward_cost": round(reward_cost, 2),
        "operating_cost_share": round(operating, 2),
        "roi": roi_est.as_dict(),
        "verdict": verdict(overall["revenue"], roi_est, n_held, economics.currency),
        "too_small_to_tell": overall["revenue"].includes_zero,
        "segments": {},
        "offers": [],
    }
    seg_boot = max(200, n_boot // 4)
    for seg in segments:
        if seg not in frame.columns:
            continue
        rows = []
        for value, sub in frame.groupby(seg, sort=True):
            row = {"segment": str(value), "customers_treated": int(sub["treated"].sum()),
                   "customers_held_out": int(sub["held_out"].sum())}
            if row["customers_held_out"] >= 2 and row["customers_treated"] >= 1:
                eff = effects(sub, seg_boot)
                row.update({f"incremental_{k}_per_treated": v.as_dict() for k, v in eff.items()})
            else:
                row["note"] = "too few customers in this segment to compare"
            rows.append(row)
        result["segments"][seg] = rows
    if "habit_tags" in frame.columns:  # a customer has several tags: one segment per tag, customers in several
        tags = frame["habit_tags"].map(lambda t: list(t) if t is not None and not isinstance(t, float) else [])
        rows = []
        for tag in sorted({t for ts in tags for t in ts}):
            sub = frame[tags.map(lambda ts, tag=tag: tag in ts)]
            row = {"segment": tag, "customers_treated": int(sub["treated"].sum()),
                   "customers_held_out": int(sub["held_out"].sum())}
            if row["customers_held_out"] >= 2 and row["customers_treated"] >= 1:
                row.update({f"incremental_{k}_per_treated": v.as_dict() for k, v in effects(sub, seg_boot).items()})
            else:
                row["note"] = "too few customers in this segment to compare"
            rows.append(row)
        result["segments"]["habit_tag"] = rows
    result["offers"] = measure_offers(frame, economics, window_days, members, seg_boot, seed)
    return result


def measure_offers(frame: pd.DataFrame, economics: Economics, window_days: int, members: int, n_boot: int,
                   seed: int) -> list[dict]:
    """Per offer (the customer's first offer): counts, redemptions, cost, and the pre-period adjusted margin
    difference against the whole holdout with its ROI (customers were not randomised between offers)."""
    if "offer_id" not in frame.columns:
        return []
    held = frame["held_out"].to_numpy(bool)
    pre = frame["pre_margin"].to_numpy() if "pre_margin" in frame else None
    rows = []
    for offer_id, sub in frame[frame["treated"]].groupby("offer_id", sort=True):
        group = frame.index.isin(sub.index)
        diff = difference_vs_holdout(frame["margin"].to_numpy(), group, held, pre, n_boot, seed)
        cost = float(sub["reward_cost"].sum())
        operating = operating_cost_share(economics, window_days, len(sub), members)
        rows.append({"offer_id": str(offer_id), "customers_treated": int(len(sub)),
                     "redemptions": int(sub["redemptions"].sum()),
                     "redemption_rate": _round(sub["redemptions"].gt(0).mean()), "reward_cost": round(cost, 2),
                     "incremental_margin_per_treated": diff.as_dict(),
                     "roi": roi(diff.scaled(len(sub)), cost, operating).as_dict()})
    return rows


def gain_curve(score: np.ndarray, outcome: np.ndarray, points: int = 51) -> dict[str, list[float]]:
    """Cumulative gain: share of the total ``outcome`` captured by the best-scored share of rows."""
    score, outcome = np.asarray(score, dtype=float), np.asarray(outcome, dtype=float)
    if not len(score) or outcome.sum() <= 0:
        return {"share": [0.0, 1.0], "redemptions": [0.0, 1.0]}
    cum = np.r_[0.0, np.cumsum(outcome[np.argsort(-score, kind="stable")])] / outcome.sum()
    at = np.round(np.linspace(0, 1, points) * len(score)).astype(int)
    return {"share": [round(float(a / len(score)), 4) for a in at], "redemptions": [round(float(cum[a]), 4) for a in at]}


def operating_cost_share(economics: Economics, window_days: int, treated: int, members: int) -> float:
    """The program's operating cost over the window, in proportion to the treated customers' share of members."""
    if members <= 0:
        return 0.0
    return economics.operating_cost_per_month * (window_days / 30.0) * min(1.0, treated / members)


def verdict(revenue: Estimate, roi_est: Estimate, held_out: int, currency: str) -> str:
    """The measurement in words, saying when the holdout is too small to tell."""
    interval = f"[{revenue.low:,.2f}, {revenue.high:,.2f}] {currency}"
    if revenue.includes_zero:
        return (f"Too small to tell: with {held_out:,} customers held out, the 95% interval of incremental revenue "
                f"per treated customer, {interval}, includes zero (p = {revenue.p_value:.2f}); the campaign's effect "
                "cannot be told apart from no effect. Hold out more customers, or measure over a longer window.")
    direction = "raised" if revenue.value > 0 else "lowered"
    text = (f"The campaign {direction} revenue by {abs(revenue.value):,.2f} {currency} per treated customer "
            f"(95% interval {interval}, p = {revenue.p_value:.3f}).")
    if not np.isfinite(roi_est.value):
        return text
    if roi_est.low > 0:
        return text + f" It paid for itself: ROI {roi_est.value:.0%} (95% interval {roi_est.low:.0%} to {roi_est.high:.0%})."
    if roi_est.high < 0:
        return text + (f" It did not pay for itself: ROI {roi_est.value:.0%} "
                       f"(95% interval {roi_est.low:.0%} to {roi_est.high:.0%}).")
    return text + (f" Whether it paid for itself cannot be told yet: ROI {roi_est.value:.0%} "
                   f"(95% interval {roi_est.low:.0%} to {roi_est.high:.0%}).")
