"""Point-in-time correctness: nothing at or after as_of can change a profile."""

from __future__ import annotations

import pandas as pd
import pandas.testing as pdt
import pytest

from features import build_profiles, build_training_snapshots


def _future_rows(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every table plus rows dated at or after as_of, for existing and brand-new customers."""
    t = {k: v.copy() for k, v in tables.items()}
    new_customer = t["customers"].iloc[[0]].assign(customer_id="c_future", signup_date=as_of)
    t["customers"] = pd.concat([t["customers"], new_customer], ignore_index=True)
    tx = t["transactions"]
    future_tx = pd.concat(
        [
            tx.iloc[[0, 1]].assign(transaction_id="f1", ts=as_of),  # exactly at the cutoff
            tx.iloc[[2]].assign(transaction_id="f2", ts=as_of + pd.Timedelta(days=3), category="tea", amount=99.0),
            tx.iloc[[0]].assign(transaction_id="f3", customer_id="c2", ts=as_of + pd.Timedelta(hours=1)),
            tx.iloc[[0]].assign(transaction_id="f4", customer_id="c_future", ts=as_of + pd.Timedelta(days=1)),
            tx.iloc[[7]].assign(transaction_id="f5", ts=as_of, amount=-100.0),  # a future refund
        ],
        ignore_index=True,
    )
    t["transactions"] = pd.concat([tx, future_tx], ignore_index=True)
    ev = t["offer_events"]
    future_ev = pd.concat(
        [
            ev.iloc[[0]].assign(sent_at=as_of, viewed_at=as_of, redeemed_at=as_of + pd.Timedelta(days=1)),
            ev.iloc[[4]].assign(customer_id="c2", sent_at=as_of + pd.Timedelta(days=2), viewed_at=pd.NaT),
            ev.iloc[[4]].assign(customer_id="c_future", sent_at=as_of + pd.Timedelta(days=2)),
        ],
        ignore_index=True,
    )
    t["offer_events"] = pd.concat([ev, future_ev], ignore_index=True)
    fb = t["feedback"]
    future_fb = pd.concat(
        [
            fb.iloc[[0]].assign(submitted_at=as_of, nps_score=0),
            fb.iloc[[2]].assign(customer_id="c2", submitted_at=as_of + pd.Timedelta(days=9), nps_score=10),
        ],
        ignore_index=True,
    )
    t["feedback"] = pd.concat([fb, future_fb], ignore_index=True)
    return t


def test_rows_at_or_after_as_of_change_no_profile(tiny, as_of):
    before = build_profiles(tiny, as_of)
    after = build_profiles(_future_rows(tiny, as_of), as_of)
    pdt.assert_frame_equal(before, after)


def test_a_later_cutoff_does_see_the_appended_rows(tiny, as_of):
    # The guard above is only meaningful if the same rows do change the profile once they are in the past.
    later = build_profiles(_future_rows(tiny, as_of), as_of + pd.Timedelta(days=10)).set_index("customer_id")
    assert "c_future" in later.index
    assert later.loc["c2", "visits_30d"] == 1
    assert later.loc["c2", "feedback_count"] == 2  # the planted late answer and the appended one


def test_row_order_does_not_matter(tiny, as_of):
    shuffled = {k: v.sample(frac=1.0, random_state=3).reset_index(drop=True) for k, v in tiny.items()}
    pdt.assert_frame_equal(build_profiles(tiny, as_of), build_profiles(shuffled, as_of))


def test_snapshot_equals_profile_built_alone_on_truncated_data(tiny, as_of):
    d1, d2 = as_of - pd.Timedelta(days=20), as_of
    snapshots = build_training_snapshots(tiny, [d1, d2])
    assert list(snapshots.columns[:2]) == ["customer_id", "as_of"]
    truncated = {
        "customers": tiny["customers"].loc[tiny["customers"]["signup_date"] < d1],
        "transactions": tiny["transactions"].loc[tiny["transactions"]["ts"] < d1],
        "offers": tiny["offers"],
        "offer_events": tiny["offer_events"].loc[tiny["offer_events"]["sent_at"] < d1].assign(
            viewed_at=lambda e: e["viewed_at"].where(e["viewed_at"] < d1),
            redeemed_at=lambda e: e["redeemed_at"].where(e["redeemed_at"] < d1),
        ),
        "feedback": tiny["feedback"].loc[tiny["feedback"]["submitted_at"] < d1],
    }
    alone = build_profiles(truncated, d1)
    first = snapshots.loc[snapshots["as_of"] == d1].drop(columns="as_of").reset_index(drop=True)
    pdt.assert_frame_equal(first, alone)
    second = snapshots.loc[snapshots["as_of"] == d2].drop(columns="as_of").reset_index(drop=True)
    pdt.assert_frame_equal(second, build_profiles(tiny, d2))
    assert first["customer_id"].tolist() == ["c1", "c3"]  # c2 signed up 9 days before d2


def test_chunked_build_equals_one_pass(tiny, as_of):
    pdt.assert_frame_equal(build_profiles(tiny, as_of, customers_per_chunk=1), build_profiles(tiny, as_of))


def test_time_zone_aware_as_of_is_rejected(tiny):
    from features.history import AsOfError

    with pytest.raises(AsOfError, match="time-zone aware"):
        build_profiles(tiny, pd.Timestamp("2026-03-01", tz="UTC"))


def test_missing_column_is_named(tiny, as_of):
    from data_contracts.errors import MissingColumnsError

    with pytest.raises(MissingColumnsError, match=r"table 'transactions'.*\['is_refund'\]"):
        build_profiles({**tiny, "transactions": tiny["transactions"].drop(columns="is_refund")}, as_of)


def test_sorted_receipt_ids_take_the_fast_path_and_give_the_same_profile(tiny, as_of):
    from features.history import receipt_codes

    by_id = tiny["transactions"].sort_values(["transaction_id", "product_id"]).reset_index(drop=True)
    assert (receipt_codes(by_id["transaction_id"]) == [0, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8]).all()  # r1, t1, t1, t2, ...
    pdt.assert_frame_equal(build_profiles({**tiny, "transactions": by_id}, as_of), build_profiles(tiny, as_of))


def test_empty_history_gives_zero_counts_and_nan_rates(tiny, as_of):
    from data_contracts.schema import empty_frame

    empty = {**tiny, **{name: empty_frame(name) for name in ("transactions", "offer_events", "feedback")}}
    profiles = build_profiles(empty, as_of)
    assert profiles["customer_id"].tolist() == ["c1", "c2", "c3"]
    assert (profiles["visits_365d"] == 0).all() and profiles["days_since_last_visit"].isna().all()
    assert (profiles["offers_sent"] == 0).all() and profiles["offers_redeem_rate"].isna().all()
    assert build_profiles(tiny, pd.Timestamp("2000-01-01")).empty  # nobody had signed up yet


def _truncate(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The world as it was known just before ``cutoff``: later rows gone, later views/redemptions unknown."""
    ev = tables["offer_events"]
    ev = ev.loc[ev["sent_at"] < cutoff].assign(
        viewed_at=lambda e: e["viewed_at"].where(e["viewed_at"] < cutoff),
        redeemed_at=lambda e: e["redeemed_at"].where(e["redeemed_at"] < cutoff),
    )
    return {
        "customers": tables["customers"].loc[tables["customers"]["signup_date"] < cutoff],
        "transactions": tables["transactions"].loc[tables["transactions"]["ts"] < cutoff],
        "offers": tables["offers"],
        "offer_events": ev,
        "feedback": tables["feedback"].loc[tables["feedback"]["submitted_at"] < cutoff],
    }


def test_generated_sample_snapshots_equal_profiles_built_on_the_past_alone(sample):
    d1, d2 = pd.Timestamp("2026-01-15"), pd.Timestamp("2026-04-01 12:00")
    snapshots = build_training_snapshots(sample.tables, [d1, d2])
    for cutoff in (d1, d2):
        snap = snapshots.loc[snapshots["as_of"] == cutoff].drop(columns="as_of").reset_index(drop=True)
        alone = build_profiles(_truncate(sample.tables, cutoff), cutoff)
        assert len(alone) > 1000
        pdt.assert_frame_equal(snap, alone)
