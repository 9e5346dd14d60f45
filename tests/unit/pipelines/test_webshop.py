"""The generated web shop: canonical tables, sparse and heterogeneous orders, deterministic, on the CLI."""

from __future__ import annotations

import pandas as pd
import pandas.testing as pdt
import pytest

from pipelines.config import SAMPLE_END_DATE
from pipelines.scenarios.webshop import generate
from tests.unit.pipelines.test_synthetic import _violations

END = pd.Timestamp(SAMPLE_END_DATE)


@pytest.fixture(scope="module")
def shop():
    return generate(n_customers=3000, days=730, seed=5, end_date=SAMPLE_END_DATE)


def _orders_per_customer(shop) -> pd.Series:
    tx = shop.tables["transactions"]
    return tx[~tx["is_refund"]].groupby("customer_id")["transaction_id"].nunique()


def test_tables_follow_the_contracts(shop):
    assert _violations(shop) == []
    assert len(shop.tables["customers"]) == 3000
    assert shop.tables["transactions"]["ts"].max() < END


def test_most_customers_order_one_to_three_times_a_year(shop):
    orders = _orders_per_customer(shop)
    tx = shop.tables["transactions"]
    first = tx.groupby("customer_id")["ts"].min()
    years = (END - first).dt.days / 365.0
    long_seen = years[years >= 1.0].index  # a rate per year needs a year of observation
    per_year = orders.loc[long_seen] / years.loc[long_seen]
    assert len(long_seen) > 1000 and (per_year <= 3.0).mean() > 0.75
    assert 0.4 < (orders == 1).mean() < 0.8  # many one-time buyers
    top = orders.sort_values(ascending=False)
    assert top.head(len(top) // 10).sum() / top.sum() > 0.3  # strong heterogeneity: a tenth make > 30% of orders


def test_same_seed_same_shop_and_another_seed_another():
    a = generate(n_customers=300, days=365, seed=1).tables["transactions"]
    pdt.assert_frame_equal(a, generate(n_customers=300, days=365, seed=1).tables["transactions"])
    assert not a.equals(generate(n_customers=300, days=365, seed=2).tables["transactions"])


def test_generate_command_writes_the_webshop(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["generate", "--scenario", "webshop", "--customers", "200", "--days", "365",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(tmp_path / "customers.parquet")["customer_id"].str.startswith("W").all()
    bad = CliRunner().invoke(app, ["generate", "--scenario", "bakery", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "bakery" in bad.output
