"""``generate``: the coffee scenario's five canonical tables and ground truth, deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES, REGIONS
from pipelines.scenarios.coffee.campaigns import _offer_events, _offers
from pipelines.scenarios.coffee.data import SyntheticData
from pipelines.scenarios.coffee.parameters import AFFINITY, N_STORES, PERSONAS, PRODUCTS
from pipelines.scenarios.coffee.sampling import _as_datetime, _conform, _take_str
from pipelines.scenarios.coffee.tables import _assemble_transactions, _customers_table, _feedback
from pipelines.scenarios.coffee.visits import _customers_latent, _tiers, _transactions, _visit_counts


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
