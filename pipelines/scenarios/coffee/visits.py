"""Customers and their visits: latent customer traits, visit counts per day, transactions, tiers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES
from pipelines.scenarios.coffee.parameters import (
    ADDON_CATEGORY,
    ANCHOR_CATEGORY,
    BASKET_SIZE,
    CHANNEL_MIX,
    CHURN_BASE_HAZARD,
    CHURN_PERSONA_LOGHAZARD,
    CHURN_SATISFACTION_WEIGHT,
    DISENGAGE_FLOOR,
    MAIN_CHANNEL_SHARE,
    N_STORES,
    PERSONAS,
    PERSONA_RATE,
    PERSONA_SHARE,
    RATE_SHAPE,
    SATISFACTION_MEAN,
    SHORT_TENURE_DAYS,
    SHORT_TENURE_FACTOR,
    TIER_SPEND_THRESHOLDS,
    WEEKDAY_FACTOR,
)
from pipelines.scenarios.coffee.sampling import _choice_rows, _sample_hours


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
