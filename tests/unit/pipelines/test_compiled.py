"""CompiledBooster: LightGBM trees compiled with lleaves must predict what LightGBM predicts."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pytest

from pipelines import compiled
from pipelines.compiled import CompiledBooster


@pytest.fixture(scope="module")
def booster():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 5))
    X[:, 4] = rng.integers(0, 6, 3000)  # a categorical column
    X[rng.random(3000) < 0.1, 1] = np.nan  # missing values take the learned default direction
    y = ((X[:, 0] + np.nan_to_num(X[:, 1]) + (X[:, 4] == 2) * 1.5 + rng.normal(0, 0.5, 3000)) > 0.5).astype(int)
    data = lgb.Dataset(X, y, categorical_feature=[4])
    return lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 0}, data, num_boost_round=60)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REWARDS_COMPILED_CACHE", str(tmp_path))
    return tmp_path


def _rows(n=2000, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 4] = rng.integers(-1, 8, n)  # includes categories never seen in training
    X[rng.random(n) < 0.15, 1] = np.nan
    X[rng.random(n) < 0.05, 4] = np.nan
    return X


def test_compiled_predictions_equal_lightgbm(booster, cache):
    model = CompiledBooster(booster, threads=2)
    X = _rows()
    got = model(X)
    assert model.compiled
    np.testing.assert_allclose(got, booster.predict(X), rtol=0, atol=1e-12)
    assert len(list(cache.glob("*.o"))) == 1  # compiled once, kept for the next process


def test_pickled_copy_loads_the_cached_compile_and_agrees(booster, cache):
    first = CompiledBooster(booster)
    X = _rows(seed=2)
    expected = first(X)
    copy = pickle.loads(pickle.dumps(first))
    assert copy._model is None  # nothing native travels in the pickle
    np.testing.assert_array_equal(copy(X), expected)
    assert len(list(cache.glob("*.o"))) == 1


def test_wrong_width_is_a_clear_error(booster, cache):
    with pytest.raises(ValueError, match=r"rows must have 5 features, got shape \(3, 4\)"):
        CompiledBooster(booster)(np.zeros((3, 4)))


def test_falls_back_to_lightgbm_with_a_warning_when_compiling_fails(booster, cache, monkeypatch):
    def broken(*args):
        raise OSError("no LLVM here")

    monkeypatch.setattr(compiled, "_load_or_compile", broken)
    model = CompiledBooster(booster)
    X = _rows(seed=3)
    with pytest.warns(RuntimeWarning, match="no LLVM here"):
        got = model(X)
    assert not model.compiled
    np.testing.assert_allclose(got, booster.predict(X), rtol=0, atol=1e-12)
