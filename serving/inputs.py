"""What a serving state was built from, as one comparable fingerprint.

A reload whose inputs are unchanged (same champion versions, same profile snapshot and manifest,
same validated tables, same settings) keeps the state it has instead of rebuilding it: polling
``/admin/reload`` costs two registry look-ups and a few ``stat`` calls, not a full load.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path


def _file_key(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


@lru_cache(maxsize=4)
def _client(tracking_uri: str):
    """One client per store: creating one (a SQLAlchemy engine and schema check) costs ~100s of ms of CPU."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def champion_versions(tracking_uri: str) -> dict[str, str]:
    """The registry versions the champion aliases point at now (raises when the registry cannot answer for
    the offer and churn models; the optional uplift model is "none" without a champion)."""
    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME
    from pipelines.registry import CHAMPION

    from mlflow.exceptions import MlflowException

    from pipelines.train_uplift import UPLIFT_MODEL_NAME

    client = _client(tracking_uri)
    versions = {name: str(client.get_model_version_by_alias(name, CHAMPION).version)
                for name in (OFFER_MODEL_NAME, CHURN_MODEL_NAME)}
    try:  # optional: its promotion changes the default objective, so it is an input too
        versions[UPLIFT_MODEL_NAME] = str(client.get_model_version_by_alias(UPLIFT_MODEL_NAME, CHAMPION).version)
    except MlflowException:
        versions[UPLIFT_MODEL_NAME] = "none"
    return versions


def validated_key(directory: Path) -> str:
    """What identifies the validated folder's contents: its tables' and program file's size, mtime and inode."""
    from data_contracts.program import PROGRAM_FILE

    if not directory.is_dir():
        return f"{directory}:missing"
    return "\n".join(sorted(_file_key(p) for p in [*directory.glob("*.parquet"), directory / PROGRAM_FILE]))


def inputs_fingerprint(settings) -> str:
    """A digest of everything ``serving.loading.load_state(settings)`` reads."""
    from pipelines.build_features import manifest_path

    parts = [repr(sorted(champion_versions(settings.tracking_uri).items())),
             _file_key(Path(settings.profiles_path)), _file_key(manifest_path(Path(settings.profiles_path)))]
    parts += [validated_key(Path(settings.validated_dir)), repr(settings.policy), repr(settings.max_scorer_mb)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
