"""Profiles: one row per customer at a point in time, assembled from the feature families."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.affinity import affinity_features
from features.catalogue import FAMILIES, family_features, feature_names
from features.gaps import gaps_features
from features.habits import habits_features
from features.history import History, prepare_history, to_as_of
from features.loyalty import loyalty_features
from features.offer_history import offer_history_features
from features.recency import recency_features
from features.rhythm import rhythm_features

if TYPE_CHECKING:
    from data_contracts.program import Program

FAMILY_FUNCTIONS: dict[str, Callable[[History], pd.DataFrame]] = {
    "recency": recency_features,
    "habits": habits_features,
    "affinity": affinity_features,
    "rhythm": rhythm_features,
    "loyalty": loyalty_features,
    "offer_history": offer_history_features,
    "gaps": gaps_features,
}

# Tables keyed by customer: chunking splits these; the others (offers) are passed whole.
CUSTOMER_TABLES: tuple[str, ...] = ("customers", "transactions", "offer_events", "feedback")


def customer_chunks(tables: dict[str, pd.DataFrame], customers_per_chunk: int) -> Iterator[dict[str, pd.DataFrame]]:
    """The tables cut into chunks of ``customers_per_chunk`` customers (sorted ids): the one chunking
    rule of profile builds and campaign lists. Tables not keyed by customer go whole into each chunk."""
    if customers_per_chunk < 1:
        raise ValueError(f"customers_per_chunk must be a positive integer, got {customers_per_chunk}")
    ids = pd.Index(np.sort(tables["customers"]["customer_id"].astype(str).to_numpy(dtype=object)))
    n_chunks = (len(ids) + customers_per_chunk - 1) // customers_per_chunk
    positions = {}
    for name in CUSTOMER_TABLES:
        # Look up each distinct id once (tables hold many rows per customer), then cut by position.
        codes, distinct = pd.factorize(tables[name]["customer_id"])
        found = ids.get_indexer(pd.Index(distinct).astype(str))
        pos = np.where(codes >= 0, found[codes], -1) if len(distinct) else np.full(len(codes), -1)
        chunk = np.where(pos >= 0, pos // customers_per_chunk, -1)
        # small integers: numpy's stable sort is a radix sort for 16-bit keys
        chunk = chunk.astype(np.int16) if n_chunks < 2**15 - 1 else chunk
        order = np.argsort(chunk, kind="stable")
        bounds = np.searchsorted(chunk[order], np.arange(n_chunks + 1))
        positions[name] = [order[bounds[i]:bounds[i + 1]] for i in range(n_chunks)]
    for i in range(n_chunks):
        part = dict(tables)
        for name in CUSTOMER_TABLES:
            part[name] = tables[name].iloc[positions[name][i]]
        yield part


class FamilyOutputError(RuntimeError):
    """A family function returned columns other than its declared features (a bug, not bad data)."""


def compute_family(family: str, history: History) -> pd.DataFrame:
    """Run one family's function and hold it to its declarations (names, order, dtypes)."""
    frame = FAMILY_FUNCTIONS[family](history)
    declared = family_features(family, history.program)
    expected = [f.name for f in declared]
    if list(frame.columns) != expected:
        missing = [c for c in expected if c not in frame.columns]
        extra = [c for c in frame.columns if c not in expected]
        raise FamilyOutputError(
            f"family '{family}' must return its declared features in order; missing {missing}, extra {extra}"
        )
    if len(frame) != history.n_customers:
        raise FamilyOutputError(f"family '{family}' returned {len(frame)} rows for {history.n_customers} customers")
    return frame.astype({f.name: f.dtype for f in declared})


def _profiles_of(history: History) -> pd.DataFrame:
    columns = {"customer_id": history.customers["customer_id"].reset_index(drop=True)}
    for family in FAMILIES:
        columns.update(compute_family(family, history).items())
    return pd.DataFrame(columns)  # built from a dict: one consolidated block per dtype


def build_profiles(
    tables: dict[str, pd.DataFrame], as_of, *, program: Program | None = None, customers_per_chunk: int | None = None
) -> pd.DataFrame:
    """One row per customer who signed up before ``as_of``, from rows strictly before ``as_of``.

    Columns: ``customer_id`` then the features of ``program``'s catalogue (default: the built-in
    default program) in catalogue order, sorted by customer_id.
    ``customers_per_chunk`` bounds memory by building contiguous ranges of customers one at a time.
    """
    as_of = to_as_of(as_of)
    if customers_per_chunk is None:
        return _profiles_of(prepare_history(tables, as_of, program))
    chunks = []
    for part in customer_chunks(tables, customers_per_chunk):
        chunk = _profiles_of(prepare_history(part, as_of, program))
        if len(chunk):
            chunks.append(chunk)
    if not chunks:
        return _profiles_of(prepare_history(tables, as_of, program))
    return pd.concat(chunks, ignore_index=True)


def build_training_snapshots(tables: dict[str, pd.DataFrame], as_of_dates: Iterable, *,
                             program: Program | None = None) -> pd.DataFrame:
    """Profiles at several cutoffs stacked, with an ``as_of`` column after ``customer_id``.

    Each snapshot is built exactly as ``build_profiles`` would build it alone, so no row of a
    snapshot sees anything at or after its own ``as_of``.
    """
    frames = []
    for value in as_of_dates:
        as_of = to_as_of(value)
        profiles = build_profiles(tables, as_of, program=program)
        stamp = pd.DataFrame({"as_of": pd.Series(as_of, index=profiles.index, dtype="datetime64[ns]")})
        frames.append(pd.concat([profiles[["customer_id"]], stamp, profiles.iloc[:, 1:]], axis=1))
    if not frames:
        raise ValueError("build_training_snapshots needs at least one as_of date, got none")
    return pd.concat(frames, ignore_index=True)


__all__ = ["CUSTOMER_TABLES", "FAMILY_FUNCTIONS", "build_profiles", "customer_chunks", "build_training_snapshots", "compute_family", "feature_names"]
