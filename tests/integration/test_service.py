"""The offer API over HTTP: the real BentoML server on loopback, real MLflow registry, real profiles.

One session-scoped server (see service_fixtures.py); the reload tests run last because they swap the
profile snapshot.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from models.policy import PolicyConfig, is_holdout

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the fixtures module importable
from service_fixtures import DECISION_TIME, SECOND_KEY  # noqa: E402  (fixtures come from conftest.py)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MORNING_APP = {"timestamp": DECISION_TIME, "channel": "app", "store_id": "S001"}


@pytest.fixture(scope="module")
def tables(service_env):
    from pipelines.io import read_validated

    return read_validated(service_env.validated_dir)


@pytest.fixture(scope="module")
def profiled_ids(service_env):
    return pd.read_parquet(service_env.profiles_path, columns=["customer_id"])["customer_id"].astype(str).tolist()


@pytest.fixture(scope="module")
def everyone(client, profiled_ids):
    """Decisions for every profiled customer in the morning app context (batches of 1,000)."""
    results = []
    for lo in range(0, len(profiled_ids), 1000):
        resp = client.post("/recommend_batch", json={"customer_ids": profiled_ids[lo: lo + 1000], "k": 3,
                                                     "context": MORNING_APP})
        assert resp.status_code == 200, resp.text
        results += resp.json()["results"]
    return results


def recommend(client, customer_id, k=3, context=MORNING_APP, **extra):
    return client.post("/recommend", json={"customer_id": customer_id, "k": k, "context": context, **extra})


# ---- health and auth ------------------------------------------------------------------------


def test_health_endpoints_are_open(server):
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_api_key_is_required_and_checked(server, profiled_ids):
    body = {"customer_id": profiled_ids[0], "k": 1, "context": MORNING_APP}
    missing = httpx.post(f"{server.url}/recommend", json=body)
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]["message"]
    wrong = httpx.post(f"{server.url}/recommend", json=body, headers={"X-API-Key": "not-a-key"})
    assert wrong.status_code == 401 and "invalid API key" in wrong.json()["error"]["message"]
    assert httpx.post(f"{server.url}/admin/reload", json={}).status_code == 401
    assert httpx.post(f"{server.url}/recommend", json=body, headers={"X-API-Key": SECOND_KEY}).status_code == 200


# ---- response shape and decision log --------------------------------------------------------


def test_recommend_answers_with_ranked_offers_reasons_and_versions(client, service_env, everyone):
    ok = next(r for r in everyone if r["status"] == "ok" and len(r["offers"]) == 3)
    resp = recommend(client, ok["customer_id"])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) >= {"offers", "churn_risk", "cold_start", "control_group", "status", "model_versions", "request_id"}
    assert body["customer_id"] == ok["customer_id"] and body["cold_start"] is False and body["status"] == "ok"
    assert 0.0 <= body["churn_risk"] <= 1.0
    assert set(body["model_versions"]) == {"churn-risk", "offer-response"}
    offers = body["offers"]
    assert [o["rank"] for o in offers] == [1, 2, 3]
    assert all(set(o) >= {"offer_id", "name", "score", "expected_value", "reasons"} for o in offers)
    assert [o["score"] for o in offers] == sorted((o["score"] for o in offers), reverse=True)
    assert all(0.0 < o["p_redeem"] < 1.0 for o in offers)
    assert all(o["reasons"] and all(isinstance(r, str) and r for r in o["reasons"]) for o in offers)
    # every decision is in the log, with the offers shown and the model versions
    logged = [json.loads(line) for line in service_env.decision_log.read_text().splitlines()]
    mine = [r for r in logged if r["request_id"] == body["request_id"]]
    assert len(mine) == 1
    assert [o["offer_id"] for o in mine[0]["offers"]] == [o["offer_id"] for o in offers]
    assert mine[0]["model_versions"] == body["model_versions"] and mine[0]["customer_id"] == ok["customer_id"]


def test_k_limits_offers(client, everyone):
    ok = next(r for r in everyone if r["status"] == "ok" and len(r["offers"]) == 3)
    assert len(recommend(client, ok["customer_id"], k=1).json()["offers"]) == 1


def test_batch_keeps_request_order_and_logs_every_customer(client, service_env, profiled_ids):
    ids = profiled_ids[:50][::-1]
    resp = client.post("/recommend_batch", json={"customer_ids": ids, "k": 2, "context": MORNING_APP})
    assert resp.status_code == 200
    body = resp.json()
    assert [r["customer_id"] for r in body["results"]] == ids
    logged = [json.loads(line) for line in service_env.decision_log.read_text().splitlines()]
    assert sorted(r["customer_id"] for r in logged if r["request_id"] == body["request_id"]) == sorted(ids)


def test_churn_risk_for_known_and_unknown_customers(client, profiled_ids):
    resp = client.post("/churn_risk", json={"customer_ids": [profiled_ids[0], "NOT-A-MEMBER"]})
    assert resp.status_code == 200
    known, unknown = resp.json()["results"]
    assert known["known"] is True and 0.0 <= known["churn_risk"] <= 1.0
    assert unknown == {"customer_id": "NOT-A-MEMBER", "known": False, "churn_risk": None}


# ---- the policy rules, seen from outside ----------------------------------------------------


def test_every_offer_is_active_eligible_and_one_per_category(everyone, tables, client):
    offers = tables["offers"].set_index("offer_id")
    customers = tables["customers"].set_index("customer_id")
    t = pd.Timestamp(DECISION_TIME)
    shown = 0
    for r in everyone:
        cats = [o["reward_category"] for o in r["offers"]]
        assert len(cats) == len(set(cats)), r
        for o in r["offers"]:
            offer = offers.loc[o["offer_id"]]
            assert offer["valid_from"] <= t <= offer["valid_to"]
            assert customers.loc[r["customer_id"], "tier"] in list(offer["eligible_tiers"])
            assert "app" in list(offer["channels"])
            shown += 1
    assert shown > len(everyone)  # the checks ran on real answers
    # tier rules bite: asked for the tier-restricted offers only, O024 (bronze/silver) and O021 (silver
    # and up) are shown, and only to their tiers
    restricted = {"O024": {"bronze", "silver"}, "O021": {"silver", "gold", "platinum"}}
    tiers_shown = {o: set() for o in restricted}
    ids = [r["customer_id"] for r in everyone]
    for lo in range(0, len(ids), 1000):
        resp = client.post("/recommend_batch", json={"customer_ids": ids[lo: lo + 1000], "k": 2,
                                                     "context": MORNING_APP, "offer_ids": list(restricted)})
        assert resp.status_code == 200, resp.text
        for r in resp.json()["results"]:
            for o in r["offers"]:
                tiers_shown[o["offer_id"]].add(customers.loc[r["customer_id"], "tier"])
    assert tiers_shown["O024"] == {"bronze", "silver"}, tiers_shown
    assert tiers_shown["O021"] <= restricted["O021"], tiers_shown


def test_no_consent_no_offer(everyone, tables):
    consent = tables["customers"].set_index("customer_id")["marketing_consent"]
    refused = [r for r in everyone if not consent[r["customer_id"]]]
    assert refused
    assert all(r["offers"] == [] and r["status"] in ("no_marketing_consent", "control_group") for r in refused)


def test_offers_without_budget_are_never_shown(everyone, tables, client, service_env):
    t = pd.Timestamp(DECISION_TIME)
    ev = tables["offer_events"]
    used = ev[~ev["is_control"] & (ev["redeemed_at"] <= t)].groupby("offer_id").size()
    offers = tables["offers"].set_index("offer_id")
    budget = offers["budget_redemptions"].astype("Float64")
    exhausted = [o for o in offers.index if pd.notna(budget[o]) and used.get(o, 0) >= budget[o]]
    assert exhausted, "the sample should have an offer whose budget is used up"
    assert not {o["offer_id"] for r in everyone for o in r["offers"]} & set(exhausted)
    fresh = service_env.cases["fresh"]
    resp = recommend(client, fresh, offer_ids=exhausted)
    assert resp.status_code == 200 and resp.json()["offers"] == []


def test_contact_cap_cooldown_suppression_and_recent_redemption(client, service_env):
    cases = service_env.cases
    capped = recommend(client, cases["cap"]).json()
    assert capped["status"] == "contact_cap" and capped["offers"] == []
    cooling = recommend(client, cases["cooldown"]).json()
    assert cooling["status"] == "cooldown" and cooling["offers"] == []
    suppressed = recommend(client, cases["suppressed"], k=8).json()
    assert suppressed["status"] == "ok" and suppressed["offers"]
    assert cases["suppressed_category"] not in {o["reward_category"] for o in suppressed["offers"]}
    only = [cases["redeemed_offer"]]
    assert recommend(client, cases["redeemed"], offer_ids=only).json()["offers"] == []
    assert [o["offer_id"] for o in recommend(client, cases["fresh"], offer_ids=only).json()["offers"]] == only


def test_control_group_is_the_stable_hash_holdout(everyone):
    cfg = PolicyConfig()
    ids = [r["customer_id"] for r in everyone]
    held = is_holdout(ids, cfg.holdout_fraction, cfg.holdout_salt)
    assert 0.02 < held.mean() < 0.08
    for r, h in zip(everyone, held, strict=True):
        assert r["control_group"] == bool(h)
        if h:
            assert r["offers"] == [] and r["status"] == "control_group"


def test_morning_commuters_get_bakery_offers_more_than_other_personas(everyone, sample):
    persona = sample.ground_truth["customers"].set_index("customer_id")["persona"]
    rows = pd.DataFrame(
        {"persona": [persona[r["customer_id"]] for r in everyone if r["status"] == "ok"],
         "bakery": [any(o["reward_category"] == "bakery" for o in r["offers"]) for r in everyone if r["status"] == "ok"]}
    )
    rate = rows.groupby("persona")["bakery"].mean()
    others = rate.drop("morning_commuter")
    assert rate["morning_commuter"] > others.max(), rate.to_dict()
    assert rate["morning_commuter"] >= 0.6, rate.to_dict()


def test_unknown_customer_gets_cold_start_offers(client):
    cfg = PolicyConfig()
    new_id = next(f"NEW-{i}" for i in range(100) if not is_holdout([f"NEW-{i}"], cfg.holdout_fraction, cfg.holdout_salt)[0])
    body = recommend(client, new_id).json()
    assert body["cold_start"] is True and body["churn_risk"] is None and body["status"] == "ok"
    assert len(body["offers"]) == 3
    assert all("new customer" in o["reasons"][0] for o in body["offers"])
    push = recommend(client, new_id, context={"timestamp": DECISION_TIME, "channel": "push"}).json()
    assert push["offers"] and all(o["offer_id"] != "O013" for o in push["offers"])  # O013 is not a push offer


# ---- bad input is a 4xx that names the field, never a 500 -----------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": "C1", "k": 0, "context": MORNING_APP}, "k"),
        ({"customer_id": "C1", "k": 11, "context": MORNING_APP}, "k"),
        ({"customer_id": "", "k": 3, "context": MORNING_APP}, "customer_id"),
        ({"customer_id": "C1", "k": 3}, "context"),
        ({"customer_id": "C1", "context": {"timestamp": "yesterday", "channel": "app"}}, "timestamp"),
        ({"customer_id": "C1", "context": {"timestamp": DECISION_TIME, "channel": "fax"}}, "channel"),
        ({"customer_id": "C1", "customerid": "C1", "context": MORNING_APP}, "customerid"),
        ({"customer_id": 42, "context": MORNING_APP}, "customer_id"),
    ],
)
def test_bad_payloads_are_400_naming_the_field(client, body, field):
    resp = client.post("/recommend", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert field in error["field"] and set(error) == {"code", "message", "field"}


def test_malformed_json_and_oversized_batches_are_400(client):
    resp = client.post("/recommend", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "json_invalid" in resp.text
    resp = client.post("/recommend_batch", json={"customer_ids": [f"C{i}" for i in range(1001)], "context": MORNING_APP})
    assert resp.status_code == 400 and "customer_ids" in resp.text


def test_unknown_offer_ids_are_404_naming_them(client, profiled_ids):
    resp = recommend(client, profiled_ids[0], offer_ids=["O001", "NO-SUCH-OFFER"])
    assert resp.status_code == 404
    assert "NO-SUCH-OFFER" in resp.text and "'O001'" not in resp.text


# ---- hot reload (last: swaps the profile snapshot) ------------------------------------------


def _status(client):
    return client.post("/status", json={}).json()


def test_reload_swaps_profiles_and_a_failed_reload_keeps_serving(client, service_env, tables, profiled_ids):
    from pipelines.build_features import build_and_write, manifest_path

    before = _status(client)
    assert before["ready"] and before["profiles_as_of"].startswith(service_env.as_of)

    # good: a new snapshot (earlier cutoff) is picked up as a whole
    build_and_write(tables, "2026-06-15", service_env.profiles_path)
    resp = client.post("/admin/reload", json={})
    assert resp.status_code == 200, resp.text
    assert resp.json()["profiles_as_of"].startswith("2026-06-15")
    assert resp.json()["previous_profiles_as_of"].startswith(service_env.as_of)
    assert _status(client)["profiles_as_of"].startswith("2026-06-15")

    # failing: a manifest that does not match its profiles -> 409 naming the problem; old state serves on
    manifest = json.loads(manifest_path(service_env.profiles_path).read_text())
    broken = {**manifest, "features": [*manifest["features"], {"name": "no_such_feature", "dtype": "float64"}]}
    manifest_path(service_env.profiles_path).write_text(json.dumps(broken))
    resp = client.post("/admin/reload", json={})
    assert resp.status_code == 409
    assert "no_such_feature" in resp.text and "still serving" in resp.text
    assert _status(client)["profiles_as_of"].startswith("2026-06-15")
    assert "no_such_feature" in _status(client)["last_reload_error"]
    assert recommend(client, profiled_ids[0]).status_code == 200

    # back to the original snapshot
    build_and_write(tables, service_env.as_of, service_env.profiles_path)
    resp = client.post("/admin/reload", json={})
    assert resp.status_code == 200 and resp.json()["profiles_as_of"].startswith(service_env.as_of)
    assert _status(client)["last_reload_error"] is None
