"""Synthetic loyalty data for a coffee-and-bakery chain, with planted structure and ground truth.

The generator is vectorised numpy/pandas (loops run per day and per campaign, never per customer or per
transaction) and deterministic for a seed. It produces the five canonical tables of
``data_contracts.schema`` plus a ``ground_truth`` dictionary (personas, true affinities, churn dates,
catalogue) that the pipeline never reads.

Planted structure, so models have something true to find:

* personas with daypart, weekday, basket, channel and spend habits (``PERSONAS``);
* a churn hazard that rises with low satisfaction (NPS detractors) and short tenure; in the weeks
  before churn a latent disengagement lowers the visit rate, and nothing happens after ``churn_date``;
* offer redemption ``P = sigmoid(base + affinity[persona, category] + f(value) + g(recent visits) + ...)``
  with random control groups (``is_control``: eligible but not sent, never viewed or redeemed);
  ``morning_commuter`` rarely buys bakery but has the strongest bakery-offer affinity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_contracts.schema import (
    CATEGORIES,
    OFFER_CHANNELS,
    PURCHASE_CHANNELS,
    REGIONS,
    TABLE_NAMES,
    TIERS,
    pandas_dtype,
    table,
)
from pipelines.io import write_frame

# --------------------------------------------------------------------------------------------------
# Planted parameters
# --------------------------------------------------------------------------------------------------

PERSONAS: tuple[str, ...] = (
    "morning_commuter",
    "lunch_crowd",
    "afternoon_snacker",
    "weekend_family",
    "occasional",
    "remote_worker",
)
PERSONA_SHARE = np.array([0.25, 0.17, 0.15, 0.14, 0.21, 0.08])
# Mean visits per day (gamma-distributed per customer around it).
PERSONA_RATE = np.array([0.50, 0.30, 0.26, 0.13, 0.045, 0.34])
RATE_SHAPE = 3.0
# Visit-rate multiplier by weekday (Mon..Sun).
WEEKDAY_FACTOR = np.array(
    [
        [1.28, 1.28, 1.28, 1.28, 1.23, 0.33, 0.32],  # morning_commuter
        [1.32, 1.32, 1.32, 1.32, 1.27, 0.23, 0.22],  # lunch_crowd
        [1.05, 1.05, 1.05, 1.05, 1.10, 0.85, 0.85],  # afternoon_snacker
        [0.45, 0.45, 0.45, 0.45, 0.70, 2.30, 2.20],  # weekend_family
        [0.95, 0.95, 0.95, 0.95, 1.05, 1.10, 1.05],  # occasional
        [1.20, 1.20, 1.20, 1.20, 1.10, 0.55, 0.55],  # remote_worker
    ]
)
# Hour-of-day mixtures per persona: (mean hour, sd, weight) components.
HOUR_MIXTURES: dict[str, list[tuple[float, float, float]]] = {
    "morning_commuter": [(7.9, 0.8, 0.86), (12.5, 1.2, 0.08), (16.5, 1.5, 0.06)],
    "lunch_crowd": [(12.4, 0.8, 0.80), (9.0, 1.2, 0.10), (16.0, 1.5, 0.10)],
    "afternoon_snacker": [(15.5, 1.0, 0.75), (12.5, 1.5, 0.15), (19.0, 1.0, 0.10)],
    "weekend_family": [(10.5, 1.5, 0.50), (13.5, 1.5, 0.35), (16.5, 1.2, 0.15)],
    "occasional": [(11.5, 3.0, 1.0)],
    "remote_worker": [(10.0, 1.5, 0.40), (13.0, 1.5, 0.30), (15.5, 1.5, 0.30)],
}
OPEN_HOUR, CLOSE_HOUR = 6.0, 21.5
# Probability of 1, 2, 3, 4 lines per visit.
BASKET_SIZE = np.array(
    [
        [0.74, 0.21, 0.04, 0.01],
        [0.30, 0.45, 0.20, 0.05],
        [0.50, 0.40, 0.10, 0.00],
        [0.05, 0.25, 0.35, 0.35],
        [0.60, 0.30, 0.10, 0.00],
        [0.55, 0.35, 0.10, 0.00],
    ]
)


def _cat_weights(**weights: float) -> np.ndarray:
    w = np.array([weights.get(c, 0.0) for c in CATEGORIES], dtype=float)
    return w / w.sum()


# The first line of a basket (what the visit is for) and the extra lines.
ANCHOR_CATEGORY = np.vstack(
    [
        _cat_weights(coffee=0.93, tea=0.07),
        _cat_weights(lunch=0.85, coffee=0.10, cold_drinks=0.05),
        _cat_weights(snacks=0.45, cold_drinks=0.35, bakery=0.20),
        _cat_weights(bakery=0.35, breakfast=0.25, cold_drinks=0.20, coffee=0.20),
        _cat_weights(coffee=0.50, tea=0.15, bakery=0.15, cold_drinks=0.20),
        _cat_weights(coffee=0.60, tea=0.40),
    ]
)
ADDON_CATEGORY = np.vstack(
    [
        _cat_weights(bakery=0.45, breakfast=0.30, coffee=0.13, cold_drinks=0.05, snacks=0.05, merchandise=0.02),
        _cat_weights(cold_drinks=0.35, snacks=0.25, coffee=0.20, bakery=0.10, tea=0.09, merchandise=0.01),
        _cat_weights(cold_drinks=0.30, coffee=0.25, snacks=0.25, bakery=0.19, merchandise=0.01),
        _cat_weights(bakery=0.25, cold_drinks=0.20, snacks=0.20, coffee=0.15, breakfast=0.10, merchandise=0.05,
                     tea=0.05),
        _cat_weights(coffee=0.2, tea=0.1, cold_drinks=0.15, bakery=0.2, snacks=0.2, breakfast=0.1, merchandise=0.05),
        _cat_weights(bakery=0.30, snacks=0.30, lunch=0.20, coffee=0.10, tea=0.08, merchandise=0.02),
    ]
)
# Channel mix over PURCHASE_CHANNELS (store, app, web, drive_thru).
CHANNEL_MIX = np.array(
    [
        [0.45, 0.35, 0.02, 0.18],
        [0.60, 0.30, 0.10, 0.00],
        [0.60, 0.25, 0.05, 0.10],
        [0.70, 0.10, 0.00, 0.20],
        [0.80, 0.05, 0.05, 0.10],
        [0.40, 0.35, 0.25, 0.00],
    ]
)
assert tuple(PURCHASE_CHANNELS) == ("store", "app", "web", "drive_thru")

# Planted offer-redemption affinity (logit shift) by persona x reward category.
AFFINITY = 2.0 * np.array(
    [
        # coffee tea  cold  bakery brkf  lunch snacks merch
        [0.3, -0.6, -0.8, 2.2, 0.8, -1.0, -0.5, -0.8],  # morning_commuter
        [-0.2, -0.4, 0.6, 0.0, -0.6, 1.6, 0.3, -0.8],  # lunch_crowd
        [-0.2, -0.3, 1.2, 0.4, -0.8, -0.4, 1.5, -0.6],  # afternoon_snacker
        [-0.3, -0.5, 0.5, 0.7, 0.6, 0.0, 0.8, 1.0],  # weekend_family
        [0.2, -0.2, -0.2, -0.2, -0.5, -0.5, -0.2, -1.0],  # occasional
        [0.9, 1.2, -0.4, 0.2, -0.3, 0.5, 0.3, 0.2],  # remote_worker
    ]
)
AFFINITY_NOISE_SD = 0.3
REDEEM_BASE = -3.5
OFFER_TYPE_EFFECT = {
    "discount": 0.0,
    "bogo": 0.3,
    "bonus_points": -0.3,
    "free_item": 0.4,
    "tier_boost": -0.2,
    "informational": -1.8,
}
SEND_CHANNEL_EFFECT = {"app": 0.2, "push": 0.1, "email": -0.3, "store": 0.3, "web": -0.2, "drive_thru": 0.1}
RECENCY_WEIGHT = 1.3  # per unit of log1p(visits in last 28 days), centred
VALUE_WEIGHT = 0.45  # per unit of log1p(offer value)
MIN_SPEND_WEIGHT = -0.06  # per currency unit of minimum spend

# Satisfaction (latent, drives NPS and churn): mean per persona.
SATISFACTION_MEAN = np.array([0.3, 0.1, 0.1, 0.3, -0.4, 0.2])
# Churn: baseline hazard per day, multipliers.
CHURN_BASE_HAZARD = 0.00042
CHURN_SATISFACTION_WEIGHT = 0.8  # hazard x exp(-w * satisfaction)
CHURN_PERSONA_LOGHAZARD = np.array([-0.3, 0.0, 0.0, -0.1, 0.6, -0.1])
SHORT_TENURE_DAYS = 180
SHORT_TENURE_FACTOR = 2.5
DISENGAGE_FLOOR = 0.15  # visit-rate multiplier reached at churn

PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("Espresso", "coffee", 2.40),
    ("Americano", "coffee", 2.90),
    ("Latte", "coffee", 3.60),
    ("Cappuccino", "coffee", 3.50),
    ("Flat White", "coffee", 3.70),
    ("Mocha", "coffee", 3.90),
    ("Filter Coffee", "coffee", 2.50),
    ("Oat Latte", "coffee", 3.95),
    ("English Breakfast Tea", "tea", 2.20),
    ("Green Tea", "tea", 2.30),
    ("Chai Latte", "tea", 3.60),
    ("Herbal Tea", "tea", 2.30),
    ("Iced Latte", "cold_drinks", 3.90),
    ("Cold Brew", "cold_drinks", 3.80),
    ("Lemonade", "cold_drinks", 2.90),
    ("Orange Juice", "cold_drinks", 3.20),
    ("Berry Smoothie", "cold_drinks", 4.50),
    ("Sparkling Water", "cold_drinks", 1.90),
    ("Croissant", "bakery", 2.50),
    ("Pain au Chocolat", "bakery", 2.80),
    ("Blueberry Muffin", "bakery", 2.90),
    ("Cinnamon Roll", "bakery", 3.20),
    ("Banana Bread", "bakery", 3.00),
    ("Plain Bagel", "bakery", 2.60),
    ("Fruit Scone", "bakery", 2.70),
    ("Egg Muffin", "breakfast", 4.90),
    ("Porridge", "breakfast", 3.90),
    ("Yogurt Parfait", "breakfast", 4.20),
    ("Avocado Toast", "breakfast", 5.90),
    ("Chicken Wrap", "lunch", 6.90),
    ("Caprese Panini", "lunch", 6.50),
    ("Soup of the Day", "lunch", 5.50),
    ("Salad Bowl", "lunch", 7.50),
    ("Tuna Sandwich", "lunch", 5.90),
    ("Chocolate Cookie", "snacks", 1.90),
    ("Brownie", "snacks", 2.60),
    ("Crisps", "snacks", 1.60),
    ("Fruit Cup", "snacks", 3.00),
    ("Granola Bar", "snacks", 2.00),
    ("Travel Mug", "merchandise", 14.00),
    ("Coffee Beans 250g", "merchandise", 11.00),
    ("Insulated Tumbler", "merchandise", 18.00),
)
N_STORES = 20

# Offer templates: name, reward_category, offer_type, value, cost_per_redemption, min_spend,
# eligible_tiers, channels, kind ("evergreen" | "launch" | "limited").
_ALL = list(TIERS)
OFFER_TEMPLATES: tuple[tuple, ...] = (
    ("Free croissant with any coffee", "bakery", "free_item", 2.5, 0.9, 2.5, _ALL, ["app", "push", "store"], "evergreen"),
    ("20% off pastries", "bakery", "discount", 0.6, 0.6, 0.0, _ALL, ["app", "email"], "evergreen"),
    ("Pastry two-for-one", "bakery", "bogo", 2.8, 1.1, 0.0, _ALL, ["app", "push"], "launch"),
    ("Double points on bakery", "bakery", "bonus_points", 0.5, 0.3, 3.0, ["silver", "gold", "platinum"], ["app", "email"], "limited"),
    ("1.00 off any coffee", "coffee", "discount", 1.0, 1.0, 0.0, _ALL, ["app", "push", "email"], "evergreen"),
    ("Free size upgrade", "coffee", "free_item", 0.6, 0.25, 2.5, _ALL, ["app", "store", "drive_thru"], "evergreen"),
    ("Coffee buy one get one", "coffee", "bogo", 3.5, 1.3, 0.0, ["gold", "platinum"], ["app", "push"], "limited"),
    ("Triple points on coffee", "coffee", "bonus_points", 0.8, 0.5, 0.0, _ALL, ["app", "email", "web"], "launch"),
    ("Tea time 0.80 off", "tea", "discount", 0.8, 0.8, 0.0, _ALL, ["app", "email"], "evergreen"),
    ("Free chai upgrade", "tea", "free_item", 0.7, 0.3, 2.0, _ALL, ["app", "store"], "launch"),
    ("1.50 off iced drinks", "cold_drinks", "discount", 1.5, 1.5, 0.0, _ALL, ["app", "push"], "evergreen"),
    ("Summer smoothie two-for-one", "cold_drinks", "bogo", 4.5, 1.6, 0.0, _ALL, ["app", "push", "email"], "limited"),
    ("Free lemonade with lunch", "cold_drinks", "free_item", 2.9, 0.8, 6.0, _ALL, ["app", "store"], "launch"),
    ("Breakfast combo 2.00 off", "breakfast", "discount", 2.0, 2.0, 6.0, _ALL, ["app", "email", "push"], "evergreen"),
    ("Free porridge topping", "breakfast", "free_item", 0.8, 0.2, 0.0, _ALL, ["app", "store"], "launch"),
    ("Lunch deal 2.50 off", "lunch", "discount", 2.5, 2.5, 7.0, _ALL, ["app", "push", "email"], "evergreen"),
    ("Free drink with any lunch", "lunch", "free_item", 2.9, 0.9, 5.5, _ALL, ["app", "push", "store"], "launch"),
    ("Soup two-for-one", "lunch", "bogo", 5.5, 2.0, 0.0, ["gold", "platinum"], ["email", "app"], "limited"),
    ("Cookie for 1.00", "snacks", "discount", 0.9, 0.9, 0.0, _ALL, ["app", "push", "store"], "evergreen"),
    ("Bonus points on snacks", "snacks", "bonus_points", 0.4, 0.2, 0.0, _ALL, ["app", "email"], "launch"),
    ("Free brownie treat", "snacks", "free_item", 2.6, 0.8, 4.0, ["silver", "gold", "platinum"], ["app", "push"], "evergreen"),
    ("5.00 off a travel mug", "merchandise", "discount", 5.0, 5.0, 10.0, _ALL, ["email", "web", "store"], "evergreen"),
    ("Double points on coffee beans", "merchandise", "bonus_points", 1.1, 0.6, 0.0, _ALL, ["email", "web"], "launch"),
    ("Fast track to gold", "coffee", "tier_boost", 3.0, 1.0, 0.0, ["bronze", "silver"], ["app", "email"], "evergreen"),
    ("New seasonal bakes", "bakery", "informational", 0.0, 0.0, 0.0, _ALL, ["app", "email", "web"], "limited"),
    ("Holiday opening hours", "merchandise", "informational", 0.0, 0.0, 0.0, _ALL, ["email", "web"], "limited"),
    ("Weekend family breakfast 3.00 off", "breakfast", "discount", 3.0, 3.0, 12.0, _ALL, ["app", "email"], "evergreen"),
    ("Afternoon pick-me-up 1.00 off", "cold_drinks", "discount", 1.0, 1.0, 0.0, _ALL, ["app", "push"], "launch"),
)

TIER_SPEND_THRESHOLDS = (120.0, 400.0, 1000.0)  # annual spend for silver, gold, platinum
TIER_POINTS_MULTIPLIER = np.array([1.0, 1.1, 1.25, 1.5])
MAIN_CHANNEL_SHARE = 0.7
CAMPAIGN_TARGET_FRACTION = 0.35
CONTROL_FRACTION = 0.10
ACTIVE_LOOKBACK_DAYS = 120
REFUND_RATE = 0.003

COMMENTS = {
    "detractor": ("Queue was far too long.", "My order was wrong again.", "Prices keep going up.",
                  "App kept crashing at checkout.", "Coffee was lukewarm."),
    "passive": ("Decent coffee, nothing special.", "Fine, but the store is often busy.", "Okay value."),
    "promoter": ("Love the morning croissants!", "Friendly baristas, great coffee.", "The app makes it so easy.",
                 "Best flat white in town."),
}


@dataclass
class SyntheticData:
    """Generated canonical tables plus the ground truth the pipeline must never read."""

    tables: dict[str, pd.DataFrame]
    ground_truth: dict[str, pd.DataFrame] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


_CHOICE_RESOLUTION = 1 << 14


def _choice_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each element of ``rows`` draw a column index from the distribution ``probs[row]``.

    Inverse-CDF through a lookup table on a 1/16384 grid: one gather per draw, whatever the number of rows.
    """
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    grid = (np.arange(_CHOICE_RESOLUTION) + 0.5) / _CHOICE_RESOLUTION
    lookup = np.stack([np.searchsorted(c, grid, side="right") for c in cdf]).astype(np.int8)
    lookup = np.minimum(lookup, probs.shape[1] - 1)
    bucket = rng.integers(0, _CHOICE_RESOLUTION, size=len(rows))
    return lookup[rows, bucket]


