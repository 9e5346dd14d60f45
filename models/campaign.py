"""Campaign lists: the policy's decisions as list rows, and the summary that accounts for every customer.

Pure code. ``campaign_rows`` turns one ``models.policy.Decisions`` into rows (one per offer, one per
customer who got none, with the reason); ``CampaignSummary`` adds rows up chunk by chunk, so any
number of customers can be summarised in bounded memory, and checks that the counts add up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.policy import STATUS_BUDGET, STATUS_CONTROL, STATUS_OK, ContactHistory, Decisions, OfferCatalog
from models.policy.budget import budget_keep, rerank_after_withdrawal  # noqa: F401  (budget_keep re-exported)
from models.policy.offers import remaining_budget

# One row per offer given (status "ok") or per customer given none (status = the reason).
ROW_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "status",
    "holdout",
    "rank",
    "offer_id",
    "offer_name",
    "reward_category",
    "offer_type",
    "p_redeem",
    "expected_value",
    "score",
    "churn_risk",
    "cold_start",
    "reasons",
    "campaign",
    "as_of",
    "offer_model_version",
    "churn_model_version",
)
# The campaign list: customers with offers, and holdout customers (flagged, no offer).
LIST_COLUMNS: tuple[str, ...] = tuple(c for c in ROW_COLUMNS if c != "status")
# Customers who got no offer, with the reason (holdout customers are here too, reason control_group).
EXCLUSION_COLUMNS: tuple[str, ...] = ("customer_id", "reason", "holdout", "churn_risk", "campaign", "as_of")


class CampaignCountError(RuntimeError):
    """The campaign's counts do not add up: a customer was lost or counted twice."""


def campaign_rows(
    decisions: Decisions,
    campaign: str,
    as_of: pd.Timestamp,
    model_versions: Mapping[str, str],
) -> pd.DataFrame:
    """List rows for one batch of decisions: offers first by (customer, rank), then customers without one."""
    cust = decisions.customers
    offers = decisions.offers
    per_customer = cust.set_index("customer_id")
    offered = pd.DataFrame(
        {
            "customer_id": offers["customer_id"].astype(object).to_numpy(),
            "status": STATUS_OK,
            "holdout": False,
            "rank": offers["rank"].to_numpy(dtype=np.int64),
            "offer_id": offers["offer_id"].astype(object).to_numpy(),
            "offer_name": offers["name"].astype(object).to_numpy(),
            "reward_category": offers["reward_category"].astype(object).to_numpy(),
            "offer_type": offers["offer_type"].astype(object).to_numpy(),
            "p_redeem": offers["p_redeem"].to_numpy(dtype=float),
            "expected_value": offers["expected_value"].to_numpy(dtype=float),
            "score": offers["score"].to_numpy(dtype=float),
            "churn_risk": per_customer["churn_risk"].reindex(offers["customer_id"]).to_numpy(dtype=float),
            "cold_start": per_customer["cold_start"].reindex(offers["customer_id"]).to_numpy(dtype=bool),
            "reasons": [list(r) for r in offers["reasons"]],
        }
    )
    none = cust[cust["n_offers"].to_numpy() == 0]
    without = pd.DataFrame(
        {
            "customer_id": none["customer_id"].astype(object).to_numpy(),
            "status": none["status"].astype(object).to_numpy(),
            "holdout": none["control_group"].to_numpy(dtype=bool),
            "churn_risk": none["churn_risk"].to_numpy(dtype=float),
            "cold_start": none["cold_start"].to_numpy(dtype=bool),
            "reasons": [[] for _ in range(len(none))],
        }
    )
    rows = pd.concat([offered, without], ignore_index=True) if len(without) else offered
    rows = rows.reindex(columns=list(ROW_COLUMNS))
    rows["rank"] = rows["rank"].astype("Int64")
    rows["holdout"] = rows["holdout"].astype(bool)
    rows["cold_start"] = rows["cold_start"].astype(bool)
    for col in ("offer_id", "offer_name", "reward_category", "offer_type"):
        rows[col] = rows[col].astype("str")
    rows["campaign"] = campaign
    rows["as_of"] = pd.Series(pd.Timestamp(as_of), index=rows.index, dtype="datetime64[ns]")
    rows["offer_model_version"] = str(model_versions.get("offer", ""))
    rows["churn_model_version"] = str(model_versions.get("churn", ""))
    _check_rows(rows, cust)
    return rows


