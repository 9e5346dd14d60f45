"""P(redeem) for (customer, offer) pairs in a context, with per-feature contributions for the reasons.

Three scorers share one protocol (``Scorer``): ``FrameScorer`` (the model's own path:
``offer_features`` then ``predict_proba``, the reference), ``MatrixScorer`` (the same numbers built by
broadcasting, optionally with compiled trees) and ``PrecomputedScorer`` (every customer x offer row
built once; the API's fast path). ``check_scorer`` holds a fast scorer to the reference.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from models.policy.context import Context
from models.policy.customers import CustomerBatch
from models.policy.errors import PolicyError, ScorerMismatchError
from models.policy.offers import OfferCatalog
from models.policy.vocabulary import SCHEMA_VOCABULARY, Vocabulary
from models.reasons import BIAS_COLUMNS
from models.tabular import numeric_matrix


class OfferModel(Protocol):
    """What the policy needs from the offer-response model (models.offer_response.OfferResponseModel)."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame: ...


# The offer rows built at a time by MatrixScorer.score_pairs (float64): a chunk of 50,000 customers x
# 1,000 offers x 100 features would be 40 GB at once; in blocks of this size it never is.
GRID_BUDGET_MB = 256

FeatureBuilder = Callable[[pd.DataFrame, pd.DataFrame, dict], pd.DataFrame]

_PATHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tree_paths(booster):
    """``TreePaths`` of a LightGBM booster, built once per booster object (``dump_model`` and the walk
    cost ~50 ms; a reload that keeps the models, and every reference scorer, reuses them)."""
    paths = _PATHS.get(booster)
    if paths is None:
        from models.tree_paths import TreePaths

        paths = _PATHS[booster] = TreePaths(booster.dump_model())
    return paths


