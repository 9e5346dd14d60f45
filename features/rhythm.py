"""Rhythm and trend: the usual gap between visits, whether a customer is overdue, and recent momentum."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.history import NS_PER_DAY, History, days_since, per_customer_max, per_customer_sum, safe_ratio

WINDOW_DAYS = 365


def rhythm_features(h: History) -> pd.DataFrame:
    """The 'rhythm' family: gaps between visit days (365 days) and the last 30 vs the previous 60 days."""
    v = h.visits
    ts = v["ts_ns"]
    recent = ts >= h.since(WINDOW_DAYS)
    cust, day = v["cust"][recent], ts[recent] // NS_PER_DAY
    # Visits are sorted by (cust, ts): keep each customer's distinct days, then difference neighbours.
    if len(cust):
        new_day = np.r_[True, (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])]
        cust, day = cust[new_day], day[new_day]
        same = cust[1:] == cust[:-1]
        gap_cust, gap = cust[1:][same], (day[1:] - day[:-1])[same].astype("float64")
    else:
        gap_cust, gap = cust, np.zeros(0)
    n_gaps = per_customer_sum(h, gap_cust)
    mean = safe_ratio(per_customer_sum(h, gap_cust, gap), n_gaps)
    mean_sq = safe_ratio(per_customer_sum(h, gap_cust, gap * gap), n_gaps)
    std = np.where(n_gaps >= 2, np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)), np.nan)

    last_30 = ts >= h.since(30)
    prev_60 = (ts >= h.since(90)) & ~last_30
    all_cust = v["cust"]
    visit_trend = safe_ratio(per_customer_sum(h, all_cust[last_30]) / 30, per_customer_sum(h, all_cust[prev_60]) / 60)

    lines = h.lines
    l_ts, l_cust, amount = lines["ts_ns"], lines["cust"], lines["amount"]
    l_30 = l_ts >= h.since(30)
    l_prev = (l_ts >= h.since(90)) & ~l_30
    spend_prev = per_customer_sum(h, l_cust[l_prev], amount[l_prev]) / 60
    spend_trend = safe_ratio(per_customer_sum(h, l_cust[l_30], amount[l_30]) / 30, np.where(spend_prev > 0, spend_prev, 0))

    since_last = days_since(h, per_customer_max(h, all_cust, ts))
    return pd.DataFrame(
        {
            "gap_days_mean": mean,
            "gap_days_std": std,
            "visit_trend_30_vs_prev_60": visit_trend,
            "spend_trend_30_vs_prev_60": spend_trend,
            "overdue_ratio": safe_ratio(since_last, mean),
        }
    )
