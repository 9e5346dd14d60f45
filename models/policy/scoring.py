"""P(redeem) for (customer, offer) pairs in a context, with per-feature contributions for the reasons.

Three scorers share one protocol (``Scorer``): ``FrameScorer`` (the model's own path:
``offer_features`` then ``predict_proba``, the reference), ``MatrixScorer`` (the same numbers built by
broadcasting, optionally with compiled trees) and ``PrecomputedScorer`` (every customer x offer row
built once; the API's fast path). ``check_scorer`` holds a fast scorer to the reference.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import pandas as pd

from features.catalogue import DAYPART_NAMES
from models.policy.context import Context
from models.policy.customers import CustomerBatch
from models.policy.errors import PolicyError, ScorerMismatchError
from models.policy.offers import OfferCatalog, prepare_offers
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


@dataclass(frozen=True)
class _Fallback:
    """A handle of ``PrecomputedScorer.fallback`` (offers the precomputed rows do not hold)."""

    handle: object


@dataclass
class StoredRows:
    """The offer rows of every (customer, offer) pair, split by what they depend on (exactly the numbers
    of the grid: ``offer_matrix`` broadcasts the customer and offer columns): ``per_customer``
    (n_customers, len(customer_cols)), ``per_offer`` (n_offers, len(offer_cols)) and only the pair columns
    (interactions, taxonomy) per pair, ``per_pair`` (n_customers, n_offers, len(pair_cols)); the
    ``*_cols`` are positions in the model's features. 3,000 customers x 1,000 offers x 105 features is
    2.4 GB as a grid, 0.7 GB split."""

    per_customer: np.ndarray
    per_offer: np.ndarray
    per_pair: np.ndarray
    customer_cols: list[int]
    offer_cols: list[int]
    pair_cols: list[int]

    @property
    def nbytes(self) -> int:
        return self.per_customer.nbytes + self.per_offer.nbytes + self.per_pair.nbytes

    def rows(self, pos: np.ndarray, offer_pos: np.ndarray, n_features: int) -> np.ndarray:
        """The full rows at (``pos``, ``offer_pos``), broadcast together: (n, m, F) for a grid, (n, F) for pairs."""
        shape = np.broadcast_shapes(np.shape(pos), np.shape(offer_pos))
        M = np.empty((*shape, n_features), dtype=np.float64)
        if self.customer_cols:
            M[..., self.customer_cols] = self.per_customer[pos]
        if self.offer_cols:
            M[..., self.offer_cols] = self.per_offer[offer_pos]
        if self.pair_cols:
            M[..., self.pair_cols] = self.per_pair[pos, offer_pos]
        return M


def split_columns(names: Sequence[str]) -> tuple[list[int], list[int], list[int]]:
    """Positions of the customer, offer and pair columns among the model's ``names`` (offer_matrix's
    groups: the interaction and taxonomy columns are per pair; the context columns, filled per
    decision, are kept with the customer's)."""
    from models.offer_response import INTERACTION_COLUMNS, OFFER_ATTRIBUTE_COLUMNS
    from models.offer_taxonomy import taxonomy_columns

    pair_names = set(INTERACTION_COLUMNS) | set(taxonomy_columns())
    groups: tuple[list[int], list[int], list[int]] = ([], [], [])
    for j, name in enumerate(names):
        groups[2 if name in pair_names else 1 if name in OFFER_ATTRIBUTE_COLUMNS else 0].append(j)
    return groups


