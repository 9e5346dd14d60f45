"""`rewards train uplift` on randomised exploration campaigns simulated after the sample: the uplift model
targets more true incremental margin than the response model and has the higher out-of-time Qini; its own gate
promotes it, and only then does the default objective become uplift."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the fixtures module importable
from service_fixtures import DECISION_TIME  # noqa: E402,F401  (fixtures come from conftest.py)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARGIN_RATE = 0.65
EXPLORATION_START = pd.Timestamp("2026-06-30")


@pytest.fixture(scope="module")
def explored(sample_raw_dir, tmp_path_factory):
    """Four monthly exploration waves (half held back as control) after the sample, written as a program."""
    from pipelines.simulate import read_program, simulate_exploration, write_program

    program = simulate_exploration(read_program(sample_raw_dir), EXPLORATION_START, waves=4, every_days=30,
                                   control_fraction=0.5, seed=1)
    out = tmp_path_factory.mktemp("explored")
    write_program(program, sample_raw_dir, out, {"exploration_waves": 4})
    return out, program


@pytest.fixture(scope="module")
def trained(explored, service_env):
    from pipelines.io import read_validated
    from pipelines.train_uplift import default_objective, train_uplift

    folder, _ = explored
    before = default_objective(service_env.tracking_uri)
    result = train_uplift(read_validated(folder), service_env.tracking_uri, seed=42, window_days=30,
                          since=EXPLORATION_START, margin_rate=MARGIN_RATE)
    return {**result, "objective_before": before}


def test_uplift_targets_more_true_incremental_margin_than_the_response_model(trained, explored):
    from models.uplift import top_share_total

    _, program = explored
    truth = program.truth["treatment_effects"]
    rows = trained["validation_rows"].merge(truth, on=["customer_id", "offer_id", "sent_at"], how="left",
                                            validate="one_to_one")
    assert rows["expected_incremental_revenue"].notna().all()
    true_margin = MARGIN_RATE * rows["expected_incremental_revenue"] - rows["expected_reward_cost"]
    by_uplift = top_share_total(true_margin, rows["uplift_score"], k=0.2)
    by_response = top_share_total(true_margin, rows["response_score"], k=0.2)
    assert by_uplift > 1.5 * by_response, (by_uplift, by_response)
    assert by_uplift > 0.2 * true_margin.sum()  # better than targeting at random, too


def test_uplift_has_the_higher_out_of_time_qini_and_its_gate_promotes_it(trained, service_env):
    from mlflow import MlflowClient

    from pipelines.train_uplift import UPLIFT_MODEL_NAME, default_objective

    m = trained["metrics"]
    assert m["uplift"]["qini"] > m["response"]["qini"], m
    assert trained["rows_valid"] > 2000 and trained["validation_from"].startswith("2026-09-28")
    assert trained["promoted"] is True
    client = MlflowClient(tracking_uri=service_env.tracking_uri)
    assert str(client.get_model_version_by_alias(UPLIFT_MODEL_NAME, "champion").version) == trained["version"]
    run = client.get_run(trained["run_id"])
    assert run.data.metrics["uplift_qini"] == pytest.approx(m["uplift"]["qini"])
    assert trained["objective_before"] == "expected_value"
    assert default_objective(service_env.tracking_uri) == "uplift"


def test_train_uplift_command_without_control_events_exits_2(service_env):
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "train", "uplift", "--data",
                           str(service_env.validated_dir), "--since", "2030-01-01"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **service_env.env()})
    assert proc.returncode == 2
    assert "uplift training needs offer events with both sends and control rows" in proc.stderr
