"""The control group: one rule for the offer API and the campaign lists.

A customer is held out of campaign C when the blake2b hash of ``holdout_salt(C):customer_id`` falls
below the holdout fraction. ``rewards score --campaign C`` builds its ``PolicyConfig(campaign=C)``,
and an offer API configured for campaign C (``REWARDS_POLICY_JSON='{"campaign": "C", ...}'``) does the
same, so a customer held out of a campaign's list is held out of that campaign's API decisions too.
Without a campaign the API holds out by ``DEFAULT_HOLDOUT_SALT``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from models.policy.errors import PolicyError

DEFAULT_HOLDOUT_SALT = "rewards-holdout-v1"


def holdout_salt(campaign: str | None) -> str:
    """The control-group salt of a campaign: the same campaign name always holds out the same customers."""
    return f"campaign:{campaign}" if campaign else DEFAULT_HOLDOUT_SALT


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

