"""`rewards generate --scenario grocery` (3,000 households x 365 days) through the real CLI, then real GX validation."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.program import load_program
from pipelines.cli import app

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def grocery(tmp_path_factory):
    raw = tmp_path_factory.mktemp("grocery") / "raw"
    result = CliRunner().invoke(
        app, ["generate", "--scenario", "grocery", "--customers", "3000", "--days", "365", "--out", str(raw)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return raw


def test_grocery_validates_with_exit_0(grocery, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "validate", str(grocery), "--out", str(out / "validated"), "--quarantine", str(out / "quarantine"),
        "--report-dir", str(out / "reports"), "--run-date", "2026-06-30",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "reports" / "validation_report.json").read_text())
    assert report["program"]["name"] == "grocery" and not report["program"]["built_in_default"]
    assert {n: t["rows_read"] == t["rows_valid"] for n, t in report["tables"].items()} == {
        n: True for n in report["tables"]
    }
    assert report["tables"]["feedback"]["source"] == "absent (validated as empty)"  # no NPS
    assert load_program(out / "validated" / "program.toml").tiers.kind == "none"  # the program travels


def test_grocery_has_its_own_taxonomy_and_coupon_campaigns(grocery):
    program = load_program(grocery / "program.toml")
    products = pd.read_parquet(grocery / "products.parquet")
    offers = pd.read_parquet(grocery / "offers.parquet")
    events = pd.read_parquet(grocery / "offer_events.parquet")
    assert program.hierarchy.levels == ["department", "commodity"]
    assert (products["department"].nunique(), products["commodity"].nunique()) == (30, 250)
    assert len(products) > 2000
    assert len(offers) == 1000 and pd.read_parquet(grocery / "offer_products.parquet")["offer_id"].nunique() == 1000
    assert 0.05 < events["is_control"].mean() < 0.15  # control groups
    assert "tier" not in pd.read_parquet(grocery / "customers.parquet").columns
    assert not (grocery / "feedback.parquet").exists()


def test_grocery_plants_baby_care_and_product_habits(grocery):
    events = pd.read_parquet(grocery / "offer_events.parquet")
    households = pd.read_parquet(grocery / "ground_truth" / "households.parquet").set_index("customer_id")
    truth = pd.read_parquet(grocery / "ground_truth" / "coupon_redemption.parquet")
    sent = ~events["is_control"].to_numpy()
    redeemed = events["redeemed_at"].notna().to_numpy()[sent]
    baby_coupon = truth["baby_coupon"].to_numpy()[sent]
    baby_home = events["customer_id"].map(households["has_baby"]).to_numpy()[sent]
    rate = lambda mask: redeemed[mask].mean()  # noqa: E731
    assert rate(baby_coupon & baby_home) > 5 * rate(baby_coupon & ~baby_home)
    share = truth["repertoire_share"].to_numpy()[sent]
    assert rate(share > 0.5) > 4 * rate(share == 0)
    tx = pd.read_parquet(grocery / "transactions.parquet")
    baby_lines = tx.loc[tx["category"].isin(["nappies", "baby_food", "baby_wipes"]), "customer_id"].value_counts()
    regular = baby_lines.index[baby_lines >= 3]  # a redeemed coupon alone can make one baby-care line
    assert households.loc[regular, "has_baby"].mean() > 0.95
