"""One simulated window (every customer's visits and the list's offers, both worlds with common random numbers),
and continuing a program with campaign lists or randomised exploration campaigns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES, PURCHASE_CHANNELS
from pipelines.simulation.effects import (
    _DAY_NS,
    _NS,
    EFFECT_CLASSES,
    HALO,
    INDIV_NOISE_SD,
    PUT_OFF_DROP,
    PUT_OFF_SHARE,
    RESPONSIVENESS_SD,
    TRUTH_FILE,
    Program,
    SimulationError,
    Window,
    _Catalogue,
    _draw_rows,
    _hours,
    _recent_visits,
    class_probabilities,
)
from pipelines.synthetic import (
    ADDON_CATEGORY,
    AFFINITY,
    ANCHOR_CATEGORY,
    BASKET_SIZE,
    CHANNEL_MIX,
    MIN_SPEND_WEIGHT,
    OFFER_TYPE_EFFECT,
    PERSONAS,
    RECENCY_WEIGHT,
    REDEEM_BASE,
    SEND_CHANNEL_EFFECT,
    VALUE_WEIGHT,
    WEEKDAY_FACTOR,
)


def simulate_window(program: Program, assignment: pd.DataFrame, start: pd.Timestamp, days: int,
                    channel: str, seed: int, first_receipt: int) -> Window:
    """Simulate ``days`` days from ``start`` for every customer; ``assignment`` rows (customer_id, offer_id,
    treated) are the offers sent at ``start`` (treated) or held back as control (treated False, offer kept)."""
    rng = np.random.default_rng(seed)
    cat = _Catalogue(program.truth["products"], program.tables["offers"])
    ids = program.customer_ids
    n = len(ids)
    pos = pd.Series(np.arange(n), index=ids)
    start = pd.Timestamp(start)
    start_ns = np.int64(start.value)
    day0_ns = np.int64(start.normalize().value)
    signed = program.tables["customers"]["signup_date"].to_numpy(dtype="datetime64[ns]").astype(np.int64) <= start_ns
    alive = signed & (program.churn_day_ns > start_ns)

    # --- assignment and planted classes
    a = assignment.reset_index(drop=True)
    unknown = sorted(set(a["offer_id"]) - set(cat.offers.index))
    if unknown:
        raise SimulationError(f"offers {unknown[:5]} are not in the program's offers table")
    cust = pos.reindex(a["customer_id"].astype(str)).to_numpy()
    if np.isnan(cust.astype(float)).any():
        raise SimulationError("the campaign names customers that are not in the program's customers table")
    cust = cust.astype(np.int64)
    persona = program.persona[cust]
    ocat = cat.offer_cat.reindex(a["offer_id"]).to_numpy(dtype=np.int64)
    offer = cat.offers.loc[a["offer_id"]]
    otype = offer["offer_type"].to_numpy(dtype=object).astype(str)
    value = offer["value"].to_numpy(dtype=float)
    cost = offer["cost_per_redemption"].to_numpy(dtype=float)
    treated = a["treated"].to_numpy(dtype=bool)
    put_off_customer = rng.random(n) < PUT_OFF_SHARE[program.persona]
    probs = class_probabilities()[persona, ocat]
    klass = _draw_rows(rng, probs, np.arange(len(a)))
    klass = np.where(put_off_customer[cust], 3, klass)
    recent = _recent_visits(program.tables["transactions"], ids, start)[cust]
    noise = rng.normal(0, INDIV_NOISE_SD, (n, len(CATEGORIES)))[cust, ocat] + rng.normal(0, RESPONSIVENESS_SD, n)[cust]
    logit = (REDEEM_BASE + AFFINITY[persona, ocat] + noise
             + np.array([OFFER_TYPE_EFFECT.get(t, 0.0) for t in otype])
             + VALUE_WEIGHT * np.log1p(value) + MIN_SPEND_WEIGHT * offer["min_spend"].to_numpy(dtype=float)
             + RECENCY_WEIGHT * (np.log1p(recent) - np.log1p(4.0)) + SEND_CHANNEL_EFFECT.get(channel, 0.0))
    p_redeem = np.where(klass <= 1, 1.0 / (1.0 + np.exp(-logit)), 0.0) * alive[cust]

    # --- daily visit rates (persona weekday rhythm), organic and for the treated world's extras
    dates = pd.date_range(start.normalize(), periods=days, freq="D")
    lam = program.rate[None, :] * WEEKDAY_FACTOR[program.persona][:, dates.dayofweek.to_numpy()].T * alive[None, :]
    lam[0] *= max(0.0, 1.0 - (start_ns - day0_ns) / _DAY_NS)  # the first day counts from the send time
    halo_offers = np.bincount(cust[treated & (klass == 0)], minlength=n)
    put_off_treated = np.zeros(n, dtype=bool)
    put_off_treated[cust[treated & (klass == 3)]] = True

    first_hour = (start_ns - day0_ns) / (3600 * _NS)
    organic = _visits(rng, lam, program.persona, cat, first_hour=first_hour)
    extra = _visits(rng, lam * HALO * halo_offers[None, :], program.persona, cat, first_hour=first_hour)
    dropped_visit = put_off_treated[organic["visit_cust"]] & (rng.random(len(organic["visit_cust"])) < PUT_OFF_DROP)

    # --- redemptions
    red = treated & (rng.random(len(a)) < p_redeem)
    delay = np.minimum(rng.geometric(0.3, len(a)) - 1, days - 1)
    red_ts = day0_ns + delay * _DAY_NS + (_hours(rng, persona) * 3600).astype(np.int64) * _NS
    red_ts = np.maximum(red_ts, start_ns + 60 * _NS)
    product = cat.product_in(rng, ocat)
    paid, qty = cat.reward_paid(otype, value, cat.price[product])
    # A persuadable redemption brings a usual basket with it; a sure thing's displaces a full-price line.
    basket = _visits(rng, np.zeros((1, n)), program.persona, cat, fixed_customers=cust[red & (klass == 0)])
    displaced = _displace(organic, dropped_visit, cust, ocat, red & (klass == 1), red_ts, day0_ns)

    lines, effects = _assemble(program, cat, organic, extra, basket, dropped_visit, displaced, a, cust, red,
                               klass, red_ts, product, paid, qty, day0_ns, first_receipt, rng)
    end_ns = day0_ns + days * _DAY_NS
    lines = lines[lines["ts"] < pd.Timestamp(end_ns)]
    effects = _effects_frame(a, cust, ids, program, klass, p_redeem, treated, red, paid, cat, otype, value, ocat,
                             cost, lam, halo_offers, put_off_treated, effects, start, channel)
    events = _events(rng, a, red, red_ts, start, channel, end_ns)
    return Window(lines, events, effects)


def _visits(rng, lam: np.ndarray, persona: np.ndarray, cat: _Catalogue, fixed_customers: np.ndarray | None = None,
            first_hour: float = 0.0) -> dict:
    """Poisson visits per (day, customer) from rates ``lam`` (days x customers), or one visit per
    ``fixed_customers`` entry (day 0, time set later), each with a persona basket. Visits on day 0 come
    after ``first_hour`` (the send)."""
    if fixed_customers is None:
        counts = rng.poisson(lam)
        day, who = np.nonzero(counts)
        reps = counts[day, who]
        day, who = np.repeat(day, reps), np.repeat(who, reps)
    else:
        who = np.asarray(fixed_customers, dtype=np.int64)
        day = np.zeros(len(who), dtype=np.int64)
    p = persona[who]
    k = _draw_rows(rng, BASKET_SIZE, p) + 1
    visit = np.repeat(np.arange(len(who)), k)
    first = np.r_[True, visit[1:] != visit[:-1]] if len(visit) else np.zeros(0, bool)
    line_cat = np.where(first, _draw_rows(rng, ANCHOR_CATEGORY, p[visit]), _draw_rows(rng, ADDON_CATEGORY, p[visit]))
    product = cat.product_in(rng, line_cat)
    hours = _hours(rng, p)
    early = (day == 0) & (hours < first_hour)
    hours[early] = rng.uniform(first_hour, max(first_hour, 21.4), int(early.sum()))
    return {"visit_cust": who, "visit_day": day, "visit_hour": hours, "line_visit": visit, "line_product": product,
            "line_cat": line_cat, "line_amount": cat.price[product]}


def _displace(organic: dict, dropped_visit: np.ndarray, cust, ocat, sure_red: np.ndarray, red_ts, day0_ns) -> np.ndarray:
    """Organic lines a sure thing's redemption replaces: the customer's first line of the reward category on
    or after the redemption day, one per redemption (a line is displaced at most once)."""
    displaced = np.zeros(len(organic["line_product"]), dtype=bool)
    if not sure_red.any() or not len(displaced):
        return displaced
    v = organic["line_visit"]
    line_cust = organic["visit_cust"][v]
    line_day = organic["visit_day"][v]
    frame = pd.DataFrame({"cust": line_cust, "cat": organic["line_cat"], "day": line_day,
                          "ok": ~dropped_visit[v]}).reset_index(names="line")
    frame = frame[frame["ok"]].sort_values(["cust", "cat", "day", "line"])
    groups = {key: g for key, g in frame.groupby(["cust", "cat"], sort=False)}
    for i in np.flatnonzero(sure_red):
        g = groups.get((int(cust[i]), int(ocat[i])))
        if g is None:
            continue
        red_day = (red_ts[i] - day0_ns) // _DAY_NS
        cand = g.loc[(g["day"] >= red_day), "line"].to_numpy()
        cand = cand[~displaced[cand]]
        if len(cand):
            displaced[cand[0]] = True
    return displaced


def _assemble(program, cat, organic, extra, basket, dropped_visit, displaced, a, cust, red, klass, red_ts, product,
              paid, qty, day0_ns, first_receipt, rng):
    """Receipt lines of the treated world, and each treated customer's realised revenue and visit effects."""
    ids = program.customer_ids
    n = len(ids)
    parts = []

    def visit_ts(v: dict) -> np.ndarray:
        return day0_ns + v["visit_day"] * _DAY_NS + (v["visit_hour"] * 3600).astype(np.int64) * _NS

    def add(v: dict, ts: np.ndarray, keep_line: np.ndarray, source: str):
        lv = v["line_visit"]
        parts.append(pd.DataFrame({"cust": v["visit_cust"][lv], "visit_key": source + ":" + pd.Series(lv).astype(str),
                                   "ts": ts[lv], "product": v["line_product"], "amount": v["line_amount"],
                                   "qty": 1})[keep_line])

    org_keep = ~dropped_visit[organic["line_visit"]] & ~displaced
    add(organic, visit_ts(organic), org_keep, "o")
    add(extra, visit_ts(extra), np.ones(len(extra["line_product"]), bool), "h")
    pers_red = np.flatnonzero(red & (klass == 0))
    basket_ts = red_ts[pers_red]
    add(basket, basket_ts, np.ones(len(basket["line_product"]), bool), "b")
    r = np.flatnonzero(red)
    # A persuadable's reward line joins its basket's receipt; a sure thing's reward is a receipt of its own.
    key = np.where(klass[r] == 0, "b:" + pd.Series(np.searchsorted(pers_red, r)).astype(str),
                   "r:" + pd.Series(r).astype(str))
    parts.append(pd.DataFrame({"cust": cust[r], "visit_key": key, "ts": red_ts[r], "product": product[r],
                               "amount": paid[r], "qty": qty[r]}))
    lines = pd.concat(parts, ignore_index=True)
    # One line per (receipt, product): a repeated product adds up (quantity and amount).
    lines = lines.groupby(["visit_key", "product"], as_index=False, sort=False).agg(
        cust=("cust", "first"), ts=("ts", "min"), amount=("amount", "sum"), qty=("qty", "sum"))
    lines = lines.sort_values(["ts", "visit_key"], kind="stable").reset_index(drop=True)
    receipt = pd.factorize(lines["visit_key"])[0]
    width = 9
    tx = pd.DataFrame({
        "transaction_id": pd.Series(receipt + first_receipt).map(lambda i: f"T{i:0{width}d}").astype(str),
        "customer_id": ids[lines["cust"].to_numpy()],
        "ts": pd.to_datetime(lines["ts"].to_numpy(dtype=np.int64)),
        "store_id": program.home_store[lines["cust"].to_numpy()],
        "channel": np.array(PURCHASE_CHANNELS)[_draw_rows(rng, CHANNEL_MIX, program.persona)[lines["cust"].to_numpy()]],
        "product_id": cat.product_id[lines["product"].to_numpy()],
        "category": np.array(CATEGORIES)[cat.product_cat[lines["product"].to_numpy()]],
        "quantity": lines["qty"].to_numpy(dtype=np.int64),
        "amount": np.round(lines["amount"].to_numpy(dtype=float), 2),
        "is_refund": False,
    })
    # Realised effect pieces per customer (treated world minus the shared organic world).
    org_line_cust = organic["visit_cust"][organic["line_visit"]]
    lost_dropped = np.bincount(org_line_cust, weights=organic["line_amount"] * dropped_visit[organic["line_visit"]], minlength=n)
    visits_dropped = np.bincount(organic["visit_cust"], weights=dropped_visit, minlength=n)
    lost_displaced = np.bincount(org_line_cust, weights=organic["line_amount"] * displaced, minlength=n)
    halo_rev = np.bincount(extra["visit_cust"][extra["line_visit"]], weights=extra["line_amount"], minlength=n)
    halo_visits = np.bincount(extra["visit_cust"], minlength=n).astype(float)
    basket_rev = np.zeros(len(a))
    basket_rev[pers_red] = np.bincount(basket["line_visit"], weights=basket["line_amount"], minlength=len(pers_red))
    return tx, {"lost_dropped": lost_dropped, "visits_dropped": visits_dropped, "lost_displaced": lost_displaced,
                "halo_rev": halo_rev, "halo_visits": halo_visits, "basket_rev": basket_rev, "displaced": displaced,
                "org_line_cust": org_line_cust}


