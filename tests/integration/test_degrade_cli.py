"""A purchase log alone, through the real CLI (real GX, MLflow on SQLite): init, validate, features,
train (churn only, the reason printed), score (a retention list whose counts add up); a model
refuses data validated with another program file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.program import load_program, program_digest
from pipelines.cli import app

pytestmark = pytest.mark.integration

RUN_DATE = "2026-06-30"


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _log(n_customers: int, with_products: bool, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        start = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
        pace = rng.choice([5, 20, 60])
        for _ in range(int(rng.integers(1, 30))):
            ts = start + pd.Timedelta(days=int(rng.integers(0, 30 * pace)), hours=int(rng.integers(7, 20)))
            rows.append((f"C{c:04d}", ts, round(float(rng.gamma(2, 4)), 2)))
    log = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    log = log[log["ts"] < RUN_DATE].drop_duplicates(["customer_id", "ts"]).reset_index(drop=True)
    if with_products:
        log["product_id"] = [f"P{i}" for i in rng.integers(0, 12, len(log))]
        log["category"] = np.where(log["product_id"].str[1:].astype(int) < 6, "drinks", "food")
    return log


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("REWARDS_ARTIFACT_ROOT", str(tmp_path / "mlartifacts"))
    return tmp_path


def _through_the_pipeline(tmp_path, log: pd.DataFrame):
    raw, validated = tmp_path / "raw", tmp_path / "validated"
    raw.mkdir()
    log.to_csv(raw / "transactions.csv", index=False)
    assert _run("init", raw).exit_code == 0
    result = _run("validate", raw, "--out", validated, "--quarantine", tmp_path / "q", "--report-dir",
                  tmp_path / "reports", "--run-date", RUN_DATE)
    assert result.exit_code == 0, result.output
    digest = program_digest(load_program(validated / "program.toml"))

    features = _run("features", "--data", validated, "--out", tmp_path / "profiles.parquet")
    assert features.exit_code == 0, features.output
    assert "table 'offer_events' has no rows" in features.output
    manifest = json.loads((tmp_path / "profiles.manifest.json").read_text())
    names = {f["name"] for f in manifest["features"]}
    assert manifest["program_digest"] == digest
    assert "days_since_last_offer" not in names and "days_since_last_offer" in manifest["absent_tables"]["offer_events"]
    assert "last_nps_score" in manifest["absent_tables"]["feedback"] and "days_since_last_visit" in names
    program = load_program(validated / "program.toml")
    # the profiles follow the program file: its dayparts, no tier columns without listed tiers
    assert {f"visit_share_{p.name}" for p in program.dayparts} <= names
    assert "visit_share_before_9" not in names and ("tier_ordinal" in names) == (program.tiers.kind == "listed")

    train = _run("train", "--data", validated, "--max-ece", "1")
    assert train.exit_code == 0, train.output
    assert "== churn-risk version 1" in train.output
    from pipelines.registry import load_champion

    churn_model, _ = load_champion("churn-risk")
    assert set(churn_model.feature_names_in_) <= names  # trained on the program's catalogue, as scored
    assert "offer-response model skipped: table 'offers' is absent or empty" in train.output
    offers = _run("train", "offers", "--data", validated)
    assert offers.exit_code == 2 and "Traceback" not in offers.output
    assert "cannot train the offer-response model: table 'offers'" in offers.stderr

    out = tmp_path / "campaigns" / "list.parquet"
    score = _run("score", "--as-of", RUN_DATE, "--campaign", "winback", "--out", out, "--data", validated,
                 "--holdout", "0.1")
    assert score.exit_code == 0, score.output
    assert "retention list (no offers: table 'offers' has no rows" in score.output
    rows = pd.read_parquet(out)
    excluded = pd.read_parquet(out.with_name("list.exclusions.parquet"))
    summary = json.loads(out.with_name("list.summary.json").read_text())
    customers = pd.read_parquet(validated / "customers.parquet")
    assert list(rows.columns[:5]) == ["customer_id", "churn_risk", "expected_value", "reasons", "holdout"]
    assert set(rows["customer_id"]) | set(excluded["customer_id"]) == set(customers["customer_id"])
    assert len(rows) + len(excluded) == summary["customers_in_table"] == len(customers)
    assert summary["customers_listed"] == len(rows) and summary["customers_excluded"] == len(excluded)
    assert summary["customers_held_out"] == int(rows["holdout"].sum()) and 0 < rows["holdout"].mean() < 0.2
    assert rows["churn_risk"].between(0, 1).all() and (rows["expected_value"] >= 0).all()
    assert rows["reasons"].map(len).gt(0).all() and summary["program_digest"] == digest
    return raw, validated, digest


def test_a_purchase_log_alone_trains_churn_only_and_scores_a_retention_list(store):
    raw, validated, digest = _through_the_pipeline(store, _log(300, with_products=False))

    # Data validated with another program file: the model refuses it, naming both digests.
    other = raw / "other.toml"
    other.write_text((raw / "program.toml").read_text().replace('currency = "EUR"', 'currency = "USD"'))
    again = _run("validate", raw, "--out", validated, "--quarantine", store / "q", "--report-dir", store / "reports",
                 "--run-date", RUN_DATE, "--program", other)
    assert again.exit_code == 0, again.output
    new = program_digest(load_program(other))
    assert new != digest
    score = _run("score", "--as-of", RUN_DATE, "--campaign", "winback", "--out", store / "again.parquet",
                 "--data", validated)
    assert score.exit_code == 2 and "Traceback" not in score.output
    assert f"trained on data of program {digest}, but the data in '{validated}' is of program {new}" in score.stderr
    assert "retrain on this data (`rewards train`), or validate the data with the program file" in score.stderr


def test_a_log_with_products_and_categories_trains_churn_only_and_scores_a_retention_list(store):
    _through_the_pipeline(store, _log(250, with_products=True, seed=1))


def test_the_api_refuses_to_load_data_of_another_program(service_env, tmp_path):
    import shutil

    from data_contracts.program import COFFEE_PROGRAM_PATH, coffee_program
    from models.policy import PolicyConfig
    from serving.loading import ServingLoadError, Settings, load_state

    validated = tmp_path / "validated"
    shutil.copytree(service_env.validated_dir, validated)
    (validated / "program.toml").write_text(
        COFFEE_PROGRAM_PATH.read_text().replace('currency = "EUR"', 'currency = "USD"'))
    other = program_digest(load_program(validated / "program.toml"))
    trained_on = program_digest(coffee_program())  # the service fixture's tables carry no program file
    settings = Settings(profiles_path=service_env.profiles_path, validated_dir=validated,
                        tracking_uri=service_env.tracking_uri, decision_log=tmp_path / "d.jsonl", policy=PolicyConfig())
    with pytest.raises(ServingLoadError, match=f"trained on data of program {trained_on}, but .* of program {other}; retrain"):
        load_state(settings)
