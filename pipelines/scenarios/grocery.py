"""A generated grocery chain: `rewards generate --scenario grocery`.

Its own program file (two-level hierarchy: ~30 departments > ~250 commodities, thousands of
products, no tiers, no NPS) and tables: products, households (customers) with personas, a year of
receipts drawn from each household's repertoire of regular products, coupon campaigns (~1,000
coupons in all, each covering a few products of one commodity: offers + offer_products) sent to
a random share of households with a control group, and their redemptions.

Planted truth (``ground_truth/``; the pipeline never reads it): households with a baby buy baby
care and redeem its coupons; a coupon on products already in a household's repertoire is redeemed
far more often than one on products it never buys; 15% of households stop shopping (churn).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.program import PROGRAM_FILE, Program, program_to_toml
from pipelines.io import atomic_path, write_frame

DEPARTMENTS = (
    "produce", "dairy", "bakery", "meat", "seafood", "deli", "frozen", "pantry", "breakfast", "snacks",
    "confectionery", "beverages", "alcohol", "baby_care", "pet_care", "household", "personal_care", "health",
    "pharmacy", "world_foods", "organic", "ready_meals", "canned", "condiments", "baking", "pasta_rice",
    "tea_coffee", "cleaning", "paper_goods", "seasonal",
)
BABY = "baby_care"
BABY_COMMODITIES = ("nappies", "baby_food", "baby_wipes", "baby_formula", "baby_toiletries", "baby_snacks")
N_COMMODITIES = 250
REGIONS = ("north", "south", "east", "west", "central", "coast")
N_STORES = 40
PERSONAS = ("young_family", "family", "single", "retired", "student")
PERSONA_SHARE = (0.18, 0.27, 0.25, 0.18, 0.12)
VISITS_PER_WEEK = (1.1, 1.0, 0.7, 0.9, 0.6)
BASKET_LINES = (7.0, 8.0, 4.0, 5.0, 3.5)
REPERTOIRE = 40  # regular products per household
FROM_REPERTOIRE = 0.85  # share of lines drawn from the repertoire (the rest explores)
CAMPAIGNS, COUPONS_PER_CAMPAIGN, COUPONS_PER_HOUSEHOLD, VALID_DAYS = 8, 125, 12, 28
TARGETED_SHARE, CONTROL_SHARE = 0.45, 0.10
CHURN_SHARE = 0.15
# Redemption (logit): base, per unit share of the coupon's products in the repertoire, baby coupon
# for a household with a baby / without, per currency unit of value.
REDEEM_BASE, REDEEM_REPERTOIRE, REDEEM_BABY, REDEEM_BABY_NONE, REDEEM_VALUE = -3.4, 3.0, 1.6, -1.5, 0.3


@dataclass
class ScenarioData:
    """Generated tables, the program they follow, and the ground truth the pipeline must never read."""

    tables: dict[str, pd.DataFrame]
    program: Program
    ground_truth: dict[str, pd.DataFrame] = field(default_factory=dict)


def grocery_program(commodities: dict[str, list[str]]) -> Program:
    """The grocery program: department > commodity, listed; no tiers; store/online purchases."""
    data = {
        "name": "grocery",
        "description": "Generated grocery chain: departments > commodities, coupon campaigns, no tiers, no NPS.",
        "hierarchy": {
            "levels": ["department", "commodity"],
            "nodes": {
                "department": {"kind": "listed", "values": list(DEPARTMENTS)},
                "commodity": {"kind": "listed", "values": [c for d in DEPARTMENTS for c in commodities[d]]},
            },
        },
        "tiers": {"kind": "none"},
        "purchase_channels": {"kind": "listed", "values": ["store", "online"]},
        "offer_channels": {"kind": "listed", "values": ["mail", "email", "app"]},
        "regions": {"kind": "listed", "values": list(REGIONS)},
        "offer_types": {"kind": "listed", "values": ["discount", "multi_buy", "cashback"]},
        "dayparts": [
            {"name": "morning", "start_hour": 0.0, "end_hour": 11.0},
            {"name": "midday", "start_hour": 11.0, "end_hour": 15.0},
            {"name": "afternoon", "start_hour": 15.0, "end_hour": 18.0},
            {"name": "evening", "start_hour": 18.0, "end_hour": 24.0},
        ],
        "customers": {"marketing_consent": False},
        "economics": {
            "currency": "EUR",
            "operating_cost_per_month": 45000.0,
            "gross_margin_rate": 0.25,
            "gross_margin_by_node": {"produce": 0.35, "alcohol": 0.3, "baby_care": 0.2, "tea_coffee": 0.3},
        },
    }
    return Program.model_validate(data)


def _catalogue(rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """~30 departments, 250 commodities, 8-24 products each."""
    others = len(DEPARTMENTS) - 1
    sizes = rng.multinomial(N_COMMODITIES - len(BABY_COMMODITIES) - others, np.full(others, 1 / others)) + 1
    commodities, k = {}, 0
    for d in DEPARTMENTS:
        if d == BABY:
            commodities[d] = list(BABY_COMMODITIES)
        else:
            commodities[d] = [f"{d}_{i + 1:02d}" for i in range(sizes[k])]
            k += 1
    rows = [(d, c) for d in DEPARTMENTS for c in commodities[d]]
    per = rng.integers(8, 25, size=len(rows))
    dept = np.repeat([r[0] for r in rows], per)
    comm = np.repeat([r[1] for r in rows], per)
    products = pd.DataFrame({
        "product_id": [f"G{i + 1:05d}" for i in range(len(dept))],
        "department": dept,
        "commodity": comm,
    })
    return products, commodities


def generate(n_customers: int = 3000, days: int = 365, seed: int = 42, end_date: str | pd.Timestamp = "2026-06-30") -> ScenarioData:
    """The grocery tables for ``n_customers`` households over ``days`` days before ``end_date``."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp(end_date).normalize()
    start = end - pd.Timedelta(days=days)
    products, commodities = _catalogue(rng)
    program = grocery_program(commodities)
    n_prod = len(products)
    dept_of = pd.Categorical(products["department"], categories=DEPARTMENTS).codes
    is_baby_product = products["department"].to_numpy() == BABY
    price = np.round(np.exp(rng.normal(1.0, 0.7, size=n_prod)), 2).clip(0.3, 40)

    # Households and personas; baby households are young families.
    persona = rng.choice(len(PERSONAS), size=n_customers, p=PERSONA_SHARE)
    has_baby = (persona == 0) & (rng.random(n_customers) < 0.85)
    ids = np.array([f"H{i + 1:06d}" for i in range(n_customers)])
    home_store = rng.integers(0, N_STORES, size=n_customers)
    online = rng.random(n_customers) < 0.12

    # Repertoire: regular products by department affinity (persona-specific), baby care only for babies.
    dept_affinity = rng.gamma(2.0, 1.0, size=(len(PERSONAS), len(DEPARTMENTS)))
    dept_affinity[:, DEPARTMENTS.index(BABY)] = 0.0
    prod_weight = dept_affinity[:, dept_of] * rng.gamma(1.0, 1.0, size=n_prod)  # persona x product
    prod_cdf = np.cumsum(prod_weight, axis=1)
    prod_cdf /= prod_cdf[:, -1:]
    u = rng.random((n_customers, REPERTOIRE))
    repertoire = np.empty((n_customers, REPERTOIRE), dtype=np.int64)
    for p in range(len(PERSONAS)):
        rows = persona == p
        repertoire[rows] = np.searchsorted(prod_cdf[p], u[rows]).clip(0, n_prod - 1)
    baby_products = np.flatnonzero(is_baby_product)
    n_baby = int(has_baby.sum())
    repertoire[has_baby, :6] = rng.choice(baby_products, size=(n_baby, 6))
    rep_weight = rng.gamma(0.8, 1.0, size=(n_customers, REPERTOIRE))
    rep_cdf = np.cumsum(rep_weight, axis=1)
    rep_cdf /= rep_cdf[:, -1:]

    # Visits: Poisson per household, stopping at a churn day for 15% of households.
    rate = np.array(VISITS_PER_WEEK)[persona] / 7 * np.exp(rng.normal(0, 0.35, n_customers))
    churn_day = np.where(rng.random(n_customers) < CHURN_SHARE, rng.integers(days // 3, days, n_customers), days)
    n_visits = rng.poisson(rate * days)
    visit_h = np.repeat(np.arange(n_customers), n_visits)
    visit_day = rng.integers(0, days, size=len(visit_h))
    keep = visit_day < churn_day[visit_h]
    visit_h, visit_day = visit_h[keep], visit_day[keep]
    hour = rng.normal(14.0, 3.2, size=len(visit_h)).clip(7.0, 21.9)
    visit_ts = start + pd.to_timedelta(visit_day, unit="D") + pd.to_timedelta(np.round(hour * 60), unit="min")

    # Lines: mostly from the household's repertoire, some exploration; one line per product per visit.
    n_lines = 1 + rng.poisson(np.array(BASKET_LINES)[persona[visit_h]] - 1)
    line_visit = np.repeat(np.arange(len(visit_h)), n_lines)
    line_h = visit_h[line_visit]
    slot = _repertoire_slots(rng.random(len(line_h)), rep_cdf, line_h)
    product = np.where(rng.random(len(line_h)) < FROM_REPERTOIRE, repertoire[line_h, slot], rng.integers(0, n_prod, len(line_h)))
    product = np.where(is_baby_product[product] & ~has_baby[line_h], rng.integers(0, n_prod, len(line_h)), product)
    lines = pd.DataFrame({"visit": line_visit, "product": product}).drop_duplicates()
    line_visit, product = lines["visit"].to_numpy(), lines["product"].to_numpy()
    quantity = 1 + rng.poisson(0.3, size=len(product))
    amount = np.round(price[product] * quantity, 2)
    refund = rng.random(len(product)) < 0.003
    amount[refund] = -amount[refund]
    h = visit_h[line_visit]
    channel = np.where(online[h], "online", "store")
    store = np.where(online[h], "WEB", np.char.add("S", np.char.zfill(home_store[h].astype(str), 3)))
    tx = pd.DataFrame({
        "transaction_id": np.char.add("V", line_visit.astype(str)),
        "customer_id": ids[h],
        "ts": visit_ts[line_visit],
        "store_id": store,
        "channel": channel,
        "product_id": products["product_id"].to_numpy()[product],
        "category": products["commodity"].to_numpy()[product],
        "quantity": quantity,
        "amount": amount,
    })

    offers, offer_products, coupon_products = _coupons(rng, products, start, days, price)
    events, truth = _campaign_events(rng, offers, coupon_products, repertoire, has_baby, ids, churn_day, start, end)
    tx = pd.concat([tx, _redemption_lines(rng, events, offers, coupon_products, products, price, ids)], ignore_index=True)
    tx = tx.sort_values(["ts", "transaction_id"], kind="stable").reset_index(drop=True)

    first_seen = tx.groupby("customer_id")["ts"].min()
    signup = (start - pd.to_timedelta(rng.integers(0, 900, n_customers), unit="D")).to_numpy()
    signup = np.minimum(signup, pd.Series(ids).map(first_seen).fillna(start).to_numpy())
    customers = pd.DataFrame({
        "customer_id": ids,
        "signup_date": pd.to_datetime(signup).normalize(),
        "region": np.array(REGIONS)[home_store % len(REGIONS)],
        "marketing_consent": rng.random(n_customers) < 0.8,
    })
    households = pd.DataFrame({
        "customer_id": ids, "persona": np.array(PERSONAS)[persona], "has_baby": has_baby,
        "churned": churn_day < days, "churn_date": start + pd.to_timedelta(np.minimum(churn_day, days), unit="D"),
    })
    tables = {"customers": customers, "transactions": tx, "products": products, "offers": offers,
              "offer_products": offer_products, "offer_events": events}
    return ScenarioData(tables, program, {"households": households, "coupon_redemption": truth})


def _repertoire_slots(draw: np.ndarray, rep_cdf: np.ndarray, line_h: np.ndarray, block: int = 500_000) -> np.ndarray:
    """Each line's repertoire slot: how many of its household's cumulative weights its draw exceeds.

    Computed in blocks of lines (the same figures as one comparison of every line with all
    ``REPERTOIRE`` weights, without a lines x REPERTOIRE matrix: 8 GB at 100k households)."""
    slot = np.empty(len(line_h), dtype=np.int64)
    for lo in range(0, len(line_h), block):
        hi = lo + block
        slot[lo:hi] = (draw[lo:hi, None] > rep_cdf[line_h[lo:hi]]).sum(axis=1)
    return slot.clip(0, REPERTOIRE - 1)


def _coupons(rng, products: pd.DataFrame, start: pd.Timestamp, days: int, price: np.ndarray):
    """CAMPAIGNS x COUPONS_PER_CAMPAIGN coupons, each on 1-5 products of one commodity (or all of it)."""
    commodity_products = products.groupby("commodity").indices
    names = np.array(sorted(commodity_products))
    baby = np.array([c for c in names if c in BABY_COMMODITIES])
    step = max((days - VALID_DAYS - 60) // CAMPAIGNS, 1)
    offers, pairs, covered = [], [], {}
    for k in range(CAMPAIGNS):
        valid_from = start + pd.Timedelta(days=60 + k * step)
        chosen = np.concatenate([rng.choice(baby, 5), rng.choice(names, COUPONS_PER_CAMPAIGN - 5)])
        for j, commodity in enumerate(chosen):
            offer_id = f"K{k + 1}-{j + 1:03d}"
            pool = commodity_products[commodity]
            whole = rng.random() < 0.2
            covers = pool if whole else rng.choice(pool, size=min(len(pool), rng.integers(1, 6)), replace=False)
            covered[offer_id] = np.asarray(covers)
            value = float(np.round(max(0.3, min(5.0, price[covers].mean() * rng.uniform(0.15, 0.4))), 2))
            offers.append({
                "offer_id": offer_id,
                "name": f"{commodity.replace('_', ' ')} coupon (campaign {k + 1})",
                "reward_category": str(commodity),
                "offer_type": str(rng.choice(["discount", "multi_buy", "cashback"], p=[0.6, 0.25, 0.15])),
                "value": value,
                "cost_per_redemption": float(np.round(value * 1.05, 2)),
                "min_spend": float(rng.choice([0.0, 10.0, 25.0], p=[0.7, 0.2, 0.1])),
                "channels": ["mail", "email", "app"] if rng.random() < 0.5 else ["email", "app"],
                "valid_from": valid_from,
                "valid_to": valid_from + pd.Timedelta(days=VALID_DAYS) - pd.Timedelta(seconds=1),
            })
            pairs += [(offer_id, products["product_id"].iat[p]) for p in covers]
    return pd.DataFrame(offers), pd.DataFrame(pairs, columns=["offer_id", "product_id"]), covered


def _campaign_events(rng, offers, coupon_products, repertoire, has_baby, ids, churn_day, start, end):
    """Per campaign: a random 45% of active households get 12 random coupons; 10% of them are control."""
    n = len(ids)
    campaign = offers["offer_id"].str.split("-").str[0].to_numpy()
    hh, cc = [], []
    for k in dict.fromkeys(campaign):
        coupons = np.flatnonzero(campaign == k)
        sent_day = (offers["valid_from"].iat[coupons[0]] - start).days
        targeted = np.flatnonzero((rng.random(n) < TARGETED_SHARE) & (churn_day > sent_day))
        picks = np.argsort(rng.random((len(targeted), len(coupons))), axis=1)[:, :COUPONS_PER_HOUSEHOLD]
        hh.append(np.repeat(targeted, COUPONS_PER_HOUSEHOLD))
        cc.append(coupons[picks].ravel())
    h, c = np.concatenate(hh), np.concatenate(cc)
    # (household, campaign) -> control: one draw per event, the household's first event of the campaign decides
    keys = pd.Series(campaign[c]).str.cat(pd.Series(h).astype(str), sep="/")
    codes, _ = pd.factorize(keys)
    first = np.unique(codes, return_index=True)[1]
    control = (rng.random(len(keys)) < CONTROL_SHARE)[first][codes]

    # Share of each coupon's products in the household's repertoire (the planted product-level habit).
    in_repertoire = np.zeros((n, int(max(p.max() for p in coupon_products.values()) + 1)), dtype=bool)
    np.put_along_axis(in_repertoire, repertoire.clip(0, in_repertoire.shape[1] - 1), True, axis=1)
    offer_ids = offers["offer_id"].to_numpy()
    covered = [coupon_products[o] for o in offer_ids]
    sizes = np.array([len(p) for p in covered])
    pair_event = np.repeat(np.arange(len(h)), sizes[c])
    pair_product = np.concatenate([covered[j] for j in c])
    share = np.bincount(pair_event, weights=in_repertoire[h[pair_event], pair_product], minlength=len(h)) / sizes[c]
    baby = offers["reward_category"].isin(BABY_COMMODITIES).to_numpy()[c]
    logit = (REDEEM_BASE + REDEEM_REPERTOIRE * share + REDEEM_VALUE * offers["value"].to_numpy()[c]
             + np.where(has_baby[h], REDEEM_BABY, REDEEM_BABY_NONE) * baby)
    p = 1 / (1 + np.exp(-logit))

    sent_at = (offers["valid_from"] + pd.Timedelta(hours=7)).to_numpy()[c]
    valid_to = offers["valid_to"].to_numpy()[c]
    sent = ~control
    redeemed = sent & (rng.random(len(h)) < p)
    viewed = sent & (redeemed | (rng.random(len(h)) < 0.55))
    view_delay = pd.to_timedelta(rng.exponential(10.0, len(h)).clip(0.05, 72), unit="h").to_numpy()
    window = (valid_to - sent_at - view_delay) / np.timedelta64(1, "s")
    redeem_delay = pd.to_timedelta(rng.random(len(h)) * window.clip(0), unit="s").to_numpy()
    viewed_at = pd.Series(sent_at + view_delay).where(viewed)
    redeemed_at = (viewed_at + redeem_delay).where(redeemed)
    redeemed_at = redeemed_at.where(redeemed_at < end)  # the data ends at the run date
    events = pd.DataFrame({
        "customer_id": ids[h], "offer_id": offer_ids[c], "sent_at": sent_at,
        "channel": np.where(sent, rng.choice(["mail", "email", "app"], len(h)), "email"),
        "viewed_at": viewed_at.dt.floor("s"), "redeemed_at": redeemed_at.dt.floor("s"), "is_control": control,
    })
    truth = pd.DataFrame({"customer_id": ids[h], "offer_id": offer_ids[c], "repertoire_share": share,
                          "baby_coupon": baby, "p_redeem": p})
    return events, truth


def _redemption_lines(rng, events, offers, coupon_products, products, price, ids) -> pd.DataFrame:
    """One receipt per redemption: a covered product at its price minus the coupon's value."""
    red = events[events["redeemed_at"].notna()].reset_index(drop=True)
    value = red["offer_id"].map(offers.set_index("offer_id")["value"]).to_numpy()
    product = np.array([rng.choice(coupon_products[o]) for o in red["offer_id"]], dtype=np.int64)
    return pd.DataFrame({
        "transaction_id": [f"R{i}" for i in range(len(red))],
        "customer_id": red["customer_id"].to_numpy(),
        "ts": red["redeemed_at"].to_numpy(),
        "store_id": "S000",
        "channel": "store",
        "product_id": products["product_id"].to_numpy()[product],
        "category": products["commodity"].to_numpy()[product],
        "quantity": 1,
        "amount": np.round(np.maximum(price[product] - value, 0.01), 2),
    })


def write(data: ScenarioData, out_dir: str | Path, fmt: str = "parquet") -> dict[str, Path]:
    """Each table as ``<table>.<fmt>``, the program as ``program.toml``, the truth in ``ground_truth/``."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"write: fmt must be 'parquet' or 'csv', got '{fmt}'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in data.tables.items():
        if fmt == "csv":
            frame = frame.assign(**{c: frame[c].map(json.dumps) for c in frame.columns
                                    if len(frame) and isinstance(frame[c].iat[0], list)})
        paths[name] = write_frame(frame, out / f"{name}.{fmt}")
    with atomic_path(out / PROGRAM_FILE) as tmp:
        tmp.write_text("# The generated grocery program (rewards generate --scenario grocery).\n"
                       + program_to_toml(data.program), encoding="utf-8")
    paths["program"] = out / PROGRAM_FILE
    for name, frame in data.ground_truth.items():
        paths[f"ground_truth/{name}"] = write_frame(frame, out / "ground_truth" / f"{name}.parquet")
    return paths
