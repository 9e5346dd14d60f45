"""Habit tags: short human-readable labels of a profile, for reason codes (never a model feature).

Each tag is a rule over one profile row's features, so a tag depends only on its own customer and
reads the same in batch scoring and in the online service. Tags are declared from the program's
catalogue (``habit_tag_declarations``): one per value of a vocabulary, as its ``ShareTags`` row says
(per daypart "<daypart> regular", per product node the profiles carry a visit share of "<node>
regular", per purchase channel but the first listed "<channel> first"), and a few that need no
vocabulary ("weekend visitor", "lapsing", ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from data_contracts.program import Program

REGULAR_VISITS_90D = 6  # visits in 90 days that make a daypart habit
DAYPART_SHARE = 0.6  # share of visits in the daypart
NODE_SHARE = 0.5  # share of visits with the node in the basket
NODE_VISITS_365D = 3
CHANNEL_SHARE = 0.5


@dataclass(frozen=True)
class HabitTag:
    name: str
    description: str
    rule: Callable[[pd.DataFrame], pd.Series]
    needs: tuple[str, ...] = ()  # the profile columns the rule reads: without them the tag is never earned


def _ge(profiles: pd.DataFrame, column: str, threshold: float) -> pd.Series:
    # NaN compares False: an undefined feature never earns a tag.
    return profiles[column] >= threshold


def _words(name: str) -> str:
    return " ".join(str(name).replace("_", " ").split())


@dataclass(frozen=True)
class ShareTags:
    """The tags of one program vocabulary: per value, '<value> <label>' once the share column of the value
    reaches ``share`` (and ``visits_column`` reaches ``visits``, when one is named)."""

    label: str
    share_column: str  # the column of a value: share_column.format(value)
    share: float
    visits_column: str | None
    visits: float
    description: str  # formatted with value, share, visits and hours (a daypart's, in words)

    def tag(self, value: str, hours: str = "") -> HabitTag:
        col = self.share_column.format(value)
        needs = (col,) if self.visits_column is None else (self.visits_column, col)

        def rule(p: pd.DataFrame) -> pd.Series:
            hit = _ge(p, col, self.share)
            return hit if self.visits_column is None else _ge(p, self.visits_column, self.visits) & hit

        text = self.description.format(value=value, share=self.share, visits=self.visits, hours=hours)
        return HabitTag(f"{_words(value)} {self.label}", text, rule, needs)


# One row per vocabulary that earns tags: the program's dayparts, the product nodes the profiles carry a
# visit share of, the purchase channels but the first listed.
DAYPART_TAGS = ShareTags("regular", "visit_share_{}", DAYPART_SHARE, "visits_90d", REGULAR_VISITS_90D,
                         "At least {visits} visits in 90 days, {share:.0%}+ of them {hours} (daypart '{value}').")
NODE_TAGS = ShareTags("regular", "visit_share_{}", NODE_SHARE, "visits_365d", NODE_VISITS_365D,
                      "'{value}' in {share:.0%}+ of the visits, over {visits}+ visits a year.")
CHANNEL_TAGS = ShareTags("first", "channel_share_{}", CHANNEL_SHARE, None, 0,
                         "{share:.0%}+ of the visits through channel '{value}'.")


_GENERIC: tuple[HabitTag, ...] = (
    HabitTag(
        "weekend visitor",
        "60%+ of the visits on weekends (2 days in 7), over 6+ visits a year.",
        lambda p: _ge(p, "weekend_visit_share", 0.6) & _ge(p, "visits_365d", 6),
        ("weekend_visit_share", "visits_365d"),
    ),
    HabitTag(
        "offer redeemer",
        "Redeemed at least half of 3 or more offers sent.",
        lambda p: _ge(p, "offers_sent", 3) & _ge(p, "offers_redeem_rate", 0.5),
        ("offers_sent", "offers_redeem_rate"),
    ),
    HabitTag(
        "lapsing",
        "A habit (3+ visit days in a year) but now 3x past the usual gap and 14+ days since the last visit.",
        lambda p: _ge(p, "distinct_visit_days_365d", 3) & _ge(p, "overdue_ratio", 3.0) & _ge(p, "days_since_last_visit", 14),
        ("distinct_visit_days_365d", "overdue_ratio", "days_since_last_visit"),
    ),
    HabitTag(
        "new member",
        "Signed up less than 30 days ago.",
        lambda p: p["tenure_days"] < 30,
        ("tenure_days",),
    ),
)


def habit_tag_declarations(program: Program | None = None) -> tuple[HabitTag, ...]:
    """The tags of ``program``'s profiles (default: the built-in default program), in the order they are listed."""
    from features.catalogue import catalogue, daypart_hours_text, default_program

    program = default_program() if program is None else program
    dayparts = program.daypart_edges
    part_names = {name for name, _, _ in dayparts}
    # The product nodes the profiles carry a visit share of (their names come from the data's taxonomy).
    nodes = [f.name[len("visit_share_"):] for f in catalogue(program).family("affinity")
             if f.name.startswith("visit_share_") and f.name[len("visit_share_"):] not in part_names]
    channels = program.allowed("purchase_channels") or ()
    tags = ([DAYPART_TAGS.tag(name, daypart_hours_text(start, end)) for name, start, end in dayparts]
            + [NODE_TAGS.tag(n) for n in nodes] + [CHANNEL_TAGS.tag(c) for c in channels[1:]] + list(_GENERIC))
    seen: set[str] = set()
    return tuple(t for t in tags if not (t.name in seen or seen.add(t.name)))


HABIT_TAGS: tuple[HabitTag, ...] = habit_tag_declarations()  # the default program's tags


def habit_tags(profiles: pd.DataFrame, program: Program | None = None) -> pd.Series:
    """A list of tag names per profile row (same index as ``profiles``), in declaration order.

    A tag whose features the profiles lack (e.g. of a table that holds no rows) is never earned."""
    return tags_of(profiles, HABIT_TAGS if program is None else habit_tag_declarations(program))


def tags_of(profiles: pd.DataFrame, declarations: Sequence[HabitTag]) -> pd.Series:
    """``habit_tags`` with the tags ``declarations`` (a program's ``habit_tag_declarations``) declare."""
    tags = [t for t in declarations if all(c in profiles.columns for c in t.needs)]
    if not len(profiles) or not tags:
        return pd.Series([[] for _ in range(len(profiles))], index=profiles.index, dtype=object, name="habit_tags")
    hits = np.column_stack([tag.rule(profiles).fillna(False).to_numpy(dtype=bool) for tag in tags])
    names = np.array([tag.name for tag in tags], dtype=object)
    values = [list(names[row]) for row in hits]  # one small list per row is the output itself
    return pd.Series(values, index=profiles.index, dtype=object, name="habit_tags")
