"""A hand-built, three-customer world whose profile at AS_OF is computed by hand in test_profiles.py.

c1: a morning coffee regular (4 visits, a refund-only receipt, two offers, two NPS answers).
c2: signed up 9 days before AS_OF, no history at all.
c3: two afternoon/evening snack visits long ago, one offer, one NPS answer.
c4: signs up after AS_OF and must not appear. Rows at or after AS_OF are planted to prove they are ignored.
"""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.schema import TABLES, pandas_dtype

AS_OF = pd.Timestamp("2026-03-01")
T = pd.Timestamp


def frame(table: str, rows: list[tuple]) -> pd.DataFrame:
    """Rows in declared column order, cast to the validated dtypes."""
    cols = TABLES[table].columns
    df = pd.DataFrame(rows, columns=[c.name for c in cols])
    return df.astype({c.name: pandas_dtype(c) for c in cols})


def tiny_tables() -> dict[str, pd.DataFrame]:
    customers = frame(
        "customers",
        [
            ("c1", T("2025-01-01"), "silver", 200, "north", 1990, True),
            ("c2", T("2026-02-20"), "bronze", 0, "south", None, True),
            ("c3", T("2025-06-01"), "platinum", 5000, "east", 1975, False),
            ("c4", T("2026-03-05"), "bronze", 0, "west", 2000, True),
        ],
    )
    tx = [
        # transaction_id, customer, ts, store, channel, product, category, qty, amount, refund
        ("t1", "c1", T("2026-02-27 08:00"), "s1", "app", "p_coffee", "coffee", 1, 4.0, False),
        ("t1", "c1", T("2026-02-27 08:00"), "s1", "app", "p_croissant", "bakery", 1, 3.0, False),
        ("t2", "c1", T("2026-02-20 08:30"), "s1", "app", "p_coffee", "coffee", 1, 4.0, False),
        ("t3", "c1", T("2026-02-14 10:00"), "s2", "store", "p_coffee", "coffee", 1, 4.0, False),
        ("t3", "c1", T("2026-02-14 10:00"), "s2", "store", "p_bagel", "breakfast", 1, 6.0, False),
        ("t4", "c1", T("2025-12-01 12:00"), "s1", "store", "p_sandwich", "lunch", 1, 9.0, False),
        ("t4", "c1", T("2025-12-01 12:00"), "s1", "store", "p_cola", "cold_drinks", 1, 2.0, False),
        ("r1", "c1", T("2026-02-21 09:00"), "s1", "app", "p_croissant", "bakery", 1, -3.0, True),
        ("t6", "c3", T("2025-07-01 18:00"), "s3", "web", "p_chips", "snacks", 1, 2.5, False),
        ("t6", "c3", T("2025-07-01 18:00"), "s3", "web", "p_cola", "cold_drinks", 1, 3.0, False),
        ("t7", "c3", T("2025-06-10 15:00"), "s3", "drive_thru", "p_chips", "snacks", 1, 2.0, False),
        # at or after AS_OF: ignored
        ("t8", "c1", T("2026-03-01 00:00"), "s9", "web", "p_tea", "tea", 1, 50.0, False),
        ("t9", "c4", T("2026-03-06 09:00"), "s1", "store", "p_coffee", "coffee", 1, 4.0, False),
    ]
    offers = frame(
        "offers",
        [
            ("o1", "Pastry discount", "bakery", "discount", 1.0, 1.0, 0.0, ["bronze", "silver"], ["app"],
             T("2025-01-01"), T("2027-01-01"), None),
            ("o2", "Coffee points", "coffee", "bonus_points", 0.5, 0.2, 0.0, ["silver", "platinum"], ["email"],
             T("2025-01-01"), T("2027-01-01"), 100),
        ],
    )
    events = frame(
        "offer_events",
        [
            ("c1", "o1", T("2026-02-01"), "app", T("2026-02-02"), T("2026-02-10"), False),
            ("c1", "o2", T("2026-02-15"), "email", T("2026-03-02"), None, False),  # viewed after AS_OF
            ("c1", "o1", T("2026-01-10"), "app", None, None, True),  # control: never sent
            ("c1", "o2", T("2026-03-01"), "email", None, None, False),  # sent at AS_OF: ignored
            ("c3", "o2", T("2025-08-01"), "email", None, None, False),
        ],
    )
    feedback = frame(
        "feedback",
        [
            ("c1", T("2026-01-05"), 6, None),
            ("c1", T("2026-02-25"), 9, "great"),
            ("c3", T("2025-09-01"), 7, None),
            ("c2", T("2026-03-02"), 0, "late answer"),  # after AS_OF: ignored
        ],
    )
    return {
        "customers": customers,
        "transactions": frame("transactions", tx),
        "offers": offers,
        "offer_events": events,
        "feedback": feedback,
    }


@pytest.fixture
def tiny():
    return tiny_tables()


@pytest.fixture
def as_of():
    return AS_OF


@pytest.fixture(scope="session")
def tiny_profile():
    from features import build_profiles

    return build_profiles(tiny_tables(), AS_OF)