class PrecomputedScorer(MatrixScorer):
    """The offer model's input rows for every (profiled customer, offer), built once with
    ``offer_matrix`` (kept split: ``StoredRows``); per decision only the context columns are filled in,
    and the LightGBM booster scores the numeric matrix directly. Build with ``precompute_scorer``, which
    checks that it reproduces ``model.predict_proba(offer_features(...))``.
    """

    def __init__(self, model, stored: StoredRows, offer_ids, context_fill, daypart_shares, paths=None, predict=None,
                 fallback: MatrixScorer | None = None, profiles: pd.DataFrame | None = None):
        super().__init__(model, predict=predict, paths=paths)
        self.stored = stored  # the rows of (n_customers, n_offers held)
        self.offer_pos = {o: i for i, o in enumerate(offer_ids)}
        self.context_fill = context_fill  # column name -> fn(ctx) giving the raw value
        self.daypart_shares = daypart_shares  # (n_customers, n_dayparts) or None
        # Offers not held (expired at the profiles' cut: a request dated before it may still name them)
        # are scored by ``fallback`` (a MatrixScorer) from ``profiles``, the rows the stored ones were built on.
        self.fallback = fallback
        self.profiles = profiles

    def _catalog_positions(self, offers) -> np.ndarray:
        """Each catalogue offer's position among the held ones (-1: not held), once per catalogue."""
        cached = getattr(self, "_held", None)
        if cached is None or cached[0] is not offers:
            pos = np.fromiter((self.offer_pos.get(o, -1) for o in offers.offer_id), dtype=np.int64, count=len(offers))
            self._held = cached = (offers, pos)
        return cached[1]

    def _holds(self, offers, cols) -> bool:
        return bool((self._catalog_positions(offers)[np.asarray(cols, dtype=np.int64)] >= 0).all())

    def score_pairs(self, batch, rows, offers, cols, ctx):
        if self._holds(offers, cols):
            return super().score_pairs(batch, rows, offers, cols, ctx)
        if self.fallback is None or self.profiles is None:
            missing = [offers.offer_id[c] for c in cols if offers.offer_id[c] not in self.offer_pos][:3]
            raise PolicyError(f"PrecomputedScorer holds no rows for offers {missing} and has no fallback scorer")
        known = np.asarray(batch.known, dtype=bool)
        with_rows = replace(batch, profiles=self.profiles.iloc[np.asarray(batch.position)[known]].reset_index(drop=True))
        p, handle = self.fallback.score_pairs(with_rows, rows, offers, cols, ctx)
        return p, _Fallback(handle)

    def explain_pairs(self, handle, pairs):
        if isinstance(handle, _Fallback):
            return self.fallback.explain_pairs(handle.handle, pairs)
        return super().explain_pairs(handle, pairs)

    def _encode(self, name, value) -> float:
        if name in self.categories:
            cats = self.categories[name]
            return float(cats.index(value)) if value in cats else np.nan
        return float(value)

    def _matrix(self, batch, rows, offers, cols, ctx):
        pos = batch.position[rows]
        return self._rows(pos[:, None], self._offer_positions(offers, cols)[None, :], ctx)

    def _pair_rows(self, batch, rows, offers, cols, ctx):
        return self._rows(batch.position[rows], self._offer_positions(offers, cols), ctx)

    def _offer_positions(self, offers, cols) -> np.ndarray:
        return self._catalog_positions(offers)[np.asarray(cols, dtype=np.int64)]

    def _rows(self, pos: np.ndarray, offer_pos: np.ndarray, ctx) -> np.ndarray:
        """The stored rows at (``pos``, ``offer_pos``) (broadcast together) with the context filled in."""
        M = self.stored.rows(pos, offer_pos, len(self.names))  # (n_rows, n_cols, n_f) for a grid, (n, n_f) for pairs
        for name, fill in self.context_fill.items():
            M[..., self._col[name]] = self._encode(name, fill(ctx))
        if self.daypart_shares is not None:
            shares = self.daypart_shares[pos, DAYPART_NAMES.index(ctx.daypart)]
            M[..., self._col["cust_visit_share_send_daypart"]] = shares
        return M


def _context_fills() -> dict[str, Callable[[Context], object]]:
    """The context columns of an offer row, from the request context (mirrors offer_features)."""
    from models.offer_response import WEEKDAYS

    return {
        "send_channel": lambda c: c.channel,
        "send_daypart": lambda c: c.daypart,
        "send_weekday": lambda c: WEEKDAYS[c.timestamp.weekday()],
        "send_hour": lambda c: c.hour,
        "send_is_weekend": lambda c: float(c.timestamp.weekday() >= 5),
    }


