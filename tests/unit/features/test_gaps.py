"""The 'gaps' family: nothing after as_of changes it, and its BG/NBD columns equal the training set's RFM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt

from features.catalogue import family_features
from features.history import prepare_history
from features.profiles import compute_family

GAPS = [f.name for f in family_features("gaps")]


def test_future_visits_change_no_gap_feature(tiny, as_of):
    before = compute_family("gaps", prepare_history(tiny, as_of))
    tx = tiny["transactions"]
    future = pd.concat(
        [tx.iloc[[0]].assign(transaction_id="f1", ts=as_of),  # exactly at the cutoff
         tx.iloc[[2]].assign(transaction_id="f2", customer_id="c3", ts=as_of + pd.Timedelta(days=5)),
         tx.iloc[[2]].assign(transaction_id="f3", customer_id="c2", ts=as_of + pd.Timedelta(hours=1))],
        ignore_index=True,
    )
    later = {**tiny, "transactions": pd.concat([tx, future], ignore_index=True)}
    pdt.assert_frame_equal(before, compute_family("gaps", prepare_history(later, as_of)))
    # ... while the same rows do count once they are in the past.
    moved = compute_family("gaps", prepare_history(later, as_of + pd.Timedelta(days=10)))
    assert moved["repeat_visit_days"].tolist() != before["repeat_visit_days"].tolist()


def test_bgnbd_columns_equal_the_rfm_of_the_churn_training_set(sample):
    from features import build_profiles
    from models.training_sets import rfm_snapshots

    tables = sample.tables
    as_of = pd.Timestamp("2026-03-01")
    profile = build_profiles(tables, as_of).set_index("customer_id")
    rfm = rfm_snapshots(tables["customers"], tables["transactions"], [as_of]).set_index("customer_id")
    rfm = rfm.loc[profile.index]
    np.testing.assert_array_equal(profile["repeat_visit_days"].to_numpy(), rfm["frequency"].to_numpy())
    np.testing.assert_allclose(profile["first_to_last_visit_days"], rfm["recency"])
    np.testing.assert_allclose(profile["days_since_first_visit"], rfm["T"])
