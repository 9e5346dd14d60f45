"""The policy's vocabularies (tiers, reward categories, offer channels, dayparts, habit tags): the one place
it takes them from.

``Vocabulary.from_program(program)`` reads them from a program file: the tiers in order (none without
tiers), the reward categories (the hierarchy's nodes, coarsest level first: an offer's
``reward_category`` may be a node of any level; the values the offers hold when a level is open) and
the offer channels (or the values seen when open), the dayparts a context is named by and the habit tags
the customer book is labelled with. ``SCHEMA_VOCABULARY``
is the built-in default program's. ``prepare_offers`` indexes the offers against a vocabulary and the
indexed catalogue carries it to ``recommend`` and the contact rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from features.catalogue import DAYPARTS, Dayparts
from features.tags import HABIT_TAGS, HabitTag, habit_tag_declarations

if TYPE_CHECKING:
    import pandas as pd

    from data_contracts.program import Program


@dataclass(frozen=True)
class Vocabulary:
    tiers: tuple[str, ...]  # ordered, lowest first; () for a program without (ordered) tiers
    categories: tuple[str, ...]  # reward categories
    offer_channels: tuple[str, ...]
    dayparts: Dayparts = DAYPARTS  # (name, start_hour, end_hour) in order: what a context's hour is called
    # The program the vocabularies come from (None: the built-in one); kept, not its tags, so it pickles.
    program: Program | None = field(default=None, repr=False, compare=False)
    tier_code: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "tier_code", {t: i for i, t in enumerate(self.tiers)})

    @property
    def lowest_tier(self) -> str | None:
        """The tier assumed for a customer we know nothing about: the lowest, or None without tiers."""
        return self.tiers[0] if self.tiers else None

    @property
    def daypart_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.dayparts)

    @property
    def habit_tags(self) -> tuple[HabitTag, ...]:
        """The habit tags the program declares (``features.tags.habit_tag_declarations``)."""
        return HABIT_TAGS if self.program is None else habit_tag_declarations(self.program)

    @classmethod
    def from_program(cls, program: Program, offers: pd.DataFrame | None = None) -> Vocabulary:
        """The vocabulary of ``program``; an open vocabulary takes the values ``offers`` hold (their
        ``reward_category``, their ``channels`` lists), sorted."""
        categories = program.listed_nodes()  # every level, coarsest first: an offer may name a node of any
        channels = program.allowed("offer_channels")
        if categories is None:
            categories = _seen([] if offers is None else offers["reward_category"])
        if channels is None:
            channels = _seen([] if offers is None else (c for cs in offers["channels"] if cs is not None for c in cs))
        return cls(tiers=program.ordered_tiers, categories=tuple(categories), offer_channels=tuple(channels),
                   dayparts=program.daypart_edges, program=program)

    @classmethod
    def from_schema(cls) -> Vocabulary:
        """The built-in default program's vocabulary (its tiers, every hierarchy node, its offer channels)."""
        from data_contracts.schema import CATEGORIES, OFFER_CHANNELS, TIERS

        return cls(tiers=tuple(TIERS), categories=tuple(CATEGORIES), offer_channels=tuple(OFFER_CHANNELS))


def _seen(values: Iterable) -> tuple[str, ...]:
    return tuple(sorted({str(v) for v in values if v is not None and str(v).strip()}))


SCHEMA_VOCABULARY = Vocabulary.from_schema()
