"""The next-best-offer policy: which offers a customer gets, in which order, and why.

Pure code (frames and arrays in, frames out); the offer API and batch scoring both call
``recommend``. It works on many customers at once for one context (moment + channel):

1. candidates: offers active at the context time (``valid_from <= t <= valid_to``);
2. eligibility: the customer's tier is in ``eligible_tiers``, the context channel is in ``channels``,
   the customer gave marketing consent;
3. applicability: the offer still has redemption budget (``budget_redemptions`` minus redemptions up to t);
4. suitability: the customer has not redeemed the same offer in the last ``redeemed_lookback_days``;
5. contact policy: at most ``max_sends_per_week`` sends in the 7 days before t, no offer within
   ``cooldown_hours`` of the last send, a reward_category is suppressed after
   ``max_ignored_per_category`` ignored sends in ``ignored_window_days``; customers in the control
   group (``is_holdout``) get no offer and are flagged;
6. arbitration: ``priority = p * business_value * lever * (1 + churn_weight * churn_risk) - p * cost``;
7. top-k with at most one offer per reward_category, each with reasons in plain words.

Customers without a profile are scored from offer popularity in the context (daypart, channel) and
flagged ``cold_start``. Only non-control sends count as contacts; the policy does not count its own
earlier answers (showing an offer is not sending it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES, OFFER_CHANNELS, TIERS
from models.reasons import reason_codes

NAT_NS = np.iinfo(np.int64).max  # "never" for missing timestamps (sorts after any real time)
DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
DAYPARTS: tuple[str, ...] = ("early", "morning", "midday", "afternoon", "evening")

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


class UnknownOfferError(PolicyError, KeyError):
    """Offer ids were asked for that are not in the offer catalogue."""

    def __init__(self, unknown: Sequence[str]):
        self.unknown = list(unknown)
        ValueError.__init__(
            self, f"offer_ids {self.unknown} are not in the offer catalogue; ask for offers that exist"
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return ValueError.__str__(self)


@dataclass(frozen=True)
class Context:
    """The moment and the touchpoint a decision is made for."""

    timestamp: pd.Timestamp
    channel: str
    store_id: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "timestamp", pd.Timestamp(self.timestamp))
        if self.channel not in OFFER_CHANNELS:
            raise PolicyError(
                f"context.channel must be one of {list(OFFER_CHANNELS)}, got {self.channel!r}"
            )

    @property
    def daypart(self) -> str:
        return daypart(self.timestamp.hour)

    def as_dict(self) -> dict:
        return {"timestamp": self.timestamp, "channel": self.channel, "store_id": self.store_id}


def daypart(hour: int) -> str:
    """Name of the part of the day an hour falls in."""
    if hour < 7:
        return "early"
    if hour < 11:
        return "morning"
    if hour < 14:
        return "midday"
    if hour < 17:
        return "afternoon"
    return "evening"


@dataclass(frozen=True)
class PolicyConfig:
    """The business levers of the policy. Defaults are a reasonable starting point, not truth."""

    redeemed_lookback_days: float = 30.0
    max_sends_per_week: int = 3
    cooldown_hours: float = 24.0
    max_ignored_per_category: int = 3
    ignored_window_days: float = 90.0
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
        for name in ("max_sends_per_week", "max_ignored_per_category"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("redeemed_lookback_days", "cooldown_hours", "ignored_window_days", "popularity_prior"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.cold_start_tier not in TIERS:
            problems.append(f"cold_start_tier must be one of {list(TIERS)}, got {self.cold_start_tier!r}")
        if problems:
            raise PolicyError("PolicyConfig: " + "; ".join(problems))


class OfferModel(Protocol):
    """What the policy needs from the offer-response model (OfferResponseModel fits)."""

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
# Prepared inputs: built once (at service start, per batch run), reused for every decision.
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
    cost: np.ndarray  # cost of one redemption to the business

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
        cost=frame["cost_per_redemption"].to_numpy(dtype=np.float64),
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
    # Popularity counts of non-control sends: offer_id, daypart, channel, sends, redemptions.
    popularity: pd.DataFrame


def index_history(offer_events: pd.DataFrame) -> ContactHistory:
    """Index the offer_events table (schema ``offer_events``) for the policy. Control rows are not contacts."""
    required = ["customer_id", "offer_id", "sent_at", "channel", "redeemed_at", "is_control"]
    missing = [c for c in required if c not in offer_events.columns]
    if missing:
        raise PolicyError(f"offer_events must contain columns {missing}, but they were missing")
    ev = offer_events.loc[~offer_events["is_control"].astype(bool), required]
    ev = ev.sort_values(["customer_id", "sent_at"], kind="stable")
    cust = ev["customer_id"].astype(str).to_numpy(dtype=object)
    uniq, starts = np.unique(cust, return_index=True) if len(cust) else (np.array([], dtype=object), np.array([], dtype=np.int64))
    ends = np.append(starts[1:], len(cust)).astype(np.int64)
    sent = _ns(ev["sent_at"], missing=NAT_NS)
    redeemed = _ns(ev["redeemed_at"], missing=NAT_NS)
    offer_ids = ev["offer_id"].astype(str).to_numpy(dtype=object)
    red_mask = redeemed != NAT_NS
    by_offer = {
        oid: np.sort(times)
        for oid, times in pd.Series(redeemed[red_mask]).groupby(offer_ids[red_mask]).agg(np.asarray).items()
    }
    hours = pd.to_datetime(ev["sent_at"]).dt.hour.to_numpy()
    pop = pd.DataFrame(
        {
            "offer_id": offer_ids,
            "daypart": _DAYPART_OF_HOUR[hours],
            "channel": ev["channel"].astype(str).to_numpy(),
            "redeemed": red_mask,
        }
    )
    popularity = (
        pop.groupby(["offer_id", "daypart", "channel"], observed=True)["redeemed"]
        .agg(sends="size", redemptions="sum")
        .reset_index()
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


_DAYPART_OF_HOUR = np.asarray([daypart(h) for h in range(24)], dtype=object)


def _ns(values: pd.Series, missing: int) -> np.ndarray:
    """Timestamps as int64 nanoseconds, ``missing`` where NaT."""
    ts = pd.to_datetime(values).astype("datetime64[ns]")
    out = ts.to_numpy().view(np.int64).copy()
    out[ts.isna().to_numpy()] = missing
    return out


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------


def customer_frame(
    customer_ids: Sequence[str],
    profiles: pd.DataFrame,
    customers: pd.DataFrame,
    churn_risk: pd.Series | None = None,
    habit_tags: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per requested id, in order: tier, consent, churn_risk, habit_tags, known, then profile features.

    ``profiles`` and ``customers`` may be indexed by customer_id already (fast path for serving).
    Customers without a profile row have ``known = False`` (cold start); their tier and consent come
    from the customers table when it has them.
    """
    ids = pd.Index([str(c) for c in customer_ids], name="customer_id")
    prof = profiles if profiles.index.name == "customer_id" else profiles.set_index("customer_id")
    cust = customers if customers.index.name == "customer_id" else customers.set_index("customer_id")
    out = prof.reindex(ids)
    known = ids.isin(prof.index)
    head = pd.DataFrame(index=ids)
    attrs = cust.reindex(ids)
    head["tier"] = attrs["tier"].astype(object).to_numpy()
    head["marketing_consent"] = attrs["marketing_consent"].astype(object).to_numpy()
    head["churn_risk"] = (
        churn_risk.reindex(ids).to_numpy(dtype=float) if churn_risk is not None else np.full(len(ids), np.nan)
    )
    head["habit_tags"] = (
        habit_tags.reindex(ids).to_numpy(dtype=object) if habit_tags is not None else [None] * len(ids)
    )
    head["known"] = known
    out = pd.concat([head, out.drop(columns=[c for c in head.columns if c in out.columns])], axis=1)
    return out.reset_index()


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decisions:
    """What the policy decided for a set of customers in one context."""

    offers: pd.DataFrame  # one row per offer shown: OFFER_COLUMNS, ordered by customer then rank
    customers: pd.DataFrame  # one row per input customer: CUSTOMER_COLUMNS, input order

    def offers_for(self, customer_id: str) -> pd.DataFrame:
        return self.offers[self.offers["customer_id"] == customer_id]


