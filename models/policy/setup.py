"""The decision set-up: one function builds what every decision needs, for the offer API and the lists.

``decision_setup`` takes the validated tables (offers, offer_events, customers), the champion
models, the policy levers and, optionally, a ``Campaign``, and returns a ``DecisionSetup``: the
indexed offers and contact history, the P(redeem) scorer, the uplift scorer when the policy's
objective is ``uplift`` (``models.policy.uplift``), the holdout rule (``PolicyConfig``, salted
by the campaign) and the budget state. Given profiles it also builds the customer book (churn risk ->
habit tags -> ``customer_book``); ``rewards score`` gives none and adds each chunk's customers with
``for_customers``. ``DecisionSetup.decide`` is the one decision call of both callers.

Budget state: offers with no remaining budget are never candidates (``recommend``). A list then
allocates limited budgets over all its rows (``models.policy.budget``); an API set up with a
``Campaign`` and profiles makes the same allocation over its whole book in the campaign's context
and withdraws those offers from its answers, so API and list agree offer for offer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from models.policy.budget import BudgetAllocation, withdraw_for_budget, withdrawn_pairs
from models.policy.contacts import ContactHistory, index_history
from models.policy.context import OBJECTIVE_UPLIFT, Context, PolicyConfig
from models.policy.customers import CustomerBook, customer_book
from models.policy.decisions import Decisions
from models.policy.errors import PolicyError, ScorerMismatchError
from models.policy.offers import OfferCatalog, prepare_offers, remaining_budget
from models.policy.recommend import recommend
from models.policy.scoring import (FrameScorer, MatrixScorer, PrecomputedScorer, Scorer, _default_feature_builder,
                                   check_scorer, held_offers, precompute_scorer,
                                   precomputed_mb)
from models.policy.uplift import UpliftScorer
from models.policy.vocabulary import SCHEMA_VOCABULARY, Vocabulary
from models.offer_taxonomy import TaxonomyLookup, TaxonomySource, uses_taxonomy

# Customers decided at a time when the budget allocation runs over a whole book.
ALLOCATION_CHUNK = 20_000


@dataclass(frozen=True)
class Campaign:
    """What a campaign list is written for; an offer API set up with it decides as that list does."""

    name: str
    send_at: pd.Timestamp
    channel: str
    k: int = 1
    holdout_fraction: float = 0.05
    offer_ids: tuple[str, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "send_at", pd.Timestamp(self.send_at))
        if self.offer_ids is not None:
            object.__setattr__(self, "offer_ids", tuple(str(o) for o in self.offer_ids))
        if not str(self.name).strip():
            raise PolicyError("campaign: name must not be empty")
        if isinstance(self.k, bool) or int(self.k) != self.k or self.k < 1:
            raise PolicyError(f"campaign {self.name!r}: k must be a positive integer, got {self.k!r}")

    @property
    def context(self) -> Context:
        return Context(timestamp=self.send_at, channel=self.channel)

    def policy(self, base: PolicyConfig | None = None) -> PolicyConfig:
        """``base`` with this campaign's holdout: its fraction, salted by its name."""
        base = base or PolicyConfig()
        return replace(base, campaign=self.name, holdout_fraction=self.holdout_fraction,
                       holdout_salt=PolicyConfig().holdout_salt)


@dataclass(frozen=True)
class ScorerChoice:
    scorer: Scorer
    kind: str  # "precomputed, compiled trees", "precomputed", "matrix, compiled trees", "matrix" or "frame"
    note: str = ""  # why a faster scorer was not used


