"""What the policy decided (``Decisions``): offer rows and customer rows as aligned arrays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

# Customer-level outcomes, in the order the rules are applied.
STATUS_OK = "ok"
STATUS_CONTROL = "control_group"
STATUS_NO_CONSENT = "no_marketing_consent"
STATUS_CONTACT_CAP = "contact_cap"
STATUS_COOLDOWN = "cooldown"
STATUS_NO_OFFER = "no_eligible_offer"
# A customer whose every offer was withdrawn because the offers' redemption budgets ran out.
STATUS_BUDGET = "budget_exhausted"

# The columns of a decision's offers (one row per offer shown; "priority" is the arbitration value
# the offers were ranked by) and of its customers (one row per customer decided).
DECISION_OFFER_COLUMNS: tuple[str, ...] = (
    "customer_id", "rank", "offer_id", "name", "reward_category", "offer_type",
    "p_redeem", "expected_value", "score", "reasons",
)
DECISION_CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id", "status", "cold_start", "control_group", "churn_risk", "n_candidates", "n_offers",
)


@dataclass(frozen=True)
class Decisions:
    """What the policy decided for a set of customers in one context.

    ``offer_columns`` (DECISION_OFFER_COLUMNS -> arrays, one entry per offer shown, by customer then rank) and
    ``customer_columns`` (DECISION_CUSTOMER_COLUMNS -> arrays, input order) are the raw result; ``offers``
    and ``customers`` give them as frames, ``records()`` as plain dicts per customer.
    """

    offer_columns: Mapping[str, object]
    customer_columns: Mapping[str, object]

    @cached_property
    def offers(self) -> pd.DataFrame:
        return pd.DataFrame({c: self.offer_columns[c] for c in DECISION_OFFER_COLUMNS}, columns=DECISION_OFFER_COLUMNS)

    @cached_property
    def customers(self) -> pd.DataFrame:
        return pd.DataFrame({c: self.customer_columns[c] for c in DECISION_CUSTOMER_COLUMNS}, columns=DECISION_CUSTOMER_COLUMNS)

    def offers_for(self, customer_id: str) -> pd.DataFrame:
        return self.offers[self.offers["customer_id"] == customer_id]

    def records(self) -> list[dict]:
        """One dict per customer (DECISION_CUSTOMER_COLUMNS plus "offers": a list of dicts), without pandas."""
        cc = {k: _as_list(v) for k, v in self.customer_columns.items()}
        oc = {k: _as_list(v) for k, v in self.offer_columns.items()}
        offer_keys = [c for c in DECISION_OFFER_COLUMNS if c != "customer_id"]
        by_customer: dict[str, list[dict]] = {}
        for i, cid in enumerate(oc["customer_id"]):
            by_customer.setdefault(cid, []).append({key: oc[key][i] for key in offer_keys})
        out = []
        for i, cid in enumerate(cc["customer_id"]):
            rec = {key: cc[key][i] for key in DECISION_CUSTOMER_COLUMNS}
            rec["offers"] = by_customer.get(cid, [])
            out.append(rec)
        return out


def _as_list(values) -> list:
    """An array as a list of plain Python values (NaN as None), for JSON."""
    out = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        out = [None if v != v else v for v in out]
    return out