def _effects_frame(a, cust, ids, program, klass, p_redeem, treated, red, paid, cat, otype, value, ocat, cost, lam,
                   halo_offers, put_off_treated, realised, start, channel) -> pd.DataFrame:
    """Per (customer, offer): the planted class, expected effects and, for the treated, the realised ones."""
    n_offers = np.bincount(cust[treated], minlength=len(ids)).astype(float)
    per_offer = 1.0 / np.maximum(n_offers[cust], 1.0)
    window_visits = lam.sum(axis=0)[cust]
    basket = cat.basket_value[program.persona[cust]]
    exp_paid = cat.expected_paid(otype, value, ocat)
    full_price = cat.mean_price[ocat]
    exp_rev = np.select(
        [klass == 0, klass == 1, klass == 3],
        [p_redeem * (exp_paid + basket) + HALO * window_visits * basket,
         p_redeem * (exp_paid - full_price),
         -PUT_OFF_DROP * window_visits * basket * per_offer],
        0.0,
    )
    exp_visits = np.select([klass == 0, klass == 3], [p_redeem + HALO * window_visits,
                                                      -PUT_OFF_DROP * window_visits * per_offer], 0.0)
    # Realised, treated rows only: customer-level pieces shared among the customer's offers.
    c = cust
    halo_share = np.where(klass == 0, 1.0 / np.maximum(halo_offers[c], 1), 0.0)
    displaced_rev = np.zeros(len(a))
    sure = np.flatnonzero(red & (klass == 1))
    # A customer's displaced revenue goes to its sure-thing redemptions in equal parts.
    n_sure = np.bincount(c[sure], minlength=len(ids)).astype(float)
    displaced_rev[sure] = realised["lost_displaced"][c[sure]] / np.maximum(n_sure[c[sure]], 1.0)
    realised_rev = (np.where(red, paid, 0.0) + realised["basket_rev"] + realised["halo_rev"][c] * halo_share
                    - displaced_rev - np.where(put_off_treated[c], realised["lost_dropped"][c] * per_offer, 0.0))
    realised_visits = (np.where(red & (klass == 0), 1.0, 0.0) + realised["halo_visits"][c] * halo_share
                       - np.where(put_off_treated[c], realised["visits_dropped"][c] * per_offer, 0.0))
    return pd.DataFrame({
        "customer_id": ids[c],
        "offer_id": a["offer_id"].astype(str).to_numpy(),
        "sent_at": pd.Timestamp(start),
        "treated": treated,
        "persona": np.array(PERSONAS)[program.persona[c]],
        "effect_class": np.array(EFFECT_CLASSES)[klass],
        "p_redeem": p_redeem,
        "expected_incremental_revenue": exp_rev,
        "expected_incremental_visits": exp_visits,
        "expected_reward_cost": p_redeem * cost,
        "redeemed": red,
        "realised_incremental_revenue": np.where(treated, realised_rev, np.nan),
        "realised_incremental_visits": np.where(treated, realised_visits, np.nan),
        "realised_reward_cost": np.where(treated, np.where(red, cost, 0.0), np.nan),
    })


