"""The generated web shop (18 months of sparse orders): training windows the user controls, and the churn model
ahead of recency and BG/NBD out of time. Real validation, real MLflow SQLite store, the `rewards` CLI."""

from __future__ import annotations

import pytest

from pipelines.config import CHURN_MODEL_NAME

pytestmark = pytest.mark.integration

CUSTOMERS, DAYS, SEED = 6000, 540, 1  # 18 months ending 2026-06-30: the latest labelled 180-day window starts 2026-01-01


@pytest.fixture(scope="module")
def webshop(tmp_path_factory):
    from program_store import validated_program

    from pipelines.config import SAMPLE_END_DATE
    from pipelines.scenarios.webshop import generate

    data = generate(n_customers=CUSTOMERS, days=DAYS, seed=SEED, end_date=SAMPLE_END_DATE)
    with validated_program(tmp_path_factory.mktemp("webshop"), data) as root:
        yield root


def _train(root, *args):
    from typer.testing import CliRunner

    from pipelines.cli import app

    return CliRunner().invoke(app, ["train", "churn", "--data", str(root / "validated"), *args])


@pytest.fixture(scope="module")
def default_run(webshop):
    result = _train(webshop, "--horizon-days", "180")
    assert result.exit_code == 0, result.output
    return result


def _latest_run(name: str = CHURN_MODEL_NAME):
    from mlflow import MlflowClient

    client = MlflowClient()
    versions = client.search_model_versions(f"name='{name}'")
    return client.get_run(max(versions, key=lambda v: int(v.version)).run_id)


def test_a_180_day_horizon_trains_on_an_18_month_log(default_run):
    assert "snapshots: validation snapshot 2026-01-01, 5 training snapshots 30 days apart" in default_run.output
    params = _latest_run().data.params
    assert params["window.validation_as_of"] == "2026-01-01" and params["window.horizon_days"] == "180"
    assert params["window.training_as_of"].split(",")[-1] == "2025-07-05"


def test_churn_model_beats_recency_and_bgnbd_on_the_web_shop(default_run):
    metrics = _latest_run().data.metrics
    best_auc = max(metrics["baseline_recency_roc_auc"], metrics["baseline_bgnbd_roc_auc"])
    best_brier = min(metrics["baseline_recency_brier"], metrics["baseline_bgnbd_brier"])
    assert metrics["roc_auc"] >= best_auc, (metrics["roc_auc"], best_auc)
    assert metrics["brier"] < best_brier, (metrics["brier"], best_brier)
    assert metrics["margin_over_best_baseline_roc_auc"] == pytest.approx(metrics["roc_auc"] - best_auc)
    assert "margin over the best baseline (> 0: model ahead): roc_auc +" in default_run.output


def test_as_of_moves_the_validation_date(default_run, webshop):
    result = _train(webshop, "--horizon-days", "180", "--as-of", "2025-12-01", "--snapshots", "3", "--every-days", "45")
    assert result.exit_code == 0, result.output
    params = _latest_run().data.params
    assert params["window.validation_as_of"] == "2025-12-01"
    assert params["window.training_as_of"] == "2025-03-06,2025-04-20,2025-06-04"


def test_a_request_the_data_cannot_label_exits_2_before_any_work(default_run, webshop):
    from mlflow import MlflowClient

    before = len(MlflowClient().search_model_versions(f"name='{CHURN_MODEL_NAME}'"))
    result = _train(webshop, "--horizon-days", "180", "--as-of", "2026-03-01")
    assert result.exit_code == 2
    assert "the latest possible validation date is 2026-01-01" in result.output
    assert len(MlflowClient().search_model_versions(f"name='{CHURN_MODEL_NAME}'")) == before
