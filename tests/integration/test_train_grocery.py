"""The generated grocery chain (a weekly shop where recency alone ranks churn well): the churn model ahead of
recency and BG/NBD out of time, through the `rewards` CLI with real validation and a real MLflow SQLite store."""

from __future__ import annotations

import pytest

from pipelines.config import CHURN_MODEL_NAME

pytestmark = pytest.mark.integration

CUSTOMERS, DAYS, SEED = 3000, 365, 42  # the `rewards generate --scenario grocery` defaults


@pytest.fixture(scope="module")
def grocery(tmp_path_factory):
    """The chain written as `rewards generate --scenario grocery` writes it (its own program.toml and tables),
    validated under that program file; MLflow on a SQLite store in the same folder."""
    from pipelines.config import SAMPLE_END_DATE
    from pipelines.scenarios.grocery import generate, write
    from pipelines.validate import validate_directory

    root = tmp_path_factory.mktemp("grocery")
    write(generate(n_customers=CUSTOMERS, days=DAYS, seed=SEED, end_date=SAMPLE_END_DATE), root / "raw")
    result = validate_directory(root / "raw", root / "validated", root / "quarantine", root / "reports",
                                run_date=SAMPLE_END_DATE)
    assert result.written, f"the generated grocery chain in {root / 'raw'} did not validate"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.setenv("REWARDS_ARTIFACT_ROOT", str(root / "mlartifacts"))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def run(grocery):
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["train", "churn", "--data", str(grocery / "validated")])
    assert result.exit_code == 0, result.output
    client = MlflowClient()
    versions = client.search_model_versions(f"name='{CHURN_MODEL_NAME}'")
    return result, client.get_run(max(versions, key=lambda v: int(v.version)).run_id).data.metrics


def test_churn_model_beats_recency_and_bgnbd_on_the_grocery_chain(run):
    result, metrics = run
    best_auc = max(metrics["baseline_recency_roc_auc"], metrics["baseline_bgnbd_roc_auc"])
    best_brier = min(metrics["baseline_recency_brier"], metrics["baseline_bgnbd_brier"])
    assert metrics["roc_auc"] >= best_auc, (metrics["roc_auc"], best_auc)
    assert metrics["brier"] < best_brier, (metrics["brier"], best_brier)
    assert metrics["margin_over_best_baseline_roc_auc"] == pytest.approx(metrics["roc_auc"] - best_auc)
    assert metrics["margin_over_best_baseline_brier"] == pytest.approx(best_brier - metrics["brier"])


def test_the_training_output_prints_the_margin(run):
    result, metrics = run
    line = next(l for l in result.output.splitlines() if l.startswith("margin over the best baseline"))
    assert line == ("margin over the best baseline (> 0: model ahead): "
                    f"roc_auc {metrics['margin_over_best_baseline_roc_auc']:+.4f}, "
                    f"brier {metrics['margin_over_best_baseline_brier']:+.4f}")
    assert "roc_auc +" in line and "brier +" in line