def offer_scorer(
    offer_model,
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    profiles: pd.DataFrame | None = None,
    catalog: OfferCatalog | None = None,
    precompute_max_mb: float = 0.0,
    source: TaxonomySource | None = None,
    lookup: TaxonomyLookup | None = None,
    as_of=None,
) -> ScorerChoice:
    """The P(redeem) scorer for ``offer_model``: the one place the kind is chosen.

    ``predict`` (e.g. compiled trees, ``pipelines.compiled``) is given for our LightGBM estimator
    only. With ``profiles`` and a grid within ``precompute_max_mb``, every customer x offer row is
    built once (``PrecomputedScorer``: the API); else rows are broadcast per call (``MatrixScorer``:
    the lists); any other model is scored through its own ``predict_proba`` (``FrameScorer``).
    A model using the taxonomy columns reads them from ``lookup`` (the profiles' ``TaxonomyLookup``)
    on the fast paths and computes them from ``source``'s tables on its own path.
    ``as_of`` (the profiles' cut): the precomputed rows hold, and are sized on, the offers still valid
    at it (``held_offers``).
    """
    compiled = predict is not None and bool(getattr(predict, "compiled", False))
    suffix = ", compiled trees" if compiled else ""
    if predict is None:
        return ScorerChoice(FrameScorer(offer_model, source=source), "frame")
    note = ""
    if profiles is not None and catalog is not None:
        n_held = len(held_offers(catalog, as_of))
        size_mb = precomputed_mb(offer_model, len(profiles), n_held)
        if size_mb <= precompute_max_mb:
            try:
                return ScorerChoice(precompute_scorer(offer_model, profiles, catalog, predict=predict, source=source,
                                                      taxonomy=lookup, as_of=as_of), "precomputed" + suffix)
            except ScorerMismatchError as err:
                return ScorerChoice(FrameScorer(offer_model, source=source), "frame",
                                    f"precomputed scorer unavailable: {err}")
        note = f"precomputed scorer would need {size_mb:.0f} MB > {precompute_max_mb:.0f} MB"
    return ScorerChoice(MatrixScorer(offer_model, predict=predict), "matrix" + suffix, note)


def customer_features(profiles: pd.DataFrame, feature_names: Sequence[str] | None = None) -> pd.DataFrame:
    """customer_id + the model features of ``profiles``: ``feature_names`` (the profiles' manifest) or,
    for profiles built in this process (in their program's catalogue), every feature column they carry."""
    names = list(feature_names) if feature_names is not None else [
        c for c in profiles.columns if c not in ("customer_id", "as_of", "habit_tags")]
    return profiles[["customer_id", *names]]


def book_for(profiles: pd.DataFrame, customers: pd.DataFrame, churn_model,
             feature_names: Sequence[str] | None = None, vocabulary: Vocabulary = SCHEMA_VOCABULARY) -> CustomerBook:
    """The customer book of ``profiles``: churn risk from ``churn_model``, habit tags (those ``profiles``
    carry, else the ones ``vocabulary``'s program declares), tier and consent."""
    from features.tags import tags_of

    features = customer_features(profiles, feature_names)
    churn = np.asarray(churn_model.predict_proba(features.drop(columns=["customer_id"])))[:, 1] if len(features) else []
    tags = (profiles["habit_tags"].tolist() if "habit_tags" in profiles.columns
            else tags_of(profiles, vocabulary.habit_tags).tolist())
    return customer_book(features, customers, churn_risk=churn, habit_tags=tags)


