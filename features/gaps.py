"""Purchase gaps over all history: how often a customer comes back, how regularly, and how late they are now.

Made for sparse shops, where a 365-day window holds one or two visits: every visit day counts. The
first three columns are BG/NBD's inputs (frequency, recency, T in days), so a model reading the
profile can fit BG/NBD itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.history import NS_PER_DAY, History, per_customer_sum, safe_ratio


def _visit_days(h: History) -> tuple[np.ndarray, np.ndarray]:
    """(customer code, day number) of each distinct visit day, sorted by customer then day."""
    cust, day = h.visits["cust"], h.visits["ts_ns"] // NS_PER_DAY
    if not len(cust):
        return cust, day
    new_day = np.r_[True, (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])]
    return cust[new_day], day[new_day]


def gaps_features(h: History) -> pd.DataFrame:
    """The 'gaps' family: one row per customer code."""
    cust, day = _visit_days(h)
    n = h.n_customers
    n_days = per_customer_sum(h, cust)
    first = np.full(n, -1, dtype="int64")
    last = np.full(n, -1, dtype="int64")
    if len(cust):
        starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
        ends = np.r_[starts[1:], len(cust)] - 1
        first[cust[starts]], last[cust[ends]] = day[starts], day[ends]
    has = n_days > 0
    signup_ns = h.customers["signup_date"].to_numpy(dtype="datetime64[ns]").view("int64")
    first_ns = np.where(has, first * NS_PER_DAY, signup_ns)

    same = cust[1:] == cust[:-1] if len(cust) else np.zeros(0, bool)
    gap_cust, gap = cust[1:][same], (day[1:] - day[:-1])[same].astype("float64")
    n_gaps = per_customer_sum(h, gap_cust)
    mean = safe_ratio(per_customer_sum(h, gap_cust, gap), n_gaps)
    mean_sq = safe_ratio(per_customer_sum(h, gap_cust, gap * gap), n_gaps)
    std = np.where(n_gaps >= 2, np.sqrt(np.maximum(mean_sq - mean * mean, 0.0)), np.nan)
    last_gap = np.full(n, np.nan)
    last_gap[gap_cust] = gap  # gaps are in time order: the last write per customer is its latest gap
    since_last_day = np.where(has, (h.as_of_ns - last * NS_PER_DAY) / NS_PER_DAY, np.nan)
    return pd.DataFrame(
        {
            "repeat_visit_days": np.maximum(n_days - 1, 0).astype("int64"),
            "first_to_last_visit_days": np.where(has, last - first, 0).astype("float64"),
            "days_since_first_visit": (h.as_of_ns - first_ns) / NS_PER_DAY,
            "gap_days_mean_all": mean,
            "gap_days_std_all": std,
            "gap_days_cv_all": safe_ratio(std, mean),
            "last_gap_days": last_gap,
            "overdue_vs_usual_gap": safe_ratio(since_last_day, mean),
            "overdue_gap_z": np.where(std > 0, (since_last_day - mean) / np.where(std > 0, std, 1.0), np.nan),
        }
    )
