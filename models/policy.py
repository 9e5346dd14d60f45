"""The next-best-offer policy: which offers a customer gets, in which order, and why.

Pure code (frames and arrays in, frames out); the offer API and batch scoring both call
``recommend``. It decides for many customers at once, in one context (moment + channel):

1. candidates: offers active at the context time (``valid_from <= t <= valid_to``);
2. eligibility: the customer's tier is in ``eligible_tiers``, the context channel is in ``channels``,
   the customer gave marketing consent;
3. applicability: the offer still has redemption budget (``budget_redemptions`` minus redemptions up to t);
4. suitability: the customer has not redeemed the same offer in the last ``redeemed_lookback_days``;
5. contact policy: at most ``max_sends_per_week`` sends in the 7 days up to t, nothing within
   ``cooldown_hours`` of the last send, a reward_category is suppressed after
   ``max_ignored_per_category`` ignored sends (not redeemed ``ignored_after_days`` after sending) in
   ``ignored_window_days``; customers in the control
   group (``is_holdout``) get no offer and are flagged;
6. arbitration: ``priority = p * business_value * lever * (1 + churn_weight * churn_risk) - p * cost``
   with ``business_value = visit_value + margin_rate * min_spend``;
7. top-k with at most one offer per reward_category, each with reasons in plain words.

Customers without a profile are scored from offer popularity in the context (daypart, channel) and
flagged ``cold_start``. Only non-control sends count as contacts; the policy does not count its own
earlier answers (showing an offer is not sending it).

Prepared forms (``prepare_offers``, ``index_history``, ``customer_book``, ``precompute_scorer``) are
built once and reused for every decision; the plain tables work too, only slower.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES, OFFER_CHANNELS, TIERS
from features.catalogue import DAYPARTS as _CATALOGUE_DAYPARTS
from models.reasons import _BIAS_COLUMNS, reason_codes
from models.tabular import numeric_matrix

_TIER_CODE = {t: i for i, t in enumerate(TIERS)}
NAT_NS = np.iinfo(np.int64).max  # "never" for missing timestamps (sorts after any real time)
DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
DAYPARTS: tuple[str, ...] = tuple(name for name, _, _ in _CATALOGUE_DAYPARTS)

# Customer-level outcomes, in the order the rules are applied.
STATUS_OK = "ok"
STATUS_CONTROL = "control_group"
STATUS_NO_CONSENT = "no_marketing_consent"
STATUS_CONTACT_CAP = "contact_cap"
STATUS_COOLDOWN = "cooldown"
STATUS_NO_OFFER = "no_eligible_offer"

OFFER_COLUMNS = [
    "customer_id", "rank", "offer_id", "name", "reward_category", "offer_type",
    "p_redeem", "expected_value", "score", "reasons",
]
CUSTOMER_COLUMNS = [
    "customer_id", "status", "cold_start", "control_group", "churn_risk", "n_candidates", "n_offers",
]


class PolicyError(ValueError):
    """The inputs of the policy do not have the shape or values it needs."""


class UnknownOfferError(PolicyError):
    """Offer ids were asked for that are not in the offer catalogue."""

    def __init__(self, unknown: Sequence[str]):
        self.unknown = list(unknown)
        super().__init__(f"offer_ids {self.unknown} are not in the offer catalogue; ask for offers that exist")


class ScorerMismatchError(PolicyError):
    """The precomputed scorer does not reproduce the model's own predictions."""


def daypart(hour: float) -> str:
    """The catalogue daypart (features.catalogue.DAYPARTS) a fractional hour of day falls in."""
    for name, start, end in _CATALOGUE_DAYPARTS:
        if start <= hour < end:
            return name
    return DAYPARTS[-1]


@dataclass(frozen=True)
class Context:
    """The moment and the touchpoint a decision is made for."""

    timestamp: pd.Timestamp
    channel: str
    store_id: str | None = None

    def __post_init__(self):
        ts = pd.Timestamp(self.timestamp)
        if ts.tzinfo is not None:  # the data is in store-local naive time
            ts = ts.tz_localize(None)
        object.__setattr__(self, "timestamp", ts)
        if self.channel not in OFFER_CHANNELS:
            raise PolicyError(f"context.channel must be one of {list(OFFER_CHANNELS)}, got {self.channel!r}")

    @property
    def hour(self) -> float:
        return self.timestamp.hour + self.timestamp.minute / 60.0

    @property
    def daypart(self) -> str:
        return daypart(self.hour)

    def as_dict(self) -> dict:
        return {"timestamp": self.timestamp, "channel": self.channel, "store_id": self.store_id}