def _as_datetime(ns: np.ndarray, mask: np.ndarray | None = None) -> pd.Series:
    """Nanoseconds since the epoch as a datetime64[ns] Series (NaT where ``mask`` is False)."""
    values = np.asarray(ns, dtype=np.int64)
    if mask is not None:
        values = np.where(mask, values, np.iinfo(np.int64).min)
    return pd.Series(values.view("datetime64[ns]"))


def _ids(prefix: str, n: int, width: int) -> pd.Series:
    arr = pc.binary_join_element_wise(prefix, pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.string()),
                                                           width, "0"), "")
    return pd.Series(pd.array(arr, dtype="str"))


def _take_str(values: pd.Series | list[str], codes: np.ndarray) -> pd.Series:
    arr = pd.array(list(values) if not isinstance(values, pd.Series) else values.array, dtype="str")
    return pd.Series(arr.take(np.asarray(codes, dtype=np.int64)))


def _sample_hours(rng: np.random.Generator, persona_idx: np.ndarray) -> np.ndarray:
    """Fractional hour of day per visit from the persona's daypart mixture."""
    n_comp = max(len(v) for v in HOUR_MIXTURES.values())
    means = np.zeros((len(PERSONAS), n_comp))
    sds = np.ones((len(PERSONAS), n_comp))
    weights = np.zeros((len(PERSONAS), n_comp))
    for p, name in enumerate(PERSONAS):
        for k, (m, s, w) in enumerate(HOUR_MIXTURES[name]):
            means[p, k], sds[p, k], weights[p, k] = m, s, w
    weights /= weights.sum(axis=1, keepdims=True)
    comp = _choice_rows(rng, weights, persona_idx)
    hours = rng.normal(means[persona_idx, comp], sds[persona_idx, comp])
    # Re-draw out-of-hours times uniformly inside opening hours instead of piling them on the edges.
    bad = (hours < OPEN_HOUR) | (hours >= CLOSE_HOUR)
    hours[bad] = rng.uniform(OPEN_HOUR, CLOSE_HOUR, bad.sum())
    return hours