class Scorer(Protocol):
    def score_pairs(self, batch: CustomerBatch, rows: np.ndarray, offers: OfferCatalog, cols: np.ndarray,
              ctx: Context) -> tuple[np.ndarray, object]:
        """P(redeem) of shape (len(rows), len(cols)) and a handle for ``explain``."""

    def explain_pairs(self, handle: object, pairs: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(feature names, contributions (n, F) float, feature values (n, F) object) for flat pair
        indices ``row * len(cols) + col``; the bias is left out."""


class FrameScorer:
    """Scores through ``feature_builder`` (default ``offer_features``) and ``model.predict_proba``.

    Reasons come from path contributions (``models.tree_paths.TreePaths``, the same as the
    PrecomputedScorer's, so batch and online reasons agree) when the model is a fitted LightGBM
    estimator of ours, else from ``model.contributions``.
    """

    def __init__(self, model: OfferModel, feature_builder: FeatureBuilder | None = None, source=None):
        self.model = model
        self.feature_builder = feature_builder if feature_builder is not None or source is None else (
            _default_feature_builder(source))
        self._ours = all(hasattr(model, a) for a in ("booster_model_", "feature_names_in_", "categories_"))

    @property
    def _paths(self):
        """Path contributions for ``explain_pairs`` (only reasons need them: scoring never builds them)."""
        return tree_paths(self.model.booster_model_.booster_) if self._ours else None

    def score_pairs(self, batch, rows, offers, cols, ctx):
        build = self.feature_builder or _default_feature_builder()
        profiles = batch.profiles
        if profiles is None:
            raise PolicyError("FrameScorer needs the customers' profile rows (CustomerBook.batch(with_profiles=True))")
        prof_rows = profiles.iloc[np.searchsorted(np.flatnonzero(batch.known), rows)].reset_index(drop=True)
        offer_rows = offers.frame.iloc[cols].reset_index(drop=True)
        X = build(prof_rows, offer_rows, ctx.as_dict())
        if len(X) != len(rows) * len(cols):
            raise PolicyError(
                f"feature_builder returned {len(X)} rows for {len(rows)} customers x {len(cols)} offers; "
                f"expected {len(rows) * len(cols)} (customer-major cross product)"
            )
        p = np.asarray(self.model.predict_proba(X))[:, 1].reshape(len(rows), len(cols))
        return p, X

    def explain_pairs(self, handle, pairs):
        X_sel = handle.iloc[pairs]
        if self._paths is not None:
            from models.tabular import to_matrix

            names = list(self.model.feature_names_in_)
            M = to_matrix(X_sel, names, self.model.categories_, type(self.model).__name__)
            leaves = self.model.booster_model_.booster_.predict(numeric_matrix(M), pred_leaf=True, num_threads=1)
            contrib = self._paths.contributions(leaves)[:, : len(names)]
            values = X_sel[names].to_numpy(dtype=object)
            extra = [c for c in ("reward_category", "offer_type") if c in X_sel.columns and c not in names]
            if extra:
                names = names + extra
                values = np.concatenate([values, X_sel[extra].to_numpy(dtype=object)], axis=1)
                contrib = np.concatenate([contrib, np.zeros((len(pairs), len(extra)))], axis=1)
            return names, contrib, values
        if not hasattr(self.model, "contributions"):
            return [], np.zeros((len(pairs), 0)), np.zeros((len(pairs), 0), dtype=object)
        contrib = self.model.contributions(X_sel)
        contrib = contrib if isinstance(contrib, pd.DataFrame) else pd.DataFrame(np.asarray(contrib))
        names = [str(c) for c in contrib.columns if str(c) not in BIAS_COLUMNS]
        values = np.empty((len(pairs), len(names)), dtype=object)
        for j, name in enumerate(names):
            if name in X_sel.columns:
                values[:, j] = X_sel[name].to_numpy(dtype=object)
        extra = [c for c in ("reward_category", "offer_type") if c in X_sel.columns and c not in names]
        if extra:  # the phrasing needs the offer's category and type even when they are not features
            names_all = names + extra
            vals = np.concatenate([values, X_sel[extra].to_numpy(dtype=object)], axis=1)
            cont = np.concatenate([contrib[names].to_numpy(dtype=float), np.zeros((len(pairs), len(extra)))], axis=1)
            return names_all, cont, vals
        return names, contrib[names].to_numpy(dtype=float), values


class MatrixScorer:
    """Scores through ``offer_matrix`` (the offer rows as numbers, built by broadcasting per call) and
    ``predict`` (default: the LightGBM booster; batch scoring passes a compiled one). The numbers are
    the ones ``FrameScorer`` feeds the model, so the scores agree; ``check_matrix_scorer`` verifies it.
    Reasons come from path contributions (``TreePaths``) over the booster's leaves.
    """

    def __init__(self, model, predict: Callable[[np.ndarray], np.ndarray] | None = None, paths=None):
        self.names = list(model.feature_names_in_)
        self.categories = {k: list(v) for k, v in model.categories_.items()}
        self.booster = model.booster_model_.booster_
        self.predict = predict
        self.max_threads = 2  # LightGBM threads for big batches (1 where processes are the parallelism)
        self.grid_budget_mb = GRID_BUDGET_MB  # customers x offers x features scored at a time (score_pairs)
        self._col = {n: i for i, n in enumerate(self.names)}
        self.taxonomy = None  # models.offer_taxonomy.TaxonomyLookup of the customers scored (taxonomy models)
        self._offers = None  # (catalog, its offer attribute numbers): converted once per catalogue
        if paths is None:
            paths = tree_paths(self.booster)
        self.paths = paths  # models.tree_paths.TreePaths; False -> the booster's pred_contrib (TreeSHAP, slower)

    def _profiles(self, batch, rows) -> pd.DataFrame:
        if batch.profiles is None:
            raise PolicyError("MatrixScorer needs the customers' profile rows (CustomerBook.batch(with_profiles=True))")
        return batch.profiles.iloc[np.searchsorted(np.flatnonzero(batch.known), rows)]

    def _offer_numbers(self, offers) -> np.ndarray:
        """The catalogue's offer attribute numbers, converted once per catalogue."""
        from models.offer_response import offer_attribute_numbers

        if self._offers is None or self._offers[0] is not offers:
            self._offers = (offers, offer_attribute_numbers(offers.frame, self.names, self.categories))
        return self._offers[1]

    def _matrix(self, batch, rows, offers, cols, ctx) -> np.ndarray:
        """(len(rows), len(cols), n_features) numbers for the customers ``rows`` x offers ``cols``."""
        from models.offer_response import offer_matrix

        profiles = self._profiles(batch, rows)
        return offer_matrix(profiles, offers.frame.iloc[cols], ctx.as_dict(), self.names, self.categories,
                            taxonomy=self.taxonomy, offer_numbers=self._offer_numbers(offers)[cols])

    def _pair_rows(self, batch, rows, offers, cols, ctx) -> np.ndarray:
        """(n, n_features) numbers of the pairs (customer ``rows[k]``, offer ``cols[k]``): the rows of
        those pairs in ``_matrix``, without the grid."""
        from models.offer_response import offer_matrix

        profiles = self._profiles(batch, rows)
        return offer_matrix(profiles, offers.frame.iloc[cols], ctx.as_dict(), self.names, self.categories,
                            taxonomy=self.taxonomy, offer_numbers=self._offer_numbers(offers)[cols], aligned=True)

    def with_taxonomy(self, lookup) -> MatrixScorer:
        """This scorer reading the taxonomy columns from ``lookup`` (a ``TaxonomyLookup``)."""
        import copy

        other = copy.copy(self)
        other.taxonomy = lookup
        return other

    def _threads(self, n_rows: int) -> int:
        return self.max_threads if n_rows >= 5000 else 1  # big batches: more threads

    def block_rows(self, n_cols: int) -> int:
        """Customers scored at a time over ``n_cols`` offers: their grid (customers x offers x features,
        float64) stays within ``grid_budget_mb``."""
        per_customer = max(n_cols, 1) * max(len(self.names), 1) * 8
        return max(1, int(self.grid_budget_mb * 2**20) // per_customer)

    def _predict(self, flat: np.ndarray) -> np.ndarray:
        if self.predict is not None:
            return np.asarray(self.predict(flat), dtype=float)
        return np.asarray(self.booster.predict(flat, num_threads=self._threads(len(flat))), dtype=float)

    def score_pairs(self, batch, rows, offers, cols, ctx):
        """P(redeem) of customers ``rows`` x offers ``cols``, in blocks of customers whose grid stays within
        ``grid_budget_mb`` (1,000 offers x 100 features is 0.8 MB a customer). The handle is the grid
        when it fits one block, else the request (``explain_pairs`` rebuilds only the chosen pairs)."""
        rows = np.asarray(rows)
        step = self.block_rows(len(cols))
        if len(rows) <= step:
            M = self._matrix(batch, rows, offers, cols, ctx)
            flat = M.reshape(-1, M.shape[2])
            return self._predict(flat).reshape(len(rows), len(cols)), flat
        p = np.empty((len(rows), len(cols)))
        for lo in range(0, len(rows), step):
            M = self._matrix(batch, rows[lo: lo + step], offers, cols, ctx)
            p[lo: lo + step] = self._predict(M.reshape(-1, M.shape[2])).reshape(-1, len(cols))
            del M
        return p, _PairRequest(batch, rows, offers, np.asarray(cols), ctx)

    def explain_pairs(self, handle, pairs):
        if isinstance(handle, _PairRequest):
            pairs = np.asarray(pairs, dtype=np.int64)
            n_cols = len(handle.cols)
            flat = self._pair_rows(handle.batch, handle.rows[pairs // n_cols], handle.offers,
                                   handle.cols[pairs % n_cols], handle.ctx)
        else:
            flat = handle[pairs]
        if self.paths:
            leaves = self.booster.predict(flat, pred_leaf=True, num_threads=self._threads(len(flat)))
            contrib = self.paths.contributions(leaves)
        else:
            contrib = np.asarray(self.booster.predict(flat, pred_contrib=True, num_threads=1))
        values = flat.astype(object)
        for name, cats in self.categories.items():
            j = self._col[name]
            codes = flat[:, j]
            known = (codes == codes) & (codes >= 0) & (codes < len(cats))
            decoded = np.full(len(codes), None, dtype=object)
            decoded[known] = np.asarray(cats, dtype=object)[codes[known].astype(np.int64)]
            values[:, j] = decoded
        return self.names, contrib[:, : len(self.names)], values


@dataclass(frozen=True)
class _PairRequest:
    """What ``MatrixScorer.score_pairs`` scored when its grid did not fit one block (the reasons rebuild
    the rows of the chosen pairs from it)."""

    batch: CustomerBatch
    rows: np.ndarray
    offers: OfferCatalog
    cols: np.ndarray
    ctx: Context


VERIFY_TIMES = ("2026-03-02 07:40", "2026-03-04 12:30", "2026-03-07 15:10", "2026-03-08 19:55")


def verify_contexts(vocabulary: Vocabulary = SCHEMA_VOCABULARY) -> tuple[Context, ...]:
    """The sample contexts ``check_scorer`` compares scorers in, on the vocabulary's offer channels in turn."""
    channels = vocabulary.offer_channels
    return tuple(Context(pd.Timestamp(t), channels[i % len(channels)], vocabulary=vocabulary)
                 for i, t in enumerate(VERIFY_TIMES))


VERIFY_CONTEXTS: tuple[Context, ...] = verify_contexts()


def check_scorer(
    scorer: Scorer, model, profiles: pd.DataFrame, catalog: OfferCatalog, *, customers: int = 25,
    contexts: Sequence[Context] | None = None, atol: float = 1e-9, source=None,
) -> float:
    """The largest gap between ``scorer`` and the model's own path (``model.predict_proba`` over
    ``offer_features``, i.e. ``FrameScorer``) on a fixed-size seeded sample of ``customers`` rows of
    ``profiles`` x every offer in ``catalog``, in a few contexts. Raises ScorerMismatchError when it is
    ``atol`` or more.

    A consistency check, not a computation: its cost does not grow with the profiles (a reload of
    3,000 or 3 million customers checks the same 25), and the reference rows of every context are
    built by one ``offer_features`` call (a context frame) and scored by one ``predict_proba``.
    ``source`` (``models.offer_taxonomy.TaxonomySource``) gives the reference the tables and the cut of
    the taxonomy columns (needed when the model uses them).
    """
    prof = profiles.reset_index(drop=True)
    n_c, n_o = len(prof), len(catalog)
    if not n_c or not n_o:
        return 0.0
    contexts = list(contexts or verify_contexts(catalog.vocabulary))
    sample = np.sort(np.random.default_rng(0).choice(n_c, size=min(customers, n_c), replace=False))
    batch = CustomerBatch(
        customer_id=prof["customer_id"].to_numpy(dtype=object)[sample], tier=np.full(len(sample), None),
        marketing_consent=np.full(len(sample), None), churn_risk=np.full(len(sample), np.nan),
        habit_tags=[None] * len(sample), known=np.ones(len(sample), bool), position=sample,
        profiles=prof.iloc[sample].reset_index(drop=True),
    )
    cols, rows = np.arange(n_o), np.arange(len(sample))
    fast = [scorer.score_pairs(batch, rows, catalog, cols, ctx)[0] for ctx in contexts]
    if source is not None and source.tables is not None:
        source = source.for_customers(batch.customer_id)  # the sample's own history: the reference indexes no more
    slow = _reference_scores(model, batch.profiles, catalog.frame.reset_index(drop=True), contexts, source)
    worst = 0.0
    for ctx, f, r in zip(contexts, fast, slow, strict=True):
        diff = float(np.nanmax(np.abs(np.asarray(f, dtype=float) - r)))
        if not diff < atol:
            raise ScorerMismatchError(
                f"{type(scorer).__name__} offer scores differ from model.predict_proba(offer_features(...)) by "
                f"{diff:.3g} in context {ctx.as_dict()}; the fast path does not reproduce the model: use FrameScorer"
            )
        worst = max(worst, diff)
    return worst


def _reference_scores(model, profiles: pd.DataFrame, offers: pd.DataFrame, contexts: Sequence[Context],
                      source=None) -> list[np.ndarray]:
    """``FrameScorer``'s P(redeem) (customers x offers, customer-major) in each of ``contexts``, from one
    ``offer_features`` call over a context frame holding every (context, customer, offer) row."""
    pairs = profiles[["customer_id"]].merge(offers[["offer_id"]], how="cross")
    frame = pd.concat(
        [pairs.assign(timestamp=pd.Timestamp(ctx.timestamp), channel=str(ctx.channel)) for ctx in contexts],
        ignore_index=True,
    )
    p = np.asarray(model.predict_proba(_default_feature_builder(source)(profiles, offers, frame)))[:, 1]
    shape = (len(profiles), len(offers))
    return [part.reshape(shape) for part in np.split(p, len(contexts))]


def _default_feature_builder(source=None) -> FeatureBuilder:
    """``offer_features``; with a ``TaxonomySource`` (whose tables are given), with the taxonomy columns
    computed from its tables as of its cut."""
    from models.offer_response import offer_features

    if source is None or source.tables is None:
        return offer_features
    import functools

    return functools.partial(offer_features, tables=source.tables, as_of=source.as_of)


# The precomputed scorer (the API's fast path) lives in its own module; importable from here as before.
from models.policy.precomputed import (  # noqa: E402
    PrecomputedScorer,
    StoredRows,
    held_offers,
    precompute_scorer,
    precomputed_mb,
    split_columns,
)

__all__ = ["GRID_BUDGET_MB", "FeatureBuilder", "FrameScorer", "MatrixScorer", "OfferModel", "PrecomputedScorer",
           "Scorer", "StoredRows", "VERIFY_CONTEXTS", "check_scorer", "held_offers", "precompute_scorer",
           "precomputed_mb", "split_columns", "tree_paths", "verify_contexts"]
