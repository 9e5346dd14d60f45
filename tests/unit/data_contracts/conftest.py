"""Tiny hand-built tables that satisfy every contract; tests corrupt copies of them."""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.schema import TABLES, pandas_dtype

RUN_DATE = pd.Timestamp("2026-06-30")


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Three customers, a few purchases, two offers, their events and feedback; all valid."""
    t = pd.Timestamp
    raw = {
        "customers": {
            "customer_id": ["C1", "C2", "C3"],
            "signup_date": [t("2024-01-05"), t("2025-03-01"), t("2026-01-10")],
            "tier": ["gold", "bronze", "silver"],
            "points_balance": [120, 0, 35],
            "region": ["north", "south", "east"],
            "birth_year": pd.array([1980, None, 1999], dtype="Int64"),
            "marketing_consent": [True, False, True],
        },
        "transactions": {
            "transaction_id": ["T1", "T1", "T2", "T3", "T4", "T5"],
            "customer_id": ["C1", "C1", "C2", "C3", "C1", "C3"],
            "ts": [t("2026-05-01 08:00"), t("2026-05-01 08:00"), t("2026-05-02 12:30"),
                   t("2026-05-03 15:00"), t("2026-05-04 08:10"), t("2026-06-29 23:59")],
            "store_id": ["S1", "S1", "S2", "S3", "S1", "S3"],
            "channel": ["store", "store", "app", "web", "drive_thru", "store"],
            "product_id": ["P1", "P2", "P3", "P4", "P1", "P4"],
            "category": ["coffee", "bakery", "lunch", "snacks", "coffee", "snacks"],
            "quantity": [1, 2, 1, 3, 1, 1],
            "amount": [3.5, 5.0, 9.9, 6.0, 3.5, -2.0],
            "is_refund": [False, False, False, False, False, True],
        },
        "offers": {
            "offer_id": ["O1", "O2"],
            "name": ["Morning pastry", "Lunch bonus"],
            "reward_category": ["bakery", "lunch"],
            "offer_type": ["discount", "bonus_points"],
            "value": [1.5, 2.0],
            "cost_per_redemption": [0.8, 0.5],
            "min_spend": [0.0, 8.0],
            "eligible_tiers": [["bronze", "silver"], ["gold", "platinum"]],
            "channels": [["app", "push"], ["email"]],
            "valid_from": [t("2026-04-01"), t("2026-05-01")],
            "valid_to": [t("2026-06-30"), t("2026-05-31")],
            "budget_redemptions": pd.array([100, None], dtype="Int64"),
        },
        "offer_events": {
            "customer_id": ["C1", "C2", "C3", "C1"],
            "offer_id": ["O1", "O1", "O2", "O2"],
            "sent_at": [t("2026-04-02 07:00"), t("2026-04-02 07:00"), t("2026-05-02 09:00"), t("2026-05-02 09:00")],
            "channel": ["app", "push", "email", "email"],
            "viewed_at": [t("2026-04-02 07:30"), pd.NaT, t("2026-05-02 10:00"), pd.NaT],
            "redeemed_at": [t("2026-04-03 08:00"), pd.NaT, pd.NaT, pd.NaT],
            "is_control": [False, False, False, True],
        },
        "feedback": {
            "customer_id": ["C1", "C3"],
            "submitted_at": [t("2026-05-10 18:00"), t("2026-06-01 09:00")],
            "nps_score": [9, 4],
            "comment": ["great coffee", None],
        },
    }
    return {
        name: pd.DataFrame(cols).astype({c.name: pandas_dtype(c) for c in TABLES[name].columns})
        for name, cols in raw.items()
    }


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    """A fresh copy of the tiny valid tables (tests corrupt it in place)."""
    return tiny_tables()


@pytest.fixture(scope="session")
def make_tables():
    """The factory itself, for module-scoped fixtures that build their own corrupted copy."""
    return tiny_tables


@pytest.fixture(scope="session")
def run_date() -> pd.Timestamp:
    return RUN_DATE


@pytest.fixture(scope="session")
def write_raw():
    """``write_raw(tables, directory, csv=(names...))`` writes a raw folder."""
    return _write_tables


@pytest.fixture(scope="session")
def validator():
    """One GX context for the session (creating one costs about a second)."""
    import warnings

    from pipelines.validate import Validator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Validator(RUN_DATE)


def _write_tables(tables: dict[str, pd.DataFrame], directory, csv: tuple[str, ...] = ()) -> None:
    """Write ``tables`` as Parquet (or CSV for the names in ``csv``; lists as JSON arrays)."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if name in csv:
            out = frame.copy()
            for col in out.columns:
                if any(isinstance(v, list) for v in out[col]):
                    out[col] = out[col].map(lambda v: json.dumps(v) if isinstance(v, list) else v)
            out.to_csv(directory / f"{name}.csv", index=False)
        else:
            frame.to_parquet(directory / f"{name}.parquet", index=False)
