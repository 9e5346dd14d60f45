"""Request and response models of the offer API (they document the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from data_contracts.schema import OFFER_CHANNELS

MAX_K = 10
MAX_BATCH = 1000

Channel = Literal[OFFER_CHANNELS]  # type: ignore[valid-type]


class RequestContext(BaseModel):
    """Where and when the offer will be shown."""

    model_config = ConfigDict(extra="forbid")

    timestamp: datetime = Field(description="Moment of the decision, store-local time (ISO 8601).")
    channel: Channel = Field(description=f"Touchpoint the offer is shown or sent on: one of {list(OFFER_CHANNELS)}.")
    store_id: str | None = Field(default=None, max_length=64, description="Store the customer is at, when known.")


CustomerId = Field(min_length=1, max_length=64, description="Loyalty member identifier.")


class Offer(BaseModel):
    offer_id: str = Field(description="Offer identifier.")
    name: str = Field(description="Human-readable offer name.")
    reward_category: str = Field(description="What the reward is about (at most one offer per category).")
    offer_type: str = Field(description="Kind of reward.")
    rank: int = Field(description="1 = best.")
    score: float = Field(description="Arbitration priority: P(redeem) x business value x levers - expected cost.")
    p_redeem: float = Field(description="Predicted probability that the customer redeems the offer.")
    expected_value: float = Field(description="P(redeem) x (business value - cost), in currency units.")
    reasons: list[str] = Field(description="Why this offer, in plain words.")


class Decision(BaseModel):
    customer_id: str = Field(description="Loyalty member identifier.")
    offers: list[Offer] = Field(description="Offers to show, best first (empty for the control group or when nothing qualifies).")
    status: str = Field(
        description="ok, control_group, no_marketing_consent, contact_cap, cooldown or no_eligible_offer."
    )
    churn_risk: float | None = Field(description="Predicted churn risk; null for a customer without a profile.")
    cold_start: bool = Field(description="True when the customer has no profile: offers come from popularity in context.")
    control_group: bool = Field(description="True when the customer is held out as control: no offer is shown.")


class RecommendResponse(Decision):
    request_id: str = Field(description="Identifier of this decision in the decision log.")
    model_versions: dict[str, str] = Field(description="Registry versions of the models used, by registered name.")
    profiles_as_of: str = Field(description="Cutoff of the profile snapshot the decision used.")


class BatchResponse(BaseModel):
    request_id: str = Field(description="Identifier of these decisions in the decision log.")
    results: list[Decision] = Field(description="One decision per requested customer, in request order.")
    model_versions: dict[str, str] = Field(description="Registry versions of the models used, by registered name.")
    profiles_as_of: str = Field(description="Cutoff of the profile snapshot the decisions used.")


class ChurnRisk(BaseModel):
    customer_id: str = Field(description="Loyalty member identifier.")
    known: bool = Field(description="Whether the customer has a profile.")
    churn_risk: float | None = Field(description="Predicted probability of churning; null when unknown.")


class ChurnResponse(BaseModel):
    results: list[ChurnRisk] = Field(description="One entry per requested customer, in request order.")
    model_version: str = Field(description="Registry version of the churn model.")
    profiles_as_of: str = Field(description="Cutoff of the profile snapshot.")


class ReloadResponse(BaseModel):
    status: Literal["reloaded"] = Field(description="The new models and profiles are serving.")
    model_versions: dict[str, str] = Field(description="Versions now serving.")
    profiles_as_of: str = Field(description="Cutoff of the profile snapshot now serving.")
    previous_model_versions: dict[str, str] = Field(description="Versions served before the reload.")
    previous_profiles_as_of: str = Field(description="Profile snapshot served before the reload.")
    seconds: float = Field(description="Time the reload took.")


class StatusResponse(BaseModel):
    ready: bool = Field(description="Whether models and profiles are loaded.")
    model_versions: dict[str, str] = Field(description="Versions serving.")
    profiles_as_of: str | None = Field(description="Cutoff of the profile snapshot serving.")
    customers: int = Field(description="Profiled customers.")
    offers: int = Field(description="Offers in the catalogue.")
    scorer: str = Field(description="precomputed (fast path) or frame (feature builder per request).")
    loaded_at: str | None = Field(description="When the serving state was built (UTC).")
    last_reload_error: str | None = Field(description="Why the last reload failed, if it did.")


class RecommendRequest(BaseModel):
    """Offers for one customer at one moment."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=64, description="Loyalty member identifier (unknown ids get cold-start offers).")
    k: int = Field(default=3, ge=1, le=MAX_K, description=f"How many offers at most (1..{MAX_K}); one per reward category.")
    context: RequestContext = Field(description="Where and when the offer will be shown.")
    offer_ids: list[str] | None = Field(
        default=None, max_length=200, description="Only consider these offers (unknown ids answer 404)."
    )


class RecommendBatchRequest(BaseModel):
    """Offers for many customers in the same context."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH, description=f"1..{MAX_BATCH} loyalty member identifiers.")
    k: int = Field(default=3, ge=1, le=MAX_K, description=f"How many offers at most per customer (1..{MAX_K}).")
    context: RequestContext = Field(description="Where and when the offers will be shown.")
    offer_ids: list[str] | None = Field(
        default=None, max_length=200, description="Only consider these offers (unknown ids answer 404)."
    )


class ChurnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH, description=f"1..{MAX_BATCH} loyalty member identifiers.")


class EmptyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
