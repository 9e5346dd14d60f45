"""The canonical input tables: the one place where table and column names, types and rules live.

Everything else (the generator, the Great Expectations suites, readers, features) derives from
``TABLES``. Types are logical; ``pandas_dtype`` maps them to the in-memory dtype used after
validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LogicalType = Literal["string", "int", "float", "bool", "timestamp", "string_list"]

TIERS: tuple[str, ...] = ("bronze", "silver", "gold", "platinum")
PURCHASE_CHANNELS: tuple[str, ...] = ("store", "app", "web", "drive_thru")
# Where an offer can be shown or sent: the purchase touchpoints plus outbound messaging.
OFFER_CHANNELS: tuple[str, ...] = ("app", "push", "email", "store", "web", "drive_thru")
OFFER_TYPES: tuple[str, ...] = (
    "discount",
    "bogo",
    "bonus_points",
    "free_item",
    "tier_boost",
    "informational",
)
CATEGORIES: tuple[str, ...] = (
    "coffee",
    "tea",
    "cold_drinks",
    "bakery",
    "breakfast",
    "lunch",
    "snacks",
    "merchandise",
)
REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central")


@dataclass(frozen=True)
class Column:
    """One column of a canonical table and the rules its values obey."""

    name: str
    type: LogicalType
    description: str
    nullable: bool = False
    allowed: tuple[str, ...] | None = None  # for string (each value) and string_list (each element)
    min: float | None = None
    max: float | None = None
    min_strict: bool = False  # True: value must be > min rather than >= min
    negative_only_when: str | None = None  # a bool column of the same table that allows a value < 0


@dataclass(frozen=True)
class ForeignKey:
    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    # Timestamp columns that must not lie after the run date.
    not_after_run_date: tuple[str, ...] = ()
    # (earlier, later) pairs of timestamp columns: earlier <= later where both are set.
    ordered_pairs: tuple[tuple[str, str], ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table '{self.name}' has no column '{name}'; columns are {self.column_names}")


_PANDAS_DTYPES: dict[str, str] = {
    "string": "str",
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "timestamp": "datetime64[ns]",
    "string_list": "object",
}


def pandas_dtype(column: Column) -> str:
    """The pandas dtype a validated column has (nullable ints become ``Int64``)."""
    if column.type == "int" and column.nullable:
        return "Int64"
    if column.type == "bool" and column.nullable:
        return "boolean"
    return _PANDAS_DTYPES[column.type]


CUSTOMERS = Table(
    name="customers",
    description="One row per loyalty member.",
    columns=(
        Column("customer_id", "string", "Loyalty member identifier."),
        Column("signup_date", "timestamp", "Date the member joined the program."),
        Column("tier", "string", "Current loyalty tier.", allowed=TIERS),
        Column("points_balance", "int", "Unspent loyalty points.", min=0),
        Column("region", "string", "Home region of the member.", allowed=REGIONS),
        Column("birth_year", "int", "Year of birth, when given.", nullable=True, min=1900, max=2015),
        Column("marketing_consent", "bool", "Whether the member accepts marketing offers."),
    ),
    primary_key=("customer_id",),
    not_after_run_date=("signup_date",),
)

TRANSACTIONS = Table(
    name="transactions",
    description="One row per receipt line: a visit (transaction_id) has one line per product.",
    columns=(
        Column("transaction_id", "string", "Receipt identifier; shared by the lines of one visit."),
        Column("customer_id", "string", "Member who made the purchase."),
        Column("ts", "timestamp", "Store-local time of the purchase."),
        Column("store_id", "string", "Store where the purchase happened."),
        Column("channel", "string", "Where the order was placed.", allowed=PURCHASE_CHANNELS),
        Column("product_id", "string", "Product bought."),
        Column("category", "string", "Product category.", allowed=CATEGORIES),
        Column("quantity", "int", "Units bought.", min=0, min_strict=True),
        Column(
            "amount", "float", "Line amount in currency units.", negative_only_when="is_refund"
        ),
        Column("is_refund", "bool", "Whether the line refunds an earlier purchase."),
    ),
    primary_key=("transaction_id", "product_id"),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    not_after_run_date=("ts",),
)

OFFERS = Table(
    name="offers",
    description="One row per reward offer the program can make.",
    columns=(
        Column("offer_id", "string", "Offer identifier."),
        Column("name", "string", "Human-readable offer name."),
        Column("reward_category", "string", "What the reward is about.", allowed=CATEGORIES),
        Column("offer_type", "string", "Kind of reward.", allowed=OFFER_TYPES),
        Column("value", "float", "Value of the reward to the customer, in currency units.", min=0),
        Column("cost_per_redemption", "float", "Cost to the business of one redemption.", min=0),
        Column("min_spend", "float", "Minimum basket spend to redeem.", min=0),
        Column("eligible_tiers", "string_list", "Tiers that may receive the offer.", allowed=TIERS),
        Column("channels", "string_list", "Channels the offer can be shown or sent on.", allowed=OFFER_CHANNELS),
        Column("valid_from", "timestamp", "First moment the offer can be redeemed."),
        Column("valid_to", "timestamp", "Last moment the offer can be redeemed."),
        Column("budget_redemptions", "int", "Redemption budget; empty means unlimited.", nullable=True, min=0),
    ),
    primary_key=("offer_id",),
    ordered_pairs=(("valid_from", "valid_to"),),
)

OFFER_EVENTS = Table(
    name="offer_events",
    description="One row per offer decision: sent, or held out as control.",
    columns=(
        Column("customer_id", "string", "Member the offer was for."),
        Column("offer_id", "string", "Offer sent or held out."),
        Column("sent_at", "timestamp", "When the offer was sent (or would have been, for control)."),
        Column("channel", "string", "Channel used to send the offer.", allowed=OFFER_CHANNELS),
        Column("viewed_at", "timestamp", "When the member first viewed the offer.", nullable=True),
        Column("redeemed_at", "timestamp", "When the member redeemed the offer.", nullable=True),
        Column("is_control", "bool", "Randomly held out: eligible but not sent."),
    ),
    primary_key=("customer_id", "offer_id", "sent_at"),
    foreign_keys=(
        ForeignKey("customer_id", "customers", "customer_id"),
        ForeignKey("offer_id", "offers", "offer_id"),
    ),
    not_after_run_date=("sent_at", "viewed_at", "redeemed_at"),
    ordered_pairs=(("sent_at", "viewed_at"), ("sent_at", "redeemed_at")),
)

FEEDBACK = Table(
    name="feedback",
    description="One row per NPS survey answer.",
    columns=(
        Column("customer_id", "string", "Member who answered."),
        Column("submitted_at", "timestamp", "When the answer was submitted."),
        Column("nps_score", "int", "Likelihood to recommend, 0 to 10.", min=0, max=10),
        Column("comment", "string", "Free-text comment, when given.", nullable=True),
    ),
    primary_key=("customer_id", "submitted_at"),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    not_after_run_date=("submitted_at",),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (CUSTOMERS, TRANSACTIONS, OFFERS, OFFER_EVENTS, FEEDBACK)
}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


def table(name: str) -> Table:
    """The declared table called ``name``; a clear error for an unknown name."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table '{name}'; expected one of {list(TABLES)}") from None


def empty_frame(name: str):
    """An empty DataFrame with the validated dtypes of table ``name``."""
    import pandas as pd

    t = table(name)
    return pd.DataFrame({c.name: pd.Series(dtype=pandas_dtype(c)) for c in t.columns})
