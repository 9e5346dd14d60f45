"""A generated sparse web shop: most customers order 1-3 times a year, many only once, over long horizons.

The shop is older than the export: customers join with their first order, spread over the
``days`` of the export and the ``BURN_IN_DAYS`` before it; the export holds the orders inside its
window, and the customers still buying in it (or joining). Each has a latent order rate
(strongly heterogeneous: gamma with shape below 1), a regularity (some reorder like clockwork, as
with consumables, others in bursts) and a lifetime in calendar time after which they never return;
a third are one-time buyers; happier customers stay longer. Orders have one to a few lines, some are
refunded. There is no loyalty tier; the shop mails a quarterly discount code to consenting customers
(a tenth held out as control; a code counts as redeemed on an order within two weeks, sometimes) and
asks a few buyers after an order how likely they are to recommend it (NPS).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES, OFFER_TYPES, PURCHASE_CHANNELS, REGIONS, TIERS, empty_frame
from pipelines.synthetic import SyntheticData, _conform, write  # noqa: F401  (write: how this scenario is written)

ORDERS_PER_YEAR_MEAN = 2.2
RATE_SHAPE = 0.7  # gamma shape of the order rate: below 1, a long tail of frequent buyers
ONE_TIME_SHARE = 0.35
LIFETIME_MEDIAN_DAYS = 420.0
LIFETIME_SIGMA = 1.0  # lognormal spread of lifetimes
# Regularity of the gaps between orders (gamma shape): bursty, Poisson-like, replenishment.
GAP_SHAPES = np.array([0.6, 1.0, 3.0])
GAP_SHAPE_SHARE = np.array([0.3, 0.4, 0.3])
N_PRODUCTS = 150
EXTRA_LINES_MEAN = 0.6
REFUND_RATE = 0.04
APP_SHARE = 0.2
CONSENT_RATE = 0.55
STORE_ID = "WEB"
BURN_IN_DAYS = 730
SATISFACTION_LIFETIME_WEIGHT = 0.5  # lifetime x exp(w * satisfaction)
SURVEY_RATE = 0.08  # share of orders followed by an NPS answer
NEWSLETTER_EVERY_DAYS = 91
NEWSLETTER_REACH = 0.6
CONTROL_FRACTION = 0.10
VIEW_RATE = 0.4
REDEEM_WINDOW_DAYS = 14
REDEEM_GIVEN_ORDER = 0.35


def generate(n_customers: int, days: int, seed: int, end_date: str | pd.Timestamp = "2026-06-30") -> SyntheticData:
    """Generate ``n_customers`` web-shop customers over the ``days`` before ``end_date`` (exclusive)."""
    if n_customers < 1:
        raise ValueError(f"webshop.generate: n_customers must be >= 1, got {n_customers}")
    if days < 7:
        raise ValueError(f"webshop.generate: days must be >= 7, got {days}")
    rng = np.random.default_rng(seed)
    end = pd.Timestamp(end_date).normalize()
    start = end - pd.Timedelta(days=days)
    n = n_customers

    m = 4 * n  # candidates; the first n who still order in the window (or join in it) are the export's
    joined = rng.uniform(-BURN_IN_DAYS, days, m)  # first order, in days since start
    rate = rng.gamma(RATE_SHAPE, ORDERS_PER_YEAR_MEAN / 365.0 / RATE_SHAPE, m)  # orders per day
    shape = GAP_SHAPES[rng.choice(len(GAP_SHAPES), m, p=GAP_SHAPE_SHARE)]
    satisfaction = rng.standard_normal(m)
    lifetime = np.where(rng.random(m) < ONE_TIME_SHARE, 0.0,
                        LIFETIME_MEDIAN_DAYS * np.exp(LIFETIME_SIGMA * rng.standard_normal(m)
                                                      + SATISFACTION_LIFETIME_WEIGHT * satisfaction))
    order_cust, order_day = _orders(rng, joined, rate, shape, np.minimum(joined + lifetime, days))
    in_window = order_day >= 0
    seen = np.zeros(m, dtype=bool)
    seen[order_cust[in_window]] = True
    keep = np.flatnonzero(seen)[:n]
    n = len(keep)
    position = np.full(m, -1)
    position[keep] = np.arange(n)
    mine = in_window & (position[order_cust] >= 0)
    order_cust, order_day = position[order_cust[mine]], order_day[mine]
    joined, rate, shape = joined[keep], rate[keep], shape[keep]
    satisfaction, lifetime = satisfaction[keep], lifetime[keep]

    # Orders come in during the day, mostly in the evening.
    hour = np.clip(rng.normal(19.0, 3.5, len(order_day)), 0.0, 23.99) / 24.0
    order_ts = start + pd.to_timedelta(np.floor(order_day) + hour, unit="D")

    tx = _lines(rng, order_cust, order_ts, end)
    ids = pd.Series([f"W{i + 1:07d}" for i in range(n)], dtype="str")
    tx["customer_id"] = ids.to_numpy()[tx.pop("cust")]
    signup = start + pd.to_timedelta(np.floor(joined), unit="D")
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": signup,
            "tier": TIERS[0],  # no tiers in a web shop: everyone on the entry level
            "points_balance": 0,
            "region": np.asarray(REGIONS, dtype=object)[rng.integers(0, len(REGIONS), n)],
            "birth_year": pd.array([pd.NA] * n, dtype="Int64"),
            "marketing_consent": rng.random(n) < CONSENT_RATE,
        }
    )
    offers = _offers(start, end)
    tables = {
        "customers": _conform("customers", customers),
        "transactions": _conform("transactions", tx),
        "offers": _conform("offers", offers),
        "offer_events": _conform("offer_events", _newsletters(rng, customers, offers, order_cust, order_ts, start, end)),
        "feedback": _conform("feedback", _surveys(rng, ids, satisfaction, order_cust, order_ts, end)),
    }
    churn_date = pd.Series(start + pd.to_timedelta(joined + lifetime, unit="D")).where(joined + lifetime < days)
    truth = pd.DataFrame({"customer_id": ids, "orders_per_year": rate * 365.0, "gap_shape": shape,
                          "lifetime_days": lifetime, "satisfaction": satisfaction, "churn_date": churn_date})
    return SyntheticData(tables=tables, ground_truth={"customers": truth})


def _orders(rng, joined, rate, shape, gone) -> tuple[np.ndarray, np.ndarray]:
    """(customer, day) of every order, sorted by customer then time: the first at ``joined``, then gamma
    gaps with mean 1 / rate until ``gone``."""
    cust_of, when = [np.arange(len(joined))], [joined]
    now, alive = joined.copy(), gone > joined
    while alive.any():
        idx = np.flatnonzero(alive)
        now[idx] += rng.gamma(shape[idx], 1.0 / (rate[idx] * shape[idx]))
        ok = now[idx] < gone[idx]
        cust_of.append(idx[ok])
        when.append(now[idx[ok]])
        alive[idx[~ok]] = False
    order_cust, order_day = np.concatenate(cust_of), np.concatenate(when)
    order = np.lexsort((order_day, order_cust))
    return order_cust[order], order_day[order]


def _lines(rng: np.random.Generator, order_cust: np.ndarray, order_ts: pd.DatetimeIndex, end: pd.Timestamp) -> pd.DataFrame:
    """Order lines (one to a few distinct products each) plus refund lines for some orders."""
    n_orders = len(order_cust)
    n_lines = 1 + np.minimum(rng.poisson(EXTRA_LINES_MEAN, n_orders), 4)
    line_order = np.repeat(np.arange(n_orders), n_lines)
    pos = np.arange(len(line_order)) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
    # Distinct products within an order: a random first product, then the next ones along the catalogue.
    first = rng.integers(0, N_PRODUCTS, n_orders)
    product = (first[line_order] + 7 * pos) % N_PRODUCTS
    price = np.round(np.exp(np.log(25.0) + 0.7 * np.sin(np.arange(N_PRODUCTS) * 1.7)), 2)
    qty = 1 + (rng.random(len(line_order)) < 0.15)
    channel = np.where(rng.random(n_orders) < APP_SHARE, "app", "web")
    channel = np.where(np.isin(channel, PURCHASE_CHANNELS), channel, PURCHASE_CHANNELS[0])
    lines = pd.DataFrame(
        {
            "transaction_id": np.char.add("O", np.char.zfill((line_order + 1).astype(str), 8)),
            "cust": order_cust[line_order],
            "ts": order_ts[line_order],
            "store_id": STORE_ID,
            "channel": channel[line_order],
            "product_id": np.char.add("WP", np.char.zfill((product + 1).astype(str), 4)),
            "category": np.asarray(CATEGORIES, dtype=object)[product % len(CATEGORIES)],
            "quantity": qty.astype("int64"),
            "amount": price[product] * qty,
            "is_refund": False,
        }
    )
    refunded = np.flatnonzero(rng.random(len(lines)) < REFUND_RATE)
    refunds = lines.iloc[refunded].copy()
    refunds["ts"] = refunds["ts"] + pd.to_timedelta(rng.integers(3, 21, len(refunds)), unit="D")
    refunds = refunds[refunds["ts"] < end]
    refunds["transaction_id"] = "R" + refunds["transaction_id"].str[1:]
    refunds["amount"] = -refunds["amount"]
    refunds["is_refund"] = True
    return pd.concat([lines, refunds], ignore_index=True)


def _offers(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """One discount code per newsletter category, valid over the whole period."""
    cats = list(CATEGORIES[:4])
    return pd.DataFrame(
        {
            "offer_id": [f"CODE{i + 1}" for i in range(len(cats))],
            "name": [f"10% off {c}" for c in cats],
            "reward_category": cats,
            "offer_type": OFFER_TYPES[0],
            "value": 5.0,
            "cost_per_redemption": 5.0,
            "min_spend": 30.0,
            "eligible_tiers": [list(TIERS)] * len(cats),
            "channels": [["email"]] * len(cats),
            "valid_from": start,
            "valid_to": end + pd.Timedelta(days=365),
            "budget_redemptions": pd.array([None] * len(cats), dtype="Int64"),
        }
    )


def _newsletters(rng, customers, offers, order_cust, order_ts, start, end) -> pd.DataFrame:
    """Quarterly mailings of one code to consenting customers; redeemed on an order soon after, sometimes."""
    ids = customers["customer_id"].to_numpy(dtype=object)
    consent = customers["marketing_consent"].to_numpy()
    signup = customers["signup_date"].to_numpy()
    order_ns = order_ts.to_numpy(dtype="datetime64[ns]").view("int64")
    rows = []
    for k, sent in enumerate(pd.date_range(start + pd.Timedelta(days=30), end - pd.Timedelta(days=1),
                                           freq=f"{NEWSLETTER_EVERY_DAYS}D")):
        sent = sent + pd.Timedelta(hours=10)
        who = np.flatnonzero(consent & (signup < sent.to_datetime64()) & (rng.random(len(ids)) < NEWSLETTER_REACH))
        control = rng.random(len(who)) < CONTROL_FRACTION
        # The first order in the redemption window, per customer (orders are sorted by customer, time).
        window = (order_ns >= sent.value) & (order_ns < (sent + pd.Timedelta(days=REDEEM_WINDOW_DAYS)).value)
        first_order = pd.Series(order_ns[window], index=order_cust[window]).groupby(level=0).min()
        next_order = first_order.reindex(who).to_numpy()
        redeemed = ~control & ~np.isnan(next_order) & (rng.random(len(who)) < REDEEM_GIVEN_ORDER)
        viewed = ~control & (redeemed | (rng.random(len(who)) < VIEW_RATE))
        view_ns = sent.value + rng.integers(1, 48, len(who)) * 3_600 * 10**9
        view_ns = np.where(redeemed, np.minimum(view_ns, np.nan_to_num(next_order).astype("int64")), view_ns)
        rows.append(pd.DataFrame({
            "customer_id": ids[who],
            "offer_id": offers["offer_id"].iloc[k % len(offers)],
            "sent_at": sent,
            "channel": "email",
            "viewed_at": pd.to_datetime(np.where(viewed & (view_ns < end.value), view_ns, np.iinfo("int64").min)
                                        .view("datetime64[ns]")),
            "redeemed_at": pd.to_datetime(np.where(redeemed, np.nan_to_num(next_order).astype("int64"),
                                                   np.iinfo("int64").min).view("datetime64[ns]")),
            "is_control": control,
        }))
    return pd.concat(rows, ignore_index=True) if rows else empty_frame("offer_events")


def _surveys(rng, ids, satisfaction, order_cust, order_ts, end) -> pd.DataFrame:
    """NPS answers a few days after some orders; happier customers score higher."""
    asked = np.flatnonzero(rng.random(len(order_cust)) < SURVEY_RATE)
    cust = order_cust[asked]
    at = order_ts[asked] + pd.to_timedelta(rng.integers(2, 10, len(asked)), unit="D")
    keep = np.asarray(at < end)
    score = np.clip(np.round(7.5 + 2.0 * satisfaction[cust] + rng.normal(0, 1.5, len(cust))), 0, 10)
    frame = pd.DataFrame({"customer_id": ids.to_numpy()[cust][keep], "submitted_at": at[keep],
                          "nps_score": score[keep].astype("int64"), "comment": None})
    return frame.drop_duplicates(["customer_id", "submitted_at"], ignore_index=True)
