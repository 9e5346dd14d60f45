"""Loyalty context: tier, points and what the customer told us in NPS surveys.

Tier and points come from the customers table, which holds their *current* values (there is no
tier history), so for a past as_of they describe the customer as of the table's extract date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.schema import TIERS
from features.history import History, codes, days_since, per_customer_sum, safe_ratio

# Points that mark each tier: the program's annual-spend thresholds (silver 120, gold 400, platinum 1000)
# at 10 points per currency unit. points_to_next_tier measures the balance against the next one.
TIER_THRESHOLDS: dict[str, int] = {"bronze": 0, "silver": 1200, "gold": 4000, "platinum": 10000}


def nps_group(score: np.ndarray) -> np.ndarray:
    """Detractor (0-6) -1, passive (7-8) 0, promoter (9-10) 1; NaN stays NaN."""
    return np.where(np.isnan(score), np.nan, np.where(score >= 9, 1.0, np.where(score >= 7, 0.0, -1.0)))


def loyalty_features(h: History) -> pd.DataFrame:
    """The 'loyalty' family."""
    c = h.customers
    tier = codes(c["tier"], TIERS).astype("int64")
    points = c["points_balance"].to_numpy(dtype="int64")
    next_threshold = np.array([TIER_THRESHOLDS[t] for t in TIERS[1:]] + [np.nan], dtype="float64")
    to_next = np.where(tier >= 0, np.maximum(next_threshold[tier] - points, 0.0), np.nan)

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
            "tier_ordinal": tier,
            "points_balance": points,
            "points_to_next_tier": to_next,
            "feedback_count": count,
            "last_nps_score": last_score,
            "mean_nps_score": safe_ratio(per_customer_sum(h, cust, score), count),
            "last_nps_group": nps_group(last_score),
            "days_since_last_feedback": days_since(h, last_ts),
        }
    )
