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
from service_fixtures import DECISION_TIME  # noqa: E402  (fixtures come from conftest.py)

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


def test_the_offer_api_gives_the_same_offers_for_the_same_customers_and_context(campaign, client):
    listed, excluded = campaign["list"], campaign["exclusions"]
    candidates = sorted(set(listed.loc[~listed["holdout"], "customer_id"]))[:400]
    candidates += sorted(excluded.loc[excluded["reason"] != "control_group", "customer_id"])[:100]
    response = client.post("/recommend_batch", json={"customer_ids": candidates, "k": 3, "context": CONTEXT})
    assert response.status_code == 200, response.text
    served = {r["customer_id"]: r for r in response.json()["results"]}
    offers = listed[~listed["holdout"]].groupby("customer_id")
    reasons = excluded.set_index("customer_id")["reason"]
    # The list's budget pass withdraws some offers of budget-limited offers (a whole-list decision the
    # API, deciding one request at a time, does not make); only those may differ.
    capped = {b["offer_id"] for b in campaign["summary"]["budget"] if b["withdrawn_for_budget"]}
    compared = withdrawn = 0
    for cid in candidates:
        decision = served[cid]
        if decision["control_group"]:  # the service's own control group (another salt): not comparable
            continue
        compared += 1
        if cid in reasons.index and reasons[cid] != "budget_exhausted":
            assert decision["status"] == reasons[cid] and decision["offers"] == []
            continue
        mine = offers.get_group(cid).sort_values("rank") if cid in offers.groups else listed.iloc[:0]
        kept = [o for o in decision["offers"] if o["offer_id"] in set(mine["offer_id"])]
        gone = [o["offer_id"] for o in decision["offers"] if o["offer_id"] not in set(mine["offer_id"])]
        assert set(gone) <= capped, (cid, gone)
        withdrawn += len(gone)
        assert [o["offer_id"] for o in kept] == mine["offer_id"].tolist(), cid
        assert [o["p_redeem"] for o in kept] == pytest.approx(mine["p_redeem"].tolist(), abs=1e-9)
        assert [o["reasons"] for o in kept] == [list(r) for r in mine["reasons"]]
        if len(mine):
            assert decision["churn_risk"] == pytest.approx(mine["churn_risk"].iloc[0], abs=1e-12)
    assert compared > 400
    assert withdrawn <= campaign["summary"]["offers_withdrawn_for_budget"]


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