@dataclass(frozen=True)
class PolicyConfig:
    """The business levers of the policy. Defaults are a reasonable starting point, not truth."""

    redeemed_lookback_days: float = 30.0
    max_sends_per_week: int = 3
    cooldown_hours: float = 24.0
    max_ignored_per_category: int = 3
    ignored_window_days: float = 90.0
    ignored_after_days: float = 7.0  # a send not redeemed this long after is "ignored"
    holdout_fraction: float = 0.05
    holdout_salt: str = "rewards-holdout-v1"
    require_consent: bool = True
    # Value of a redemption to the business: the visit itself plus the margin on the basket it needs.
    visit_value: float = 2.0
    margin_rate: float = 0.6
    churn_weight: float = 1.0
    offer_type_levers: Mapping[str, float] = field(default_factory=dict)
    category_levers: Mapping[str, float] = field(default_factory=dict)
    min_priority: float = float("-inf")  # offers at or below this priority are never shown
    cold_start_tier: str = "bronze"  # tier assumed for a customer we know nothing about
    popularity_prior: float = 20.0  # pseudo-sends shrinking cold-start rates towards the parent rate
    max_reasons: int = 3

    def __post_init__(self):
        problems = []
        if not 0.0 <= self.holdout_fraction < 1.0:
            problems.append(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        for name in ("max_sends_per_week", "max_ignored_per_category", "max_reasons"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("redeemed_lookback_days", "cooldown_hours", "ignored_window_days", "ignored_after_days",
                     "popularity_prior"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.cold_start_tier not in TIERS:
            problems.append(f"cold_start_tier must be one of {list(TIERS)}, got {self.cold_start_tier!r}")
        if problems:
            raise PolicyError("PolicyConfig: " + "; ".join(problems))


class OfferModel(Protocol):
    """What the policy needs from the offer-response model (models.offer_response.OfferResponseModel)."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame: ...


FeatureBuilder = Callable[[pd.DataFrame, pd.DataFrame, dict], pd.DataFrame]


# --------------------------------------------------------------------------------------------
# Control group
# --------------------------------------------------------------------------------------------


def holdout_unit(customer_ids: Sequence[str], salt: str) -> np.ndarray:
    """A stable number in [0, 1) per customer id (blake2b of ``salt:id``), the same on every machine."""
    out = np.empty(len(customer_ids), dtype=np.float64)
    for i, cid in enumerate(customer_ids):
        digest = hashlib.blake2b(f"{salt}:{cid}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


def is_holdout(customer_ids: Sequence[str], fraction: float, salt: str) -> np.ndarray:
    """Whether each customer is in the control group: its stable hash falls below ``fraction``."""
    if not 0.0 <= fraction < 1.0:
        raise PolicyError(f"is_holdout: fraction must be in [0, 1), got {fraction}")
    return holdout_unit(list(customer_ids), salt) < fraction


# --------------------------------------------------------------------------------------------
# Offers and contact history, prepared once
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferCatalog:
    """The offers table as arrays for fast masking."""

    frame: pd.DataFrame  # the offers table, reset index
    index: pd.Index  # offer_id -> position
    valid_from: np.ndarray  # int64 ns
    valid_to: np.ndarray
    tier_ok: np.ndarray  # (n_offers, n_tiers) bool
    channel_ok: np.ndarray  # (n_offers, n_channels) bool
    category: np.ndarray  # int codes into CATEGORIES
    budget: np.ndarray  # float, inf when unlimited
    min_spend: np.ndarray
    cost: np.ndarray  # cost of one redemption to the business
    offer_id: np.ndarray  # object arrays of the text columns, for cheap per-decision output
    name: np.ndarray
    reward_category: np.ndarray
    offer_type: np.ndarray
    positions: Mapping[str, int]

    def __len__(self) -> int:
        return len(self.frame)


def prepare_offers(offers: pd.DataFrame) -> OfferCatalog:
    """Index the offers table (schema ``offers``) for the policy."""
    required = ["offer_id", "name", "reward_category", "offer_type", "min_spend", "cost_per_redemption",
                "eligible_tiers", "channels", "valid_from", "valid_to", "budget_redemptions"]
    missing = [c for c in required if c not in offers.columns]
    if missing:
        raise PolicyError(f"offers must contain columns {missing}, but they were missing")
    frame = offers.reset_index(drop=True)
    if frame["offer_id"].duplicated().any():
        dup = frame.loc[frame["offer_id"].duplicated(), "offer_id"].tolist()[:5]
        raise PolicyError(f"offers: offer_id must be unique, found duplicates {dup}")
    tier_pos = {t: i for i, t in enumerate(TIERS)}
    chan_pos = {c: i for i, c in enumerate(OFFER_CHANNELS)}
    n = len(frame)
    tier_ok = np.zeros((n, len(TIERS)), dtype=bool)
    channel_ok = np.zeros((n, len(OFFER_CHANNELS)), dtype=bool)
    for i, (tiers, channels) in enumerate(zip(frame["eligible_tiers"], frame["channels"], strict=True)):
        for t in tiers if tiers is not None else ():
            if t in tier_pos:
                tier_ok[i, tier_pos[t]] = True
        for c in channels if channels is not None else ():
            if c in chan_pos:
                channel_ok[i, chan_pos[c]] = True
    cat_pos = {c: i for i, c in enumerate(CATEGORIES)}
    budget = pd.to_numeric(frame["budget_redemptions"], errors="coerce").astype("float64").fillna(np.inf)
    return OfferCatalog(
        frame=frame,
        index=pd.Index(frame["offer_id"].astype(str)),
        valid_from=_ns(frame["valid_from"], missing=np.iinfo(np.int64).min),
        valid_to=_ns(frame["valid_to"], missing=NAT_NS),
        tier_ok=tier_ok,
        channel_ok=channel_ok,
        category=frame["reward_category"].map(cat_pos).fillna(-1).to_numpy(dtype=np.int64),
        budget=budget.to_numpy(),
        min_spend=frame["min_spend"].to_numpy(dtype=np.float64),
        cost=frame["cost_per_redemption"].to_numpy(dtype=np.float64),
        offer_id=frame["offer_id"].astype(str).to_numpy(dtype=object),
        name=frame["name"].astype(str).to_numpy(dtype=object),
        reward_category=frame["reward_category"].astype(str).to_numpy(dtype=object),
        offer_type=frame["offer_type"].astype(str).to_numpy(dtype=object),
        positions={str(o): i for i, o in enumerate(frame["offer_id"])},
    )


@dataclass(frozen=True)
class ContactHistory:
    """The offer_events table indexed by customer, plus per-offer redemption times and popularity counts."""

    customers: np.ndarray  # sorted unique customer ids (object)
    starts: np.ndarray  # row range of each customer in the arrays below
    ends: np.ndarray
    offer_id: np.ndarray  # object, one per non-control event, sorted by (customer, sent_at)
    sent_at: np.ndarray  # int64 ns
    redeemed_at: np.ndarray  # int64 ns, NAT_NS when never redeemed
    redemptions_by_offer: Mapping[str, np.ndarray]  # offer_id -> sorted redemption times (ns)
    popularity: pd.DataFrame  # non-control sends: offer_id, daypart, channel, sends, redemptions
    _offer_pos: dict = field(default_factory=dict, compare=False, repr=False)

    def offer_positions(self, catalog: OfferCatalog) -> np.ndarray:
        """Position in ``catalog`` of each event's offer (-1 when not there), computed once per catalog."""
        hit = self._offer_pos.get(id(catalog))
        if hit is None or hit[0] is not catalog:
            pos = np.fromiter((catalog.positions.get(o, -1) for o in self.offer_id), dtype=np.int64,
                              count=len(self.offer_id))
            hit = self._offer_pos[id(catalog)] = (catalog, pos)
        return hit[1]

    def redeemed_before(self, catalog: OfferCatalog, t: int) -> np.ndarray:
        """Redemptions up to ``t`` of each catalogue offer (all customers)."""
        key = ("budget", id(catalog))
        hit = self._offer_pos.get(key)
        if hit is None or hit[0] is not catalog:
            segments = [self.redemptions_by_offer.get(o, _EMPTY) for o in catalog.offer_id]
            ends = np.cumsum([len(x) for x in segments]).astype(np.int64)
            flat = np.concatenate(segments) if segments else _EMPTY
            hit = self._offer_pos[key] = (catalog, flat, ends - np.asarray([len(x) for x in segments], dtype=np.int64), ends)
        _, flat, starts, ends = hit
        upto = np.concatenate([[0], np.cumsum(flat <= t)])
        return (upto[ends] - upto[starts]).astype(np.float64)


def index_history(offer_events: pd.DataFrame) -> ContactHistory:
    """Index the offer_events table (schema ``offer_events``) for the policy. Control rows are not contacts."""
    required = ["customer_id", "offer_id", "sent_at", "channel", "redeemed_at", "is_control"]
    missing = [c for c in required if c not in offer_events.columns]
    if missing:
        raise PolicyError(f"offer_events must contain columns {missing}, but they were missing")
    ev = offer_events.loc[~offer_events["is_control"].astype(bool), required]
    ev = ev.sort_values(["customer_id", "sent_at"], kind="stable")
    cust = ev["customer_id"].astype(str).to_numpy(dtype=object)
    if len(cust):
        uniq, starts = np.unique(cust, return_index=True)
    else:
        uniq, starts = np.array([], dtype=object), np.array([], dtype=np.int64)
    ends = np.append(starts[1:], len(cust)).astype(np.int64)
    sent = _ns(ev["sent_at"], missing=NAT_NS)
    redeemed = _ns(ev["redeemed_at"], missing=NAT_NS)
    offer_ids = ev["offer_id"].astype(str).to_numpy(dtype=object)
    red_mask = redeemed != NAT_NS
    by_offer = {
        oid: np.sort(np.asarray(times, dtype=np.int64))
        for oid, times in pd.Series(redeemed[red_mask]).groupby(offer_ids[red_mask]).agg(np.asarray).items()
    }
    sent_ts = pd.to_datetime(ev["sent_at"])
    hours = (sent_ts.dt.hour + sent_ts.dt.minute / 60.0).to_numpy()
    pop = pd.DataFrame(
        {
            "offer_id": offer_ids,
            "daypart": np.asarray([daypart(h) for h in hours], dtype=object) if len(hours) else np.array([], dtype=object),
            "channel": ev["channel"].astype(str).to_numpy(),
            "redeemed": red_mask,
        }
    )
    popularity = (
        pop.groupby(["offer_id", "daypart", "channel"])["redeemed"].agg(sends="size", redemptions="sum").reset_index()
    )
    return ContactHistory(
        customers=uniq.astype(object),
        starts=np.asarray(starts, dtype=np.int64),
        ends=ends,
        offer_id=offer_ids,
        sent_at=sent,
        redeemed_at=redeemed,
        redemptions_by_offer=by_offer,
        popularity=popularity,
    )


def _ns(values: pd.Series, missing: int) -> np.ndarray:
    """Timestamps as int64 nanoseconds, ``missing`` where NaT."""
    ts = pd.to_datetime(values).astype("datetime64[ns]")
    out = ts.to_numpy().view(np.int64).copy()
    out[ts.isna().to_numpy()] = missing
    return out


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerBatch:
    """The customers of one decision, as aligned arrays."""

    customer_id: np.ndarray  # object
    tier: np.ndarray  # object, None when unknown
    marketing_consent: np.ndarray  # object: True / False / None (unknown customer)
    churn_risk: np.ndarray  # float, NaN when unknown
    habit_tags: list  # list[str] | None per customer
    known: np.ndarray  # bool: has a profile (False -> cold start)
    position: np.ndarray  # int: row in the book's profiles (and a precomputed scorer); -1 when unknown
    profiles: pd.DataFrame | None = None  # aligned profile rows, for the frame-based scorer

    def __len__(self) -> int:
        return len(self.customer_id)


@dataclass(frozen=True)
class CustomerBook:
    """Everything known about the customers, indexed once; ``batch(ids)`` is then cheap."""

    profiles: pd.DataFrame  # customer_id + features, one row per profiled customer (position order)
    positions: Mapping[str, int]  # profiled customer_id -> row
    attributes: Mapping[str, tuple]  # customer_id -> (tier, marketing_consent) for every known member
    churn_risk: np.ndarray  # per profile row
    habit_tags: list  # per profile row

    def __contains__(self, customer_id: str) -> bool:
        return customer_id in self.positions

    def batch(self, customer_ids: Sequence[str], with_profiles: bool = False) -> CustomerBatch:
        ids = np.asarray([str(c) for c in customer_ids], dtype=object)
        pos = np.fromiter((self.positions.get(c, -1) for c in ids), dtype=np.int64, count=len(ids))
        known = pos >= 0
        attrs = [self.attributes.get(c, (None, None)) for c in ids]
        safe = np.where(known, pos, 0)
        churn = np.where(known, self.churn_risk[safe] if len(self.churn_risk) else np.nan, np.nan)
        return CustomerBatch(
            customer_id=ids,
            tier=np.asarray([a[0] for a in attrs], dtype=object),
            marketing_consent=np.asarray([a[1] for a in attrs], dtype=object),
            churn_risk=churn.astype(float),
            habit_tags=[self.habit_tags[p] if p >= 0 else None for p in pos],
            known=known,
            position=pos,
            profiles=self.profiles.iloc[pos[known]].reset_index(drop=True) if with_profiles else None,
        )


def customer_book(
    profiles: pd.DataFrame,
    customers: pd.DataFrame,
    churn_risk: Sequence[float] | pd.Series | None = None,
    habit_tags: Sequence | pd.Series | None = None,
) -> CustomerBook:
    """Index profiles (customer_id + features) and the customers table (tier, consent) for decisions.

    ``churn_risk`` and ``habit_tags`` are aligned with the rows of ``profiles``.
    """
    for name, frame, cols in (("profiles", profiles, ["customer_id"]),
                              ("customers", customers, ["customer_id", "tier", "marketing_consent"])):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise PolicyError(f"{name} must contain columns {missing}, but they were missing")
    prof = profiles.reset_index(drop=True)
    ids = prof["customer_id"].astype(str).tolist()
    if len(set(ids)) != len(ids):
        raise PolicyError("profiles: customer_id must be unique (one profile row per customer)")
    consent = customers["marketing_consent"].astype(object).where(customers["marketing_consent"].notna(), None)
    attributes = dict(zip(customers["customer_id"].astype(str),
                          zip(customers["tier"].astype(object), consent.map(lambda v: None if v is None else bool(v))),
                          strict=True))
    churn = np.full(len(prof), np.nan) if churn_risk is None else np.asarray(churn_risk, dtype=float)
    tags = [None] * len(prof) if habit_tags is None else list(habit_tags)
    if len(churn) != len(prof) or len(tags) != len(prof):
        raise PolicyError(
            f"customer_book: churn_risk ({len(churn)}) and habit_tags ({len(tags)}) must align with "
            f"the {len(prof)} profile rows"
        )
    return CustomerBook(
        profiles=prof, positions={c: i for i, c in enumerate(ids)}, attributes=attributes,
        churn_risk=churn, habit_tags=tags,
    )


def _batch_from_frame(customers: pd.DataFrame) -> CustomerBatch:
    missing = [c for c in ("customer_id", "tier", "marketing_consent") if c not in customers.columns]
    if missing:
        raise PolicyError(f"customers must contain columns {missing}, but they were missing")
    cust = customers.reset_index(drop=True)
    n = len(cust)
    known = cust["known"].to_numpy(dtype=bool) if "known" in cust.columns else np.ones(n, dtype=bool)
    consent = cust["marketing_consent"].astype(object)
    return CustomerBatch(
        customer_id=cust["customer_id"].astype(str).to_numpy(dtype=object),
        tier=cust["tier"].astype(object).where(cust["tier"].notna(), None).to_numpy(dtype=object),
        marketing_consent=consent.where(consent.notna(), None).to_numpy(dtype=object),
        churn_risk=(pd.to_numeric(cust["churn_risk"], errors="coerce").to_numpy(dtype=float)
                    if "churn_risk" in cust.columns else np.full(n, np.nan)),
        habit_tags=list(cust["habit_tags"]) if "habit_tags" in cust.columns else [None] * n,
        known=known,
        position=np.where(known, np.arange(n), -1),
        profiles=cust.loc[known].reset_index(drop=True),
    )


# --------------------------------------------------------------------------------------------
# Scorers: P(redeem) for (customer, offer) pairs in a context, and per-feature contributions
# --------------------------------------------------------------------------------------------


class Scorer(Protocol):
    def score_pairs(self, batch: CustomerBatch, rows: np.ndarray, offers: OfferCatalog, cols: np.ndarray,
              ctx: Context) -> tuple[np.ndarray, object]:
        """P(redeem) of shape (len(rows), len(cols)) and a handle for ``explain``."""

    def explain_pairs(self, handle: object, pairs: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(feature names, contributions (n, F) float, feature values (n, F) object) for flat pair
        indices ``row * len(cols) + col``; the bias is left out."""


class FrameScorer:
    """Scores through ``feature_builder`` (default ``offer_features``) and ``model.predict_proba``.

    Reasons come from path contributions (``models.reasons.TreePaths``, the same as the
    PrecomputedScorer's, so batch and online reasons agree) when the model is a fitted LightGBM
    estimator of ours, else from ``model.contributions``.
    """

    def __init__(self, model: OfferModel, feature_builder: FeatureBuilder | None = None):
        self.model = model
        self.feature_builder = feature_builder
        self._paths = None
        if all(hasattr(model, a) for a in ("booster_model_", "feature_names_in_", "categories_")):
            from models.reasons import TreePaths

            self._paths = TreePaths(model.booster_model_.booster_.dump_model())

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
        names = [str(c) for c in contrib.columns if str(c) not in _BIAS_COLUMNS]
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
        self._col = {n: i for i, n in enumerate(self.names)}
        if paths is None:
            from models.reasons import TreePaths

            paths = TreePaths(self.booster.dump_model())
        self.paths = paths  # models.reasons.TreePaths; False -> the booster's pred_contrib (TreeSHAP, slower)

    def _matrix(self, batch, rows, offers, cols, ctx) -> np.ndarray:
        """(len(rows), len(cols), n_features) numbers for the customers ``rows`` x offers ``cols``."""
        from models.offer_response import offer_matrix

        if batch.profiles is None:
            raise PolicyError("MatrixScorer needs the customers' profile rows (CustomerBook.batch(with_profiles=True))")
        profiles = batch.profiles.iloc[np.searchsorted(np.flatnonzero(batch.known), rows)]
        return offer_matrix(profiles, offers.frame.iloc[cols], ctx.as_dict(), self.names, self.categories)

    def _threads(self, n_rows: int) -> int:
        return self.max_threads if n_rows >= 5000 else 1  # big batches: more threads

    def score_pairs(self, batch, rows, offers, cols, ctx):
        M = self._matrix(batch, rows, offers, cols, ctx)
        flat = M.reshape(-1, M.shape[2])
        if self.predict is not None:
            p = np.asarray(self.predict(flat), dtype=float)
        else:
            p = np.asarray(self.booster.predict(flat, num_threads=self._threads(len(flat))), dtype=float)
        return p.reshape(len(rows), len(cols)), flat

    def explain_pairs(self, handle, pairs):
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


class PrecomputedScorer(MatrixScorer):
    """The offer model's input rows for every (profiled customer, offer), built once with
    ``offer_matrix``; per decision only the context columns are filled in, and the LightGBM booster
    scores the numeric matrix directly. Build with ``precompute_scorer``, which checks that it
    reproduces ``model.predict_proba(offer_features(...))``.
    """

    def __init__(self, model, matrix, offer_ids, context_fill, daypart_shares, paths=None, predict=None):
        super().__init__(model, predict=predict, paths=paths)
        self.matrix = matrix  # (n_customers, n_offers, n_features) float64
        self.offer_pos = {o: i for i, o in enumerate(offer_ids)}
        self.context_fill = context_fill  # column name -> fn(ctx) giving the raw value
        self.daypart_shares = daypart_shares  # (n_customers, n_dayparts) or None

    def _encode(self, name, value) -> float:
        if name in self.categories:
            cats = self.categories[name]
            return float(cats.index(value)) if value in cats else np.nan
        return float(value)

    def _matrix(self, batch, rows, offers, cols, ctx):
        pos = batch.position[rows]
        offer_pos = np.asarray([self.offer_pos[offers.offer_id[c]] for c in cols], dtype=np.int64)
        M = self.matrix[pos[:, None], offer_pos[None, :], :]  # (n_rows, n_cols, n_f) copy
        for name, fill in self.context_fill.items():
            M[:, :, self._col[name]] = self._encode(name, fill(ctx))
        if self.daypart_shares is not None:
            M[:, :, self._col["cust_visit_share_send_daypart"]] = self.daypart_shares[pos, DAYPARTS.index(ctx.daypart)][:, None]
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
) -> PrecomputedScorer:
    """Build a PrecomputedScorer for ``model`` (an OfferResponseModel) over ``profiles`` x ``offers``.

    Raises ScorerMismatchError when the fast path does not reproduce the model on a sample of
    customers and contexts (then use FrameScorer). Memory: customers x offers x features x 8 bytes.
    Reasons use path contributions (``TreePaths``: exact additive, as fast as a prediction) unless
    ``explain_with_paths=False`` asks for TreeSHAP (``pred_contrib``, a few ms per row).
    ``predict`` replaces the booster's own prediction (e.g. compiled trees); the check covers it too.
    """
    from models.offer_response import offer_matrix

    catalog = offers if isinstance(offers, OfferCatalog) else prepare_offers(offers)
    names = list(model.feature_names_in_)
    categories = {k: list(v) for k, v in model.categories_.items()}
    booster = model.booster_model_.booster_
    fills = {n: f for n, f in _context_fills().items() if n in names}
    ref = Context(pd.Timestamp("2026-01-05 08:00"), "app")
    prof = profiles.reset_index(drop=True)
    n_c, n_o, n_f = len(prof), len(catalog), len(names)
    matrix = np.empty((n_c, n_o, n_f), dtype=np.float64)
    for lo in range(0, n_c, chunk_customers):
        part = prof.iloc[lo: lo + chunk_customers]
        matrix[lo: lo + len(part)] = offer_matrix(part, catalog.frame, ref.as_dict(), names, categories)
    shares = None
    if "cust_visit_share_send_daypart" in names:
        share_cols = [f"visit_share_{d}" for d in DAYPARTS]
        missing = [c for c in share_cols if c not in prof.columns]
        if missing:
            raise ScorerMismatchError(f"profiles lack {missing} needed for cust_visit_share_send_daypart")
        shares = prof[share_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    paths = False
    if explain_with_paths:
        from models.reasons import TreePaths

        paths = TreePaths(booster.dump_model())
        if n_c and n_o:
            try:
                paths.check(booster, matrix[: min(n_c, 20)].reshape(-1, n_f))
            except ValueError as err:
                raise ScorerMismatchError(str(err)) from err
    scorer = PrecomputedScorer(model, matrix, catalog.index.tolist(), fills, shares, paths, predict=predict)

    check_scorer(scorer, model, prof, catalog, customers=verify_customers, contexts=verify_contexts)
    return scorer


VERIFY_CONTEXTS: tuple[Context, ...] = (
    Context(pd.Timestamp("2026-03-02 07:40"), "app"),  # Monday morning
    Context(pd.Timestamp("2026-03-04 12:30"), "push"),  # Wednesday lunch
    Context(pd.Timestamp("2026-03-07 15:10"), "email"),  # Saturday afternoon
    Context(pd.Timestamp("2026-03-08 19:55"), "store"),  # Sunday evening
)


def check_scorer(
    scorer: Scorer, model, profiles: pd.DataFrame, catalog: OfferCatalog, *, customers: int = 25,
    contexts: Sequence[Context] | None = None, atol: float = 1e-9,
) -> float:
    """The largest gap between ``scorer`` and the model's own path (``model.predict_proba`` over
    ``offer_features``, i.e. ``FrameScorer``) on a sample of ``profiles`` x every offer in ``catalog``,
    in a few contexts. Raises ScorerMismatchError when it is ``atol`` or more.
    """
    prof = profiles.reset_index(drop=True)
    n_c, n_o = len(prof), len(catalog)
    if not n_c or not n_o:
        return 0.0
    sample = np.sort(np.random.default_rng(0).choice(n_c, size=min(customers, n_c), replace=False))
    batch = CustomerBatch(
        customer_id=prof["customer_id"].to_numpy(dtype=object)[sample], tier=np.full(len(sample), None),
        marketing_consent=np.full(len(sample), None), churn_risk=np.full(len(sample), np.nan),
        habit_tags=[None] * len(sample), known=np.ones(len(sample), bool), position=sample,
        profiles=prof.iloc[sample].reset_index(drop=True),
    )
    cols, rows = np.arange(n_o), np.arange(len(sample))
    worst = 0.0
    for ctx in contexts or VERIFY_CONTEXTS:
        fast, _ = scorer.score_pairs(batch, rows, catalog, cols, ctx)
        slow, _ = FrameScorer(model).score_pairs(batch, rows, catalog, cols, ctx)
        diff = float(np.nanmax(np.abs(fast - slow)))
        if not diff < atol:
            raise ScorerMismatchError(
                f"{type(scorer).__name__} offer scores differ from model.predict_proba(offer_features(...)) by "
                f"{diff:.3g} in context {ctx.as_dict()}; the fast path does not reproduce the model: use FrameScorer"
            )
        worst = max(worst, diff)
    return worst


def _default_feature_builder() -> FeatureBuilder:
    from models.offer_response import offer_features

    return offer_features


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decisions:
    """What the policy decided for a set of customers in one context.

    ``offer_columns`` (OFFER_COLUMNS -> arrays, one entry per offer shown, by customer then rank) and
    ``customer_columns`` (CUSTOMER_COLUMNS -> arrays, input order) are the raw result; ``offers``
    and ``customers`` give them as frames, ``records()`` as plain dicts per customer.
    """

    offer_columns: Mapping[str, object]
    customer_columns: Mapping[str, object]

    @cached_property
    def offers(self) -> pd.DataFrame:
        return pd.DataFrame({c: self.offer_columns[c] for c in OFFER_COLUMNS}, columns=OFFER_COLUMNS)

    @cached_property
    def customers(self) -> pd.DataFrame:
        return pd.DataFrame({c: self.customer_columns[c] for c in CUSTOMER_COLUMNS}, columns=CUSTOMER_COLUMNS)

    def offers_for(self, customer_id: str) -> pd.DataFrame:
        return self.offers[self.offers["customer_id"] == customer_id]

    def records(self) -> list[dict]:
        """One dict per customer (CUSTOMER_COLUMNS plus "offers": a list of dicts), without pandas."""
        cc = {k: _as_list(v) for k, v in self.customer_columns.items()}
        oc = {k: _as_list(v) for k, v in self.offer_columns.items()}
        offer_keys = [c for c in OFFER_COLUMNS if c != "customer_id"]
        by_customer: dict[str, list[dict]] = {}
        for i, cid in enumerate(oc["customer_id"]):
            by_customer.setdefault(cid, []).append({key: oc[key][i] for key in offer_keys})
        out = []
        for i, cid in enumerate(cc["customer_id"]):
            rec = {key: cc[key][i] for key in CUSTOMER_COLUMNS}
            rec["offers"] = by_customer.get(cid, [])
            out.append(rec)
        return out


def _as_list(values) -> list:
    """An array as a list of plain Python values (NaN as None), for JSON."""
    out = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        out = [None if v != v else v for v in out]
    return out


def recommend(
    customers: pd.DataFrame | CustomerBatch,
    offers: pd.DataFrame | OfferCatalog,
    history: pd.DataFrame | ContactHistory,
    context: Context | Mapping,
    offer_model: OfferModel | Scorer | None,
    config: PolicyConfig | None = None,
    k: int = 3,
    *,
    feature_builder: FeatureBuilder | None = None,
    offer_ids: Sequence[str] | None = None,
    explain: bool = True,
) -> Decisions:
    """Decide the top-``k`` offers for each customer in ``context``.

    ``customers``: a CustomerBatch (``CustomerBook.batch``) or a frame with customer_id, tier,
    marketing_consent, optional churn_risk (NaN counts as 0), habit_tags, known (False -> cold
    start) and the profile features the offer model needs.
    ``offers``/``history``: the schema tables ``offers`` and ``offer_events``, or their prepared forms.
    ``offer_model``: an OfferResponseModel (scored through ``feature_builder``, default
    ``models.offer_response.offer_features``) or a scorer (``precompute_scorer``).
    ``offer_ids``: restrict candidates to these offers (unknown ids raise UnknownOfferError).
    At most one offer per reward_category, so never more than len(CATEGORIES) offers per customer.
    """
    config = config or PolicyConfig()
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise PolicyError(f"k must be a positive integer, got {k!r}")
    ctx = context if isinstance(context, Context) else Context(**dict(context))
    catalog = offers if isinstance(offers, OfferCatalog) else prepare_offers(offers)
    hist = history if isinstance(history, ContactHistory) else index_history(history)
    batch = customers if isinstance(customers, CustomerBatch) else _batch_from_frame(customers)

    n_c, n_o = len(batch), len(catalog)
    ids = batch.customer_id
    t = ctx.timestamp.value
    known, churn = batch.known, batch.churn_risk

    # --- offer-level masks (the same for every customer in this context)
    offer_ok = (catalog.valid_from <= t) & (t <= catalog.valid_to)
    offer_ok &= catalog.channel_ok[:, OFFER_CHANNELS.index(ctx.channel)]
    offer_ok &= _remaining_budget(catalog, hist, t) > 0
    if offer_ids is not None:
        wanted = catalog.index.get_indexer(pd.Index([str(o) for o in offer_ids]))
        if (wanted < 0).any():
            raise UnknownOfferError([o for o, w in zip(offer_ids, wanted, strict=True) if w < 0])
        restrict = np.zeros(n_o, dtype=bool)
        restrict[wanted] = True
        offer_ok &= restrict

    # --- customer x offer eligibility
    default_tier = _TIER_CODE[config.cold_start_tier]
    tier_code = np.fromiter((_TIER_CODE.get(x, default_tier) for x in batch.tier), dtype=np.int64, count=n_c)
    eligible = catalog.tier_ok[:, tier_code].T & offer_ok[None, :]  # (n_c, n_o)

    # --- customer-level rules and contact history
    status = np.full(n_c, STATUS_OK, dtype=object)
    control = is_holdout(ids, config.holdout_fraction, config.holdout_salt)
    # A customer missing from the customers table is treated as consenting: they are in front of us.
    no_consent = (np.asarray([v is False for v in batch.marketing_consent], dtype=bool)
                  if config.require_consent else np.zeros(n_c, dtype=bool))
    rows, ev_cust = _history_rows(hist, ids)
    blocked_pairs, cap_hit, cooling = _contact_rules(hist, rows, ev_cust, n_c, catalog, t, config)
    eligible &= ~blocked_pairs
    n_candidates = eligible.sum(axis=1)

    status[n_candidates == 0] = STATUS_NO_OFFER
    status[cooling] = STATUS_COOLDOWN
    status[cap_hit] = STATUS_CONTACT_CAP
    status[no_consent] = STATUS_NO_CONSENT
    status[control] = STATUS_CONTROL
    active = status == STATUS_OK
    eligible &= active[:, None]

    # --- P(redeem): the model for profiled customers, popularity in context for cold start
    p = np.zeros((n_c, n_o))
    cols = np.flatnonzero(eligible.any(axis=0))
    warm = np.flatnonzero(active & known)
    cold = np.flatnonzero(active & ~known)
    scorer, handle = None, None
    if len(warm) and len(cols):
        if offer_model is None:
            raise PolicyError("recommend: offer_model is required to score customers with a profile")
        scorer = offer_model if hasattr(offer_model, "score_pairs") else FrameScorer(offer_model, feature_builder)
        proba, handle = scorer.score_pairs(batch, warm, catalog, cols, ctx)
        p[np.ix_(warm, cols)] = proba
    if len(cold) and len(cols):
        p[np.ix_(cold, cols)] = _cold_start_rates(catalog, hist, ctx, config)[cols][None, :]

    # --- arbitration
    value = config.visit_value + config.margin_rate * catalog.min_spend
    weight = 1.0 + config.churn_weight * np.where(np.isnan(churn), 0.0, churn)
    priority = p * (value * _levers(catalog, config))[None, :] * weight[:, None] - p * catalog.cost[None, :]
    expected_value = p * (value - catalog.cost)[None, :]
    ok = eligible & (priority > config.min_priority)
    status[active & ~ok.any(axis=1)] = STATUS_NO_OFFER

    # --- top-k, one offer per reward_category
    picked_c, picked_o, picked_rank = _top_k_per_category(priority, ok, catalog.category, k)

    # --- reasons for the chosen pairs
    reasons: list[list[str]] = [[] for _ in picked_c]
    if explain and len(picked_c):
        names, contrib, values = None, None, None
        is_warm = known[picked_c]
        if scorer is not None and is_warm.any():
            warm_pos = np.full(n_c, -1)
            warm_pos[warm] = np.arange(len(warm))
            col_pos = np.full(n_o, -1)
            col_pos[cols] = np.arange(len(cols))
            pairs = warm_pos[picked_c[is_warm]] * len(cols) + col_pos[picked_o[is_warm]]
            names, c_warm, v_warm = scorer.explain_pairs(handle, pairs)
            contrib = np.full((len(picked_c), len(names)), np.nan)
            contrib[is_warm] = c_warm
            values = np.full((len(picked_c), len(names)), None, dtype=object)
            values[is_warm] = v_warm
        reasons = reason_codes(
            habit_tags=[batch.habit_tags[i] for i in picked_c],
            offer_categories=list(catalog.reward_category[picked_o]),
            feature_names=names,
            contributions=contrib,
            feature_values=values,
            cold_start=~is_warm,
            context_daypart=ctx.daypart,
            context_channel=ctx.channel,
            max_reasons=config.max_reasons,
        )

    offers_out = {
        "customer_id": ids[picked_c],
        "rank": picked_rank + 1,
        "offer_id": catalog.offer_id[picked_o],
        "name": catalog.name[picked_o],
        "reward_category": catalog.reward_category[picked_o],
        "offer_type": catalog.offer_type[picked_o],
        "p_redeem": p[picked_c, picked_o],
        "expected_value": expected_value[picked_c, picked_o],
        "score": priority[picked_c, picked_o],
        "reasons": reasons,
    }
    customers_out = {
        "customer_id": ids,
        "status": status,
        "cold_start": ~known,
        "control_group": control,
        "churn_risk": churn,
        "n_candidates": np.where(active, n_candidates, 0),
        "n_offers": np.bincount(picked_c, minlength=n_c),
    }
    return Decisions(offer_columns=offers_out, customer_columns=customers_out)


def _remaining_budget(catalog: OfferCatalog, hist: ContactHistory, t: int) -> np.ndarray:
    return catalog.budget - hist.redeemed_before(catalog, t)


_EMPTY = np.array([], dtype=np.int64)


def _history_rows(hist: ContactHistory, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the indexed history that belong to ``ids`` and the customer position of each row."""
    if len(hist.customers) == 0 or len(ids) == 0:
        return _EMPTY, _EMPTY
    pos = np.searchsorted(hist.customers, ids)
    pos = np.minimum(pos, len(hist.customers) - 1)
    found = hist.customers[pos] == ids
    cust_pos = np.flatnonzero(found)
    starts, ends = hist.starts[pos[found]], hist.ends[pos[found]]
    lengths = ends - starts
    if lengths.sum() == 0:
        return _EMPTY, _EMPTY
    ev_cust = np.repeat(cust_pos, lengths)
    offsets = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths)
    rows = np.arange(lengths.sum()) + offsets
    return rows, ev_cust


def _contact_rules(hist, rows, ev_cust, n_c, catalog, t, config):
    """(blocked customer x offer pairs, customers at the weekly cap, customers in cooldown)."""
    blocked = np.zeros((n_c, len(catalog)), dtype=bool)
    cap_hit = np.zeros(n_c, dtype=bool)
    cooling = np.zeros(n_c, dtype=bool)
    if len(rows) == 0:
        return blocked, cap_hit, cooling
    sent, redeemed = hist.sent_at[rows], hist.redeemed_at[rows]
    past = sent <= t
    sends_week = np.bincount(ev_cust[past & (sent > t - 7 * DAY_NS)], minlength=n_c)
    cap_hit = sends_week >= config.max_sends_per_week
    cooling = np.bincount(ev_cust[past & (sent > t - int(config.cooldown_hours * HOUR_NS))], minlength=n_c) > 0

    offer_pos = hist.offer_positions(catalog)[rows]
    in_cat = offer_pos >= 0
    # suitability: the same offer redeemed in the lookback window
    recent_red = in_cat & (redeemed <= t) & (redeemed > t - int(config.redeemed_lookback_days * DAY_NS))
    blocked[ev_cust[recent_red], offer_pos[recent_red]] = True
    # suppression: too many ignored sends of a reward_category in the window
    ignored = (
        in_cat
        & (sent <= t - int(config.ignored_after_days * DAY_NS))
        & (sent > t - int(config.ignored_window_days * DAY_NS))
        & (redeemed > t)
    )
    if ignored.any():
        cat = catalog.category[offer_pos[ignored]]
        counts = np.zeros((n_c, len(CATEGORIES)), dtype=np.int64)
        np.add.at(counts, (ev_cust[ignored], cat), 1)
        suppressed = counts >= config.max_ignored_per_category  # (n_c, n_categories)
        blocked |= suppressed[:, np.clip(catalog.category, 0, None)] & (catalog.category >= 0)[None, :]
    return blocked, cap_hit, cooling


def _cold_start_rates(catalog: OfferCatalog, hist: ContactHistory, ctx: Context, config: PolicyConfig) -> np.ndarray:
    """P(redeem) for a customer we know nothing about: offer popularity, shifted by the context.

    rate(offer) is shrunk towards the global rate; the context factor is the smoothed rate of the
    offer's reward_category in this daypart and channel over that category's overall rate.
    """
    pop = hist.popularity
    m = config.popularity_prior
    if pop.empty:
        return np.full(len(catalog), 0.05)
    glob = pop["redemptions"].sum() / max(pop["sends"].sum(), 1)
    cat_of = pd.Series(catalog.frame["reward_category"].to_numpy(), index=catalog.index)
    pop = pop.assign(category=pop["offer_id"].map(cat_of))
    by_offer = pop.groupby("offer_id")[["sends", "redemptions"]].sum()
    by_cat = pop.groupby("category")[["sends", "redemptions"]].sum()
    in_ctx = pop[(pop["daypart"] == ctx.daypart) & (pop["channel"] == ctx.channel)]
    by_cat_ctx = in_ctx.groupby("category")[["sends", "redemptions"]].sum()

    def rate(table, keys, prior):
        tab = table.reindex(keys)
        s, r = tab["sends"].fillna(0).to_numpy(float), tab["redemptions"].fillna(0).to_numpy(float)
        return (r + m * prior) / (s + m)

    cats = catalog.frame["reward_category"].to_numpy()
    cat_rate = rate(by_cat, cats, glob)
    ctx_rate = rate(by_cat_ctx, cats, cat_rate)
    offer_rate = rate(by_offer, catalog.index, cat_rate)
    return np.clip(offer_rate * ctx_rate / np.maximum(cat_rate, 1e-9), 0.0, 1.0)


def _levers(catalog: OfferCatalog, config: PolicyConfig) -> np.ndarray:
    type_lever = np.asarray([config.offer_type_levers.get(v, 1.0) for v in catalog.offer_type], dtype=float)
    cat_lever = np.asarray([config.category_levers.get(v, 1.0) for v in catalog.reward_category], dtype=float)
    return type_lever * cat_lever


def _top_k_per_category(priority, ok, category, k):
    """(customer positions, offer positions, rank) of the top-k with one offer per category, best first."""
    n_c, n_o = priority.shape
    if n_c == 0 or n_o == 0:
        return _EMPTY, _EMPTY, _EMPTY
    masked = np.where(ok, priority, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")  # each row: offers best first
    valid = np.isfinite(np.take_along_axis(masked, order, axis=1))
    # keep the first (best) offer of each category in a row: first occurrence of (row, category)
    key = (np.arange(n_c)[:, None] * (len(CATEGORIES) + 1) + (category[order] + 1)).ravel()
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(n_c * n_o, dtype=bool)
    keep[first] = True
    keep = keep.reshape(n_c, n_o) & valid
    rank = np.cumsum(keep, axis=1) - 1
    keep &= rank < k
    c_pos, j = np.nonzero(keep)
    return c_pos, order[c_pos, j], rank[c_pos, j]