def _check_rows(rows: pd.DataFrame, customers: pd.DataFrame) -> None:
    """Every decided customer is in the rows exactly once without an offer, or with 1..k offers."""
    ok = rows["status"].to_numpy() == STATUS_OK
    offered = pd.Index(rows.loc[ok, "customer_id"]).unique()
    without = rows.loc[~ok, "customer_id"]
    if without.duplicated().any():
        raise CampaignCountError(f"customers listed twice without an offer: {without[without.duplicated()].head(3).tolist()}")
    both = offered.intersection(pd.Index(without))
    if len(both):
        raise CampaignCountError(f"customers both with an offer and excluded: {both[:3].tolist()}")
    if len(offered) + len(without) != len(customers):
        raise CampaignCountError(
            f"{len(customers)} customers were decided but {len(offered)} got offers and {len(without)} "
            "were excluded; every customer must be in exactly one of the two"
        )


def withdraw_offers(rows: pd.DataFrame, withdrawn: np.ndarray) -> pd.DataFrame:
    """``rows`` (ROW_COLUMNS, whole customers, by customer then rank) without the ``withdrawn`` offer rows.

    The customer's other offers move up (ranks 1..n again); a customer left with no offer stays in the
    rows once, with status STATUS_BUDGET, so every customer is still listed or excluded.
    """
    withdrawn = np.asarray(withdrawn, dtype=bool)
    if not withdrawn.any():
        return rows
    ok = rows["status"].to_numpy() == STATUS_OK
    offer_rows = np.flatnonzero(ok)
    _, ranks, lost_all = rerank_after_withdrawal(
        rows["customer_id"].to_numpy(dtype=object)[offer_rows], withdrawn[offer_rows]
    )
    kept = rows.loc[~withdrawn].copy()
    kept.loc[kept["status"].to_numpy() == STATUS_OK, "rank"] = ranks
    if len(lost_all):
        first = rows.loc[withdrawn].drop_duplicates("customer_id")
        first = first[first["customer_id"].isin(lost_all)]
        gone = first.assign(status=STATUS_BUDGET, holdout=False, rank=pd.NA, reasons=[[] for _ in range(len(first))])
        for col in ("offer_id", "offer_name", "reward_category", "offer_type"):
            gone[col] = pd.Series(pd.NA, index=gone.index, dtype="str")
        for col in ("p_redeem", "expected_value", "score"):
            gone[col] = np.nan
        kept = pd.concat([kept, gone[kept.columns]])
    kept["rank"] = kept["rank"].astype("Int64")
    return sort_rows(kept)


