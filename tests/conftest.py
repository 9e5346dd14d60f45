"""Shared, seeded fixtures. The sample is generated once per test session and reused."""

from __future__ import annotations

import pytest

import pipelines  # noqa: F401  (sets OMP_WAIT_POLICY before any test imports lightgbm)

# One seeded sample for every test that needs realistic data. Model-quality thresholds are
# asserted on exactly this size and seed.
SAMPLE_CUSTOMERS = 3000
SAMPLE_DAYS = 365
SAMPLE_SEED = 42


@pytest.fixture(scope="session")
def sample():
    """The generated sample (tables and ground truth) in memory."""
    from pipelines.config import SAMPLE_END_DATE
    from pipelines.synthetic import generate

    return generate(
        n_customers=SAMPLE_CUSTOMERS, days=SAMPLE_DAYS, seed=SAMPLE_SEED, end_date=SAMPLE_END_DATE
    )


@pytest.fixture(scope="session")
def sample_raw_dir(sample, tmp_path_factory):
    """The sample written as raw Parquet files (plus ground_truth/) in a session temp folder."""
    from pipelines.synthetic import write

    out = tmp_path_factory.mktemp("raw")
    write(sample, out)
    return out
