"""The policy's error classes."""

from __future__ import annotations

from collections.abc import Sequence

from models.columns import MissingInputError


class PolicyError(ValueError):
    """The inputs of the policy do not have the shape or values it needs."""


class UnknownChannelError(PolicyError):
    """A decision context names a channel outside the program's offer channels."""


class UnknownOfferError(PolicyError):
    """Offer ids were asked for that are not in the offer catalogue."""

    def __init__(self, unknown: Sequence[str]):
        self.unknown = list(unknown)
        super().__init__(f"offer_ids {self.unknown} are not in the offer catalogue; ask for offers that exist")


class ScorerMismatchError(PolicyError):
    """The precomputed scorer does not reproduce the model's own predictions."""



class MissingPolicyInputError(PolicyError, MissingInputError):
    """A table given to the policy (offers, offer_events, profiles, customers) lacks columns it needs."""
