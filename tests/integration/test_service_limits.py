"""The offer API refuses what it cannot or should not do, cheaply and in one documented shape.

Against the session's real server (service_fixtures.py): content types, body size, strict types,
timestamps, repeated ids, the decision log's mode, the logs, and the published spec.
"""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from service_fixtures import DECISION_TIME  # noqa: E402

from benchmarks.report import group_rss_mb  # noqa: E402  (server memory: the one /proc reading the service benchmark uses)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CTX = {"timestamp": DECISION_TIME, "channel": "app", "store_id": "S001"}


@pytest.fixture(scope="module")
def profiled_ids(service_env):
    return pd.read_parquet(service_env.profiles_path, columns=["customer_id"])["customer_id"].astype(str).tolist()


def _error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    return body["error"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded", "application/xml"]
)
def test_bodies_that_are_not_json_get_415(client, content_type):
    body = json.dumps({"customer_id": "C1", "context": CTX}).encode()
    for path in ("/recommend", "/recommend_batch", "/churn_risk", "/status", "/admin/reload"):
        err = _error(client.post(path, content=body, headers={"Content-Type": content_type}), 415)
        assert err["code"] == "unsupported_media_type" and "application/json" in err["message"]


def test_a_body_over_the_cap_gets_413_before_it_is_parsed(client):
    big = b'{"customer_ids": [' + b",".join(b'"%d"' % i for i in range(60_000)) + b"]}"
    assert len(big) > 256 * 1024
    err = _error(client.post("/churn_risk", content=big, headers={"Content-Type": "application/json"}), 413)
    assert err["code"] == "body_too_large"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"k": "3"}, "k"),
        ({"k": True}, "k"),
        ({"k": 2.5}, "k"),
        ({"context": {**CTX, "timestamp": "3000-01-01T00:00:00"}}, "context.timestamp"),
        ({"context": {**CTX, "timestamp": "1500-01-01T00:00:00"}}, "context.timestamp"),
        ({"context": {**CTX, "timestamp": "2262-04-12T00:00:00"}}, "context.timestamp"),
        ({"customer_id": "x" * 65}, "customer_id"),
        ({"offer_ids": [""]}, "offer_ids[0]"),
    ],
)
def test_strict_types_and_ranges_are_400_naming_the_field(client, patch, field):
    err = _error(client.post("/recommend", json={"customer_id": "C1", "context": CTX, **patch}), 400)
    assert err["field"] == field


@pytest.mark.parametrize(("ids", "field"), [(["C1", ""], "customer_ids[1]"), (["C1", "y" * 10_000], "customer_ids[1]")])
def test_batch_ids_are_limited_like_recommend(client, ids, field):
    err = _error(client.post("/recommend_batch", json={"customer_ids": ids, "context": CTX}), 400)
    assert err["field"] == field and "character" in err["message"]


def test_an_offset_is_converted_not_dropped(client, service_env, profiled_ids):
    """The server has no REWARDS_STORE_TIMEZONE: offsets are converted to UTC (documented)."""
    cid = profiled_ids[3]
    naive = client.post("/recommend", json={"customer_id": cid, "context": {**CTX, "timestamp": "2026-06-29T23:15:00"}})
    shifted = client.post("/recommend", json={"customer_id": cid, "context": {**CTX, "timestamp": "2026-06-30T08:15:00+09:00"}})
    dropped = client.post("/recommend", json={"customer_id": cid, "context": CTX})
    assert naive.status_code == shifted.status_code == dropped.status_code == 200
    assert [o["offer_id"] for o in shifted.json()["offers"]] == [o["offer_id"] for o in naive.json()["offers"]]
    request_id = shifted.json()["request_id"]
    logged = [json.loads(line) for line in service_env.decision_log.read_text().splitlines() if request_id in line]
    assert logged[0]["context"]["timestamp"] == "2026-06-29T23:15:00"


def test_unknown_offers_are_a_404_object_and_not_a_list(client, profiled_ids):
    err = _error(client.post("/recommend", json={"customer_id": profiled_ids[0], "context": CTX, "offer_ids": ["NOPE"]}), 404)
    assert err["code"] == "unknown_offer" and err["field"] == "offer_ids" and "NOPE" in err["message"]


def test_a_thousand_copies_of_one_id_cost_what_one_does(client, server, service_env, profiled_ids):
    distinct = {"customer_ids": profiled_ids[:1000], "k": 3, "context": CTX}
    copies = {"customer_ids": [profiled_ids[0]] * 1000, "k": 3, "context": CTX}
    client.post("/recommend_batch", json=distinct).raise_for_status()  # warm
    t0 = time.perf_counter()
    for _ in range(3):
        client.post("/recommend_batch", json=distinct).raise_for_status()
    distinct_s = (time.perf_counter() - t0) / 3
    rss_before = group_rss_mb(server.process.pid)
    t0 = time.perf_counter()
    resp = client.post("/recommend_batch", json=copies)
    copies_s = time.perf_counter() - t0
    rss_after = group_rss_mb(server.process.pid)
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    single = client.post("/recommend", json={"customer_id": profiled_ids[0], "k": 3, "context": CTX}).json()
    assert len(results) == 1000 and all(r == results[0] for r in results)
    assert [o["offer_id"] for o in results[0]["offers"]] == [o["offer_id"] for o in single["offers"]]
    assert len(results[0]["offers"]) <= 3
    assert copies_s <= distinct_s + 0.5, (copies_s, distinct_s)  # within the normal batch latency
    assert rss_after - rss_before < 50, (rss_before, rss_after)  # flat (was +3.6 GB)
    request_id = resp.json()["request_id"]
    logged = [line for line in service_env.decision_log.read_text().splitlines() if request_id in line]
    assert len(logged) == 1  # decided and logged once


def test_the_decision_log_is_private(client, service_env, profiled_ids):
    client.post("/recommend", json={"customer_id": profiled_ids[0], "context": CTX}).raise_for_status()
    assert stat.S_IMODE(service_env.decision_log.stat().st_mode) == 0o600


def test_client_errors_are_one_log_line_without_values_and_no_traceback(client, server):
    before = server.log_path.read_text(errors="replace")
    client.post("/recommend", json={"customer_id": "SECRET-ID-123", "kk": "SECRET-VALUE", "context": CTX})
    client.post("/recommend", content=b"{SECRET-JSON", headers={"Content-Type": "application/json"})
    client.post("/recommend", json={"customer_id": "SECRET-ID-123", "context": CTX, "offer_ids": ["SECRET-OFFER"]})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        new = server.log_path.read_text(errors="replace")[len(before):]
        if new.count("refused") >= 3:
            break
        time.sleep(0.1)
    lines = [line for line in new.splitlines() if line.strip()]
    assert len([line for line in lines if "refused" in line]) == 3, lines
    assert "Traceback" not in new and "SECRET" not in new
    assert all("[INFO]" in line for line in lines if "refused" in line)


def test_the_published_spec_declares_what_the_server_does(server):
    spec = httpx.get(f"{server.url}/docs.json").json()
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert "/metrics" not in spec["paths"] and httpx.get(f"{server.url}/metrics").status_code in (401, 404)
    for route, item in spec["paths"].items():
        op = next(iter(item.values()))
        if "requestBody" in op:
            assert op["requestBody"]["required"] is True, route
            for status in ("400", "401", "413", "415"):
                assert op["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
    churn = spec["components"]["schemas"]["ChurnRisk"]["properties"]["churn_risk"]
    assert {"type": "null"} in churn["anyOf"]
