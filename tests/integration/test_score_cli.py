"""`rewards score` end to end: real champion models from a SQLite MLflow store, the real profile snapshot,
and the real offer API over HTTP, which must decide exactly as the campaign list does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the fixtures module importable
from service_fixtures import API_KEY, DECISION_TIME, free_port  # noqa: E402  (fixtures come from conftest.py)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONTEXT = {"timestamp": DECISION_TIME, "channel": "app", "store_id": None}


def _score(env, out: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        sys.executable, "-m", "pipelines.cli", "score", "--as-of", env.as_of, "--campaign", "spring-push",
        "--k", "3", "--holdout", "0.05", "--channel", CONTEXT["channel"], "--send-at", DECISION_TIME,
        "--data", str(env.validated_dir), "--profiles", str(env.profiles_path), "--out", str(out), *extra,
    ]
    import os

    return subprocess.run(args, capture_output=True, text=True, timeout=600, env={**os.environ, **env.env()})


@pytest.fixture(scope="module")
def campaign(service_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("campaign") / "spring.parquet"
    proc = _score(service_env, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = pd.read_parquet(out)
    excluded = pd.read_parquet(out.with_name("spring.exclusions.parquet"))
    summary = json.loads(out.with_name("spring.summary.json").read_text())
    return {"out": out, "stdout": proc.stdout, "list": listed, "exclusions": excluded, "summary": summary}


def test_the_list_covers_every_profiled_customer_and_the_counts_add_up(campaign, service_env):
    listed, excluded, summary = campaign["list"], campaign["exclusions"], campaign["summary"]
    profiled = set(pd.read_parquet(service_env.profiles_path, columns=["customer_id"])["customer_id"])
    offered = set(listed.loc[~listed["holdout"], "customer_id"])
    assert offered | set(excluded["customer_id"]) == profiled
    assert not offered & set(excluded["customer_id"])
    assert summary["customers_considered"] == len(profiled)
    assert summary["customers_considered"] == summary["customers_with_offers"] + summary["customers_excluded"]
    assert summary["excluded_by_reason"] == excluded["reason"].value_counts().sort_index().to_dict()
    assert summary["offers"] == int((~listed["holdout"]).sum())
    assert summary["model_versions"] == {
        "offer": listed["offer_model_version"].iloc[0], "churn": listed["churn_model_version"].iloc[0]
    }
    # Holdout customers stay in the list, flagged, without an offer; about 5% of customers.
    holdout = listed[listed["holdout"]]
    assert holdout["offer_id"].isna().all() and not holdout["customer_id"].duplicated().any()
    assert 0.03 * len(profiled) < len(holdout) < 0.07 * len(profiled)
    # The printed summary names the reasons and the outputs.
    for text in ("customers considered", "excluded: no_marketing_consent", "expected cost", "summary:"):
        assert text in campaign["stdout"]
    assert sorted(p.name for p in campaign["out"].parent.iterdir()) == [
        "spring.exclusions.parquet", "spring.parquet", "spring.summary.json"
    ]


def test_contact_rules_bite_in_the_campaign_as_in_the_service(campaign, service_env):
    reasons = campaign["exclusions"].set_index("customer_id")["reason"]
    cases = service_env.cases
    expected = {"cap": "contact_cap", "cooldown": "cooldown"}
    for case, reason in expected.items():
        assert reasons.get(cases[case]) in (reason, "control_group"), (case, reasons.get(cases[case]))
    assert "no_marketing_consent" in set(reasons)


@pytest.fixture(scope="module")
def campaign_client(service_env, tmp_path_factory):
    """The real offer API set up for the campaign the list is written for (REWARDS_CAMPAIGN_JSON)."""
    import httpx

    from pipelines.serve import start_server, stop_server, wait_ready

    spec = {"name": "spring-push", "send_at": DECISION_TIME, "channel": CONTEXT["channel"], "k": 3, "holdout": 0.05}
    port = free_port()
    log_path = tmp_path_factory.mktemp("campaign-server") / "server.log"
    proc = start_server("127.0.0.1", port, env=service_env.env(REWARDS_CAMPAIGN_JSON=json.dumps(spec)), log_path=log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=180, process=proc, log_path=log_path)
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=120) as client:
            yield client
    finally:
        stop_server(proc)


def test_the_offer_api_set_up_for_the_campaign_decides_row_for_row_as_its_list(campaign, campaign_client):
    listed, excluded, summary = campaign["list"], campaign["exclusions"], campaign["summary"]
    # A budgeted offer binds in this list: some offers were withdrawn, so the comparison covers them.
    assert summary["offers_withdrawn_for_budget"] > 0
    everyone = sorted(set(listed["customer_id"]) | set(excluded["customer_id"]))
    served = {}
    for lo in range(0, len(everyone), 1000):
        response = campaign_client.post(
            "/recommend_batch", json={"customer_ids": everyone[lo: lo + 1000], "k": 3, "context": CONTEXT}
        )
        assert response.status_code == 200, response.text
        served.update({r["customer_id"]: r for r in response.json()["results"]})
    assert len(served) == len(everyone)

    api_holdout = {c for c, d in served.items() if d["control_group"]}
    assert api_holdout == set(listed.loc[listed["holdout"], "customer_id"])  # one holdout rule
    reasons = excluded.set_index("customer_id")["reason"]
    api_excluded = {c: d["status"] for c, d in served.items() if not d["offers"]}
    assert api_excluded == reasons.to_dict()  # same customers without an offer, for the same reasons

    api_rows = pd.DataFrame(
        [{"customer_id": c, "rank": o["rank"], "offer_id": o["offer_id"], "p_redeem": o["p_redeem"],
          "reasons": list(o["reasons"])} for c, d in sorted(served.items()) for o in d["offers"]]
    )
    list_rows = listed.loc[~listed["holdout"], ["customer_id", "rank", "offer_id", "p_redeem", "reasons"]]
    list_rows = list_rows.sort_values(["customer_id", "rank"]).reset_index(drop=True)
    assert len(api_rows) == len(list_rows) == summary["offers"]
    assert api_rows["customer_id"].tolist() == list_rows["customer_id"].tolist()
    assert api_rows["rank"].tolist() == list_rows["rank"].astype(int).tolist()
    assert api_rows["offer_id"].tolist() == list_rows["offer_id"].tolist()
    assert api_rows["p_redeem"].to_numpy() == pytest.approx(list_rows["p_redeem"].to_numpy(), abs=1e-9)
    assert api_rows["reasons"].tolist() == [list(r) for r in list_rows["reasons"]]
    # The budgeted offers were withdrawn from the same customers on both sides.
    capped = {b["offer_id"] for b in summary["budget"] if b["withdrawn_for_budget"]}
    assert capped and set(api_rows["offer_id"]) & capped


def test_a_second_run_keeps_the_holdout_group_and_writes_csv(campaign, service_env, tmp_path):
    out = tmp_path / "again.csv"
    proc = _score(service_env, out, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = pd.read_csv(out)
    first = campaign["list"]
    assert set(again.loc[again["holdout"], "customer_id"]) == set(first.loc[first["holdout"], "customer_id"])
    assert len(again) == len(first)


def test_a_failed_run_leaves_the_previous_list_and_prints_one_line(campaign, service_env):
    before = {p.name: p.read_bytes() for p in campaign["out"].parent.iterdir()}
    proc = _score(service_env, campaign["out"], "--offers", "O001,NOPE")
    assert proc.returncode == 2
    assert "NOPE" in proc.stderr and "Traceback" not in proc.stderr
    assert {p.name: p.read_bytes() for p in campaign["out"].parent.iterdir()} == before


def test_worker_processes_write_the_same_list_as_one_process(campaign, service_env, tmp_path):
    # Small chunks so that two spawned workers each score several; the rows must not change at all.
    out = tmp_path / "spring.parquet"
    proc = _score(service_env, out, "--chunk-size", "300", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.with_name("spring.summary.json").read_text())
    assert summary["workers"] == 2 and campaign["summary"]["workers"] == 1
    pd.testing.assert_frame_equal(pd.read_parquet(out), campaign["list"])
    pd.testing.assert_frame_equal(pd.read_parquet(out.with_name("spring.exclusions.parquet")), campaign["exclusions"])
    ignore = {"seconds", "workers", "outputs", "pass_seconds"}
    assert {k: v for k, v in summary.items() if k not in ignore} == {
        k: v for k, v in campaign["summary"].items() if k not in ignore
    }


def test_a_killed_run_leaves_no_process_and_the_next_run_no_temp_file(service_env, tmp_path):
    """kill -9 on `rewards score` mid-run: its worker processes end too, and the next run removes what
    the killed one left (temp files, scratch folder) and writes its outputs as usual."""
    import os
    import signal
    import time

    import psutil

    out = tmp_path / "killed.parquet"
    args = [
        sys.executable, "-m", "pipelines.cli", "score", "--as-of", service_env.as_of, "--campaign", "spring-push",
        "--k", "3", "--channel", CONTEXT["channel"], "--send-at", DECISION_TIME, "--data", str(service_env.validated_dir),
        "--profiles", str(service_env.profiles_path), "--out", str(out), "--chunk-size", "50", "--workers", "2",
        "--no-progress",
    ]
    proc = subprocess.Popen(args, env={**os.environ, **service_env.env()}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    children: list = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            children = parent.children(recursive=True)
            workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        except psutil.Error:
            workers = []
        if len(workers) >= 2 and list(tmp_path.glob(".killed.parquet.scratch-*")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, [p.cmdline()[:3] for p in alive]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert any(".scratch-" in name for name in left), left  # the kill left its scratch folder behind

    again = _score(service_env, out, "--no-progress")
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "killed.exclusions.parquet", "killed.parquet", "killed.summary.json"
    ]


def test_a_channel_outside_the_program_is_refused_naming_the_program_file(service_env, tmp_path):
    args = [
        sys.executable, "-m", "pipelines.cli", "score", "--as-of", service_env.as_of, "--campaign", "fax-blast",
        "--channel", "fax", "--data", str(service_env.validated_dir), "--profiles", str(service_env.profiles_path),
        "--out", str(tmp_path / "fax.parquet"),
    ]
    import os

    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env={**os.environ, **service_env.env()})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "--channel must be one of the program's offer channels" in proc.stderr and "'fax'" in proc.stderr
    assert "program.toml" in proc.stderr and "offer_channels" in proc.stderr
    assert not (tmp_path / "fax.parquet").exists()
