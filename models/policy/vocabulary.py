"""The policy's vocabularies (tiers, reward categories, offer channels): the one place it takes them from.

Today they come from the table schema (``data_contracts.schema``); a program file (issue 10) gives
its own ``Vocabulary`` here and every policy module follows: ``prepare_offers`` indexes the offers
against it and the indexed catalogue carries it to ``recommend`` and the contact rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Vocabulary:
    tiers: tuple[str, ...]  # ordered, lowest first
    categories: tuple[str, ...]  # reward categories
    offer_channels: tuple[str, ...]
    tier_code: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "tier_code", {t: i for i, t in enumerate(self.tiers)})

    @classmethod
    def from_schema(cls) -> Vocabulary:
        from data_contracts.schema import CATEGORIES, OFFER_CHANNELS, TIERS

        return cls(tiers=tuple(TIERS), categories=tuple(CATEGORIES), offer_channels=tuple(OFFER_CHANNELS))


SCHEMA_VOCABULARY = Vocabulary.from_schema()
