"""Readiness means warmed up in every worker: the real 2-worker server, /readyz polled from its start.

/readyz is answered by whichever worker takes the connection; before, one worker could say ready while
the other was still loading (its first requests then paid the cold start, or failed). Now each worker
warms its state up (serving/warmup.py) and /readyz says ready only when every worker's board file
says it serves.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from service_fixtures import API_KEY, DECISION_TIME, free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WARMUP_DECISIONS = 200  # a longer warm-up than the default widens the window in which one worker is up and not ready


def _own_snapshot(service_env, root: Path) -> Path:
    from pipelines.build_features import manifest_path

    profiles = root / "profiles.parquet"
    shutil.copy(service_env.profiles_path, profiles)
    shutil.copy(manifest_path(service_env.profiles_path), manifest_path(profiles))
    return profiles


def test_readyz_says_ready_only_when_every_worker_has_warmed_up(service_env, tmp_path):
    from pipelines.serve import start_server, stop_server

    port, log_path = free_port(), tmp_path / "server.log"
    env = service_env.env(REWARDS_SERVE_WORKERS="2", REWARDS_PROFILES_PATH=str(_own_snapshot(service_env, tmp_path)),
                          REWARDS_WARMUP_DECISIONS=str(WARMUP_DECISIONS))
    proc = start_server("127.0.0.1", port, env=env, log_path=log_path)
    url = f"http://127.0.0.1:{port}"
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                seen.append(httpx.get(f"{url}/readyz", timeout=5).status_code)
            except httpx.HTTPError:
                seen.append(0)  # not listening yet
            if seen[-1] == 200:
                break
            time.sleep(0.05)
        assert seen and seen[-1] == 200, f"never ready: {seen[-5:]}; {log_path.read_text(errors='replace')[-2000:]}"
        assert set(seen) <= {0, 503, 200}
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=60) as client:
            status = client.post("/status", json={}).json()  # asked at once: whichever worker answers
            workers = status["workers"]
            assert [w["worker"] for w in workers] == [1, 2], workers
            assert all(w["ready"] for w in workers), workers
            # each worker's warm-up: the asked decisions, one unknown customer, one batch
            assert all(w["warmup"].startswith(f"{WARMUP_DECISIONS + 2} decisions in ") for w in workers), workers
            resp = client.post("/recommend", json={"customer_id": service_env.cases["fresh"], "k": 3,
                                                   "context": {"timestamp": DECISION_TIME, "channel": "app"}})
            assert resp.status_code == 200 and resp.json()["offers"], resp.text
            assert int(resp.headers["content-length"]) == len(resp.content)  # one body, not a chunked stream
        log = log_path.read_text(errors="replace")
        assert log.count(f"warmed up: {WARMUP_DECISIONS + 2} decisions") == 2 and "Traceback" not in log
        # the warm-up decisions are not decisions anyone received: nothing of them is in the decision log
        logged = service_env.decision_log.read_text() if service_env.decision_log.exists() else ""
        assert "warm-up" not in logged
    finally:
        stop_server(proc)


def test_a_bad_warm_up_setting_keeps_the_server_not_ready_and_says_why(service_env, tmp_path):
    from pipelines.serve import start_server, stop_server

    port, log_path = free_port(), tmp_path / "server.log"
    proc = start_server("127.0.0.1", port, env=service_env.env(REWARDS_WARMUP_DECISIONS="lots"), log_path=log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        answers: list[int] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not answers:
            try:
                answers.append(httpx.get(f"{url}/readyz", timeout=5).status_code)  # the first answer, once it listens
            except httpx.HTTPError:
                time.sleep(0.1)
        assert answers == [503], f"{answers}; {log_path.read_text(errors='replace')[-2000:]}"
        time.sleep(1.0)
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 503  # and it stays so
        status = httpx.post(f"{url}/status", json={}, headers={"X-API-Key": API_KEY}, timeout=30).json()
        assert status["ready"] is False
        assert "REWARDS_WARMUP_DECISIONS must be a whole number between 0 and 10000" in status["last_reload_error"]
    finally:
        stop_server(proc)
