"""What a decision is made for (``Context``) and the business levers of the policy (``PolicyConfig``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.catalogue import daypart, daypart_index
from models.policy.errors import PolicyError, UnknownChannelError
from models.policy.holdout import DEFAULT_HOLDOUT_SALT, holdout_salt, is_holdout
from models.policy.vocabulary import Vocabulary

NAT_NS = np.iinfo(np.int64).max  # "never" for missing timestamps (sorts after any real time)
DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
EMPTY_POSITIONS = np.array([], dtype=np.int64)

# What arbitration ranks offers by (PolicyConfig.objective): the expected value of a redemption, or the
# incremental value of the send estimated by the uplift model (models.uplift.incremental_value).
OBJECTIVE_EXPECTED_VALUE = "expected_value"
OBJECTIVE_UPLIFT = "uplift"
OBJECTIVES: tuple[str, ...] = (OBJECTIVE_EXPECTED_VALUE, OBJECTIVE_UPLIFT)


def as_ns(values: pd.Series, missing: int) -> np.ndarray:
    """Timestamps as int64 nanoseconds, ``missing`` where NaT."""
    ts = pd.to_datetime(values).astype("datetime64[ns]")
    out = ts.to_numpy().view(np.int64).copy()
    out[ts.isna().to_numpy()] = missing
    return out


@dataclass(frozen=True)
class Context:
    """The moment and the touchpoint a decision is made for."""

    timestamp: pd.Timestamp
    channel: str
    store_id: str | None = None
    # The vocabulary the channel must belong to (None: checked against the offers' vocabulary when deciding).
    vocabulary: Vocabulary | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        ts = pd.Timestamp(self.timestamp)
        if ts.tzinfo is not None:  # the data is in store-local naive time
            ts = ts.tz_localize(None)
        object.__setattr__(self, "timestamp", ts)
        # Without a vocabulary the channel is checked where the offers' vocabulary is known (``recommend``).
        channels = self.vocabulary.offer_channels if self.vocabulary is not None else None
        if channels is not None and self.channel not in channels:
            raise UnknownChannelError(f"context.channel must be one of the program's offer channels {list(channels)}, "
                                      f"got {self.channel!r}")

    @property
    def hour(self) -> float:
        return self.timestamp.hour + self.timestamp.minute / 60.0

    @property
    def daypart(self) -> str:
        """The program's name for this hour (its vocabulary's dayparts; the built-in program's without one)."""
        return daypart(self.hour, None if self.vocabulary is None else self.vocabulary.dayparts)

    @property
    def daypart_index(self) -> int:
        """The position of ``daypart`` among its program's dayparts."""
        return int(daypart_index(self.hour, None if self.vocabulary is None else self.vocabulary.dayparts))

    def as_dict(self) -> dict:
        """What the offer rows read of the context (``models.offer_response.offer_features``): the daypart
        named as this context's program names it."""
        return {"timestamp": self.timestamp, "channel": self.channel, "store_id": self.store_id, "daypart": self.daypart}


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
    # The campaign the decisions are for: it sets the holdout salt (models.policy.holdout), so the
    # API configured for a campaign holds out the customers its list holds out.
    campaign: str | None = None
    holdout_salt: str = DEFAULT_HOLDOUT_SALT
    require_consent: bool = True
    # Value of a redemption to the business: the visit itself plus the margin on the basket it needs.
    visit_value: float = 2.0
    margin_rate: float = 0.6
    churn_weight: float = 1.0
    offer_type_levers: Mapping[str, float] = field(default_factory=dict)
    category_levers: Mapping[str, float] = field(default_factory=dict)
    min_priority: float = float("-inf")  # offers at or below this priority are never shown
    # Tier assumed for a customer whose tier is unknown; None: the vocabulary's lowest (no tier rule without tiers).
    cold_start_tier: str | None = None
    popularity_prior: float = 20.0  # pseudo-sends shrinking cold-start rates towards the parent rate
    max_reasons: int = 3
    # expected_value: p * value * lever * (1 + churn_weight * churn) - p * cost; uplift: the uplift model's
    # incremental margin of the send, net of the reward cost (see models.policy.recommend, rule 6).
    objective: str = OBJECTIVE_EXPECTED_VALUE

    def __post_init__(self):
        problems = []
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        if self.campaign is not None:
            if not str(self.campaign).strip():
                problems.append("campaign must not be empty (leave it out for no campaign)")
            elif self.holdout_salt not in (DEFAULT_HOLDOUT_SALT, holdout_salt(self.campaign)):
                problems.append(f"holdout_salt {self.holdout_salt!r} conflicts with campaign {self.campaign!r}; give one")
            else:
                object.__setattr__(self, "holdout_salt", holdout_salt(self.campaign))
        if not 0.0 <= self.holdout_fraction < 1.0:
            problems.append(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        for name in ("max_sends_per_week", "max_ignored_per_category", "max_reasons"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("redeemed_lookback_days", "cooldown_hours", "ignored_window_days", "ignored_after_days",
                     "popularity_prior"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.cold_start_tier is not None and not str(self.cold_start_tier).strip():
            problems.append("cold_start_tier must be a tier name (or None for the program's lowest tier), got ''")
        if problems:
            raise PolicyError("PolicyConfig: " + "; ".join(problems))

    def holdout(self, customer_ids) -> np.ndarray:
        """Whether each customer is in this configuration's control group (the one holdout rule)."""
        return is_holdout(customer_ids, self.holdout_fraction, self.holdout_salt)