def recommend(
    customers: pd.DataFrame,
    offers: pd.DataFrame | OfferCatalog,
    history: pd.DataFrame | ContactHistory,
    context: Context | Mapping,
    offer_model: OfferModel | None,
    config: PolicyConfig | None = None,
    k: int = 3,
    *,
    feature_builder: FeatureBuilder | None = None,
    offer_ids: Sequence[str] | None = None,
    explain: bool = True,
) -> Decisions:
    """Decide the top-``k`` offers for each customer in ``context``.

    ``customers``: one row per customer (see ``customer_frame``): customer_id, tier, marketing_consent,
    optional churn_risk (NaN -> 0), habit_tags, known (False -> cold start), and the profile features
    ``feature_builder`` needs. ``offers``/``history``: the schema tables or their prepared forms
    (``prepare_offers``, ``index_history``; prepare once when deciding repeatedly).
    ``offer_model``: P(redeem) via ``predict_proba(feature_builder(profiles, offers, context))``; rows
    of the builder's output are customer-major (customer 0 x every offer, then customer 1 ...).
    ``offer_ids``: restrict candidates to these offers (unknown ids raise UnknownOfferError).
    """
    config = config or PolicyConfig()
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= len(CATEGORIES):
        raise PolicyError(f"k must be an integer in [1, {len(CATEGORIES)}], got {k!r}")
    ctx = context if isinstance(context, Context) else Context(**dict(context))
    catalog = offers if isinstance(offers, OfferCatalog) else prepare_offers(offers)
    hist = history if isinstance(history, ContactHistory) else index_history(history)
    missing = [c for c in ("customer_id", "tier", "marketing_consent") if c not in customers.columns]
    if missing:
        raise PolicyError(f"customers must contain columns {missing}, but they were missing")

    cust = customers.reset_index(drop=True)
    n_c, n_o = len(cust), len(catalog)
    ids = cust["customer_id"].astype(str).to_numpy(dtype=object)
    t = ctx.timestamp.value
    known = cust["known"].to_numpy(dtype=bool) if "known" in cust.columns else np.ones(n_c, dtype=bool)
    churn = (
        pd.to_numeric(cust["churn_risk"], errors="coerce").to_numpy(dtype=float)
        if "churn_risk" in cust.columns else np.full(n_c, np.nan)
    )

    # --- offer-level masks (same for every customer in this context)
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
    tiers = cust["tier"].astype(object).where(cust["tier"].notna(), config.cold_start_tier)
    tier_code = pd.Index(TIERS).get_indexer(tiers.astype(str))
    tier_code = np.where(tier_code < 0, TIERS.index(config.cold_start_tier), tier_code)
    eligible = catalog.tier_ok[:, tier_code].T & offer_ok[None, :]  # (n_c, n_o)

    # --- contact history of these customers
    status = np.full(n_c, STATUS_OK, dtype=object)
    control = is_holdout(ids, config.holdout_fraction, config.holdout_salt)
    consent = cust["marketing_consent"].astype(object)
    # A customer we know nothing about (not even in the customers table) is treated as consenting:
    # they are in front of us in the app or at the till.
    no_consent = consent.eq(False).to_numpy(dtype=bool) if config.require_consent else np.zeros(n_c, bool)
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

    # --- P(redeem): model for known customers, popularity for cold start
    p = np.zeros((n_c, n_o))
    cols = np.flatnonzero(eligible.any(axis=0))
    warm = np.flatnonzero(active & known)
    cold = np.flatnonzero(active & ~known)
    X_warm = None
    if len(warm) and len(cols):
        if offer_model is None:
            raise PolicyError("recommend: offer_model is required to score customers with a profile")
        build = feature_builder or _default_feature_builder()
        X_warm = build(cust.iloc[warm].reset_index(drop=True), catalog.frame.iloc[cols].reset_index(drop=True), ctx.as_dict())
        if len(X_warm) != len(warm) * len(cols):
            raise PolicyError(
                f"feature_builder returned {len(X_warm)} rows for {len(warm)} customers x {len(cols)} offers; "
                f"expected {len(warm) * len(cols)} (customer-major cross product)"
            )
        proba = np.asarray(offer_model.predict_proba(X_warm))[:, 1].reshape(len(warm), len(cols))
        p[np.ix_(warm, cols)] = proba
    if len(cold) and len(cols):
        p[np.ix_(cold, cols)] = _cold_start_rates(catalog, hist, ctx, config)[cols][None, :]

    # --- arbitration
    levers = _levers(catalog, config)
    value = (config.visit_value + config.margin_rate * catalog.frame["min_spend"].to_numpy(dtype=float))
    weight = 1.0 + config.churn_weight * np.nan_to_num(churn, nan=0.0)
    priority = p * (value * levers)[None, :] * weight[:, None] - p * catalog.cost[None, :]
    expected_value = p * (value - catalog.cost)[None, :]
    ok = eligible & (priority > config.min_priority)
    status[active & ~ok.any(axis=1)] = STATUS_NO_OFFER

    # --- top-k, one offer per reward_category
    picked_c, picked_o, picked_rank = _top_k_per_category(priority, ok, catalog.category, k)

    # --- reasons for the chosen pairs
    reasons: list[list[str]] = [[] for _ in picked_c]
    if explain and len(picked_c):
        reasons = _explain(cust, catalog, picked_c, picked_o, known, warm, cols, X_warm, offer_model, ctx, config)

    frame = catalog.frame
    offers_out = pd.DataFrame(
        {
            "customer_id": ids[picked_c],
            "rank": picked_rank + 1,
            "offer_id": frame["offer_id"].to_numpy(dtype=object)[picked_o],
            "name": frame["name"].to_numpy(dtype=object)[picked_o],
            "reward_category": frame["reward_category"].to_numpy(dtype=object)[picked_o],
            "offer_type": frame["offer_type"].to_numpy(dtype=object)[picked_o],
            "p_redeem": p[picked_c, picked_o],
            "expected_value": expected_value[picked_c, picked_o],
            "score": priority[picked_c, picked_o],
            "reasons": reasons,
        },
        columns=OFFER_COLUMNS,
    )
    n_offers = np.bincount(picked_c, minlength=n_c)
    customers_out = pd.DataFrame(
        {
            "customer_id": ids,
            "status": status,
            "cold_start": ~known,
            "control_group": control,
            "churn_risk": churn,
            "n_candidates": np.where(active, n_candidates, 0),
            "n_offers": n_offers,
        },
        columns=CUSTOMER_COLUMNS,
    )
    return Decisions(offers=offers_out, customers=customers_out)