@dataclass(frozen=True)
class DecisionSetup:
    """Everything a decision needs, built once (``decision_setup``)."""

    catalog: OfferCatalog
    history: ContactHistory
    scorer: Scorer
    scorer_kind: str
    config: PolicyConfig
    churn_model: object
    offer_model: object  # the estimator behind ``scorer``: its own path is the reference
    feature_names: tuple[str, ...] | None = None
    campaign: Campaign | None = None
    book: CustomerBook | None = None
    withdrawn: frozenset = field(default_factory=frozenset)  # (customer_id, offer_id) withdrawn for budget
    scorer_note: str = ""
    uplift: UpliftScorer | None = None  # the incremental-value scorer, when config.objective is uplift
    # Where the offer model's taxonomy columns come from (None: the model does not use them).
    taxonomy: TaxonomySource | None = None

    @property
    def objective(self) -> str:
        """What arbitration ranks by: ``expected_value`` or ``uplift`` (``PolicyConfig.objective``)."""
        return self.config.objective

    @property
    def needs_profiles(self) -> bool:
        """Whether decisions need the customers' profile rows (every scorer but the precomputed one, and
        the uplift scorer)."""
        return not isinstance(self.scorer, PrecomputedScorer) or self.uplift is not None

    def budget_remaining(self, at: pd.Timestamp) -> pd.Series:
        """Redemptions each offer may still have at ``at`` (inf when unlimited), by offer_id."""
        left = remaining_budget(self.catalog, self.history, pd.Timestamp(at).value)
        return pd.Series(left, index=self.catalog.index, name="budget_remaining")

    def for_customers(self, profiles: pd.DataFrame, customers: pd.DataFrame,
                      tables: dict[str, pd.DataFrame] | None = None, lookup: TaxonomyLookup | None = None) -> DecisionSetup:
        """This set-up with the customer book of ``profiles`` (their tier and consent from ``customers``).

        With a taxonomy model and a broadcast scorer, the taxonomy columns of these customers are indexed
        here once (``lookup``, else built from ``tables``: a list chunk's own tables, else the source's)."""
        book = book_for(profiles, customers, self.churn_model, self.feature_names, self.catalog.vocabulary)
        scorer = self.scorer
        if (self.taxonomy is not None and isinstance(scorer, MatrixScorer)
                and not isinstance(scorer, PrecomputedScorer)):
            if lookup is None:
                lookup = self.taxonomy.lookup(profiles["customer_id"], self.catalog.frame, tables)
            scorer = scorer.with_taxonomy(lookup)
        elif self.taxonomy is not None and isinstance(scorer, FrameScorer) and tables is not None:
            scorer = FrameScorer(self.offer_model, source=TaxonomySource(tables, self.taxonomy.as_of))
        uplift = self.uplift
        if uplift is not None and tables is not None and uses_taxonomy(uplift.model) and self.taxonomy is not None:
            uplift = UpliftScorer(uplift.model, _default_feature_builder(TaxonomySource(tables, self.taxonomy.as_of)))
        return replace(self, book=book, scorer=scorer, uplift=uplift)

    def verify(self, profiles: pd.DataFrame, tables: dict[str, pd.DataFrame] | None = None) -> None:
        """A fast scorer must give the model's own numbers on ``profiles`` (ScorerMismatchError if not).
        ``tables`` (a list chunk's) give the reference its taxonomy columns when the source has none."""
        if isinstance(self.scorer, MatrixScorer) and not isinstance(self.scorer, PrecomputedScorer):
            source = self.taxonomy
            if source is not None and tables is not None:
                source = TaxonomySource(tables, source.as_of)
            check_scorer(self.scorer, self.offer_model, customer_features(profiles, self.feature_names), self.catalog,
                         source=source)

    def decide(self, customer_ids: Sequence[str], context: Context, k: int,
               offer_ids: Sequence[str] | None = None, explain: bool = True) -> Decisions:
        """The policy's decisions for ``customer_ids`` (withdrawing the campaign's budget-withdrawn offers)."""
        if self.book is None:
            raise PolicyError("DecisionSetup.decide: no customers yet; build it with profiles or call for_customers")
        batch = self.book.batch(customer_ids, with_profiles=self.needs_profiles)
        decisions = recommend(batch, self.catalog, self.history, context, self.scorer, self.config, k,
                              offer_ids=offer_ids, explain=explain, uplift=self.uplift)
        return withdraw_for_budget(decisions, self.withdrawn) if self.withdrawn else decisions


