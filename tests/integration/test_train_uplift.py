"""`rewards train uplift` on randomised exploration campaigns simulated after the sample: the uplift model
targets more true incremental margin than the response model and has the higher out-of-time Qini; its own gate
promotes it, and only then does the default objective become uplift. Then `rewards score --objective uplift`
ranks a list by the champion's incremental value, and the offer API set up with the uplift objective answers as
that list does.

The uplift model is registered in a copy of the session's MLflow store (``uplift_env``): promoting it there
leaves the session's store, and so every other test's default objective, as it was."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the fixtures module importable
from service_fixtures import API_KEY, DECISION_TIME, free_port  # noqa: E402  (fixtures come from conftest.py)

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
def uplift_env(service_env, tmp_path_factory):
    """The session's service env with its own copy of the MLflow store (same champions, same artifacts)."""
    root = tmp_path_factory.mktemp("uplift-store")
    shutil.copy(service_env.data_dir / "mlflow.db", root / "mlflow.db")
    return dataclasses.replace(service_env, tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                               decision_log=root / "decisions" / "decisions.jsonl")


@pytest.fixture(scope="module")
def trained(explored, uplift_env):
    from pipelines.config import environment
    from pipelines.io import read_validated
    from pipelines.train_uplift import default_objective, train_uplift

    folder, _ = explored
    uri = uplift_env.tracking_uri
    before = default_objective(uri)
    with environment(REWARDS_ARTIFACT_ROOT=str(Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"),
                     MLFLOW_TRACKING_URI=uri):
        result = train_uplift(read_validated(folder), uri, seed=42, window_days=30, since=EXPLORATION_START,
                              margin_rate=MARGIN_RATE)
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


def test_uplift_has_the_higher_out_of_time_qini_and_its_gate_promotes_it(trained, uplift_env, service_env):
    from mlflow import MlflowClient

    from pipelines.train_uplift import UPLIFT_MODEL_NAME, default_objective

    m = trained["metrics"]
    assert m["uplift"]["qini"] > m["response"]["qini"], m
    assert trained["rows_valid"] > 2000 and trained["validation_from"].startswith("2026-09-28")
    assert trained["promoted"] is True
    client = MlflowClient(tracking_uri=uplift_env.tracking_uri)
    assert str(client.get_model_version_by_alias(UPLIFT_MODEL_NAME, "champion").version) == trained["version"]
    run = client.get_run(trained["run_id"])
    assert run.data.metrics["uplift_qini"] == pytest.approx(m["uplift"]["qini"])
    assert trained["objective_before"] == "expected_value"
    assert default_objective(uplift_env.tracking_uri) == "uplift"
    assert default_objective(service_env.tracking_uri) == "expected_value"  # the session's store is untouched


def test_train_uplift_command_without_control_events_exits_2(service_env):
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "train", "uplift", "--data",
                           str(service_env.validated_dir), "--since", "2030-01-01"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **service_env.env()})
    assert proc.returncode == 2
    assert "uplift training needs offer events with both sends and control rows" in proc.stderr


# --- ranking by the uplift model: `rewards score --objective uplift` and the API's policy setting -------------

CONTEXT = {"timestamp": DECISION_TIME, "channel": "app", "store_id": None}
CAMPAIGN = {"name": "uplift-push", "send_at": DECISION_TIME, "channel": "app", "k": 3, "holdout": 0.05}


def _score(env, out: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "pipelines.cli", "score", "--as-of", env.as_of, "--campaign", CAMPAIGN["name"],
            "--k", "3", "--holdout", "0.05", "--channel", CONTEXT["channel"], "--send-at", DECISION_TIME,
            "--data", str(env.validated_dir), "--profiles", str(env.profiles_path), "--out", str(out),
            "--no-progress", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env={**os.environ, **env.env()})


@pytest.fixture(scope="module")
def uplift_list(trained, uplift_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("uplift-list") / "uplift.parquet"
    proc = _score(uplift_env, out, "--objective", "uplift")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"list": pd.read_parquet(out), "exclusions": pd.read_parquet(out.with_name("uplift.exclusions.parquet")),
            "summary": json.loads(out.with_name("uplift.summary.json").read_text()), "stdout": proc.stdout}


