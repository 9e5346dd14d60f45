"""The synthetic generator: schema conformance, determinism, planted structure, writing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data_contracts.program import coffee_program
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
            allowed = coffee_program().allowed(col.vocabulary) if col.vocabulary else None
            if allowed is not None:
                seen = set(np.concatenate(values.tolist())) if col.type == "string_list" else set(values)
                if not seen <= set(allowed):
                    problems.append(f"{name}.{col.name}: values {seen - set(allowed)} not allowed")
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


@pytest.mark.parametrize(("n_customers", "days"), [(1, 7), (40, 730)])
def test_edge_sizes_conform_to_schema(n_customers, days):
    data = generate(n_customers=n_customers, days=days, seed=3, end_date=SAMPLE_END_DATE)
    assert _violations(data) == []
    assert len(data.tables["customers"]) == n_customers
    start = END - pd.Timedelta(days=days)
    assert (data.tables["transactions"]["ts"] >= start).all()


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


def _persona_of(sample: SyntheticData, customer_ids: pd.Series) -> pd.Series:
    return customer_ids.map(sample.ground_truth["customers"].set_index("customer_id")["persona"])


def test_visits_have_one_to_four_distinct_products(sample):
    tx = sample.tables["transactions"]
    lines = tx[~tx["is_refund"]].groupby("transaction_id").size()
    assert lines.min() >= 1 and lines.max() <= 4
    assert 1.2 < lines.mean() < 2.5
    # One visit belongs to one customer, store, channel and moment.
    per_visit = tx.groupby("transaction_id")[["customer_id", "store_id", "channel", "ts"]].nunique()
    assert (per_visit == 1).all().all()


def test_customers_mostly_visit_their_home_store(sample):
    tx = sample.tables["transactions"].drop_duplicates("transaction_id")
    home = tx["customer_id"].map(sample.ground_truth["customers"].set_index("customer_id")["home_store"])
    assert 0.75 < (tx["store_id"] == home).mean() < 0.95
    assert tx["store_id"].nunique() >= 15


def test_baskets_follow_persona_habits(sample):
    tx = sample.tables["transactions"]
    tx = tx[~tx["is_refund"]]
    persona = _persona_of(sample, tx["customer_id"])
    has = tx.assign(persona=persona, coffee=tx["category"] == "coffee", bakery=tx["category"] == "bakery")
    per_visit = has.groupby("transaction_id").agg(persona=("persona", "first"), coffee=("coffee", "any"),
                                                  bakery=("bakery", "any"))
    commuters = per_visit[per_visit["persona"] == "morning_commuter"]
    assert commuters["coffee"].mean() > 0.75
    assert commuters["bakery"].mean() < 0.3  # bakery is rarely attached: the offer is a nudge
    visits = tx.drop_duplicates("transaction_id")
    weekend = visits["ts"].dt.day_of_week >= 5
    v_persona = _persona_of(sample, visits["customer_id"])
    assert weekend[v_persona == "weekend_family"].mean() > 0.5
    lunch_hours = visits["ts"].dt.hour.between(11, 13)
    assert lunch_hours[v_persona == "lunch_crowd"].mean() > 0.6
    size = tx.groupby("transaction_id").size()
    family = (v_persona == "weekend_family").set_axis(visits["transaction_id"]).reindex(size.index)
    assert size[family].mean() > size[~family].mean() + 0.5


def test_refunds_are_negative_and_flagged(sample):
    tx = sample.tables["transactions"]
    refunds = tx[tx["is_refund"]]
    assert 0 < len(refunds) < 0.01 * len(tx)
    assert (refunds["amount"] < 0).all()
    assert (tx.loc[~tx["is_refund"], "amount"] >= 0).all()


def test_customers_table_is_plausible(sample):
    customers = sample.tables["customers"]
    assert 0.8 < customers["marketing_consent"].mean() < 0.9
    assert 0.05 < customers["birth_year"].isna().mean() < 0.15
    window_start = END - pd.Timedelta(days=365)
    assert 0.1 < (customers["signup_date"] >= window_start).mean() < 0.5
    assert customers["signup_date"].min() >= END - pd.Timedelta(days=3 * 365 + 1)
    # Tiers and points follow spend.
    tx = sample.tables["transactions"]
    spend = tx.groupby("customer_id")["amount"].sum().reindex(customers["customer_id"], fill_value=0.0)
    by_tier = spend.groupby(customers.set_index("customer_id")["tier"]).median()
    assert list(by_tier.reindex(["bronze", "silver", "gold", "platinum"]).rank()) == [1, 2, 3, 4]
    corr = np.corrcoef(spend.to_numpy(), customers["points_balance"].to_numpy())[0, 1]
    assert corr > 0.7


def test_offer_catalogue_has_candidates_at_the_end(sample):
    offers = sample.tables["offers"]
    assert 20 <= len(offers) <= 30
    assert offers["reward_category"].nunique() >= 7 and offers["offer_type"].nunique() >= 5
    at = END - pd.Timedelta(days=3)
    assert ((offers["valid_from"] <= at) & (offers["valid_to"] >= at)).sum() >= 20
    assert (offers["valid_from"] < END).all()
    budgets = offers["budget_redemptions"]
    assert budgets.isna().mean() > 0.6 and budgets.notna().any()


def test_redemptions_are_within_validity_and_create_receipt_lines(sample):
    events = sample.tables["offer_events"]
    offers = sample.tables["offers"].set_index("offer_id")
    redeemed = events.dropna(subset=["redeemed_at"])
    valid_to = redeemed["offer_id"].map(offers["valid_to"])
    assert (redeemed["redeemed_at"] <= valid_to).all()
    assert (redeemed["redeemed_at"] > redeemed["sent_at"]).all()
    assert redeemed["viewed_at"].notna().mean() > 0.9
    tx = sample.tables["transactions"]
    category = redeemed["offer_id"].map(offers["reward_category"])
    key = pd.MultiIndex.from_arrays([redeemed["customer_id"], redeemed["redeemed_at"], category])
    lines = pd.MultiIndex.from_arrays([tx["customer_id"], tx["ts"], tx["category"]])
    assert key.isin(lines).mean() > 0.99
    for name, budget in offers["budget_redemptions"].dropna().items():
        assert (redeemed["offer_id"] == name).sum() <= budget


def test_churn_follows_disengagement_and_detractors(sample):
    truth = sample.ground_truth["customers"].set_index("customer_id")
    visits = sample.tables["transactions"].drop_duplicates("transaction_id")
    churn = visits["customer_id"].map(truth["churn_date"])
    churner = churn.notna() & (churn > END - pd.Timedelta(days=240))
    to_churn = (churn - visits["ts"]).dt.days
    last_30 = (churner & (to_churn < 30)).sum()
    before = (churner & (to_churn >= 30) & (to_churn < 120)).sum() / 3
    assert last_30 < 0.6 * before  # visits fade out before churn
    fb = sample.tables["feedback"]
    detractor = fb.groupby("customer_id")["nps_score"].min() <= 6
    churned = truth.loc[detractor.index, "churn_date"].notna()
    assert churned[detractor].mean() > 2 * churned[~detractor].mean()


def test_no_activity_before_signup(sample):
    signup = sample.tables["customers"].set_index("customer_id")["signup_date"]
    for name, column in (("transactions", "ts"), ("offer_events", "sent_at"), ("feedback", "submitted_at")):
        frame = sample.tables[name]
        assert (frame[column] >= frame["customer_id"].map(signup)).all(), name


def test_generate_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_customers must be >= 1, got 0"):
        generate(n_customers=0, days=30, seed=1)
    with pytest.raises(ValueError, match="days must be >= 7, got 3"):
        generate(n_customers=10, days=3, seed=1)


def test_generate_command_writes_tables(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(
        app, ["generate", "--customers", "50", "--days", "20", "--seed", "3", "--out", str(tmp_path), "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert "transactions" in result.output and "rows" in result.output
    expected = generate(n_customers=50, days=20, seed=3)
    for name in TABLE_NAMES:  # the files hold the generated tables, row for row
        written = pd.read_csv(tmp_path / f"{name}.csv")
        assert len(written) == len(expected.tables[name]), name
        assert list(written.columns) == list(expected.tables[name].columns), name
    customers = pd.read_csv(tmp_path / "customers.csv")
    assert customers["customer_id"].tolist() == expected.tables["customers"]["customer_id"].tolist()
    affinities = pd.read_parquet(tmp_path / "ground_truth" / "affinities.parquet")
    pd.testing.assert_frame_equal(affinities, expected.ground_truth["affinities"])
    bad = CliRunner().invoke(app, ["generate", "--customers", "5", "--end-date", "soon", "--out", str(tmp_path)])
    assert bad.exit_code != 0 and "--end-date" in bad.output


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
