"""Offers and the campaigns that send them: who is targeted, controls, views and redemptions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES, OFFER_CHANNELS, PURCHASE_CHANNELS, TIERS
from pipelines.scenarios.coffee.parameters import (
    ACTIVE_LOOKBACK_DAYS,
    AFFINITY,
    AFFINITY_NOISE_SD,
    CAMPAIGN_TARGET_FRACTION,
    CONTROL_FRACTION,
    MIN_SPEND_WEIGHT,
    OFFER_TEMPLATES,
    OFFER_TYPE_EFFECT,
    RECENCY_WEIGHT,
    REDEEM_BASE,
    SEND_CHANNEL_EFFECT,
    VALUE_WEIGHT,
)
from pipelines.scenarios.coffee.sampling import _as_datetime, _sample_hours, _sigmoid, _take_str
from pipelines.scenarios.coffee.tables import _customer_ids


def _offers(rng: np.random.Generator, n_customers: int, days: int, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The offer catalogue with validity windows across the window (most still running at the end)."""
    rows = []
    for i, (name, cat, otype, value, cost, min_spend, tiers, channels, kind) in enumerate(OFFER_TEMPLATES):
        if kind == "evergreen":
            vf = start - pd.Timedelta(days=int(rng.integers(0, 90)))
            vt = end + pd.Timedelta(days=int(rng.integers(30, 181)))
        elif kind == "launch":
            vf = start + pd.Timedelta(days=int(rng.uniform(0.15, 0.8) * days))
            vt = end + pd.Timedelta(days=int(rng.integers(30, 121)))
        else:
            vf = start + pd.Timedelta(days=int(rng.uniform(0.0, 0.75) * days))
            vt = vf + pd.Timedelta(days=int(rng.integers(28, 71)))
        vt = vt + pd.Timedelta(hours=23, minutes=59, seconds=59)
        budget = int(max(20, n_customers * rng.uniform(0.05, 0.15))) if i % 6 == 2 else None
        rows.append(
            {
                "offer_id": f"O{i + 1:03d}",
                "name": name,
                "reward_category": cat,
                "offer_type": otype,
                "value": float(value),
                "cost_per_redemption": float(cost),
                "min_spend": float(min_spend),
                "eligible_tiers": list(tiers),
                "channels": list(channels),
                "valid_from": vf,
                "valid_to": vt,
                "budget_redemptions": budget,
                "kind": kind,
            }
        )
    offers = pd.DataFrame(rows)
    offers["budget_redemptions"] = offers["budget_redemptions"].astype("Int64")
    return offers


