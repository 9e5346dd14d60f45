"""``recommend``: the top-k offers for each customer in one context, and the rules that pick them.

1. candidates: offers active at the context time (``valid_from <= t <= valid_to``);
2. eligibility: the customer's tier is in ``eligible_tiers``, the context channel is in ``channels``,
   the customer gave marketing consent;
3. applicability: the offer still has redemption budget (``budget_redemptions`` minus redemptions up to t);
4. suitability: the customer has not redeemed the same offer in the last ``redeemed_lookback_days``;
5. contact policy: at most ``max_sends_per_week`` sends in the 7 days up to t, nothing within
   ``cooldown_hours`` of the last send, a reward_category is suppressed after
   ``max_ignored_per_category`` ignored sends (not redeemed ``ignored_after_days`` after sending) in
   ``ignored_window_days``; customers in the control group (``PolicyConfig.holdout``) get no offer
   and are flagged;
6. arbitration (the output column ``score``), by ``PolicyConfig.objective``:
   ``expected_value`` (the default): ``priority = p * business_value * lever * (1 + churn_weight * churn_risk)
   - p * cost`` with ``business_value = visit_value + margin_rate * min_spend``;
   ``uplift``: ``priority = incremental value`` from the uplift model (``models.policy.uplift.UpliftScorer``:
   the margin the send adds in the following 30 days, net of the reward cost, i.e. treated minus control).
   Levers and churn weight apply to the expected value only. A customer without a profile has no uplift
   estimate: their offers keep the expected-value priority (flagged ``cold_start``). P(redeem),
   ``expected_value`` and the reasons are the same under both objectives;
7. top-k with at most one offer per reward_category, each with reasons in plain words.

Customers without a profile are scored from offer popularity in the context (daypart, channel) and
flagged ``cold_start``. Only non-control sends count as contacts; the policy does not count its own
earlier answers (showing an offer is not sending it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from models.policy.contacts import ContactHistory, contact_rules, history_rows, index_history
from models.policy.context import EMPTY_POSITIONS, OBJECTIVE_UPLIFT, Context, PolicyConfig
from models.policy.customers import CustomerBatch, batch_from_frame
from models.policy.decisions import (
    STATUS_CONTACT_CAP,
    STATUS_CONTROL,
    STATUS_COOLDOWN,
    STATUS_NO_CONSENT,
    STATUS_NO_OFFER,
    STATUS_OK,
    Decisions,
)
from models.policy.errors import PolicyError, UnknownChannelError, UnknownOfferError
from models.policy.offers import OfferCatalog, prepare_offers, remaining_budget
from models.policy.scoring import FeatureBuilder, FrameScorer, OfferModel, Scorer
from models.policy.uplift import UpliftScorer
from models.reasons import reason_codes

_EMPTY = EMPTY_POSITIONS


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
    uplift: UpliftScorer | None = None,
) -> Decisions:
    """Decide the top-``k`` offers for each customer in ``context``.

    ``customers``: a CustomerBatch (``CustomerBook.batch``) or a frame with customer_id, tier,
    marketing_consent, optional churn_risk (NaN counts as 0), habit_tags, known (False -> cold
    start) and the profile features the offer model needs.
    ``offers``/``history``: the schema tables ``offers`` and ``offer_events``, or their prepared forms.
    ``offer_model``: an OfferResponseModel (scored through ``feature_builder``, default
    ``models.offer_response.offer_features``) or a scorer (``precompute_scorer``).
    ``offer_ids``: restrict candidates to these offers (unknown ids raise UnknownOfferError).
    ``uplift``: the incremental-value scorer; required when ``config.objective`` is ``uplift``.
    At most one offer per reward_category, so never more than one per category of the vocabulary.
    """
    config = config or PolicyConfig()
    if config.objective == OBJECTIVE_UPLIFT and uplift is None:
        raise PolicyError("recommend: objective 'uplift' ranks by an uplift model's incremental value, but no "
                          "uplift scorer was given; train one with `rewards train uplift` or use objective 'expected_value'")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise PolicyError(f"k must be a positive integer, got {k!r}")
    catalog = offers if isinstance(offers, OfferCatalog) else prepare_offers(offers)
    ctx = context if isinstance(context, Context) else Context(**dict(context))
    if ctx.vocabulary is None:  # the context's daypart is named as the offers' program names it
        ctx = replace(ctx, vocabulary=catalog.vocabulary)
    hist = history if isinstance(history, ContactHistory) else index_history(history, catalog.vocabulary.dayparts)
    batch = customers if isinstance(customers, CustomerBatch) else batch_from_frame(customers)

    n_c, n_o = len(batch), len(catalog)
    ids = batch.customer_id
    t = ctx.timestamp.value
    known, churn = batch.known, batch.churn_risk

    # --- offer-level masks (the same for every customer in this context)
    offer_ok = (catalog.valid_from <= t) & (t <= catalog.valid_to)
    if ctx.channel not in catalog.vocabulary.offer_channels:
        raise UnknownChannelError(f"context.channel must be one of the program's offer channels "
                                  f"{list(catalog.vocabulary.offer_channels)}, got {ctx.channel!r}")
    offer_ok &= catalog.channel_ok[:, catalog.vocabulary.offer_channels.index(ctx.channel)]
    offer_ok &= remaining_budget(catalog, hist, t) > 0
    if offer_ids is not None:
        wanted = catalog.index.get_indexer(pd.Index([str(o) for o in offer_ids]))
        if (wanted < 0).any():
            raise UnknownOfferError([o for o, w in zip(offer_ids, wanted, strict=True) if w < 0])
        restrict = np.zeros(n_o, dtype=bool)
        restrict[wanted] = True
        offer_ok &= restrict

    # --- customer x offer eligibility
    codes = catalog.vocabulary.tier_code
    if codes:  # a program without (ordered) tiers has no tier rule
        default_tier = codes.get(config.cold_start_tier or catalog.vocabulary.lowest_tier)
        if default_tier is None:
            raise PolicyError(f"PolicyConfig: cold_start_tier must be one of {list(catalog.vocabulary.tiers)}, "
                              f"got {config.cold_start_tier!r}")
        tier_code = np.fromiter((codes.get(x, default_tier) for x in batch.tier), dtype=np.int64, count=n_c)
        eligible = catalog.tier_ok[:, tier_code].T & offer_ok[None, :]  # (n_c, n_o)
    else:
        eligible = np.repeat(offer_ok[None, :], n_c, axis=0)

    # --- customer-level rules and contact history
    status = np.full(n_c, STATUS_OK, dtype=object)
    control = config.holdout(ids)
    # A customer missing from the customers table is treated as consenting: they are in front of us.
    no_consent = (np.asarray([v is False for v in batch.marketing_consent], dtype=bool)
                  if config.require_consent else np.zeros(n_c, dtype=bool))
    rows, ev_cust = history_rows(hist, ids)
    blocked_pairs, cap_hit, cooling = contact_rules(hist, rows, ev_cust, n_c, catalog, t, config)
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
    if config.objective == OBJECTIVE_UPLIFT and len(warm) and len(cols):
        priority[np.ix_(warm, cols)] = uplift.incremental_pairs(batch, warm, catalog, cols, ctx)
    ok = eligible & (priority > config.min_priority)
    status[active & ~ok.any(axis=1)] = STATUS_NO_OFFER

    # --- top-k, one offer per reward_category
    picked_c, picked_o, picked_rank = _top_k_per_category(priority, ok, catalog.category, len(catalog.categories), k)

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
            program=catalog.vocabulary.program,
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
        # unknown customers, and every decision of a prior standing in for the model (policy.cold_start)
        "cold_start": ~known | bool(getattr(getattr(scorer, "model", offer_model), "is_prior", False)),
        "control_group": control,
        "churn_risk": churn,
        "n_candidates": np.where(active, n_candidates, 0),
        "n_offers": np.bincount(picked_c, minlength=n_c),
    }
    return Decisions(offer_columns=offers_out, customer_columns=customers_out)



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


def _top_k_per_category(priority, ok, category, n_categories, k):
    """(customer positions, offer positions, rank) of the top-k with one offer per category, best first."""
    n_c, n_o = priority.shape
    if n_c == 0 or n_o == 0:
        return _EMPTY, _EMPTY, _EMPTY
    masked = np.where(ok, priority, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")  # each row: offers best first
    valid = np.isfinite(np.take_along_axis(masked, order, axis=1))
    # keep the first (best) offer of each category in a row: first occurrence of (row, category)
    key = (np.arange(n_c)[:, None] * (n_categories + 1) + (category[order] + 1)).ravel()
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(n_c * n_o, dtype=bool)
    keep[first] = True
    keep = keep.reshape(n_c, n_o) & valid
    rank = np.cumsum(keep, axis=1) - 1
    keep &= rank < k
    c_pos, j = np.nonzero(keep)
    return c_pos, order[c_pos, j], rank[c_pos, j]
