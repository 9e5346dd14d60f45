"""The customers of a decision: ``customer_book`` indexes profiles, churn risk, habit tags and the
customers table once; ``CustomerBook.batch(ids)`` is then cheap per decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.schema import CUSTOMERS
from models.columns import require_columns
from models.policy.errors import MissingPolicyInputError, PolicyError

# The customers table's columns a decision needs next to the profile (consent and tier are not model features).
ATTRIBUTE_COLUMNS: tuple[str, ...] = ("tier", "marketing_consent")


@dataclass(frozen=True)
class CustomerBatch:
    """The customers of one decision, as aligned arrays."""

    customer_id: np.ndarray  # object
    tier: np.ndarray  # object, None when unknown
    marketing_consent: np.ndarray  # object: True / False / None (unknown customer)
    churn_risk: np.ndarray  # float, NaN when unknown
    habit_tags: list  # list[str] | None per customer
    known: np.ndarray  # bool: has a profile (False -> cold start)
    position: np.ndarray  # int: row in the book's profiles (and a precomputed scorer); -1 when unknown
    profiles: pd.DataFrame | None = None  # aligned profile rows, for the frame-based scorer

    def __len__(self) -> int:
        return len(self.customer_id)


@dataclass(frozen=True)
class CustomerBook:
    """Everything known about the customers, indexed once; ``batch(ids)`` is then cheap."""

    profiles: pd.DataFrame  # customer_id + features, one row per profiled customer (position order)
    positions: Mapping[str, int]  # profiled customer_id -> row
    attributes: Mapping[str, tuple]  # customer_id -> (tier, marketing_consent) for every known member
    churn_risk: np.ndarray  # per profile row
    habit_tags: list  # per profile row

    def __contains__(self, customer_id: str) -> bool:
        return customer_id in self.positions

    def batch(self, customer_ids: Sequence[str], with_profiles: bool = False) -> CustomerBatch:
        ids = np.asarray([str(c) for c in customer_ids], dtype=object)
        pos = np.fromiter((self.positions.get(c, -1) for c in ids), dtype=np.int64, count=len(ids))
        known = pos >= 0
        attrs = [self.attributes.get(c, (None, None)) for c in ids]
        safe = np.where(known, pos, 0)
        churn = np.where(known, self.churn_risk[safe] if len(self.churn_risk) else np.nan, np.nan)
        return CustomerBatch(
            customer_id=ids,
            tier=np.asarray([a[0] for a in attrs], dtype=object),
            marketing_consent=np.asarray([a[1] for a in attrs], dtype=object),
            churn_risk=churn.astype(float),
            habit_tags=[self.habit_tags[p] if p >= 0 else None for p in pos],
            known=known,
            position=pos,
            profiles=self.profiles.iloc[pos[known]].reset_index(drop=True) if with_profiles else None,
        )


def customer_book(
    profiles: pd.DataFrame,
    customers: pd.DataFrame,
    churn_risk: Sequence[float] | pd.Series | None = None,
    habit_tags: Sequence | pd.Series | None = None,
) -> CustomerBook:
    """Index profiles (customer_id + features) and the customers table (tier, consent) for decisions.

    ``churn_risk`` and ``habit_tags`` are aligned with the rows of ``profiles``.
    """
    require_columns(profiles.columns, ["customer_id"], "profiles", error=MissingPolicyInputError)
    require_columns(customers.columns, ["customer_id", *ATTRIBUTE_COLUMNS], CUSTOMERS.name, error=MissingPolicyInputError)
    prof = profiles.reset_index(drop=True)
    ids = prof["customer_id"].astype(str).tolist()
    if len(set(ids)) != len(ids):
        raise PolicyError("profiles: customer_id must be unique (one profile row per customer)")
    consent = customers["marketing_consent"].astype(object).where(customers["marketing_consent"].notna(), None)
    attributes = dict(zip(customers["customer_id"].astype(str),
                          zip(customers["tier"].astype(object), consent.map(lambda v: None if v is None else bool(v))),
                          strict=True))
    churn = np.full(len(prof), np.nan) if churn_risk is None else np.asarray(churn_risk, dtype=float)
    tags = [None] * len(prof) if habit_tags is None else list(habit_tags)
    if len(churn) != len(prof) or len(tags) != len(prof):
        raise PolicyError(
            f"customer_book: churn_risk ({len(churn)}) and habit_tags ({len(tags)}) must align with "
            f"the {len(prof)} profile rows"
        )
    return CustomerBook(
        profiles=prof, positions={c: i for i, c in enumerate(ids)}, attributes=attributes,
        churn_risk=churn, habit_tags=tags,
    )


def batch_from_frame(customers: pd.DataFrame) -> CustomerBatch:
    require_columns(customers.columns, ["customer_id", *ATTRIBUTE_COLUMNS], CUSTOMERS.name, error=MissingPolicyInputError)
    cust = customers.reset_index(drop=True)
    n = len(cust)
    known = cust["known"].to_numpy(dtype=bool) if "known" in cust.columns else np.ones(n, dtype=bool)
    consent = cust["marketing_consent"].astype(object)
    return CustomerBatch(
        customer_id=cust["customer_id"].astype(str).to_numpy(dtype=object),
        tier=cust["tier"].astype(object).where(cust["tier"].notna(), None).to_numpy(dtype=object),
        marketing_consent=consent.where(consent.notna(), None).to_numpy(dtype=object),
        churn_risk=(pd.to_numeric(cust["churn_risk"], errors="coerce").to_numpy(dtype=float)
                    if "churn_risk" in cust.columns else np.full(n, np.nan)),
        habit_tags=list(cust["habit_tags"]) if "habit_tags" in cust.columns else [None] * n,
        known=known,
        position=np.where(known, np.arange(n), -1),
        profiles=cust.loc[known].reset_index(drop=True),
    )
