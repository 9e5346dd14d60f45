"""Habit tags: short human-readable labels of a profile, for reason codes (never a model feature).

Each tag is a rule over one profile row's features, so a tag depends only on its own customer and
reads the same in batch scoring and in the online service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class HabitTag:
    name: str
    description: str
    rule: Callable[[pd.DataFrame], pd.Series]


def _ge(profiles: pd.DataFrame, column: str, threshold: float) -> pd.Series:
    # NaN compares False: an undefined feature never earns a tag.
    return profiles[column] >= threshold


HABIT_TAGS: tuple[HabitTag, ...] = (
    HabitTag(
        "morning coffee regular",
        "At least 6 visits in 90 days, 60%+ of visits before 11:00 and half of them with coffee.",
        lambda p: _ge(p, "visits_90d", 6) & _ge(p, "visit_share_before_11", 0.6) & _ge(p, "visit_share_coffee", 0.5),
    ),
    HabitTag(
        "coffee and pastry",
        "Bakery in at least half of the visits with coffee, over 3+ visits a year.",
        lambda p: _ge(p, "attach_bakery_given_coffee", 0.5) & _ge(p, "visits_365d", 3),
    ),
    HabitTag(
        "lunch regular",
        "At least 6 visits in 90 days, 60%+ of them between 11:00 and 14:00.",
        lambda p: _ge(p, "visits_90d", 6) & _ge(p, "visit_share_11_to_14", 0.6),
    ),
    HabitTag(
        "afternoon snacker",
        "40%+ of visits between 14:00 and 17:00 and snacks in 30%+ of visits.",
        lambda p: _ge(p, "visit_share_14_to_17", 0.4) & _ge(p, "visit_share_snacks", 0.3),
    ),
    HabitTag(
        "weekend family",
        "Half of the visits on weekends, with an average basket of 15 or more.",
        lambda p: _ge(p, "weekend_visit_share", 0.5) & _ge(p, "avg_basket_365d", 15.0),
    ),
    HabitTag(
        "app first",
        "Half of the visits ordered in the app.",
        lambda p: _ge(p, "channel_share_app", 0.5),
    ),
    HabitTag(
        "offer redeemer",
        "Redeemed at least half of 3 or more offers sent.",
        lambda p: _ge(p, "offers_sent", 3) & _ge(p, "offers_redeem_rate", 0.5),
    ),
    HabitTag(
        "lapsing",
        "A habit (3+ visit days in a year) but now 3x past the usual gap and 14+ days since the last visit.",
        lambda p: _ge(p, "distinct_visit_days_365d", 3) & _ge(p, "overdue_ratio", 3.0) & _ge(p, "days_since_last_visit", 14),
    ),
    HabitTag(
        "new member",
        "Signed up less than 30 days ago.",
        lambda p: p["tenure_days"] < 30,
    ),
)


def habit_tags(profiles: pd.DataFrame) -> pd.Series:
    """A list of tag names per profile row (same index as ``profiles``), in HABIT_TAGS order."""
    if not len(profiles):
        return pd.Series([], index=profiles.index, dtype=object, name="habit_tags")
    hits = np.column_stack([tag.rule(profiles).fillna(False).to_numpy(dtype=bool) for tag in HABIT_TAGS])
    names = np.array([tag.name for tag in HABIT_TAGS], dtype=object)
    values = [list(names[row]) for row in hits]  # one small list per row is the output itself
    return pd.Series(values, index=profiles.index, dtype=object, name="habit_tags")
