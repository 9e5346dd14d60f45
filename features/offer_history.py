"""Offer history: what we sent a customer before, and what they viewed and redeemed.

Only events sent before as_of count; a view or redemption counts only if it happened before as_of.
Control hold-outs were never sent, so they count nowhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.history import History, days_since, per_customer_max, per_customer_sum, safe_ratio


def offer_history_features(h: History) -> pd.DataFrame:
    """The 'offer_history' family."""
    ev = h.offer_events
    cust = ev["cust"]
    viewed, redeemed = ev["viewed"], ev["redeemed"]
    out: dict[str, np.ndarray] = {}
    _block(h, out, "offers", cust, viewed, redeemed)
    for i, t in enumerate(h.program.allowed("offer_types") or ()):
        sel = ev["offer_type"] == i
        _block(h, out, f"offers_{t}", cust[sel], viewed[sel], redeemed[sel])
    out["days_since_last_offer"] = days_since(h, per_customer_max(h, cust, ev["sent_ns"]))
    out["days_since_last_redemption"] = days_since(
        h, per_customer_max(h, cust[redeemed], ev["redeemed_ns"][redeemed])
    )
    return pd.DataFrame(out)


def _block(h: History, out: dict, prefix: str, cust: np.ndarray, viewed: np.ndarray, redeemed: np.ndarray) -> None:
    sent = per_customer_sum(h, cust).astype("int64")
    n_viewed = per_customer_sum(h, cust[viewed]).astype("int64")
    n_redeemed = per_customer_sum(h, cust[redeemed]).astype("int64")
    out[f"{prefix}_sent"] = sent
    out[f"{prefix}_viewed"] = n_viewed
    out[f"{prefix}_redeemed"] = n_redeemed
    out[f"{prefix}_view_rate"] = safe_ratio(n_viewed, sent)
    out[f"{prefix}_redeem_rate"] = safe_ratio(n_redeemed, sent)
