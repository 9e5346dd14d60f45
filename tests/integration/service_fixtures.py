"""Fixtures for the offer API tests: a trained data folder, and the real server on a free loopback port.

Shared through tests/integration/conftest.py, so they are built once per session; they are only built
for the tests that ask for them.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

API_KEY = "test-key-1"
SECOND_KEY = "test-key-2"
# The moment the tests ask for offers: the morning after the profiles' cutoff.
DECISION_TIME = "2026-06-30T08:15:00"


@dataclass
class ServiceEnv:
    """A data folder with validated tables, a profile snapshot and champion models in a SQLite MLflow store."""

    data_dir: Path
    validated_dir: Path
    profiles_path: Path
    tracking_uri: str
    decision_log: Path
    as_of: str
    cases: dict  # customer ids (and offers) planted in the contact history for the policy rules

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "REWARDS_DATA_DIR": str(self.data_dir),
            "REWARDS_VALIDATED_DIR": str(self.validated_dir),
            "REWARDS_PROFILES_PATH": str(self.profiles_path),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "REWARDS_ARTIFACT_ROOT": str(self.data_dir / "mlartifacts"),
            "REWARDS_DECISION_LOG": str(self.decision_log),
            "REWARDS_API_KEYS": f"{API_KEY},{SECOND_KEY}",
            **extra,
        }


def plant_policy_cases(tables: dict, when: str) -> tuple[dict, dict]:
    """Add offer events that make the contact rules bite for a few chosen customers at ``when``.

    Chosen among members with consent, outside the control group, with no send in the 30 days before.
    cap: 3 sends in the last 7 days; cooldown: a send 12 h before; suppressed: 3 ignored bakery sends
    in the last 90 days; redeemed: redeemed O013 five days before; fresh: a comparable member with none.
    """
    import pandas as pd

    from models.policy import PolicyConfig, is_holdout

    t = pd.Timestamp(when)
    customers, events = tables["customers"], tables["offer_events"]
    recent = set(events.loc[events["sent_at"] > t - pd.Timedelta(days=30), "customer_id"])
    cfg = PolicyConfig()
    pool = customers[
        customers["marketing_consent"]
        & (customers["signup_date"] < t - pd.Timedelta(days=60))
        & ~customers["customer_id"].isin(recent)
    ].sort_values("customer_id")
    pool = pool[~is_holdout(pool["customer_id"].tolist(), cfg.holdout_fraction, cfg.holdout_salt)]
    ids = pool["customer_id"].tolist()[:5]
    cap, cooldown, suppressed, redeemed, fresh = ids

    def send(cid, oid, hours_before, redeemed_hours_before=None):
        sent = t - pd.Timedelta(hours=hours_before)
        red = t - pd.Timedelta(hours=redeemed_hours_before) if redeemed_hours_before is not None else pd.NaT
        return {"customer_id": cid, "offer_id": oid, "sent_at": sent, "channel": "app", "viewed_at": pd.NaT,
                "redeemed_at": red, "is_control": False}

    planted = pd.DataFrame(
        [send(cap, "O005", 24 * d) for d in (2, 3, 4)]
        + [send(cooldown, "O005", 12)]
        + [send(suppressed, oid, 24 * d) for oid, d in (("O001", 20), ("O002", 40), ("O001", 60))]
        + [send(redeemed, "O013", 24 * 6, redeemed_hours_before=24 * 5)]
    ).astype(events.dtypes.to_dict())
    out = dict(tables)
    out["offer_events"] = pd.concat([events, planted], ignore_index=True)
    cases = {"cap": cap, "cooldown": cooldown, "suppressed": suppressed, "suppressed_category": "bakery",
             "redeemed": redeemed, "redeemed_offer": "O013", "fresh": fresh}
    return out, cases


def ensure_champions(tracking_uri: str) -> None:
    """Serve the latest version of a model the promotion gate kept as challenger (small data is noisy)."""
    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME
    from pipelines.registry import promote_latest_without_champion

    promote_latest_without_champion(
        [CHURN_MODEL_NAME, OFFER_MODEL_NAME], "offer API test/benchmark setup: serve the latest version", tracking_uri
    )


def build_service_env(sample, root: Path, as_of: str) -> ServiceEnv:
    """Write the sample (plus planted policy cases) as validated tables, build the profiles at ``as_of``,
    train and register both models."""
    import json

    from pipelines.build_features import build_and_write
    from pipelines.io import write_validated
    from pipelines.config import environment
    from pipelines.train import train_all

    root = Path(root)
    tables, cases = plant_policy_cases(sample.tables, DECISION_TIME)
    validated = write_validated(tables, root / "validated")  # the generator's tables are schema-valid
    (root / "cases.json").write_text(json.dumps(cases))
    profiles_path = root / "profiles" / "profiles.parquet"
    build_and_write(tables, as_of, profiles_path)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    with environment(REWARDS_DATA_DIR=str(root), REWARDS_ARTIFACT_ROOT=str(root / "mlartifacts"),
                     MLFLOW_TRACKING_URI=tracking_uri):
        train_all(validated, tracking_uri=tracking_uri, max_ece=0.1)
        ensure_champions(tracking_uri)
    return ServiceEnv(root, validated, profiles_path, tracking_uri, root / "decisions" / "decisions.jsonl", as_of, cases)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    env: ServiceEnv
    log_path: Path
    process: object


@pytest.fixture(scope="session")
def service_env(sample, tmp_path_factory) -> ServiceEnv:
    from pipelines.config import SAMPLE_END_DATE

    return build_service_env(sample, tmp_path_factory.mktemp("service"), SAMPLE_END_DATE)


@pytest.fixture(scope="session")
def server(service_env, tmp_path_factory):
    """The real offer API on a free loopback port, ready; stopped at the end of the session."""
    from pipelines.serve import start_server, stop_server, wait_ready

    port = free_port()
    log_path = tmp_path_factory.mktemp("server-log") / "server.log"
    proc = start_server("127.0.0.1", port, env=service_env.env(), log_path=log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=180, process=proc, log_path=log_path)
        yield RunningServer(url, service_env, log_path, proc)
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def client(server):
    import httpx

    with httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}, timeout=60) as c:
        yield c
