"""Habits: when (daypart, weekday, hour), through which channel and where a customer visits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import daypart_index
from features.history import (
    NS_PER_DAY,
    NS_PER_HOUR,
    History,
    per_customer_counts,
    per_customer_sum,
    safe_ratio,
    unique_counts,
)

WINDOW_DAYS = 365


def visit_hours(ts_ns: np.ndarray) -> np.ndarray:
    """Fractional hour of day (0 <= h < 24) of int64-ns timestamps."""
    return (ts_ns % NS_PER_DAY) / NS_PER_HOUR


def weekday(ts_ns: np.ndarray) -> np.ndarray:
    """Day of week, Monday 0 ... Sunday 6 (1970-01-01 was a Thursday)."""
    return (ts_ns // NS_PER_DAY + 3) % 7




def habits_features(h: History) -> pd.DataFrame:
    """The 'habits' family over the last 365 days of visits."""
    v = h.visits
    ts = v["ts_ns"]
    recent = ts >= h.since(WINDOW_DAYS)
    cust, ts = v["cust"][recent], ts[recent]
    n_visits = per_customer_sum(h, cust)
    hours = visit_hours(ts)
    out: dict[str, np.ndarray] = {}
    dayparts = h.program.daypart_edges
    by_part = per_customer_counts(h, cust, daypart_index(hours, dayparts), len(dayparts))
    for i, (part, _, _) in enumerate(dayparts):
        out[f"visit_share_{part}"] = safe_ratio(by_part[:, i], n_visits)
    out["visit_share_before_11"] = safe_ratio(per_customer_sum(h, cust[hours < 11.0]), n_visits)
    out["weekend_visit_share"] = safe_ratio(per_customer_sum(h, cust[weekday(ts) >= 5]), n_visits)
    out["visit_hour_mean"], out["visit_hour_spread"] = _circular_hour(h, cust, hours, n_visits)
    channels = h.program.allowed("purchase_channels")
    if channels is None:  # open: codes are per distinct value, so only the most used channel's share
        top_channel, _ = _top_counts(h, cust, v["channel"][recent])
        out["top_channel_visit_share"] = safe_ratio(top_channel, n_visits)
    else:
        by_channel = per_customer_counts(h, cust, v["channel"][recent], len(channels))
        for i, ch in enumerate(channels):
            out[f"channel_share_{ch}"] = safe_ratio(by_channel[:, i], n_visits)
    top, distinct = _top_counts(h, cust, v["store"][recent])
    out["top_store_visit_share"] = safe_ratio(top, n_visits)
    out["distinct_stores_365d"] = distinct
    return pd.DataFrame(out)


def _circular_hour(h: History, cust: np.ndarray, hours: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Circular mean hour in [0, 24) and circular standard deviation in hours; NaN without visits."""
    angle = hours * (2 * np.pi / 24)
    c = per_customer_sum(h, cust, np.cos(angle))
    s = per_customer_sum(h, cust, np.sin(angle))
    mean = np.mod(np.arctan2(s, c), 2 * np.pi) * (24 / (2 * np.pi))
    # Round so that one visit at 24:00 - epsilon does not print as 24.0.
    mean = np.where(mean >= 24.0 - 1e-9, 0.0, mean)
    resultant = np.clip(safe_ratio(np.hypot(c, s), n), 1e-12, 1.0)
    spread = np.sqrt(-2.0 * np.log(resultant)) * (24 / (2 * np.pi))
    none = n == 0
    return np.where(none, np.nan, mean), np.where(none, np.nan, spread)


def _top_counts(h: History, cust: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Visits with each customer's most frequent value (store, channel code), and the number of distinct values."""
    top = np.zeros(h.n_customers, dtype="int64")
    distinct = np.zeros(h.n_customers, dtype="int64")
    known = value >= 0
    cust, value = (cust, value) if known.all() else (cust[known], value[known])
    if len(cust):
        n_values = int(value.max()) + 1
        pairs, counts = unique_counts(cust.astype("int64") * n_values + value)
        pair_cust = pairs // n_values
        np.maximum.at(top, pair_cust, counts)
        distinct = per_customer_sum(h, pair_cust).astype("int64")
    return top, distinct
