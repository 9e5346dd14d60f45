"""Reload across workers: a 2-worker real server; a reload switches every worker to one generation, or none.

Its own server (2 workers, its own copy of the profile snapshot, stores in Europe/Berlin), so the
session's server keeps its snapshot.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from service_fixtures import API_KEY, DECISION_TIME, free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def two_workers(service_env, tmp_path_factory):
    from pipelines.build_features import manifest_path
    from pipelines.serve import start_server, stop_server, wait_ready

    root = tmp_path_factory.mktemp("two-workers")
    profiles = root / "profiles.parquet"
    shutil.copy(service_env.profiles_path, profiles)
    shutil.copy(manifest_path(service_env.profiles_path), manifest_path(profiles))
    port, log_path = free_port(), root / "server.log"
    env = service_env.env(REWARDS_SERVE_WORKERS="2", REWARDS_PROFILES_PATH=str(profiles),
                          REWARDS_STORE_TIMEZONE="Europe/Berlin")
    proc = start_server("127.0.0.1", port, env=env, log_path=log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=240, process=proc, log_path=log_path)
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=120) as client:
            deadline = time.monotonic() + 120
            while len(client.post("/status", json={}).json()["workers"]) < 2 and time.monotonic() < deadline:
                time.sleep(0.5)  # the second worker is still loading
            yield client, profiles, log_path
    finally:
        stop_server(proc)


def _workers(client) -> list[dict]:
    return client.post("/status", json={}).json()["workers"]


def test_status_reports_every_worker_at_one_generation(two_workers):
    client, _, _ = two_workers
    workers = _workers(client)
    assert [w["worker"] for w in workers] == [1, 2]
    assert len({w["pid"] for w in workers}) == 2
    assert len({w["generation"] for w in workers}) == 1 and workers[0]["customers"] > 1000


def test_an_offset_is_converted_to_the_store_timezone(two_workers, service_env):
    client, _, _ = two_workers
    resp = client.post("/recommend", json={"customer_id": "NEW-1", "context": {"timestamp": "2026-06-30T06:15:00Z", "channel": "app"}})
    assert resp.status_code == 200, resp.text
    request_id = resp.json()["request_id"]
    logged = [json.loads(line) for line in service_env.decision_log.read_text().splitlines() if request_id in line]
    assert logged[0]["context"]["timestamp"] == DECISION_TIME  # 06:15 UTC is 08:15 in Berlin in summer


def test_a_reload_with_unchanged_inputs_keeps_the_state_in_both_workers(two_workers):
    client, _, _ = two_workers
    before = _workers(client)
    resp = client.post("/admin/reload", json={})
    assert resp.status_code == 200, resp.text
    assert resp.json()["rebuilt"] is False and resp.json()["generation"] > before[0]["generation"]
    after = _workers(client)
    assert {w["generation"] for w in after} == {resp.json()["generation"]}
    assert [w["loaded_at"] for w in after] == [w["loaded_at"] for w in before]  # kept, not rebuilt


def test_a_ten_row_snapshot_is_refused_and_both_workers_keep_the_old_generation(two_workers):
    client, profiles, log_path = two_workers
    before = _workers(client)
    full = pd.read_parquet(profiles)
    full.head(10).to_parquet(profiles, index=False)
    try:
        resp = client.post("/admin/reload", json={})
        assert resp.status_code == 409, resp.text
        error = resp.json()["error"]
        assert error["code"] == "reload_refused"
        assert "worker 1: the new profile snapshot has 10 customers" in error["message"]
        assert "worker 2: the new profile snapshot has 10 customers" in error["message"]
        after = _workers(client)
        assert [(w["generation"], w["customers"]) for w in after] == [(w["generation"], w["customers"]) for w in before]
        assert "10 customers" in client.post("/status", json={}).json()["last_reload_error"]

        # force overrides the checks: both workers switch, to the same generation
        resp = client.post("/admin/reload", json={"force": True})
        assert resp.status_code == 200, resp.text
        forced = resp.json()
        assert forced["forced"] is True and forced["rebuilt"] is True and forced["generation"] > before[0]["generation"]
        assert [(w["generation"], w["customers"]) for w in _workers(client)] == [(forced["generation"], 10)] * 2
    finally:
        full.to_parquet(profiles, index=False)
    kept_before = log_path.read_text(errors="replace").count("reload keeps the champion models")
    resp = client.post("/admin/reload", json={})
    assert resp.status_code == 200, resp.text
    restored = resp.json()["generation"]
    assert restored > forced["generation"]
    assert {(w["generation"], w["customers"]) for w in _workers(client)} == {(restored, len(full))}
    # that reload only had new profiles: both workers kept their models instead of loading them again
    assert log_path.read_text(errors="replace").count("reload keeps the champion models") == kept_before + 2
    assert "Traceback" not in log_path.read_text(errors="replace")