def _events(rng, a, red, red_ts, start, channel, end_ns) -> pd.DataFrame:
    """offer_events rows: sends (viewed and redeemed as simulated) and control rows (never sent)."""
    treated = a["treated"].to_numpy(dtype=bool)
    sent_ns = np.int64(pd.Timestamp(start).value)
    viewed = treated & np.where(red, rng.random(len(a)) < 0.95, rng.random(len(a)) < 0.55)
    view_ns = np.where(red, sent_ns + (rng.random(len(a)) * (red_ts - sent_ns)).astype(np.int64),
                       sent_ns + (rng.exponential(10 * 3600, len(a)) * 1e9).astype(np.int64) + 60 * _NS)
    view_ns = np.minimum(view_ns - view_ns % _NS, end_ns - _NS)

    def ts(values, mask):
        out = pd.Series(pd.to_datetime(values.astype(np.int64)))
        return out.where(mask, pd.NaT)

    return pd.DataFrame({
        "customer_id": a["customer_id"].astype(str).to_numpy(),
        "offer_id": a["offer_id"].astype(str).to_numpy(),
        "sent_at": pd.Timestamp(start),
        "channel": channel,
        "viewed_at": ts(view_ns, viewed),
        "redeemed_at": ts(red_ts - red_ts % _NS, red & (red_ts < end_ns)),
        "is_control": ~treated,
    })


