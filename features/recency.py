"""Recency, frequency, monetary: how recently, how often and how much a customer buys."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.history import NS_PER_DAY, History, days_since, per_customer_max, per_customer_sum, safe_ratio


def recency_features(h: History) -> pd.DataFrame:
    """The 'recency' family: one row per customer code."""
    v, lines = h.visits, h.lines
    cust, ts = v["cust"], v["ts_ns"]
    out: dict[str, np.ndarray] = {
        "days_since_last_visit": days_since(h, per_customer_max(h, cust, ts)),
    }
    for days in (30, 90, 365):
        out[f"visits_{days}d"] = per_customer_sum(h, cust[ts >= h.since(days)]).astype("int64")
    line_cust, line_ts, amount = lines["cust"], lines["ts_ns"], lines["amount"]
    for days in (30, 90, 365):
        recent = line_ts >= h.since(days)
        out[f"spend_{days}d"] = per_customer_sum(h, line_cust[recent], amount[recent])
    out["avg_basket_365d"] = safe_ratio(out["spend_365d"], out["visits_365d"])
    out["distinct_visit_days_365d"] = distinct_visit_days(h, h.since(365))
    signup = h.customers["signup_date"].to_numpy(dtype="datetime64[ns]").view("int64")
    out["tenure_days"] = (h.as_of_ns - signup) / NS_PER_DAY
    return pd.DataFrame(out)


def distinct_visit_days(h: History, start_ns: int) -> np.ndarray:
    """Calendar days with a visit at or after ``start_ns``, per customer (visits are sorted by cust, ts)."""
    v = h.visits
    keep = v["ts_ns"] >= start_ns
    cust = v["cust"][keep]
    day = v["ts_ns"][keep] // NS_PER_DAY
    new_day = np.r_[True, (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])] if len(cust) else np.zeros(0, bool)
    return per_customer_sum(h, cust[new_day]).astype("int64")
