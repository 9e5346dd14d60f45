"""Loyalty context: tier, points and what the customer told us in NPS surveys.

Tier and points come from the customers table, which holds their *current* values (there is no
tier history), so for a past as_of they describe the customer as of the table's extract date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.history import History, codes, days_since, per_customer_sum, safe_ratio


def nps_group(score: np.ndarray) -> np.ndarray:
    """Detractor (0-6) -1, passive (7-8) 0, promoter (9-10) 1; NaN stays NaN."""
    return np.where(np.isnan(score), np.nan, np.where(score >= 9, 1.0, np.where(score >= 7, 0.0, -1.0)))


def loyalty_features(h: History) -> pd.DataFrame:
    """The 'loyalty' family: tier ordinal with ordered tiers, points to the next tier with tier points
    (the program file's ``tiers.points``), then points and NPS."""
    c = h.customers
    tiers, marks = h.program.ordered_tiers, h.program.tiers.points
    points = c["points_balance"].to_numpy(dtype="int64")
    out: dict[str, np.ndarray] = {}
    if tiers:
        tier = codes(c["tier"], tiers).astype("int64")
        out["tier_ordinal"] = tier
    out["points_balance"] = points
    if marks:
        next_threshold = np.array([marks[t] for t in tiers[1:]] + [np.nan], dtype="float64")
        out["points_to_next_tier"] = np.where(tier >= 0, np.maximum(next_threshold[tier] - points, 0.0), np.nan)

    fb = h.feedback  # sorted by (cust, ts): the last row of each customer is the latest answer
    cust, score = fb["cust"], fb["nps_score"]
    count = per_customer_sum(h, cust).astype("int64")
    last_score = np.full(h.n_customers, np.nan)
    last_ts = np.full(h.n_customers, np.iinfo("int64").min)
    if len(cust):
        is_last = np.r_[cust[1:] != cust[:-1], True]
        last_score[cust[is_last]] = score[is_last]
        last_ts[cust[is_last]] = fb["ts_ns"][is_last]
    return pd.DataFrame(
        {
            **out,
            "feedback_count": count,
            "last_nps_score": last_score,
            "mean_nps_score": safe_ratio(per_customer_sum(h, cust, score), count),
            "last_nps_group": nps_group(last_score),
            "days_since_last_feedback": days_since(h, last_ts),
        }
    )