def _default_feature_builder() -> FeatureBuilder:
    from models.offer_response import offer_features

    return offer_features


def _remaining_budget(catalog: OfferCatalog, hist: ContactHistory, t: int) -> np.ndarray:
    used = np.array(
        [np.searchsorted(hist.redemptions_by_offer.get(oid, _EMPTY), t, side="right") for oid in catalog.index],
        dtype=np.float64,
    )
    return catalog.budget - used


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

    offer_pos = catalog.index.get_indexer(pd.Index(hist.offer_id[rows].astype(str)))
    in_cat = offer_pos >= 0
    # suitability: the same offer redeemed in the lookback window
    recent_red = in_cat & (redeemed <= t) & (redeemed > t - int(config.redeemed_lookback_days * DAY_NS))
    blocked[ev_cust[recent_red], offer_pos[recent_red]] = True
    # suppression: too many ignored sends of a reward_category in the window
    ignored = (
        in_cat & past & (sent > t - int(config.ignored_window_days * DAY_NS)) & (redeemed > t)
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
    f = catalog.frame
    type_lever = f["offer_type"].map(lambda v: config.offer_type_levers.get(v, 1.0)).to_numpy(dtype=float)
    cat_lever = f["reward_category"].map(lambda v: config.category_levers.get(v, 1.0)).to_numpy(dtype=float)
    return type_lever * cat_lever


def _top_k_per_category(priority, ok, category, k):
    """(customer positions, offer positions, rank) of the top-k with one offer per category, best first."""
    n_c, _ = priority.shape
    masked = np.where(ok, priority, -np.inf)
    n_cat = len(CATEGORIES)
    best_val = np.full((n_c, n_cat), -np.inf)
    best_idx = np.full((n_c, n_cat), -1, dtype=np.int64)
    for g in range(n_cat):
        cols = np.flatnonzero(category == g)
        if len(cols) == 0:
            continue
        sub = masked[:, cols]
        j = np.argmax(sub, axis=1)
        best_val[:, g] = sub[np.arange(n_c), j]
        best_idx[:, g] = cols[j]
    order = np.argsort(-best_val, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(best_val, order, axis=1)
    keep = np.isfinite(vals)
    c_pos = np.repeat(np.arange(n_c), order.shape[1]).reshape(order.shape)
    rank = np.tile(np.arange(order.shape[1]), (n_c, 1))
    offer_pos = np.take_along_axis(best_idx, order, axis=1)
    return c_pos[keep], offer_pos[keep], rank[keep]


def _explain(cust, catalog, picked_c, picked_o, known, warm, cols, X_warm, offer_model, ctx, config):
    cats = catalog.frame["reward_category"].to_numpy(dtype=object)[picked_o]
    tags = cust["habit_tags"].to_numpy(dtype=object)[picked_c] if "habit_tags" in cust.columns else [None] * len(picked_c)
    contrib = None
    values = None
    is_warm = known[picked_c] & (X_warm is not None)
    if X_warm is not None and is_warm.any() and hasattr(offer_model, "contributions"):
        warm_pos = np.full(len(cust), -1)
        warm_pos[warm] = np.arange(len(warm))
        col_pos = np.full(len(catalog), -1)
        col_pos[cols] = np.arange(len(cols))
        sel = warm_pos[picked_c[is_warm]] * len(cols) + col_pos[picked_o[is_warm]]
        X_sel = X_warm.iloc[sel]
        c = offer_model.contributions(X_sel)
        c = c if isinstance(c, pd.DataFrame) else pd.DataFrame(np.asarray(c))
        contrib = pd.DataFrame(np.nan, index=range(len(picked_c)), columns=c.columns)
        contrib.iloc[np.flatnonzero(is_warm)] = c.to_numpy()
        vals = pd.DataFrame(np.nan, index=range(len(picked_c)), columns=X_sel.columns, dtype=object)
        vals.iloc[np.flatnonzero(is_warm)] = X_sel.to_numpy(dtype=object)
        values = vals
    out = reason_codes(
        habit_tags=list(tags),
        offer_categories=list(cats),
        contributions=contrib,
        feature_values=values,
        cold_start=~known[picked_c],
        context_daypart=ctx.daypart,
        context_channel=ctx.channel,
        max_reasons=config.max_reasons,
    )
    return out
