"""The offers table as arrays for fast masking (``prepare_offers``), and each offer's remaining budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.schema import OFFERS
from models.columns import require_columns
from models.policy.context import NAT_NS, as_ns
from models.policy.errors import MissingPolicyInputError, PolicyError
from models.policy.vocabulary import SCHEMA_VOCABULARY, Vocabulary

# The offers table's columns the policy reads.
POLICY_OFFER_COLUMNS: tuple[str, ...] = (
    "offer_id", "name", "reward_category", "offer_type", "min_spend", "cost_per_redemption",
    "eligible_tiers", "channels", "valid_from", "valid_to", "budget_redemptions",
)


@dataclass(frozen=True)
class OfferCatalog:
    """The offers table as arrays for fast masking."""

    frame: pd.DataFrame  # the offers table, reset index
    index: pd.Index  # offer_id -> position
    valid_from: np.ndarray  # int64 ns
    valid_to: np.ndarray
    tier_ok: np.ndarray  # (n_offers, n_tiers) bool
    channel_ok: np.ndarray  # (n_offers, n_channels) bool
    category: np.ndarray  # int codes into ``categories``
    budget: np.ndarray  # float, inf when unlimited
    min_spend: np.ndarray
    cost: np.ndarray  # cost of one redemption to the business
    offer_id: np.ndarray  # object arrays of the text columns, for cheap per-decision output
    name: np.ndarray
    reward_category: np.ndarray
    offer_type: np.ndarray
    positions: Mapping[str, int]
    vocabulary: Vocabulary = SCHEMA_VOCABULARY  # the tiers, categories and channels the arrays are coded in
    # The reward categories ``category`` codes into: the vocabulary's, then any other the offers name (a
    # node of the program's own taxonomy is a category of its own, never lumped with the rest).
    categories: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)


def prepare_offers(offers: pd.DataFrame, vocabulary: Vocabulary = SCHEMA_VOCABULARY) -> OfferCatalog:
    """Index the offers table (schema ``offers``) for the policy."""
    require_columns(offers.columns, POLICY_OFFER_COLUMNS, OFFERS.name, error=MissingPolicyInputError)
    frame = offers.reset_index(drop=True)
    if frame["offer_id"].duplicated().any():
        dup = frame.loc[frame["offer_id"].duplicated(), "offer_id"].tolist()[:5]
        raise PolicyError(f"offers: offer_id must be unique, found duplicates {dup}")
    tier_pos = vocabulary.tier_code
    chan_pos = {c: i for i, c in enumerate(vocabulary.offer_channels)}
    n = len(frame)
    tier_ok = np.zeros((n, len(vocabulary.tiers)), dtype=bool)
    channel_ok = np.zeros((n, len(vocabulary.offer_channels)), dtype=bool)
    for i, (tiers, channels) in enumerate(zip(frame["eligible_tiers"], frame["channels"], strict=True)):
        if tiers is None or not len(tiers):  # no tier named (a program without tiers): open to every tier
            tier_ok[i, :] = True
        for t in tiers if tiers is not None else ():
            if t in tier_pos:
                tier_ok[i, tier_pos[t]] = True
        for c in channels if channels is not None else ():
            if c in chan_pos:
                channel_ok[i, chan_pos[c]] = True
    named = frame["reward_category"].astype(str)
    categories = tuple(vocabulary.categories) + tuple(c for c in pd.unique(named) if c not in vocabulary.categories)
    cat_pos = {c: i for i, c in enumerate(categories)}
    budget = pd.to_numeric(frame["budget_redemptions"], errors="coerce").astype("float64").fillna(np.inf)
    return OfferCatalog(
        frame=frame,
        index=pd.Index(frame["offer_id"].astype(str)),
        valid_from=as_ns(frame["valid_from"], missing=np.iinfo(np.int64).min),
        valid_to=as_ns(frame["valid_to"], missing=NAT_NS),
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
        vocabulary=vocabulary,
        categories=categories,
    )


def remaining_budget(catalog: OfferCatalog, history, t: int) -> np.ndarray:
    """Redemptions each catalogue offer may still have at ``t`` (ns; inf when unlimited)."""
    return catalog.budget - history.redeemed_before(catalog, t)
