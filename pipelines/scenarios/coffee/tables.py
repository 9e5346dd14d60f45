"""The canonical tables assembled from the simulated visits, redemptions, feedback and customers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES, PURCHASE_CHANNELS, TIERS
from pipelines.scenarios.coffee.parameters import COMMENTS, REFUND_RATE, TIER_POINTS_MULTIPLIER
from pipelines.scenarios.coffee.sampling import _as_datetime, _ids, _take_str


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