# --------------------------------------------------------------------------------------------------
# Continuing a program: campaign lists and exploration campaigns
# --------------------------------------------------------------------------------------------------


def continue_program(program: Program, window: Window) -> Program:
    """The program with a window's rows appended (same dtypes) and its truth added to ground_truth."""
    tables = dict(program.tables)
    for name, rows in (("transactions", window.transactions), ("offer_events", window.offer_events)):
        old = tables[name]
        rows = rows[list(old.columns)].astype(old.dtypes.to_dict())
        tables[name] = pd.concat([old, rows], ignore_index=True)
    truth = dict(program.truth)
    old = truth.get(TRUTH_FILE)
    truth[TRUTH_FILE] = window.effects if old is None else pd.concat([old, window.effects], ignore_index=True)
    return Program(tables, truth, program.persona, program.rate, program.churn_day_ns, program.home_store)


def next_receipt_number(program: Program) -> int:
    ids = program.tables["transactions"]["transaction_id"].astype(str)
    numbers = pd.to_numeric(ids.str.lstrip("T"), errors="coerce")
    return int(numbers.max()) + 1 if len(numbers) and numbers.notna().any() else 1


def list_assignment(listed: pd.DataFrame) -> pd.DataFrame:
    """Offers a campaign list sends: every (customer, offer) row outside the holdout."""
    missing = [c for c in ("customer_id", "offer_id", "holdout") if c not in listed.columns]
    if missing:
        raise SimulationError(f"the campaign list lacks columns {missing}; pass a list written by `rewards score`")
    sent = listed[~listed["holdout"].astype(bool) & listed["offer_id"].notna()]
    return pd.DataFrame({"customer_id": sent["customer_id"].astype(str).to_numpy(),
                         "offer_id": sent["offer_id"].astype(str).to_numpy(), "treated": True})


