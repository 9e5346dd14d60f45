"""The precomputed scorer: every customer x offer row of the offers still valid at the profiles' cut,
built once (the offer API's fast path), stored split by what each column depends on (``StoredRows``).
An earlier-dated request naming an offer it does not hold is scored by a ``MatrixScorer`` over the same
profiles (``_Fallback``); ``precompute_scorer`` builds it and ``check_scorer`` holds it to the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from models.policy.context import Context
from models.policy.errors import PolicyError, ScorerMismatchError
from models.policy.offers import OfferCatalog, prepare_offers
from models.policy.scoring import GRID_BUDGET_MB, MatrixScorer, check_scorer, tree_paths


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
            shares = self.daypart_shares[pos, ctx.daypart_index]
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
        share_cols = [f"visit_share_{d}" for d in catalog.vocabulary.daypart_names]
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
