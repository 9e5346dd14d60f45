"""Generate, score with a 10% holdout, simulate 30 days, measure, report: the real commands, a real MLflow
store, and the report opened in a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the fixtures module importable
from service_fixtures import DECISION_TIME  # noqa: E402,F401  (fixtures come from conftest.py)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _rewards(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env.env()})


@pytest.fixture(scope="module")
def measured(service_env, sample_raw_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("measure")
    campaign = root / "lists" / "summer.parquet"
    proc = _rewards(service_env, "score", "--as-of", service_env.as_of, "--campaign", "summer", "--k", "3",
                    "--holdout", "0.1", "--data", str(service_env.validated_dir), "--profiles",
                    str(service_env.profiles_path), "--out", str(campaign), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sim = root / "after"
    proc = _rewards(service_env, "simulate", "--campaign", str(campaign), "--data", str(sample_raw_dir),
                    "--days", "30", "--seed", "1", "--out", str(sim))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _rewards(service_env, "measure", "--campaign", str(campaign), "--data", str(sim), "--window-days", "30")
    assert proc.returncode == 0, proc.stderr[-3000:]
    measurement = json.loads(campaign.with_name("summer.measurement.json").read_text())
    return {"root": root, "campaign": campaign, "sim": sim, "stdout": proc.stdout, "m": measurement}


def test_measured_incremental_revenue_per_treated_customer_covers_the_planted_truth(measured):
    m = measured["m"]
    truth = pd.read_parquet(measured["sim"] / "ground_truth" / "treatment_effects.parquet")
    per_customer = truth[truth["treated"]].groupby("customer_id")["realised_incremental_revenue"].sum()
    rev = m["incremental_per_treated"]["revenue"]
    assert m["customers_treated"] == len(per_customer)
    assert rev["low"] <= per_customer.mean() <= rev["high"], (per_customer.mean(), rev)
    # About 10% of the considered customers are held out, and the groups add up to the list's count.
    assert 0.07 < m["customers_held_out"] / m["customers_considered"] < 0.13
    assert m["customers_considered"] == m["list_summary"]["customers_considered"]
    assert "incremental revenue per treated customer" in measured["stdout"]


def test_the_measurement_is_logged_to_mlflow_beside_the_offer_model(measured, service_env):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=service_env.tracking_uri)
    mv = client.get_model_version("offer-response", measured["m"]["model_versions"]["offer"])
    exp_id = client.get_run(mv.run_id).info.experiment_id
    runs = client.search_runs([exp_id], filter_string="tags.campaign = 'summer' and tags.kind = 'measurement'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["offer_model_run_id"] == mv.run_id
    assert run.data.metrics["incremental_revenue_per_treated"] == pytest.approx(
        measured["m"]["incremental_per_treated"]["revenue"]["value"], abs=1e-3)
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["summer.measurement.json"]


def test_a_holdout_of_20_customers_is_too_small_to_tell_and_says_so(measured, service_env):
    listed = pd.read_parquet(measured["campaign"])
    held = listed[listed["holdout"]]
    keep = set(held["customer_id"].sort_values().head(20))
    small = measured["root"] / "lists" / "small.parquet"
    listed[~listed["holdout"] | listed["customer_id"].isin(keep)].to_parquet(small)
    excl = pd.read_parquet(measured["campaign"].with_name("summer.exclusions.parquet"))
    excl[(excl["reason"] != "control_group") | excl["customer_id"].isin(keep)].to_parquet(
        small.with_name("small.exclusions.parquet"))
    shutil.copy(measured["campaign"].with_name("summer.summary.json"), small.with_name("small.summary.json"))
    proc = _rewards(service_env, "measure", "--campaign", str(small), "--data", str(measured["sim"]), "--no-mlflow")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads(small.with_name("small.measurement.json").read_text())
    rev = m["incremental_per_treated"]["revenue"]
    assert m["customers_held_out"] == 20
    assert rev["low"] <= 0 <= rev["high"]
    assert "Too small to tell: with 20 customers held out" in proc.stdout


def test_a_list_without_holdout_exits_2_naming_the_reason(measured, service_env):
    listed = pd.read_parquet(measured["campaign"])
    none = measured["root"] / "lists" / "none.parquet"
    listed[~listed["holdout"]].to_parquet(none)
    proc = _rewards(service_env, "measure", "--campaign", str(none), "--data", str(measured["sim"]), "--no-mlflow")
    assert proc.returncode == 2
    assert "has no holdout group" in proc.stderr and "--holdout above 0" in proc.stderr


def test_an_empty_window_exits_2_naming_the_reason(measured, service_env, sample_raw_dir):
    # The generated program itself ends when the list is sent: nothing happened after it yet.
    proc = _rewards(service_env, "measure", "--campaign", str(measured["campaign"]), "--data",
                    str(service_env.validated_dir), "--no-mlflow")
    assert proc.returncode == 2
    assert "the measurement window [2026-06-30 09:00:00, 2026-07-30 09:00:00) is empty" in proc.stderr


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_report_renders_in_a_real_browser_with_its_charts(measured, service_env, tmp_path_factory):
    proc = _rewards(service_env, "report", "--campaign", str(measured["campaign"]))
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = measured["campaign"].with_name("summer.report.html")
    text = page.read_text()
    # Self-contained: nothing is loaded from anywhere (SVG namespace URIs are names, not downloads).
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text) is None
    assert "<script" not in text
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine: `make test` installs Debian's chromium when run as root with "
                    "apt-get; without it the report's browser test cannot run")
    artifacts = tmp_path_factory.mktemp("report-artifacts")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={artifacts / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for chart in ("chart-incremental", "chart-groups", "chart-gain", "chart-roi-offers"):
        section = html[html.index(f'id="{chart}"'):]
        section = section[: section.index("</section>")]
        assert "<svg" in section and section.count("<path") >= 5, chart
    assert 'id="headline-roi"' in html and "95% interval" in html and 'id="counts"' in html
    shot = artifacts / "report.png"
    proc = subprocess.run([browser, *flags, "--window-size=1100,2600", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000, proc.stderr[-2000:]


def test_the_api_decision_log_measures_like_the_list_it_mirrors(measured, service_env):
    """The same decisions written as the offer API logs them give the same measurement as the list."""
    listed = pd.read_parquet(measured["campaign"])
    excl = pd.read_parquet(measured["campaign"].with_name("summer.exclusions.parquet"))
    versions = {"offer-response": listed["offer_model_version"].iloc[0], "churn-risk": listed["churn_model_version"].iloc[0]}
    context = {"timestamp": "2026-06-30T09:00:00", "channel": "email", "store_id": None}
    records = []
    for cid, rows in listed[~listed["holdout"]].groupby("customer_id"):
        records.append({"customer_id": cid, "status": "ok", "control_group": False,
                        "churn_risk": float(rows["churn_risk"].iloc[0]), "context": context, "model_versions": versions,
                        "offers": [{"offer_id": r.offer_id, "rank": int(r.rank), "score": float(r.score), "p_redeem": 0.1}
                                   for r in rows.itertuples()]})
    for r in excl.itertuples():
        records.append({"customer_id": r.customer_id, "status": r.reason, "control_group": r.reason == "control_group",
                        "churn_risk": float(r.churn_risk), "context": context, "model_versions": versions, "offers": []})
    log = measured["root"] / "decisions.jsonl"
    log.write_text("".join(json.dumps(rec) + "\n" for rec in records))
    proc = _rewards(service_env, "measure", "--campaign", str(log), "--data", str(measured["sim"]), "--no-mlflow")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads(log.with_name("decisions.measurement.json").read_text())
    for key in ("customers_treated", "customers_held_out", "customers_considered"):
        assert m[key] == measured["m"][key], key
    assert m["incremental_per_treated"]["revenue"] == measured["m"]["incremental_per_treated"]["revenue"]