def sort_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows in list order: by customer_id, then rank (customers without an offer have no rank)."""
    order = np.lexsort((rows["rank"].fillna(0).to_numpy(dtype=np.int64), rows["customer_id"].to_numpy(dtype=object)))
    return rows.iloc[order].reset_index(drop=True)


def budget_remaining_by_offer(catalog: OfferCatalog, history: ContactHistory, at: pd.Timestamp) -> pd.Series:
    """Redemptions each offer may still have at ``at`` (inf when unlimited), indexed by offer_id."""
    left = remaining_budget(catalog, history, pd.Timestamp(at).value)
    return pd.Series(left, index=catalog.index, name="budget_remaining")


@dataclass
class CampaignSummary:
    """Running totals of a campaign list; ``add`` one chunk of rows at a time, ``as_dict`` at the end."""

    cost_per_redemption: Mapping[str, float]
    budget_remaining: Mapping[str, float] = field(default_factory=dict)
    customers_considered: int = 0
    customers_with_offers: int = 0
    excluded: Counter = field(default_factory=Counter)
    offers: int = 0
    offers_per_reward_category: Counter = field(default_factory=Counter)
    offers_per_offer: Counter = field(default_factory=Counter)
    redemptions_per_offer: Counter = field(default_factory=Counter)
    expected_value: float = 0.0
    withdrawn_per_offer: Counter = field(default_factory=Counter)  # offers taken off the list for budget
    # 64-bit hashes of the customer ids seen so far (8 bytes a customer): catches a customer in two chunks.
    _seen: list = field(default_factory=list, repr=False)

    def add(self, rows: pd.DataFrame) -> None:
        ok = rows["status"].to_numpy() == STATUS_OK
        offered = rows.loc[ok]
        n_offered = int(offered["customer_id"].nunique())
        reasons = rows.loc[~ok, "status"].value_counts()
        n_chunk = int(rows["customer_id"].nunique())
        if n_offered + int(reasons.sum()) != n_chunk:
            raise CampaignCountError(
                f"a chunk of {n_chunk} customers has {n_offered} with offers and {int(reasons.sum())} excluded"
            )
        self.customers_considered += n_chunk
        self._seen.append(pd.util.hash_array(rows["customer_id"].unique().astype(object)))
        self.customers_with_offers += n_offered
        self.excluded.update({str(k): int(v) for k, v in reasons.items()})
        self.offers += len(offered)
        self.offers_per_reward_category.update(offered["reward_category"].value_counts().to_dict())
        self.offers_per_offer.update(offered["offer_id"].value_counts().to_dict())
        self.redemptions_per_offer.update(offered.groupby("offer_id")["p_redeem"].sum().to_dict())
        self.expected_value += float(offered["expected_value"].sum())

    def check(self) -> None:
        """Raise CampaignCountError unless considered = with offers + excluded (by reason)."""
        excluded = sum(self.excluded.values())
        seen = np.concatenate(self._seen) if self._seen else np.array([], dtype=np.uint64)
        repeated = len(seen) - len(np.unique(seen))
        if repeated:
            raise CampaignCountError(
                f"{repeated} customers appear in more than one chunk, so {self.customers_considered} customers "
                "considered counts some twice; each customer must be decided exactly once"
            )
        if self.customers_with_offers + excluded != self.customers_considered:
            raise CampaignCountError(
                f"{self.customers_considered} customers considered but {self.customers_with_offers} with offers "
                f"+ {excluded} excluded ({dict(self.excluded)})"
            )

    def as_dict(self) -> dict:
        """The summary as plain JSON-ready values."""
        self.check()
        budget = []
        for oid in sorted(set(self.offers_per_offer) | set(self.withdrawn_per_offer)):
            redemptions = float(self.redemptions_per_offer[oid])
            remaining = float(self.budget_remaining.get(oid, np.inf))
            budget.append(
                {
                    "offer_id": oid,
                    "offers": int(self.offers_per_offer[oid]),
                    "expected_redemptions": round(redemptions, 3),
                    "expected_cost": round(redemptions * float(self.cost_per_redemption.get(oid, 0.0)), 2),
                    "budget_remaining": None if np.isinf(remaining) else int(remaining),
                    "withdrawn_for_budget": int(self.withdrawn_per_offer.get(oid, 0)),
                    "budget_used_share": None if np.isinf(remaining) or remaining <= 0 else round(redemptions / remaining, 4),
                }
            )
        redemptions = float(sum(self.redemptions_per_offer.values()))
        cost = float(sum(b["expected_cost"] for b in budget))
        return {
            "customers_considered": self.customers_considered,
            "customers_with_offers": self.customers_with_offers,
            "customers_excluded": int(sum(self.excluded.values())),
            "excluded_by_reason": dict(sorted(self.excluded.items())),
            "holdout_customers": int(self.excluded.get(STATUS_CONTROL, 0)),
            "offers": self.offers,
            "offers_per_reward_category": dict(sorted(self.offers_per_reward_category.items())),
            "expected_redemptions": round(redemptions, 3),
            "expected_cost": round(cost, 2),
            "expected_value": round(self.expected_value, 2),
            "offers_withdrawn_for_budget": int(sum(self.withdrawn_per_offer.values())),
            "offers_over_budget": [b["offer_id"] for b in budget if b["budget_used_share"] is not None and b["budget_used_share"] > 1],
            "budget": budget,
        }