def _offer_events(rng, cust, counts, tiers, offers, days, start_ns, end_ns, day_ns, products, cat_first, cat_count):
    """Campaigns every 7-14 days: eligible active members sampled per offer, 10% held out as control."""
    n = len(cust["persona"])
    tier_names = np.array(TIERS)
    cat_index = {c: i for i, c in enumerate(CATEGORIES)}
    offer_cat = offers["reward_category"].map(cat_index).to_numpy()
    offer_type = offers["offer_type"].to_numpy()
    offer_value = offers["value"].to_numpy()
    offer_min_spend = offers["min_spend"].to_numpy()
    vf_ns = offers["valid_from"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    vt_ns = offers["valid_to"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    tier_ok = np.stack([np.isin(tier_names[tiers], list(t)) for t in offers["eligible_tiers"]])  # offers x customers
    indiv_aff = rng.normal(0.0, AFFINITY_NOISE_SD, size=(n, len(CATEGORIES)))
    # Individual offer responsiveness (some members redeem everything, some nothing).
    responsiveness = rng.normal(0.0, 0.5, size=n)
    cum = np.vstack([np.zeros((1, n), dtype=np.int32), np.cumsum(counts, axis=0, dtype=np.int32)])
    parts = []
    d = int(rng.integers(5, 12))
    while d <= days - 2:
        sent_base = start_ns + d * day_ns + np.int64(9 * 3600 * 10**9)
        active_offers = np.flatnonzero((vf_ns <= sent_base) & (vt_ns >= sent_base + 3 * day_ns))
        if len(active_offers):
            k = min(len(active_offers), int(rng.integers(2, 5)))
            chosen = rng.choice(active_offers, size=k, replace=False)
            recent = cum[d] - cum[max(0, d - 28)]
            active = ((cum[d] - cum[max(0, d - ACTIVE_LOOKBACK_DAYS)]) > 0) | (
                (cust["signup_day"] <= d) & (cust["signup_day"] > d - 30)
            )
            base_ok = active & cust["consent"] & (cust["signup_day"] <= d)
            for o in chosen:
                idx = np.flatnonzero(base_ok & tier_ok[o] & (rng.random(n) < CAMPAIGN_TARGET_FRACTION))
                if not len(idx):
                    continue
                parts.append(
                    {
                        "cust": idx,
                        "offer": np.full(len(idx), o),
                        "day": np.full(len(idx), d),
                        "recent": recent[idx],
                    }
                )
        d += int(rng.integers(7, 15))
    empty = {"cust": np.zeros(0, np.int64), "offer": np.zeros(0, np.int64), "day": np.zeros(0, np.int64),
             "recent": np.zeros(0, np.int32)}
    ev = {k: np.concatenate([empty[k]] + [p[k] for p in parts]) for k in empty}
    m = len(ev["cust"])
    sent_at = start_ns + ev["day"] * day_ns + np.int64(9 * 3600 * 10**9) + rng.integers(0, 4 * 3600, m) * np.int64(10**9)
    channels_per_offer = offers["channels"].to_list()
    n_channels = np.array([len(c) for c in channels_per_offer])
    ch_pick = np.floor(rng.random(m) * n_channels[ev["offer"]]).astype(np.int64)
    max_ch = max(len(c) for c in channels_per_offer)
    ch_table = np.array([[OFFER_CHANNELS.index(c) for c in chs] + [0] * (max_ch - len(chs)) for chs in channels_per_offer])
    channel = ch_table[ev["offer"], ch_pick]
    is_control = rng.random(m) < CONTROL_FRACTION

    persona = cust["persona"][ev["cust"]]
    ocat = offer_cat[ev["offer"]]
    log_recent = np.log1p(ev["recent"])
    logit = (
        REDEEM_BASE
        + AFFINITY[persona, ocat]
        + indiv_aff[ev["cust"], ocat]
        + responsiveness[ev["cust"]]
        + np.array([OFFER_TYPE_EFFECT[t] for t in offer_type])[ev["offer"]]
        + VALUE_WEIGHT * np.log1p(offer_value[ev["offer"]])
        + MIN_SPEND_WEIGHT * offer_min_spend[ev["offer"]]
        + RECENCY_WEIGHT * (log_recent - np.log1p(4.0))
        + np.array([SEND_CHANNEL_EFFECT[c] for c in OFFER_CHANNELS])[channel]
    )
    p = _sigmoid(logit)
    redeem = (rng.random(m) < p) & ~is_control
    # When: 0-14 days after sending, at a time the member would visit; within validity, before churn and end.
    delay = np.minimum(rng.geometric(0.3, m) - 1, 14)
    hours = _sample_hours(rng, persona)
    red_at = start_ns + (ev["day"] + delay) * day_ns + (hours * 3600 * 1e9).astype(np.int64)
    red_at = red_at - red_at % 10**9
    red_at = np.where(red_at <= sent_at, red_at + day_ns, red_at)
    redeem &= (red_at <= vt_ns[ev["offer"]]) & (red_at < end_ns) & (
        red_at < start_ns + cust["churn_day"][ev["cust"]] * day_ns
    )
    # Budgets: the first redemptions win, later ones are refused.
    budget = offers["budget_redemptions"].to_numpy(dtype="float64", na_value=np.inf)
    order = np.lexsort((red_at, ev["offer"]))
    red_sorted = redeem[order]
    rank = np.zeros(m, dtype=np.int64)
    rank[order] = _group_cumcount(ev["offer"][order], red_sorted)
    redeem &= rank <= budget[ev["offer"]]

    viewed = np.where(redeem, rng.random(m) < 0.95, rng.random(m) < 0.55) & ~is_control
    view_at = np.where(
        redeem,
        sent_at + (rng.random(m) * (red_at - sent_at)).astype(np.int64),
        sent_at + (rng.exponential(10 * 3600, m) * 1e9).astype(np.int64) + np.int64(60 * 10**9),
    )
    view_at = view_at - view_at % 10**9
    view_at = np.maximum(view_at, sent_at)
    viewed &= view_at < end_ns

    events = pd.DataFrame(
        {
            "customer_id": _take_str(_customer_ids(n), ev["cust"]),
            "offer_id": _take_str(offers["offer_id"], ev["offer"]),
            "sent_at": _as_datetime(sent_at),
            "channel": _take_str(list(OFFER_CHANNELS), channel),
            "viewed_at": _as_datetime(view_at, viewed),
            "redeemed_at": _as_datetime(red_at, redeem),
            "is_control": is_control,
        }
    )
    # (customer, offer, sent_at) is unique by construction: an offer is chosen at most once per campaign.
    order = np.lexsort((ev["offer"], ev["cust"], sent_at))
    events = events.take(order).reset_index(drop=True)
    truth = events[["customer_id", "offer_id", "sent_at", "is_control"]].copy()
    truth["p_redeem"] = p[order]

    # A redemption is also a receipt line in the reward category.
    r = np.flatnonzero(redeem)
    rcat = ocat[r]
    product = cat_first[rcat] + np.floor(rng.random(len(r)) * cat_count[rcat]).astype(np.int64)
    price = products["price"].to_numpy()[product]
    rtype = offer_type[ev["offer"][r]]
    qty = np.where(rtype == "bogo", 2, 1)
    amount = np.where(
        rtype == "free_item",
        0.0,
        np.where(rtype == "discount", np.maximum(price - offer_value[ev["offer"][r]], 0.0), price),
    )
    purchase_channel = np.array([PURCHASE_CHANNELS.index(c) if c in PURCHASE_CHANNELS else 1 for c in OFFER_CHANNELS])
    lines = {
        "customer": ev["cust"][r],
        "ts": red_at[r],
        "channel": purchase_channel[channel[r]],
        "product": product,
        "category": rcat,
        "quantity": qty.astype(np.int64),
        "amount": np.round(amount, 2),
    }
    return events, truth, lines


def _group_cumcount(groups: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Running count of True ``flags`` within consecutive ``groups`` (1-based where flag is True)."""
    c = np.cumsum(flags.astype(np.int64))
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    base = np.repeat(np.r_[0, c[starts[1:] - 1]] if len(starts) > 1 else [0], np.diff(np.r_[starts, len(groups)]))
    return c - base
