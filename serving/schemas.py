"""Request and response models of the offer API: the one source of the published OpenAPI schema.

Validation happens here, at the boundary: strict types (``k`` an integer, booleans are not numbers),
ids 1..64 characters, timestamps in a sane range and in store-local time (see ``RequestContext``).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    field_validator,
)

MAX_K = 10
MAX_BATCH = 1000
MAX_OFFER_IDS = 200
MAX_ID_LENGTH = 64
# Decisions are made for "now"-ish moments; outside this window a timestamp is a client bug (and
# pandas cannot represent years past 2262).
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(2199, 12, 31, 23, 59, 59)
STORE_TIMEZONE_ENV = "REWARDS_STORE_TIMEZONE"

# Any non-empty name: the program's offer channels are data (its program file), checked per request
# against the serving generation's vocabulary (400 naming context.channel).
Channel = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]
CustomerIdItem = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]
OfferIdItem = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]


def _whole_number(value):
    """A JSON integer (1 or 1.0, as JSON Schema counts them); never a string or a boolean."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("must be a whole number (a JSON integer, not a string or a boolean)")
    return int(value)


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class StoreTimezoneError(ValueError):
    """$REWARDS_STORE_TIMEZONE does not name a time zone."""


def store_timezone() -> ZoneInfo:
    """The stores' time zone from $REWARDS_STORE_TIMEZONE (IANA name; UTC when not set)."""
    name = os.environ.get(STORE_TIMEZONE_ENV, "").strip() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise StoreTimezoneError(
            f"${STORE_TIMEZONE_ENV} must be an IANA time zone such as 'Europe/Berlin', got {name!r}"
        ) from err


def store_local(value: datetime, tz: ZoneInfo) -> datetime:
    """``value`` as naive store-local time: without an offset it already is; with one it is converted to ``tz``.

    The range is checked on the clock time as sent, so the documented pattern (years 1970..2199) is exact."""
    if not EARLIEST <= value.replace(tzinfo=None) <= LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    if value.tzinfo is not None:
        value = value.astimezone(tz).replace(tzinfo=None)
    return value


TIMESTAMP_DOC = (
    "Moment of the decision, ISO 8601 / RFC 3339, years 1970..2199. Without an offset it is store-local time "
    f"(what the data uses); with an offset (Z, +02:00) it is converted to the stores' time zone, ${STORE_TIMEZONE_ENV} "
    "(IANA name, UTC when not set)."
)
Timestamp = Annotated[datetime, WithJsonSchema({
    "type": "string", "format": "date-time", "pattern": r"^(19[7-9][0-9]|2[01][0-9][0-9])-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-5][0-9]",
    "description": TIMESTAMP_DOC,
})]


class RequestContext(BaseModel):
    """Where and when the offer will be shown."""

    model_config = ConfigDict(extra="forbid")

    timestamp: Timestamp = Field(description=TIMESTAMP_DOC)
    channel: Channel = Field(description="Touchpoint the offer is shown or sent on: one of the program's offer "
                             "channels (its program file's `offer_channels`); another name is answered 400.")
    store_id: StrictStr | None = Field(default=None, max_length=MAX_ID_LENGTH, description="Store the customer is at, when known.")

    @field_validator("timestamp", mode="before")
    @classmethod
    def _a_string(cls, value):
        if not isinstance(value, (str, datetime)):
            raise ValueError("must be an ISO 8601 date-time string, e.g. 2026-06-30T08:15:00")
        return value

    @field_validator("timestamp")
    @classmethod
    def _store_local_in_range(cls, value: datetime) -> datetime:
        return store_local(value, store_timezone())


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable reason, e.g. missing, int_type, json_invalid, unknown_offer, body_too_large.")
    message: str = Field(description="What was expected, what was found, what to do.")
    field: str | None = Field(description="The request field at fault (dotted path, e.g. context.timestamp), or null.")


class ErrorResponse(BaseModel):
    """Every 4xx (and 503) answer of the API has this shape."""

    error: ErrorDetail


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


OBJECTIVE_DESCRIPTION = ("What ranked the offers: expected_value (P(redeem) x value) or uplift (the incremental value "
                         "estimated by the offer-uplift model, whose version is in model_versions).")


class RecommendResponse(Decision):
    request_id: str = Field(description="Identifier of this decision in the decision log.")
    model_versions: dict[str, str] = Field(description="Registry versions of the models used, by registered name.")
    objective: str = Field(description=OBJECTIVE_DESCRIPTION)
    profiles_as_of: str = Field(description="Cutoff of the profile snapshot the decision used.")


class BatchResponse(BaseModel):
    request_id: str = Field(description="Identifier of these decisions in the decision log.")
    results: list[Decision] = Field(
        description="One decision per requested customer, in request order; a repeated id is decided once and "
                    "its decision repeated at each of its positions."
    )
    model_versions: dict[str, str] = Field(description="Registry versions of the models used, by registered name.")
    objective: str = Field(description=OBJECTIVE_DESCRIPTION)
    profiles_as_of: str = Field(description="Cutoff of the profile snapshot the decisions used.")


