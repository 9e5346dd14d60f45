"""Where things live. Every path and URI the pipelines use comes from here (env vars override)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# A fixed run date for the built-in sample so the demo and the tests are reproducible.
SAMPLE_END_DATE = "2026-06-30"

CHURN_MODEL_NAME = "churn-risk"
OFFER_MODEL_NAME = "offer-response"


def data_dir() -> Path:
    """Root of everything the pipelines write: ``$REWARDS_DATA_DIR`` or ``./data``."""
    return Path(os.environ.get("REWARDS_DATA_DIR", "data")).resolve()


def raw_dir() -> Path:
    return data_dir() / "raw"


def validated_dir() -> Path:
    return data_dir() / "validated"


def quarantine_dir() -> Path:
    return data_dir() / "quarantine"


def reports_dir() -> Path:
    return data_dir() / "reports"


def profiles_dir() -> Path:
    return data_dir() / "profiles"


def campaigns_dir() -> Path:
    return data_dir() / "campaigns"


def decision_log_path() -> Path:
    return Path(os.environ.get("REWARDS_DECISION_LOG", data_dir() / "decisions" / "decisions.jsonl"))


def tracking_uri() -> str:
    """MLflow tracking URI: ``$MLFLOW_TRACKING_URI`` or a SQLite file under the data folder."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{data_dir() / 'mlflow.db'}"


def artifact_root() -> Path:
    """Where MLflow stores artifacts for experiments this project creates."""
    return Path(os.environ.get("REWARDS_ARTIFACT_ROOT", data_dir() / "mlartifacts")).resolve()


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for a block, then put every one back as it was (unset ones unset)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
