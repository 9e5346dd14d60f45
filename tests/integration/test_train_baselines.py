"""A baseline is a yardstick: its failure is reported and never stops training (real MLflow SQLite store).

The program of 1,500 customers x 200 days, seed 2, is the one whose BG/NBD fit made lifetimes raise
ConvergenceError and `rewards train all` exit 1.
"""

from __future__ import annotations

import pytest

from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def seed2(tmp_path_factory):
    from program_store import validated_program

    from pipelines.config import SAMPLE_END_DATE
    from pipelines.synthetic import generate

    data = generate(n_customers=1500, days=200, seed=2, end_date=SAMPLE_END_DATE)
    with validated_program(tmp_path_factory.mktemp("seed2"), data) as root:
        yield root


def _train(root, *args):
    from typer.testing import CliRunner

    from pipelines.cli import app

    return CliRunner().invoke(app, ["train", *args, "--data", str(root / "validated")])


def test_train_all_on_the_program_that_broke_lifetimes_trains_both_models(seed2):
    from mlflow import MlflowClient

    result = _train(seed2, "all")
    assert result.exit_code == 0, result.output
    client = MlflowClient()
    for name in (CHURN_MODEL_NAME, OFFER_MODEL_NAME):
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert "compared against baselines: recency, bgnbd" in result.output
    assert "compared against baselines: offer_popularity, category_popularity" in result.output


def test_a_baseline_that_fails_to_fit_is_reported_and_left_out(seed2, monkeypatch):
    from mlflow import MlflowClient

    from models import baselines

    def diverge(self, X, y):
        raise RuntimeError("The model did not converge")

    monkeypatch.setattr(baselines.BGNBDBaseline, "fit", diverge)
    result = _train(seed2, "churn")
    assert result.exit_code == 0, result.output
    assert "baselines left out of the comparison: bgnbd (RuntimeError: The model did not converge)" in result.output
    assert "compared against baselines: recency\n" in result.output and "baseline_bgnbd" not in result.output
    client = MlflowClient()
    # the version this run registered: the newest (a challenger after the test above, champion when run alone)
    version = max(client.search_model_versions(f"name='{CHURN_MODEL_NAME}'"), key=lambda v: int(v.version))
    run = client.get_run(version.run_id)
    assert run.data.tags["baseline.bgnbd.status"] == "failed"
    assert "did not converge" in run.data.tags["baseline.bgnbd.error"]
    assert version.tags["gate.baselines"] == "recency"
    assert "baseline_bgnbd_roc_auc" not in run.data.metrics and "baseline_recency_roc_auc" in run.data.metrics
