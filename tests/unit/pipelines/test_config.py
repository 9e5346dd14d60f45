"""pipelines.config: paths from env, and the environment() block that puts variables back."""

from __future__ import annotations

import os

import pytest

from pipelines import config


def test_environment_restores_set_and_unset_variables_even_after_an_error(monkeypatch):
    monkeypatch.setenv("REWARDS_TEST_SET", "before")
    monkeypatch.delenv("REWARDS_TEST_UNSET", raising=False)
    with pytest.raises(RuntimeError, match="boom"):
        with config.environment(REWARDS_TEST_SET="inside", REWARDS_TEST_UNSET="inside"):
            assert os.environ["REWARDS_TEST_SET"] == os.environ["REWARDS_TEST_UNSET"] == "inside"
            os.environ["REWARDS_TEST_SET"] = "changed by the block"
            raise RuntimeError("boom")
    assert os.environ["REWARDS_TEST_SET"] == "before"
    assert "REWARDS_TEST_UNSET" not in os.environ


def test_tracking_uri_defaults_to_sqlite_under_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("REWARDS_DATA_DIR", str(tmp_path))
    assert config.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert config.tracking_uri() == "http://127.0.0.1:5000"
