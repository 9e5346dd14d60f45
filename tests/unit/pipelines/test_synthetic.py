"""The synthetic generator: schema conformance, determinism, planted structure, writing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data_contracts.schema import TABLE_NAMES, TABLES, pandas_dtype
from pipelines.config import SAMPLE_END_DATE
from pipelines.synthetic import PERSONAS, SyntheticData, generate, write

END = pd.Timestamp(SAMPLE_END_DATE)


@pytest.fixture(scope="module")
def tiny() -> SyntheticData:
    return generate(n_customers=200, days=60, seed=7, end_date=SAMPLE_END_DATE)


def _violations(data: SyntheticData) -> list[str]:
    """Every way the tables break their contract (empty when conformant)."""
    problems = []
    t = data.tables
    for name, spec in TABLES.items():
        frame = t[name]
        if list(frame.columns) != spec.column_names:
            problems.append(f"{name}: columns {list(frame.columns)} != {spec.column_names}")
            continue
        for col in spec.columns:
            s = frame[col.name]
            if str(s.dtype) != pandas_dtype(col):
                problems.append(f"{name}.{col.name}: dtype {s.dtype} != {pandas_dtype(col)}")
            if not col.nullable and s.isna().any():
                problems.append(f"{name}.{col.name}: {int(s.isna().sum())} nulls")
            values = s.dropna()
            if col.allowed is not None:
                seen = set(np.concatenate(values.tolist())) if col.type == "string_list" else set(values)
                if not seen <= set(col.allowed):
                    problems.append(f"{name}.{col.name}: values {seen - set(col.allowed)} not allowed")
            if col.type == "string_list" and not all(isinstance(v, list) for v in values):
                problems.append(f"{name}.{col.name}: not Python lists")
            if col.min is not None:
                ok = values > col.min if col.min_strict else values >= col.min
                if not ok.all():
                    problems.append(f"{name}.{col.name}: below min {col.min}")
            if col.max is not None and not (values <= col.max).all():
                problems.append(f"{name}.{col.name}: above max {col.max}")
        if frame.duplicated(list(spec.primary_key)).any():
            problems.append(f"{name}: duplicate primary key {spec.primary_key}")
        for fk in spec.foreign_keys:
            if not frame[fk.column].isin(t[fk.ref_table][fk.ref_column]).all():
                problems.append(f"{name}.{fk.column}: dangling foreign key to {fk.ref_table}")
        for col in spec.not_after_run_date:
            if not (frame[col].dropna() < END).all():
                problems.append(f"{name}.{col}: values on or after {END}")
        for a, b in spec.ordered_pairs:
            both = frame[a].notna() & frame[b].notna()
            if not (frame.loc[both, a] <= frame.loc[both, b]).all():
                problems.append(f"{name}: {a} after {b}")
    return problems


def test_sample_conforms_to_schema(sample):
    assert _violations(sample) == []
    assert set(sample.tables) == set(TABLE_NAMES)


def test_tiny_sample_conforms_to_schema(tiny):
    assert _violations(tiny) == []


def test_same_seed_same_data_and_other_seed_differs(tiny):
    again = generate(n_customers=200, days=60, seed=7, end_date=SAMPLE_END_DATE)
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(tiny.tables[name], again.tables[name])
    pd.testing.assert_frame_equal(tiny.ground_truth["customers"], again.ground_truth["customers"])
    other = generate(n_customers=200, days=60, seed=8, end_date=SAMPLE_END_DATE)
    assert not tiny.tables["transactions"].equals(other.tables["transactions"])


def test_morning_commuters_visit_before_eleven(sample):
    tx = sample.tables["transactions"].drop_duplicates("transaction_id")
    persona = tx["customer_id"].map(sample.ground_truth["customers"].set_index("customer_id")["persona"])
    morning = tx["ts"].dt.hour < 11
    assert morning[persona == "morning_commuter"].mean() > 0.7
    assert morning[persona == "lunch_crowd"].mean() < 0.3


def test_morning_commuter_has_highest_bakery_offer_affinity(sample):
    aff = sample.ground_truth["affinities"]
    bakery = aff[aff["reward_category"] == "bakery"].set_index("persona")["affinity"]
    assert bakery.idxmax() == "morning_commuter"
    assert set(aff["persona"]) == set(PERSONAS)


def test_bakery_offer_redemption_highest_for_morning_commuters(sample):
    events = sample.tables["offer_events"]
    sent = events[~events["is_control"]]
    category = sent["offer_id"].map(sample.tables["offers"].set_index("offer_id")["reward_category"])
    persona = sent["customer_id"].map(sample.ground_truth["customers"].set_index("customer_id")["persona"])
    rates = sent["redeemed_at"].notna()[category == "bakery"].groupby(persona[category == "bakery"]).mean()
    others = rates.drop("morning_commuter")
    assert rates["morning_commuter"] > others.max() + 0.15


def test_churned_customers_stop_transacting(sample):
    truth = sample.ground_truth["customers"]
    churned = truth.dropna(subset=["churn_date"]).set_index("customer_id")["churn_date"]
    assert 0.15 <= len(churned) / len(truth) <= 0.30
    tx = sample.tables["transactions"]
    churn_at = tx["customer_id"].map(churned)
    assert not (tx["ts"] >= churn_at).any()


def test_control_rows_are_never_viewed_or_redeemed(sample):
    events = sample.tables["offer_events"]
    control = events[events["is_control"]]
    assert 0.07 < len(control) / len(events) < 0.13
    assert control["viewed_at"].isna().all() and control["redeemed_at"].isna().all()
    assert (~events["is_control"]).sum() >= 30_000


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_round_trip(tiny, tmp_path, fmt):
    paths = write(tiny, tmp_path, fmt=fmt)
    assert (tmp_path / "ground_truth" / "customers.parquet").exists()
    for name in TABLE_NAMES:
        assert paths[name] == tmp_path / f"{name}.{fmt}"
    if fmt == "parquet":
        back = pd.read_parquet(tmp_path / "transactions.parquet")
        pd.testing.assert_frame_equal(back, tiny.tables["transactions"])
        offers = pd.read_parquet(tmp_path / "offers.parquet")
        assert [list(v) for v in offers["eligible_tiers"]] == list(tiny.tables["offers"]["eligible_tiers"])
    else:
        back = pd.read_csv(tmp_path / "offers.csv")
        assert back["offer_id"].tolist() == tiny.tables["offers"]["offer_id"].tolist()
        assert [json.loads(v) for v in back["channels"]] == list(tiny.tables["offers"]["channels"])
        tx = pd.read_csv(tmp_path / "transactions.csv")
        assert len(tx) == len(tiny.tables["transactions"])
