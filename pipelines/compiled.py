"""LightGBM models compiled to machine code (lleaves), for scoring millions of offer rows.

``CompiledBooster(booster)`` predicts the same probabilities as ``booster.predict`` (lleaves
compiles each tree to native code through LLVM; measured difference ~1e-15) about five times
faster. Batch scoring checks it against the model's own path before the run
(``models.policy.check_scorer``), so a wrong compile fails the run instead of writing a list.

The compiled code is cached under the system temp folder, keyed by the model text's digest, so each
machine compiles a model once (a few seconds) and every process after that loads it. The object is
picklable (it carries the model text and compiles or loads in the process that first predicts), so
the worker processes of the in-process engine and Spark's Python workers can use it as it is.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from pipelines.io import atomic_path


def cache_dir() -> Path:
    """Where compiled models are kept (REWARDS_COMPILED_CACHE, else <tmp>/rewards-compiled-<uid>)."""
    default = Path(tempfile.gettempdir()) / f"rewards-compiled-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    return Path(os.environ.get("REWARDS_COMPILED_CACHE", default))


SMALL_CALL_ROWS = 5000


class CompiledBooster:
    """P(class 1) of a binary LightGBM booster for float64 rows, from compiled trees.

    ``threads``: threads for big calls (1 inside worker processes, where the processes are the
    parallelism); calls under ``SMALL_CALL_ROWS`` rows run on the calling thread (no pool start-up).
    If lleaves cannot compile here, it warns once and falls back to ``booster.predict``.
    """

    def __init__(self, booster, threads: int = 2):
        # The iterations Booster.predict uses by default: the best one when early stopping found it.
        self.model_text = booster.model_to_string()
        self.num_feature = booster.num_feature()
        self.digest = hashlib.sha256(self.model_text.encode()).hexdigest()[:24]
        self.threads = threads
        self._model = None
        self._fallback = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_model=None, _fallback=None, _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def compile(self) -> "CompiledBooster":
        """Compile (or load the cached compile of) the model now; returns self."""
        with self._lock:
            if self._model is None and self._fallback is None:
                try:
                    self._model = _load_or_compile(self.model_text, self.digest)
                except Exception as err:  # noqa: BLE001 - any compile failure: score with LightGBM instead
                    import lightgbm as lgb

                    warnings.warn(
                        f"lleaves could not compile the offer model ({type(err).__name__}: {err}); "
                        "scoring with LightGBM's own predict (about 5x slower)", RuntimeWarning, stacklevel=2,
                    )
                    self._fallback = lgb.Booster(model_str=self.model_text)
        return self

    @property
    def compiled(self) -> bool:
        return self.compile()._model is not None

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.num_feature:
            raise ValueError(f"CompiledBooster: rows must have {self.num_feature} features, got shape {X.shape}")
        self.compile()
        if not len(X):
            return np.zeros(0)
        threads = self.threads if len(X) >= SMALL_CALL_ROWS else 1
        if self._model is not None:
            return self._model.predict(X, n_jobs=threads)
        return np.asarray(self._fallback.predict(X, num_threads=threads), dtype=float)


def compiled_predictor(model, threads: int = 2) -> CompiledBooster | None:
    """A CompiledBooster for our LightGBM offer estimator (``feature_names_in_``, ``categories_`` and
    ``booster_model_``, as ``models.policy.MatrixScorer`` needs), or None for any other model."""
    if not all(hasattr(model, a) for a in ("booster_model_", "feature_names_in_", "categories_")):
        return None
    return CompiledBooster(model.booster_model_.booster_, threads=threads)


def _load_or_compile(model_text: str, digest: str):
    """The lleaves model for ``model_text``: loaded from the cache, or compiled and cached atomically."""
    import lleaves

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / f"{digest}.txt"
    binary = folder / f"{digest}.o"
    if not model_file.exists():
        with atomic_path(model_file) as tmp:
            tmp.write_bytes(model_text.encode())
    model = lleaves.Model(model_file=str(model_file))
    if binary.exists():
        model.compile(cache=str(binary))
        return model
    # Compile into a private file, then rename: two processes compiling at once never read half a file.
    with atomic_path(binary) as private:
        private.unlink()  # lleaves loads an existing cache file instead of writing one
        model.compile(cache=str(private))
    return model