def simulate_campaign(program: Program, listed: pd.DataFrame, send_at: pd.Timestamp, days: int, channel: str,
                      seed: int) -> tuple[Program, Window]:
    """Continue ``program`` for ``days`` days after a campaign list is sent at ``send_at``."""
    assignment = list_assignment(listed)
    if assignment.empty:
        raise SimulationError("the campaign list sends no offers (every row is held out or without an offer)")
    window = simulate_window(program, assignment, send_at, days, channel, seed, next_receipt_number(program))
    return continue_program(program, window), window


def exploration_assignment(program: Program, at: pd.Timestamp, control_fraction: float, seed: int,
                           customers: np.ndarray | None = None) -> pd.DataFrame:
    """A randomised exploration campaign: one random active offer per consenting member, a random
    ``control_fraction`` kept as control (the offer recorded, never sent)."""
    rng = np.random.default_rng(seed)
    c = program.tables["customers"]
    offers = program.tables["offers"]
    at = pd.Timestamp(at)
    active = offers[(offers["valid_from"] <= at) & (offers["valid_to"] >= at + pd.Timedelta(days=14))
                    & (offers["offer_type"] != "informational")]
    if active.empty:
        raise SimulationError(f"no offer is valid from {at} for 14 days or more: nothing to explore with")
    pool = c[c["marketing_consent"].astype(bool) & (c["signup_date"] < at)]
    if customers is not None:
        pool = pool[pool["customer_id"].isin(customers)]
    tier_ok = np.stack([pool["tier"].isin(list(t)).to_numpy() for t in active["eligible_tiers"]], axis=1)
    pick = np.array([rng.choice(np.flatnonzero(row)) if row.any() else -1 for row in tier_ok])
    keep = pick >= 0
    return pd.DataFrame({"customer_id": pool["customer_id"].astype(str).to_numpy()[keep],
                         "offer_id": active["offer_id"].astype(str).to_numpy()[pick[keep]],
                         "treated": rng.random(int(keep.sum())) >= control_fraction})


def simulate_exploration(program: Program, start: pd.Timestamp, waves: int, every_days: int, control_fraction: float,
                         seed: int, channel: str = "app") -> Program:
    """``waves`` exploration campaigns ``every_days`` apart from ``start`` (each to every consenting member,
    a fresh random offer and control draw each time; an effect lasts one window), simulated one after the
    other: uplift training data, randomised control events with their outcomes."""
    for w in range(waves):
        at = pd.Timestamp(start) + pd.Timedelta(days=w * every_days, hours=9)
        assignment = exploration_assignment(program, at, control_fraction, seed + 1000 + w)
        window = simulate_window(program, assignment, at, every_days, channel, seed + 2000 + w,
                                 next_receipt_number(program))
        program = continue_program(program, window)
    return program