def test_score_objective_uplift_ranks_the_list_by_the_champions_incremental_value(uplift_list, trained, uplift_env):
    from models.offer_response import offer_features
    from models.uplift import incremental_value
    from pipelines.io import read_validated_table

    listed, summary = uplift_list["list"], uplift_list["summary"]
    assert summary["objective"] == "uplift" and "ranked by" in uplift_list["stdout"]
    assert summary["model_versions"]["uplift"] == trained["version"]
    offered = listed[~listed["holdout"]]
    assert len(offered) > 1000
    # The score of every listed offer is the uplift model's incremental value, computed here independently.
    profiles = pd.read_parquet(uplift_env.profiles_path)
    some = sorted(set(offered["customer_id"]))[:200]
    from pipelines.io import read_validated

    offers = read_validated_table(uplift_env.validated_dir, "offers")
    rows = offer_features(profiles[profiles["customer_id"].isin(some)], offers,
                          {"timestamp": pd.Timestamp(DECISION_TIME), "channel": CONTEXT["channel"]},
                          tables=read_validated(uplift_env.validated_dir), as_of=uplift_env.as_of)
    value = pd.Series(incremental_value(trained["model"], rows),
                      index=pd.MultiIndex.from_frame(rows[["customer_id", "offer_id"]]))
    got = offered[offered["customer_id"].isin(some)]
    expected = value.loc[list(zip(got["customer_id"], got["offer_id"], strict=True))].to_numpy()
    assert got["score"].to_numpy() == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # Best first within each customer, and not the order expected value gives.
    ranked = offered.sort_values(["customer_id", "rank"])
    assert (ranked.groupby("customer_id")["score"].diff().dropna() <= 1e-12).all()
    by_ev = offered.groupby("customer_id")["expected_value"].apply(lambda s: s.is_monotonic_decreasing)
    assert (~by_ev).sum() > 0.1 * len(by_ev)


def test_the_api_with_the_uplift_objective_decides_as_the_uplift_list(uplift_list, trained, uplift_env, tmp_path_factory):
    import httpx

    from pipelines.serve import start_server, stop_server, wait_ready

    listed, excluded = uplift_list["list"], uplift_list["exclusions"]
    port = free_port()
    log_path = tmp_path_factory.mktemp("uplift-server") / "server.log"
    env = uplift_env.env(REWARDS_CAMPAIGN_JSON=json.dumps(CAMPAIGN), REWARDS_POLICY_JSON='{"objective": "uplift"}')
    proc = start_server("127.0.0.1", port, env=env, log_path=log_path)
    url = f"http://127.0.0.1:{port}"
    everyone = sorted(set(listed["customer_id"]) | set(excluded["customer_id"]))
    served, answers = {}, []
    try:
        wait_ready(url, timeout=180, process=proc, log_path=log_path)
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=120) as client:
            for lo in range(0, len(everyone), 1000):
                r = client.post("/recommend_batch", json={"customer_ids": everyone[lo: lo + 1000], "k": 3, "context": CONTEXT})
                assert r.status_code == 200, r.text
                answers.append(r.json())
                served.update({d["customer_id"]: d for d in r.json()["results"]})
            one = client.post("/recommend", json={"customer_id": everyone[0], "k": 3, "context": CONTEXT}).json()
    finally:
        stop_server(proc)
    for answer in [*answers, one]:  # the answer says what ranked it, and with which uplift model
        assert answer["objective"] == "uplift"
        assert answer["model_versions"]["offer-uplift"] == trained["version"]
    api_rows = pd.DataFrame([{"customer_id": c, "rank": o["rank"], "offer_id": o["offer_id"], "score": o["score"],
                              "p_redeem": o["p_redeem"]} for c, d in sorted(served.items()) for o in d["offers"]])
    list_rows = listed.loc[~listed["holdout"]].sort_values(["customer_id", "rank"]).reset_index(drop=True)
    assert {c: d["status"] for c, d in served.items() if not d["offers"]} == excluded.set_index("customer_id")["reason"].to_dict()
    assert len(api_rows) == len(list_rows)
    assert api_rows["customer_id"].tolist() == list_rows["customer_id"].tolist()
    assert api_rows["offer_id"].tolist() == list_rows["offer_id"].tolist()
    assert api_rows["rank"].tolist() == list_rows["rank"].astype(int).tolist()
    assert api_rows["score"].to_numpy() == pytest.approx(list_rows["score"].to_numpy(), abs=1e-9)
    assert api_rows["p_redeem"].to_numpy() == pytest.approx(list_rows["p_redeem"].to_numpy(), abs=1e-9)


def test_the_uplift_objective_without_a_champion_uplift_model_exits_2_or_fails_to_load(service_env, tmp_path):
    from serving.loading import ServingLoadError, Settings, load_state

    proc = _score(service_env, tmp_path / "none.parquet", "--objective", "uplift")  # the session's store: no uplift
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "objective 'uplift' ranks by the champion 'offer-uplift' model" in proc.stderr
    assert "run `rewards train uplift" in proc.stderr
    assert not (tmp_path / "none.parquet").exists()
    settings = dataclasses.replace(Settings.from_env(), tracking_uri=service_env.tracking_uri, objective="uplift",
                                   profiles_path=service_env.profiles_path, validated_dir=service_env.validated_dir)
    with pytest.raises(ServingLoadError, match=r"REWARDS_POLICY_JSON: objective 'uplift' ranks by the champion "
                                               r"'offer-uplift' model, but .* has none: run `rewards train uplift"):
        load_state(settings)
