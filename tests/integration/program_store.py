"""A generated program validated into a folder of its own, with MLflow on a SQLite store in that folder."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def validated_program(root: Path, data):
    """Write ``data`` (a generated program) to root/raw, validate it to root/validated and point MLflow at
    root/mlflow.db for the block; yields ``root``."""
    from pipelines.config import SAMPLE_END_DATE
    from pipelines.synthetic import write
    from pipelines.validate import validate_directory

    write(data, root / "raw")
    result = validate_directory(root / "raw", root / "validated", root / "quarantine", root / "reports",
                                run_date=SAMPLE_END_DATE)
    assert result.written, f"the generated program in {root / 'raw'} did not validate"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.setenv("REWARDS_ARTIFACT_ROOT", str(root / "mlartifacts"))
    try:
        yield root
    finally:
        mp.undo()
