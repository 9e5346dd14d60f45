"""A reload of a new profile snapshot over an unchanged validated folder keeps the tables, the offer
catalogue, the contact history and the taxonomy tables (``serving.loading.load_state(previous=...)``),
and decides exactly as a fresh load; a changed folder is read again. In process, on the service tests'
data and real MLflow SQLite store, each test on its own copy of the validated folder.
"""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

NEW_AS_OF = "2026-06-15"


@pytest.fixture()
def own_folder(service_env, tmp_path):
    """A copy of the validated folder and a snapshot at NEW_AS_OF built from it."""
    from pipelines.build_features import build_and_write
    from pipelines.io import read_validated

    validated = tmp_path / "validated"
    shutil.copytree(service_env.validated_dir, validated)
    snapshot = tmp_path / "profiles" / "profiles.parquet"
    build_and_write(read_validated(validated), NEW_AS_OF, snapshot)
    return validated, snapshot


def _load(service_env, validated, profiles=None, previous=None):
    from pipelines.config import environment
    from serving.loading import Settings, load_state

    extra = {"REWARDS_VALIDATED_DIR": str(validated), **({"REWARDS_PROFILES_PATH": str(profiles)} if profiles else {})}
    with environment(**service_env.env(**extra)):
        return load_state(Settings.from_env(), previous=previous)


def _decisions(state, ids) -> dict:
    from models.policy import Context

    ctx = Context(pd.Timestamp(f"{NEW_AS_OF} 08:15"), "app", vocabulary=state.catalog.vocabulary)
    return {k: [repr(x) for x in v] for k, v in state.decide(ids, ctx, 3).offer_columns.items()}


def test_a_new_snapshot_over_the_same_tables_reuses_them_and_decides_as_a_fresh_load(service_env, own_folder):
    validated, snapshot = own_folder
    first = _load(service_env, validated)
    reused = _load(service_env, validated, snapshot, previous=first)
    fresh = _load(service_env, validated, snapshot)

    assert reused.profiles_as_of.startswith(NEW_AS_OF) and not first.profiles_as_of.startswith(NEW_AS_OF)
    assert reused.setup.catalog is first.setup.catalog and reused.setup.history is first.setup.history
    assert reused.tables is first.tables and reused.tables_key == first.tables_key
    assert fresh.setup.catalog is not first.setup.catalog  # without a previous state everything is read
    if first.setup.taxonomy is not None:  # the taxonomy tables are shared, at the new cut
        assert reused.setup.taxonomy.tables is first.setup.taxonomy.tables
        assert reused.setup.taxonomy.as_of == pd.Timestamp(NEW_AS_OF) != first.setup.taxonomy.as_of
    ids = sorted(fresh.book.positions)[:300]
    assert len(ids) == 300
    assert _decisions(reused, ids) == _decisions(fresh, ids)


def test_a_changed_validated_folder_is_read_again_on_reload(service_env, own_folder):
    validated, snapshot = own_folder
    first = _load(service_env, validated)
    offers = validated / "offers.parquet"
    stat = offers.stat()
    os.utime(offers, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # rewritten, as validate would

    again = _load(service_env, validated, snapshot, previous=first)
    assert again.tables_key != first.tables_key
    assert again.setup.catalog is not first.setup.catalog and again.tables is not first.tables


def test_a_previous_state_without_the_purchase_log_is_not_reused_for_a_model_that_reads_it(service_env, own_folder):
    """E.g. the champion changed from an offer model without the taxonomy columns to one with them."""
    from dataclasses import replace

    from models.offer_taxonomy import uses_taxonomy

    validated, snapshot = own_folder
    first = _load(service_env, validated)
    assert uses_taxonomy(first.setup.offer_model)  # the sample's offer model reads the purchase log
    without_log = replace(first, tables={k: v for k, v in first.tables.items() if k != "transactions"})

    again = _load(service_env, validated, snapshot, previous=without_log)
    assert again.setup.catalog is not first.setup.catalog and "transactions" in again.tables
    assert again.profiles_as_of.startswith(NEW_AS_OF)