class ChurnRisk(BaseModel):
    customer_id: str = Field(description="Loyalty member identifier.")
    known: bool = Field(description="Whether the customer has a profile.")
    churn_risk: float | None = Field(description="Predicted probability of churning; null when unknown.")


class ChurnResponse(BaseModel):
    results: list[ChurnRisk] = Field(description="One entry per requested customer, in request order.")
    model_version: str = Field(description="Registry version of the churn model.")
    profiles_as_of: str = Field(description="Cutoff of the profile snapshot.")


class WorkerStatus(BaseModel):
    worker: int = Field(description="Worker index (1..workers).")
    pid: int = Field(description="Process id of the worker.")
    generation: int = Field(description="Serving generation: 0 at start-up, then the number of the reload that installed it "
                                        "(numbers grow with every attempt; a refused attempt's number is never served).")
    profiles_as_of: str | None = Field(description="Cutoff of the profile snapshot this worker serves.")
    model_versions: dict[str, str] = Field(description="Versions this worker serves.")
    customers: int = Field(description="Profiled customers this worker serves.")
    loaded_at: str | None = Field(description="When this worker's serving state was built (UTC).")
    ready: bool = Field(False, description="Whether this worker serves a state (warmed up before it serves); "
                                           "/readyz says ready once every worker does.")
    warmup: str | None = Field(None, description="The warm-up of the state this worker serves (decisions, time).")
    updated_at: str = Field(description="When this worker last reported (UTC).")


class ReloadResponse(BaseModel):
    status: Literal["reloaded"] = Field(description="The new models and profiles are serving in every worker.")
    generation: int = Field(description="The generation now serving in every worker.")
    forced: bool = Field(description="Whether the sanity checks against the previous state were skipped (force).")
    rebuilt: bool = Field(description="False when nothing the state is built from had changed (champion versions, "
                                      "profile snapshot, validated tables, settings): the state was kept, not rebuilt.")
    model_versions: dict[str, str] = Field(description="Versions now serving.")
    profiles_as_of: str = Field(description="Cutoff of the profile snapshot now serving.")
    previous_model_versions: dict[str, str] = Field(description="Versions served before the reload.")
    previous_profiles_as_of: str = Field(description="Profile snapshot served before the reload.")
    seconds: float = Field(description="Time the reload took (all workers loaded, checked and switched).")


class StatusResponse(BaseModel):
    ready: bool = Field(description="Whether models and profiles are loaded.")
    generation: int | None = Field(description="Serving generation of the worker that answered; null when not ready.")
    model_versions: dict[str, str] = Field(description="Versions serving.")
    profiles_as_of: str | None = Field(description="Cutoff of the profile snapshot serving.")
    customers: int = Field(description="Profiled customers.")
    offers: int = Field(description="Offers in the catalogue.")
    scorer: str = Field(description="precomputed (fast path) or frame (feature builder per request).")
    loaded_at: str | None = Field(description="When the serving state was built (UTC).")
    last_reload_error: str | None = Field(description="Why the last reload failed, if it did.")
    workers: list[WorkerStatus] = Field(description="What every worker of this server serves (one entry per worker).")


class RecommendRequest(BaseModel):
    """Offers for one customer at one moment."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerIdItem = Field(description="Loyalty member identifier, 1..64 characters (unknown ids get cold-start offers).")
    k: WholeNumber = Field(default=3, ge=1, le=MAX_K, description=f"How many offers at most (an integer 1..{MAX_K}); one per reward category.")
    context: RequestContext = Field(description="Where and when the offer will be shown.")
    offer_ids: list[OfferIdItem] | None = Field(
        default=None, max_length=MAX_OFFER_IDS, description="Only consider these offers (unknown ids answer 404)."
    )


class RecommendBatchRequest(BaseModel):
    """Offers for many customers in the same context; a repeated id is decided once."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[CustomerIdItem] = Field(
        min_length=1, max_length=MAX_BATCH,
        description=f"1..{MAX_BATCH} loyalty member identifiers of 1..{MAX_ID_LENGTH} characters; duplicates are "
                    "answered once per distinct id (the decision is repeated at each position).",
    )
    k: WholeNumber = Field(default=3, ge=1, le=MAX_K, description=f"How many offers at most per customer (an integer 1..{MAX_K}).")
    context: RequestContext = Field(description="Where and when the offers will be shown.")
    offer_ids: list[OfferIdItem] | None = Field(
        default=None, max_length=MAX_OFFER_IDS, description="Only consider these offers (unknown ids answer 404)."
    )


class ChurnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ids: list[CustomerIdItem] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"1..{MAX_BATCH} loyalty member identifiers of 1..{MAX_ID_LENGTH} characters."
    )


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: StrictBool = Field(
        default=False,
        description="Skip the sanity checks against the serving state (customer and offer counts, feature manifest).",
    )


class EmptyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