def decision_setup(
    tables: dict[str, pd.DataFrame],
    churn_model,
    offer_model,
    *,
    policy: PolicyConfig | None = None,
    campaign: Campaign | None = None,
    profiles: pd.DataFrame | None = None,
    feature_names: Sequence[str] | None = None,
    predict: Callable[[np.ndarray], np.ndarray] | None = None,
    precompute_max_mb: float = 0.0,
    vocabulary: Vocabulary = SCHEMA_VOCABULARY,
    uplift_model=None,
    as_of=None,
    taxonomy_tables: bool = True,
    reuse: DecisionSetup | None = None,
) -> DecisionSetup:
    """The decision set-up from the tables (offers, offer_events; customers with ``profiles``) and models.

    ``campaign`` sets the holdout (fraction and salt) over ``policy``; with ``profiles`` too, the
    campaign's budget allocation over all of them is made here (see the module docstring).
    ``uplift_model`` (``models.uplift.UpliftModel``) is required when ``policy.objective`` is ``uplift``
    and unused otherwise. An offer model using the taxonomy columns (``models.offer_taxonomy``) needs
    ``as_of`` (the profiles' cut) and the transactions (and products, offer_products) in ``tables``;
    ``taxonomy_tables=False`` keeps no tables in the set-up (a list then gives each chunk's own).
    ``reuse``: a set-up built from the same tables and vocabulary (the API's reload of a new profile
    snapshot): its offer catalogue, contact history and taxonomy tables are kept, not built again.
    """
    config = campaign.policy(policy) if campaign is not None else (policy or PolicyConfig())
    if config.objective == OBJECTIVE_UPLIFT and uplift_model is None:
        raise PolicyError("decision set-up: the policy's objective is 'uplift' but no uplift model was given; "
                          "train one with `rewards train uplift` or set objective 'expected_value'")
    uplift = UpliftScorer(uplift_model) if config.objective == OBJECTIVE_UPLIFT else None
    if uplift is not None and uses_taxonomy(uplift_model) and as_of is not None and "transactions" in tables:
        uplift = UpliftScorer(uplift_model, _default_feature_builder(TaxonomySource(tables, as_of)))
    if reuse is not None:
        catalog, history = reuse.catalog, reuse.history
    else:
        catalog = prepare_offers(tables["offers"], vocabulary)
        history = index_history(tables["offer_events"], vocabulary.dayparts)
    features = customer_features(profiles, feature_names) if profiles is not None else None
    source = lookup = None
    if uses_taxonomy(offer_model):
        if as_of is None:
            raise PolicyError("decision set-up: the offer model uses the taxonomy columns (the customer's history "
                              "with the offer's node and products), which need as_of, the profiles' cut")
        missing = [t for t in ("transactions", "customers") if t not in tables]
        if missing and (taxonomy_tables or profiles is not None):
            raise PolicyError(f"decision set-up: the offer model uses the taxonomy columns, computed from tables "
                              f"{missing} that were not given; read the validated tables with pipelines.io.read_validated")
        with_tables = TaxonomySource(tables, as_of) if not missing else None
        if with_tables is not None and reuse is not None and reuse.taxonomy is not None and reuse.taxonomy.tables:
            with_tables = reuse.taxonomy.at(as_of)  # what does not depend on the cut is not built again
        if profiles is not None:
            lookup = with_tables.lookup(profiles["customer_id"], catalog.frame)
        source = with_tables if taxonomy_tables else TaxonomySource(None, as_of)
    cut = as_of if as_of is not None or profiles is None or "as_of" not in profiles.columns else profiles["as_of"].min()
    choice = offer_scorer(offer_model, predict, profiles=features, catalog=catalog, precompute_max_mb=precompute_max_mb,
                          source=source, lookup=lookup, as_of=cut)
    setup = DecisionSetup(
        catalog=catalog, history=history, scorer=choice.scorer, scorer_kind=choice.kind, config=config,
        churn_model=churn_model, offer_model=offer_model,
        feature_names=tuple(feature_names) if feature_names is not None else None, campaign=campaign,
        scorer_note=choice.note, uplift=uplift, taxonomy=source,
    )
    if profiles is None:
        return setup
    setup = setup.for_customers(profiles, tables["customers"], lookup=lookup)
    if choice.kind.startswith("matrix"):
        try:
            setup.verify(profiles, tables if source is not None and source.tables is None else None)
        except ScorerMismatchError as err:
            setup = replace(setup, scorer=FrameScorer(offer_model, source=source), scorer_kind="frame",
                            scorer_note=str(err))
    if campaign is not None:
        setup = replace(setup, withdrawn=campaign_withdrawals(setup, campaign))
    return setup


def campaign_withdrawals(setup: DecisionSetup, campaign: Campaign) -> frozenset:
    """The (customer_id, offer_id) offers the campaign's list withdraws for budget, decided over the whole
    book in the campaign's context, in list order (customer_id, then rank)."""
    allocation = BudgetAllocation(setup.budget_remaining(campaign.send_at).to_dict())
    if not allocation.limited or setup.book is None:
        return frozenset()
    ids = sorted(setup.book.positions)
    seen_c, seen_o = [], []
    for lo in range(0, len(ids), ALLOCATION_CHUNK):
        offers = setup.decide(ids[lo: lo + ALLOCATION_CHUNK], campaign.context, campaign.k,
                              offer_ids=campaign.offer_ids, explain=False).offer_columns
        cust, offer = np.asarray(offers["customer_id"], dtype=object), np.asarray(offers["offer_id"], dtype=object)
        allocation.note(offer, np.ones(len(cust), dtype=bool), np.asarray(offers["score"]), np.asarray(offers["p_redeem"]))
        seen_c.append(cust)
        seen_o.append(offer)
    if not seen_c:
        return frozenset()
    return withdrawn_pairs(np.concatenate(seen_c), np.concatenate(seen_o), allocation.withdrawn())