def precompute_scorer(
    model,
    profiles: pd.DataFrame,
    offers: pd.DataFrame | OfferCatalog,
    *,
    chunk_customers: int = 2000,
    verify_customers: int = 25,
    verify_contexts: Sequence[Context] | None = None,
    explain_with_paths: bool = True,
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
    source=None,
    taxonomy=None,
    as_of=None,
) -> PrecomputedScorer:
    """Build a PrecomputedScorer for ``model`` (an OfferResponseModel) over ``profiles`` x ``offers``.

    Raises ScorerMismatchError when the fast path does not reproduce the model on a sample of
    customers and contexts (then use FrameScorer). Memory: customers x offers x pair columns x 8 bytes
    plus the customer and offer columns once each (``StoredRows``; ``precomputed_mb`` gives it).
    Reasons use path contributions (``TreePaths``: exact additive, as fast as a prediction) unless
    ``explain_with_paths=False`` asks for TreeSHAP (``pred_contrib``, a few ms per row).
    ``predict`` replaces the booster's own prediction (e.g. compiled trees); the check covers it too.
    A model using the taxonomy columns needs ``source`` (``models.offer_taxonomy.TaxonomySource``: the
    reference path computes them from its tables) and takes them from ``taxonomy`` (a ``TaxonomyLookup``
    of these customers and offers; built from ``source`` when not given).
    With ``as_of`` (the profiles' cut) only the offers still valid at it are held (``held_offers``: an
    offer expired by then is never a candidate of a decision at or after it); the others, for a request
    dated earlier, are scored per call by a MatrixScorer over the same profiles.
    """
    from models.offer_response import offer_matrix
    from models.offer_taxonomy import uses_taxonomy

    catalog = offers if isinstance(offers, OfferCatalog) else prepare_offers(offers)
    if uses_taxonomy(model) and taxonomy is None:
        if source is None:
            raise ScorerMismatchError("the offer model uses the taxonomy columns but no TaxonomySource was given")
        taxonomy = source.lookup(profiles["customer_id"], catalog.frame)
    names = list(model.feature_names_in_)
    categories = {k: list(v) for k, v in model.categories_.items()}
    booster = model.booster_model_.booster_
    fills = {n: f for n, f in _context_fills().items() if n in names}
    ref = Context(pd.Timestamp("2026-01-05 08:00"), catalog.vocabulary.offer_channels[0], vocabulary=catalog.vocabulary)
    prof = profiles.reset_index(drop=True)
    held = held_offers(catalog, as_of)
    held_frame = catalog.frame.iloc[held]
    n_c, n_o, n_f = len(prof), len(held), len(names)
    customer_cols, offer_cols, pair_cols = split_columns(names)
    stored = StoredRows(np.empty((n_c, len(customer_cols))), np.empty((n_o, len(offer_cols))),
                        np.empty((n_c, n_o, len(pair_cols))), customer_cols, offer_cols, pair_cols)
    # customers at a time: their whole grid within GRID_BUDGET_MB (2,000 x 1,000 offers would be 1.7 GB)
    step = max(1, min(chunk_customers, int(GRID_BUDGET_MB * 2**20) // max(n_o * n_f * 8, 1)))
    for lo in range(0, n_c, step):
        part = prof.iloc[lo: lo + step]
        M = offer_matrix(part, held_frame, ref.as_dict(), names, categories, taxonomy=taxonomy)
        if n_o:
            stored.per_customer[lo: lo + len(part)] = M[:, 0, customer_cols]
            stored.per_pair[lo: lo + len(part)] = M[:, :, pair_cols]
            if lo == 0:
                stored.per_offer[:] = M[0][:, offer_cols]
        del M
    shares = None
    if "cust_visit_share_send_daypart" in names:
        share_cols = [f"visit_share_{d}" for d in DAYPART_NAMES]
        missing = [c for c in share_cols if c not in prof.columns]
        if missing:
            raise ScorerMismatchError(f"profiles lack {missing} needed for cust_visit_share_send_daypart")
        shares = prof[share_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    paths = False
    if explain_with_paths:
        paths = tree_paths(booster)
        if n_c and n_o:
            try:
                first = stored.rows(np.arange(min(n_c, 20))[:, None], np.arange(n_o)[None, :], n_f)
                paths.check(booster, first.reshape(-1, n_f))
            except ValueError as err:
                raise ScorerMismatchError(str(err)) from err
    fallback = None
    if n_o < len(catalog):
        fallback = MatrixScorer(model, predict=predict, paths=paths if paths else False)
        fallback = fallback.with_taxonomy(taxonomy) if taxonomy is not None else fallback
    scorer = PrecomputedScorer(model, stored, catalog.index[held].tolist(), fills, shares, paths, predict=predict,
                               fallback=fallback, profiles=prof if fallback is not None else None)

    check_scorer(scorer, model, prof, catalog, customers=verify_customers, contexts=verify_contexts, source=source)
    return scorer


def precomputed_mb(model, n_customers: int, n_offers: int) -> float:
    """MB a PrecomputedScorer of ``n_customers`` x ``n_offers`` stores (``StoredRows``)."""
    customer_cols, offer_cols, pair_cols = split_columns(list(getattr(model, "feature_names_in_", [])))
    cells = n_customers * len(customer_cols) + n_offers * len(offer_cols) + n_customers * n_offers * len(pair_cols)
    return cells * 8 / 2**20


def held_offers(catalog: OfferCatalog, as_of=None) -> np.ndarray:
    """Positions of the offers a precomputed scorer holds: those still valid at ``as_of`` (all without it)."""
    if as_of is None or pd.isna(pd.Timestamp(as_of)):
        return np.arange(len(catalog))
    return np.flatnonzero(np.asarray(catalog.valid_to) >= pd.Timestamp(as_of).value)


# Monday morning, Wednesday lunch, Saturday afternoon, Sunday evening: each on the next offer channel.
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
    from models.offer_response import offer_features

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

