"""Training-set helpers on hand-made tables: labels, BG/NBD inputs, exclusions, offer rows."""

import pandas as pd
import pytest

from data_contracts.schema import empty_frame
from models.training_sets import (
    LabelHorizonError,
    budget_used_up,
    churn_labels,
    churn_snapshot_dates,
    rfm_snapshots,
    visit_days,
)

T = pd.Timestamp


def _tx(rows):
    """rows: (customer_id, ts, is_refund)."""
    tx = pd.DataFrame(rows, columns=["customer_id", "ts", "is_refund"])
    tx["ts"] = pd.to_datetime(tx["ts"])
    return tx


def test_visit_days_ignore_refunds_and_duplicates():
    tx = _tx([("a", "2026-01-01 08:00", False), ("a", "2026-01-01 17:00", False), ("a", "2026-01-03 09:00", True)])
    days = visit_days(tx)
    assert days.to_dict("list") == {"customer_id": ["a"], "day": [T("2026-01-01")]}


def test_rfm_counts_repeat_days_before_as_of_only():
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"],
                              "signup_date": pd.to_datetime(["2025-12-01", "2025-12-15", "2026-02-01"])})
    tx = _tx([("a", "2026-01-01 08:00", False), ("a", "2026-01-05 08:00", False), ("a", "2026-01-11 08:00", False),
              ("a", "2026-01-20 08:00", False)])  # the last one is after as_of
    rfm = rfm_snapshots(customers, tx, [T("2026-01-15")]).set_index("customer_id")
    assert list(rfm.index) == ["a", "b"]  # c signed up after as_of
    assert rfm.loc["a", ["frequency", "recency", "T", "days_inactive"]].tolist() == [2.0, 10.0, 14.0, 4.0]
    assert rfm.loc["b", ["frequency", "recency", "T", "days_inactive"]].tolist() == [0.0, 0.0, 31.0, 31.0]


def test_churn_label_is_no_visit_in_the_horizon():
    visits = visit_days(_tx([("a", "2026-02-10 08:00", False), ("b", "2026-04-10 08:00", False)]))
    keys = pd.DataFrame({"customer_id": ["a", "b", "c"], "as_of": [T("2026-02-01")] * 3})
    assert churn_labels(visits, keys, horizon_days=60).tolist() == [0, 1, 1]
    assert churn_labels(visits, keys, horizon_days=90).tolist() == [0, 0, 1]


def test_snapshot_dates_end_one_horizon_before_the_data_does():
    tables = {"transactions": _tx([("a", "2026-06-29 10:00", False)])}
    dates = churn_snapshot_dates(tables, horizon_days=60, n_snapshots=3, every_days=30)
    assert dates == [T("2026-03-02"), T("2026-04-01"), T("2026-05-01")]


def test_churn_training_set_refuses_dates_whose_labels_are_not_observed():
    from models.training_sets import churn_training_set

    tables = {name: empty_frame(name) for name in ("customers", "transactions", "offers", "offer_events", "feedback")}
    tables["transactions"] = pd.concat(
        [tables["transactions"], _tx([("a", "2026-06-29 10:00", False)])], ignore_index=True
    )
    with pytest.raises(LabelHorizonError, match=r"need 60 days of labels after them, but the data ends at 2026-06-30"):
        churn_training_set(tables, [T("2026-06-01")], horizon_days=60)


def test_budget_used_up_counts_redemptions_before_the_send():
    offers = pd.DataFrame({"offer_id": ["o", "free"], "budget_redemptions": pd.array([2, None], dtype="Int64")})
    events = pd.DataFrame(
        {"offer_id": ["o", "o", "o", "o", "free"],
         "redeemed_at": pd.to_datetime(["2026-01-02", "2026-01-03", None, None, "2026-01-02"]),
         "sent_at": pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:00", "2026-01-02 12:00", "2026-01-04 00:00", "2026-01-05 00:00"])}
    )
    assert budget_used_up(events, offers, events["sent_at"]).tolist() == [False, False, False, True, False]


def _span(first: str, last: str) -> dict:
    """Tables holding only two purchases: the data runs from ``first`` to ``last``."""
    return {"transactions": _tx([("a", f"{first} 10:00", False), ("a", f"{last} 10:00", False)])}


def test_windows_with_defaults_label_a_long_horizon_on_an_18_month_log():
    from models.training_sets import churn_windows

    w = churn_windows(_span("2025-01-01", "2026-06-29"), horizon_days=180)
    assert w.validation == T("2026-01-01")  # 2026-06-30 minus 180 days: the latest fully observed
    assert len(w.training) == 5 and w.training[-1] == T("2025-07-05")  # 180 days before validation
    assert all(b - a == pd.Timedelta(days=30) for a, b in zip(w.training, w.training[1:]))
    assert all(d + pd.Timedelta(days=180) <= w.validation for d in w.training)
    assert w.training[0] >= T("2025-01-31")  # 30 days of history before the first snapshot
    assert w.as_params()["validation_as_of"] == "2026-01-01" and w.dates[-1] == w.validation


def test_windows_follow_as_of_snapshots_and_spacing():
    from models.training_sets import churn_windows

    w = churn_windows(_span("2025-01-01", "2026-06-29"), horizon_days=60, as_of="2026-03-01", n_snapshots=3,
                      every_days=14)
    assert w.validation == T("2026-03-01")
    assert w.training == (T("2025-12-03"), T("2025-12-17"), T("2025-12-31"))  # the last: 60 days before


def test_windows_that_fit_fewer_default_snapshots_use_what_fits():
    from models.training_sets import churn_windows

    w = churn_windows(_span("2025-01-01", "2025-12-31"), horizon_days=150)
    # Data end 2026-01-01: validation 150 days before, the last training snapshot 150 days before that;
    # only one more fits 30 days earlier with 30 days of history (from 2025-01-31).
    assert w.validation == T("2025-08-04") and w.training == (T("2025-02-05"), T("2025-03-07"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon_days": 180, "as_of": "2026-03-01"}, r"the latest possible validation date is 2026-01-01"),
        ({"horizon_days": 180, "as_of": "2025-03-01"}, r"use a date from 2025-07-30 to 2026-01-01"),
        ({"horizon_days": 300}, r"the longest horizon it can label is 257 days"),
        ({"horizon_days": 180, "n_snapshots": 20}, r"at most 6 fit: use --snapshots 6"),
        ({"horizon_days": 0}, r"horizon_days must be >= 1, got 0"),
    ],
)
def test_impossible_windows_say_what_the_data_allows(kwargs, message):
    from models.training_sets import TrainingWindowError, churn_windows

    with pytest.raises(TrainingWindowError, match=message):
        churn_windows(_span("2025-01-01", "2026-06-29"), **kwargs)


def test_an_unparsable_as_of_is_named():
    from models.training_sets import TrainingWindowError, churn_windows

    with pytest.raises(TrainingWindowError, match="as_of must be a date like 2026-01-31, got 'last tuesday'"):
        churn_windows(_span("2025-01-01", "2026-06-29"), as_of="last tuesday")
