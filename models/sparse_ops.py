"""Sparse and ragged-array kernels: customers x items matrices, and sums and minima over the items each
offer covers (``models.offer_taxonomy.TaxonomyLookup``), and position ranges without a Python loop."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def csr(values, rows, cols, shape) -> sparse.csr_matrix:
    return sparse.csr_matrix((np.asarray(values, dtype=np.float64), (rows, cols)), shape=shape)


def ragged_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])`` without the loop."""
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.cumsum(counts) + counts, counts)
    return shift + np.arange(total)


def grid_min(values: sparse.csr_matrix, incidence: sparse.csc_matrix, n_offers: int) -> np.ndarray:
    """Per (row, offer): the smallest stored value of the row over the items the offer covers (NaN: none).

    ``values`` rows x items (stored entries only count), ``incidence`` items x offers (0/1)."""
    coo = values.tocoo()
    inc = incidence.tocsr()
    starts, counts = inc.indptr[coo.col], np.diff(inc.indptr)[coo.col]
    cols = inc.indices[ragged_ranges(starts, counts)]
    out = np.full((values.shape[0], n_offers), np.nan)
    np.fmin.at(out, (np.repeat(coo.row, counts), cols), np.repeat(coo.data, counts))
    return out


def pair_sum(values: sparse.csr_matrix, incidence_t: sparse.csr_matrix, cust: np.ndarray, offer: np.ndarray) -> np.ndarray:
    """Per pair k: sum over the items offer[k] covers of values[cust[k], item]."""
    return np.asarray(values[cust].multiply(incidence_t[offer]).sum(axis=1)).ravel()


def pair_min(values: sparse.csr_matrix, incidence_t: sparse.csr_matrix, cust: np.ndarray, offer: np.ndarray) -> np.ndarray:
    """Per pair k: min over the items offer[k] covers of the stored values[cust[k], item] (NaN: none)."""
    both = sparse.csr_matrix(values[cust].multiply(incidence_t[offer]))
    out = np.full(len(cust), np.nan)
    filled = np.flatnonzero(np.diff(both.indptr) > 0)
    if len(filled):
        out[filled] = np.minimum.reduceat(both.data, both.indptr[filled])
    return out
