"""Habit tags: short human-readable labels of a profile, for reason codes (never a model feature).

Each tag is a rule over one profile row's features, so a tag depends only on its own customer and
reads the same in batch scoring and in the online service. Tags are declared from the program's
catalogue (``habit_tag_declarations``): one per daypart ("<daypart> regular"), one per product node
the profiles carry a visit share of ("<node> regular"), one per purchase channel but the first
listed ("<channel> first"), and a few that need no vocabulary ("weekend visitor", "lapsing", ...).
"""

from __future__ import annotations

from collections.abc import Callable
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


def _daypart_tag(name: str, start: float, end: float) -> HabitTag:
    from features.catalogue import daypart_hours_text

    col = f"visit_share_{name}"
    return HabitTag(
        f"{_words(name)} regular",
        f"At least {REGULAR_VISITS_90D} visits in 90 days, {DAYPART_SHARE:.0%}+ of them "
        f"{daypart_hours_text(start, end)} (daypart '{name}').",
        lambda p: _ge(p, "visits_90d", REGULAR_VISITS_90D) & _ge(p, col, DAYPART_SHARE),
        ("visits_90d", col),
    )


def _node_tag(node: str) -> HabitTag:
    col = f"visit_share_{node}"
    return HabitTag(
        f"{_words(node)} regular",
        f"'{node}' in {NODE_SHARE:.0%}+ of the visits, over {NODE_VISITS_365D}+ visits a year.",
        lambda p: _ge(p, "visits_365d", NODE_VISITS_365D) & _ge(p, col, NODE_SHARE),
        ("visits_365d", col),
    )


def _channel_tag(channel: str) -> HabitTag:
    col = f"channel_share_{channel}"
    return HabitTag(
        f"{_words(channel)} first",
        f"{CHANNEL_SHARE:.0%}+ of the visits through channel '{channel}'.",
        lambda p: _ge(p, col, CHANNEL_SHARE),
        (col,),
    )


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
    from features.catalogue import catalogue, default_program

    program = default_program() if program is None else program
    dayparts = program.daypart_edges
    part_names = {name for name, _, _ in dayparts}
    # The product nodes the profiles carry a visit share of (their names come from the data's taxonomy).
    nodes = [f.name[len("visit_share_"):] for f in catalogue(program).family("affinity")
             if f.name.startswith("visit_share_") and f.name[len("visit_share_"):] not in part_names]
    channels = program.allowed("purchase_channels") or ()
    tags = ([_daypart_tag(*part) for part in dayparts] + [_node_tag(n) for n in nodes]
            + [_channel_tag(c) for c in channels[1:]] + list(_GENERIC))
    seen: set[str] = set()
    return tuple(t for t in tags if not (t.name in seen or seen.add(t.name)))


HABIT_TAGS: tuple[HabitTag, ...] = habit_tag_declarations()  # the default program's tags


def habit_tags(profiles: pd.DataFrame, program: Program | None = None) -> pd.Series:
    """A list of tag names per profile row (same index as ``profiles``), in declaration order.

    A tag whose features the profiles lack (e.g. of a table that holds no rows) is never earned."""
    tags = HABIT_TAGS if program is None else habit_tag_declarations(program)
    tags = [t for t in tags if all(c in profiles.columns for c in t.needs)]
    if not len(profiles) or not tags:
        return pd.Series([[] for _ in range(len(profiles))], index=profiles.index, dtype=object, name="habit_tags")
    hits = np.column_stack([tag.rule(profiles).fillna(False).to_numpy(dtype=bool) for tag in tags])
    names = np.array([tag.name for tag in tags], dtype=object)
    values = [list(names[row]) for row in hits]  # one small list per row is the output itself
    return pd.Series(values, index=profiles.index, dtype=object, name="habit_tags")