def _conform(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Order columns as declared and cast each to its canonical dtype."""
    t = table(name)
    out = {}
    for col in t.columns:
        dtype = pandas_dtype(col)
        s = frame[col.name]
        if dtype == "object":
            out[col.name] = s.astype("object")
        elif dtype == "datetime64[ns]":
            out[col.name] = s if s.dtype == dtype else pd.to_datetime(s).astype(dtype)
        else:
            out[col.name] = s if str(s.dtype) == dtype else s.astype(dtype)
    return pd.DataFrame(out).reset_index(drop=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------------


def generate(n_customers: int, days: int, seed: int, end_date: str | pd.Timestamp = "2026-06-30") -> SyntheticData:
    """Generate ``n_customers`` loyalty members over the ``days`` before ``end_date`` (exclusive)."""
    if n_customers < 1:
        raise ValueError(f"generate: n_customers must be >= 1, got {n_customers}")
    if days < 7:
        raise ValueError(f"generate: days must be >= 7, got {days}")
    rng = np.random.default_rng(seed)
    end = pd.Timestamp(end_date).normalize()
    start = end - pd.Timedelta(days=days)
    day_ns = np.int64(86_400 * 10**9)
    start_ns = np.int64(start.value)
    end_ns = np.int64(end.value)

    products = pd.DataFrame(PRODUCTS, columns=["name", "category", "price"])
    products["category_idx"] = products["category"].map({c: i for i, c in enumerate(CATEGORIES)})
    products = products.sort_values(["category_idx", "price"], kind="stable").reset_index(drop=True)
    products.insert(0, "product_id", [f"P{i + 1:03d}" for i in range(len(products))])
    cat_first = np.searchsorted(products["category_idx"].to_numpy(), np.arange(len(CATEGORIES)))
    cat_count = np.bincount(products["category_idx"].to_numpy(), minlength=len(CATEGORIES))

    stores = pd.DataFrame(
        {"store_id": [f"S{i + 1:03d}" for i in range(N_STORES)], "region": [REGIONS[i % len(REGIONS)] for i in range(N_STORES)]}
    )

    cust = _customers_latent(rng, n_customers, days, stores)
    dates = pd.date_range(start, periods=days, freq="D")
    counts = _visit_counts(rng, cust, dates)
    visits_tx = _transactions(rng, cust, counts, days, start_ns, day_ns, dates, products, cat_first, cat_count)
    offers = _offers(rng, n_customers, days, start, end)
    tiers = _tiers(visits_tx, n_customers, days, end_ns)
    events, event_truth, redemption_lines = _offer_events(
        rng, cust, counts, tiers, offers, days, start_ns, end_ns, day_ns, products, cat_first, cat_count
    )
    tx, line_customer, line_amount = _assemble_transactions(
        rng, visits_tx, redemption_lines, cust, stores, products, start_ns, end_ns, day_ns
    )
    feedback = _feedback(rng, cust, days, start_ns, day_ns)
    spend_total = np.bincount(line_customer, weights=line_amount, minlength=n_customers)
    customers = _customers_table(rng, cust, tiers, spend_total, start, stores)

    tables = {
        "customers": _conform("customers", customers),
        "transactions": _conform("transactions", tx),
        "offers": _conform("offers", offers.drop(columns=["kind"])),
        "offer_events": _conform("offer_events", events),
        "feedback": _conform("feedback", feedback),
    }
    churn_date = pd.Series(pd.NaT, index=range(n_customers), dtype="datetime64[ns]")
    churned = cust["churn_day"] < days
    churn_date[churned] = _as_datetime(start_ns + cust["churn_day"][churned] * day_ns).to_numpy()
    truth_customers = pd.DataFrame(
        {
            "customer_id": tables["customers"]["customer_id"],
            "persona": _take_str(list(PERSONAS), cust["persona"]),
            "churn_date": churn_date,
            "visit_rate": cust["rate"],
            "satisfaction": cust["satisfaction"],
            "home_store": _take_str(stores["store_id"], cust["home_store"]),
            "disengage_days": cust["ramp"],
        }
    )
    affinities = pd.DataFrame(
        {
            "persona": np.repeat(PERSONAS, len(CATEGORIES)),
            "reward_category": np.tile(CATEGORIES, len(PERSONAS)),
            "affinity": AFFINITY.ravel(),
        }
    ).astype({"persona": "str", "reward_category": "str"})
    ground_truth = {
        "customers": truth_customers,
        "affinities": affinities,
        "offer_events": event_truth,
        "products": products.drop(columns=["category_idx"]).astype({"product_id": "str", "name": "str", "category": "str"}),
        "stores": stores.astype("str"),
    }
    return SyntheticData(tables=tables, ground_truth=ground_truth)


def _customers_latent(rng: np.random.Generator, n: int, days: int, stores: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-customer hidden state: persona, rates, satisfaction, signup and churn days (relative to start)."""
    persona = rng.choice(len(PERSONAS), size=n, p=PERSONA_SHARE)
    rate = rng.gamma(RATE_SHAPE, PERSONA_RATE[persona] / RATE_SHAPE)
    satisfaction = rng.normal(SATISFACTION_MEAN[persona], 1.0)
    # Signup spread over ~3 years before the end (some inside the window), day index relative to start.
    history = max(3 * 365, days + 30)
    signup_day = days - rng.integers(1, history + 1, size=n)
    home_store = rng.integers(0, len(stores), size=n)

    # Churn: piecewise-constant hazard, higher in the first SHORT_TENURE_DAYS of tenure.
    hazard = CHURN_BASE_HAZARD * np.exp(
        CHURN_PERSONA_LOGHAZARD[persona] - CHURN_SATISFACTION_WEIGHT * satisfaction
    )
    begin = np.maximum(signup_day, 0)
    short_left = np.clip(signup_day + SHORT_TENURE_DAYS - begin, 0, None).astype(float)
    e = rng.exponential(1.0, size=n)
    h_short = hazard * SHORT_TENURE_FACTOR
    t = np.where(e < h_short * short_left, e / h_short, short_left + (e - h_short * short_left) / hazard)
    churn_day = np.minimum(begin + np.ceil(t), days + 10_000).astype(np.int64)
    churn_day = np.where(churn_day >= days, days + 10_000, churn_day)
    # Disengagement ramp: visit rate falls over the weeks before churn.
    ramp = rng.integers(28, 91, size=n)
    # A third of customers take one break (holiday) of one to three weeks: dips that do not mean churn.
    break_start = np.where(rng.random(n) < 0.33, rng.integers(0, days, size=n), -10_000)
    break_len = rng.integers(7, 22, size=n)
    return {
        "persona": persona,
        "rate": rate,
        "satisfaction": satisfaction,
        "signup_day": signup_day,
        "home_store": home_store,
        "churn_day": churn_day,
        "ramp": ramp,
        "break_start": break_start,
        "break_len": break_len,
        "consent": rng.random(n) < 0.85,
        # Habitual channel (e.g. app users), used for most visits; the rest follow the persona mix.
        "main_channel": _choice_rows(rng, CHANNEL_MIX, persona),
    }


def _season(day_of_year: np.ndarray | int) -> np.ndarray:
    """Visit-rate seasonality: busier in winter and December, a summer-holiday dip."""
    doy = np.asarray(day_of_year, dtype=float)
    return 1.0 + 0.08 * np.cos(2 * np.pi * (doy - 15) / 365.25) + 0.10 * np.exp(-(((doy - 350) / 10) ** 2)) - 0.08 * np.exp(-(((doy - 220) / 14) ** 2))


def _visit_counts(rng: np.random.Generator, cust: dict, dates: pd.DatetimeIndex) -> np.ndarray:
    """Visits per (day, customer) as an int8 matrix; one vectorised Poisson draw per day."""
    n, days = len(cust["persona"]), len(dates)
    counts = np.zeros((days, n), dtype=np.int8)
    persona, rate = cust["persona"], cust["rate"]
    churn_day, ramp = cust["churn_day"], cust["ramp"]
    dows = dates.dayofweek.to_numpy()
    season = _season(dates.dayofyear.to_numpy())
    for d in range(days):
        lam = rate * WEEKDAY_FACTOR[persona, dows[d]] * season[d]
        to_churn = churn_day - d
        disengage = np.clip(to_churn / ramp, DISENGAGE_FLOOR, 1.0)
        on_break = (d >= cust["break_start"]) & (d < cust["break_start"] + cust["break_len"])
        lam = lam * disengage * np.where(on_break, 0.1, 1.0)
        lam[(cust["signup_day"] > d) | (to_churn <= 0)] = 0.0
        counts[d] = np.minimum(rng.poisson(lam), 3)
    return counts


def _transactions(rng, cust, counts, days, start_ns, day_ns, dates, products, cat_first, cat_count) -> dict:
    """Receipt lines for all organic visits as column arrays (no strings yet).

    Lines of one visit are contiguous; ``visit_*`` arrays hold one entry per visit and ``line_start``
    points at its first line.
    """
    day_idx, cust_idx = np.nonzero(counts)
    reps = counts[day_idx, cust_idx].astype(np.int64)
    day_idx = np.repeat(day_idx.astype(np.int32), reps)
    cust_idx = np.repeat(cust_idx.astype(np.int32), reps)
    n_visits = len(cust_idx)
    persona = cust["persona"][cust_idx]
    hours = _sample_hours(rng, persona)
    visit_ts = start_ns + day_idx.astype(np.int64) * day_ns + (hours * 3600).astype(np.int64) * np.int64(10**9)
    del hours

    n_lines = _choice_rows(rng, BASKET_SIZE, persona).astype(np.int64) + 1
    starts = np.zeros(n_visits, dtype=np.int64)
    np.cumsum(n_lines[:-1], out=starts[1:])
    visit_of_line = np.repeat(np.arange(n_visits, dtype=np.int32), n_lines)
    first_line = np.zeros(len(visit_of_line), dtype=bool)
    first_line[starts] = True
    del starts
    line_persona = persona[visit_of_line]
    cat = np.empty(len(visit_of_line), dtype=np.int8)
    cat[first_line] = _choice_rows(rng, ANCHOR_CATEGORY, line_persona[first_line])
    cat[~first_line] = _choice_rows(rng, ADDON_CATEGORY, line_persona[~first_line])
    del first_line
    # Summer: some hot coffee becomes an iced drink.
    summer = 0.35 * np.exp(-(((dates.dayofyear.to_numpy() - 200) / 35.0) ** 2))
    iced = cat == CATEGORIES.index("coffee")
    iced[iced] = rng.random(int(iced.sum())) < summer[day_idx[visit_of_line[iced]]]
    cat[iced] = CATEGORIES.index("cold_drinks")
    del iced
    # Each customer has a favourite product per category, chosen 60% of the time.
    fav = np.floor(rng.random((len(cust["persona"]), len(CATEGORIES))) * cat_count).astype(np.int8)
    within = np.floor(rng.random(len(cat)) * cat_count[cat]).astype(np.int8)
    use_fav = rng.random(len(cat)) < 0.6
    within[use_fav] = fav[cust_idx[visit_of_line[use_fav]], cat[use_fav]]
    del use_fav
    product = (cat_first[cat] + within).astype(np.int16)
    del within
    # A visit has distinct products: drop a line repeating a product of an earlier line of the same visit.
    dup = np.zeros(len(product), dtype=bool)
    for lag in range(1, BASKET_SIZE.shape[1]):
        dup[lag:] |= (visit_of_line[lag:] == visit_of_line[:-lag]) & (product[lag:] == product[:-lag])
    keep = ~dup
    visit_of_line, product, cat, line_persona = visit_of_line[keep], product[keep], cat[keep], line_persona[keep]
    del dup, keep
    n_kept = np.bincount(visit_of_line, minlength=n_visits)
    starts = np.zeros(n_visits, dtype=np.int64)
    np.cumsum(n_kept[:-1], out=starts[1:])
    qty = np.ones(len(product), dtype=np.int64)
    family = line_persona == PERSONAS.index("weekend_family")
    qty[family] += rng.binomial(2, 0.4, size=int(family.sum()))
    qty[~family] += (rng.random(int((~family).sum())) < 0.04).astype(np.int64)
    amount = np.round(products["price"].to_numpy()[product] * qty, 2)
    store = np.where(rng.random(n_visits) < 0.85, cust["home_store"][cust_idx], rng.integers(0, N_STORES, n_visits))
    channel = np.where(
        rng.random(n_visits) < MAIN_CHANNEL_SHARE, cust["main_channel"][cust_idx], _choice_rows(rng, CHANNEL_MIX, persona)
    )
    return {
        "visit_ts": visit_ts,
        "visit_customer": cust_idx,
        "visit_store": store.astype(np.int32),
        "visit_channel": channel.astype(np.int32),
        "line_start": starts,
        "line_count": n_kept,
        "product": product.astype(np.int32),
        "category": cat.astype(np.int32),
        "quantity": qty,
        "amount": amount,
        "line_customer": cust_idx[visit_of_line],
    }


def _tiers(tx: dict, n_customers: int, days: int, end_ns: np.int64) -> np.ndarray:
    """Tier index at the end date from spend over the last year (scaled up when the window is shorter)."""
    visit_recent = tx["visit_ts"] >= end_ns - np.int64(365 * 86_400 * 10**9)
    line_recent = np.repeat(visit_recent, tx["line_count"])
    spend = np.bincount(tx["line_customer"][line_recent], weights=tx["amount"][line_recent], minlength=n_customers)
    spend *= 365.0 / min(days, 365)
    return np.searchsorted(np.array(TIER_SPEND_THRESHOLDS), spend, side="right")


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


def _customer_ids(n: int) -> pd.Series:
    return _ids("C", n, 7)


def _assemble_transactions(rng, tx, red, cust, stores, products, start_ns, end_ns, day_ns):
    """Organic lines + redemption lines + a few refunds, with string ids, receipts numbered in time order.

    Works in index space (organic lines | redemption lines | refund lines) and gathers each column once.
    Returns the table and, per line, the customer index and amount (for points and tiers).
    """
    n_red = len(red["customer"])
    n_org_lines, n_org_visits = len(tx["product"]), len(tx["visit_ts"])
    n_lines = n_org_lines + n_red
    amount_src = np.concatenate([tx["amount"], red["amount"]])
    visit_ts = np.concatenate([tx["visit_ts"], red["ts"]])
    visit_customer = np.concatenate([tx["visit_customer"], red["customer"]])
    line_start = np.concatenate([tx["line_start"], n_org_lines + np.arange(n_red)])
    line_count = np.concatenate([tx["line_count"], np.ones(n_red, dtype=np.int64)])

    # Refunds: a few paid lines are refunded minutes to two days later, as a receipt of their own.
    cand = np.flatnonzero(rng.random(n_lines) < REFUND_RATE)
    cand = cand[amount_src[cand] > 0]
    cand_visit = np.searchsorted(line_start, cand, side="right") - 1
    r_ts = visit_ts[cand_visit] + rng.uniform(300, 2 * 86_400, len(cand)).astype(np.int64) * np.int64(10**9)
    churn_ns = start_ns + cust["churn_day"][visit_customer[cand_visit]] * day_ns
    ok = (r_ts < end_ns) & (r_ts < churn_ns)
    cand, cand_visit, r_ts = cand[ok], cand_visit[ok], r_ts[ok]
    n_refund = len(cand)

    # Receipts in time order: sort visits (incl. refund receipts) by time, then gather their contiguous lines.
    all_ts = np.concatenate([visit_ts, r_ts])
    all_start = np.concatenate([line_start, n_lines + np.arange(n_refund)])
    all_count = np.concatenate([line_count, np.ones(n_refund, dtype=np.int64)])
    del line_start, line_count
    order = np.argsort(all_ts, kind="stable")
    n_receipts = len(order)
    counts = all_count[order]
    receipt = np.repeat(np.arange(len(order), dtype=np.int64), counts)
    first_of_receipt = np.zeros(len(order), dtype=np.int64)
    np.cumsum(counts[:-1], out=first_of_receipt[1:])
    gather = np.repeat(all_start[order] - first_of_receipt, counts) + np.arange(len(receipt))
    del counts, first_of_receipt, all_start, all_count
    # Visit of each output row (refund receipts point at the visit they refund) and its source line.
    visit = order[receipt]
    is_refund = visit >= len(visit_ts)
    ts = all_ts[visit]
    visit[is_refund] = cand_visit[visit[is_refund] - len(visit_ts)]
    line = gather
    line[is_refund] = cand[gather[is_refund] - n_lines]
    del order, all_ts, gather

    # Gather each column from its organic part, then patch the (few) redemption rows: no full-size concat.
    line_red = line >= n_org_lines
    visit_red = visit >= n_org_visits

    def lines(org: np.ndarray, redeemed: np.ndarray) -> np.ndarray:
        out = org[np.minimum(line, n_org_lines - 1)] if n_org_lines else np.zeros(len(line), dtype=redeemed.dtype)
        out = out.astype(np.result_type(org, redeemed), copy=False)
        out[line_red] = redeemed[line[line_red] - n_org_lines]
        return out

    def visits(org: np.ndarray, redeemed: np.ndarray) -> np.ndarray:
        out = org[np.minimum(visit, n_org_visits - 1)] if n_org_visits else np.zeros(len(visit), dtype=redeemed.dtype)
        out = out.astype(np.result_type(org, redeemed), copy=False)
        out[visit_red] = redeemed[visit[visit_red] - n_org_visits]
        return out

    customer = visit_customer[visit]
    amount = amount_src[line]
    amount[is_refund] = -amount[is_refund]
    frame = pd.DataFrame(
        {
            "transaction_id": pd.Series(_ids("T", n_receipts, 9).array.take(receipt)),
            "customer_id": _take_str(_customer_ids(len(cust["persona"])), customer),
            "ts": _as_datetime(ts),
            "store_id": _take_str(stores["store_id"], visits(tx["visit_store"], cust["home_store"][red["customer"]])),
            "channel": _take_str(list(PURCHASE_CHANNELS), visits(tx["visit_channel"], red["channel"])),
            "product_id": _take_str(products["product_id"], lines(tx["product"], red["product"])),
            "category": _take_str(list(CATEGORIES), lines(tx["category"], red["category"])),
            "quantity": lines(tx["quantity"], red["quantity"]),
            "amount": amount,
            "is_refund": is_refund,
        }
    )
    return frame, customer, amount


def _feedback(rng, cust, days, start_ns, day_ns) -> pd.DataFrame:
    """NPS answers from a minority of members; scores follow satisfaction and drop while disengaging."""
    n = len(cust["persona"])
    responder = rng.random(n) < 0.3
    k = np.where(responder, 1 + rng.poisson(0.7, n), 0)
    who = np.repeat(np.arange(n), k)
    lo = np.maximum(cust["signup_day"][who], 0).astype(float)
    hi = np.minimum(cust["churn_day"][who], days).astype(float)
    ok = hi > lo
    who, lo, hi = who[ok], lo[ok], hi[ok]
    t_days = lo + rng.random(len(who)) * (hi - lo)
    day = np.floor(t_days).astype(np.int64)
    hours = rng.uniform(7.0, 22.0, len(who))
    ts = start_ns + day * day_ns + (hours * 3600 * 1e9).astype(np.int64)
    ts = ts - ts % 10**9
    disengaging = (cust["churn_day"][who] - day) < cust["ramp"][who]
    latent = 7.4 + 1.5 * cust["satisfaction"][who] - 2.5 * disengaging + rng.normal(0, 1.2, len(who))
    score = np.clip(np.round(latent), 0, 10).astype(np.int64)
    band = np.where(score <= 6, 0, np.where(score <= 8, 1, 2))
    pools = [COMMENTS["detractor"], COMMENTS["passive"], COMMENTS["promoter"]]
    flat = [c for pool in pools for c in pool]
    offsets = np.cumsum([0] + [len(p) for p in pools[:-1]])
    sizes = np.array([len(p) for p in pools])
    pick = offsets[band] + np.floor(rng.random(len(who)) * sizes[band]).astype(np.int64)
    comment = _take_str(flat, pick)
    has_comment = rng.random(len(who)) < np.where(band == 0, 0.6, 0.3)
    comment = comment.where(has_comment)
    fb = pd.DataFrame(
        {
            "customer_id": _take_str(_customer_ids(n), who),
            "submitted_at": _as_datetime(ts),
            "nps_score": score,
            "comment": comment,
        }
    )
    fb = fb.drop_duplicates(["customer_id", "submitted_at"])
    return fb.sort_values(["submitted_at", "customer_id"], kind="stable").reset_index(drop=True)


def _customers_table(rng, cust, tiers, spend_total, start: pd.Timestamp, stores: pd.DataFrame) -> pd.DataFrame:
    """The member table as of the end date: tier and points follow spend."""
    n = len(cust["persona"])
    spend_total = np.clip(spend_total, 0, None)
    kept = rng.beta(2.0, 3.0, n)
    points = np.floor(spend_total * 10 * TIER_POINTS_MULTIPLIER[tiers] * kept).astype(np.int64)
    # A date (midnight): activity on the signup day itself then never precedes the signup.
    signup = start + pd.to_timedelta(cust["signup_day"], unit="D")
    persona = cust["persona"]
    centre = np.array([1988, 1985, 1995, 1982, 1975, 1992])[persona]
    birth = np.clip(np.round(rng.normal(centre, 10)), 1930, 2008).astype(np.int64)
    birth_year = pd.array(birth, dtype="Int64")
    birth_year[rng.random(n) < 0.10] = pd.NA
    region_of_store = stores["region"].to_numpy()[cust["home_store"]]
    return pd.DataFrame(
        {
            "customer_id": _customer_ids(n),
            "signup_date": signup,
            "tier": _take_str(list(TIERS), tiers),
            "points_balance": points,
            "region": pd.Series(region_of_store, dtype="str"),
            "birth_year": birth_year,
            "marketing_consent": cust["consent"],
        }
    )


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def write(data: SyntheticData, out_dir: str | Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write each table as ``<table>.<fmt>`` and the ground truth as ``ground_truth/<name>.parquet``."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"write: fmt must be 'parquet' or 'csv', got '{fmt}'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in TABLE_NAMES:
        frame = data.tables[name]
        if fmt == "csv":
            frame = _csv_ready(name, frame)
        paths[name] = write_frame(frame, out / f"{name}.{fmt}")
    for name, frame in data.ground_truth.items():
        paths[f"ground_truth/{name}"] = write_frame(frame, out / "ground_truth" / f"{name}.parquet")
    return paths


def _csv_ready(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """List columns become JSON arrays in CSV (a readable, unambiguous text form)."""
    import json

    t = table(name)
    list_cols = [c.name for c in t.columns if c.type == "string_list"]
    if not list_cols:
        return frame
    frame = frame.copy()
    for col in list_cols:
        frame[col] = frame[col].map(json.dumps)
    return frame
