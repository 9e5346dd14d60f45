"""Vectorised sampling helpers of the coffee scenario (choices, timestamps, ids, dtypes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_contracts.schema import pandas_dtype, table
from pipelines.scenarios.coffee.parameters import CLOSE_HOUR, HOUR_MIXTURES, OPEN_HOUR, PERSONAS


_CHOICE_RESOLUTION = 1 << 14


def _choice_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each element of ``rows`` draw a column index from the distribution ``probs[row]``.

    Inverse-CDF through a lookup table on a 1/16384 grid: one gather per draw, whatever the number of rows.
    """
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    grid = (np.arange(_CHOICE_RESOLUTION) + 0.5) / _CHOICE_RESOLUTION
    lookup = np.stack([np.searchsorted(c, grid, side="right") for c in cdf]).astype(np.int8)
    lookup = np.minimum(lookup, probs.shape[1] - 1)
    bucket = rng.integers(0, _CHOICE_RESOLUTION, size=len(rows))
    return lookup[rows, bucket]


def _as_datetime(ns: np.ndarray, mask: np.ndarray | None = None) -> pd.Series:
    """Nanoseconds since the epoch as a datetime64[ns] Series (NaT where ``mask`` is False)."""
    values = np.asarray(ns, dtype=np.int64)
    if mask is not None:
        values = np.where(mask, values, np.iinfo(np.int64).min)
    return pd.Series(values.view("datetime64[ns]"))


def _ids(prefix: str, n: int, width: int) -> pd.Series:
    arr = pc.binary_join_element_wise(prefix, pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.string()),
                                                           width, "0"), "")
    return pd.Series(pd.array(arr, dtype="str"))


def _take_str(values: pd.Series | list[str], codes: np.ndarray) -> pd.Series:
    arr = pd.array(list(values) if not isinstance(values, pd.Series) else values.array, dtype="str")
    return pd.Series(arr.take(np.asarray(codes, dtype=np.int64)))


def _sample_hours(rng: np.random.Generator, persona_idx: np.ndarray) -> np.ndarray:
    """Fractional hour of day per visit from the persona's daypart mixture."""
    n_comp = max(len(v) for v in HOUR_MIXTURES.values())
    means = np.zeros((len(PERSONAS), n_comp))
    sds = np.ones((len(PERSONAS), n_comp))
    weights = np.zeros((len(PERSONAS), n_comp))
    for p, name in enumerate(PERSONAS):
        for k, (m, s, w) in enumerate(HOUR_MIXTURES[name]):
            means[p, k], sds[p, k], weights[p, k] = m, s, w
    weights /= weights.sum(axis=1, keepdims=True)
    comp = _choice_rows(rng, weights, persona_idx)
    hours = rng.normal(means[persona_idx, comp], sds[persona_idx, comp])
    # Re-draw out-of-hours times uniformly inside opening hours instead of piling them on the edges.
    bad = (hours < OPEN_HOUR) | (hours >= CLOSE_HOUR)
    hours[bad] = rng.uniform(OPEN_HOUR, CLOSE_HOUR, bad.sum())
    return hours


def _conform(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Order columns as declared and cast each to its canonical dtype."""
    t = table(name)
    out = {}
    for col in t.columns:
        dtype = pandas_dtype(col)
        s = frame[col.name]
        if dtype == "object":
            out[col.name] = s.astype("object")
        elif dtype == "datetime64[ns]":
            out[col.name] = s if s.dtype == dtype else pd.to_datetime(s).astype(dtype)
        else:
            out[col.name] = s if str(s.dtype) == dtype else s.astype(dtype)
    return pd.DataFrame(out).reset_index(drop=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
