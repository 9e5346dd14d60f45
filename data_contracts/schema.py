"""The canonical input tables: the one place where table and column names, types and rules live.

Everything else (the generator, the Great Expectations suites, readers, features) derives from
these declarations. Types are logical; ``pandas_dtype`` maps them to the in-memory dtype used after
validation. A column's allowed values are not listed here: ``Column.vocabulary`` names a vocabulary
of the program file (:mod:`data_contracts.program`), so each program brings its own.

Only a purchase log is required (``transactions`` with ``customer_id``, ``ts``, ``amount``): every
other column and table is optional, and ``Column.default`` says what validation fills in when it
is absent (:mod:`data_contracts.defaults`), so validated tables always hold every column.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from data_contracts.program import HIERARCHY, coffee_program

if TYPE_CHECKING:
    from data_contracts.program import Program

LogicalType = Literal["string", "int", "float", "bool", "timestamp", "string_list"]

# The built-in sample program's vocabularies, for code that does not read the program file yet.
_COFFEE = coffee_program()
TIERS: tuple[str, ...] = _COFFEE.allowed("tiers")
PURCHASE_CHANNELS: tuple[str, ...] = _COFFEE.allowed("purchase_channels")
OFFER_CHANNELS: tuple[str, ...] = _COFFEE.allowed("offer_channels")
OFFER_TYPES: tuple[str, ...] = _COFFEE.allowed("offer_types")
CATEGORIES: tuple[str, ...] = _COFFEE.allowed(HIERARCHY)
REGIONS: tuple[str, ...] = _COFFEE.allowed("regions")

UNKNOWN = "unknown"  # what an absent text column holds after validation


@dataclass(frozen=True)
class Column:
    """One column of a canonical table and the rules its values obey."""

    name: str
    type: LogicalType
    description: str
    nullable: bool = False
    vocabulary: str | None = None  # program key whose values it holds (string: each value; string_list: each element)
    required: bool = True  # False: may be absent from the file; validation fills ``default``
    default: str | None = None  # what an absent optional column holds, in words (the docs show it)
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
    required: bool = False  # False: the file may be absent (``when_absent`` says what validation does)
    when_absent: str = "validated as an empty table"
    foreign_keys: tuple[ForeignKey, ...] = ()
    # Timestamp columns that must not lie after the run date.
    not_after_run_date: tuple[str, ...] = ()
    # (earlier, later) pairs of timestamp columns: earlier <= later where both are set.
    ordered_pairs: tuple[tuple[str, str], ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

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


def _optional(name: str, type_: LogicalType, description: str, default: str, **kw) -> Column:
    return Column(name, type_, description, required=False, default=default, **kw)


CUSTOMERS = Table(
    name="customers",
    description="One row per loyalty member.",
    columns=(
        Column("customer_id", "string", "Loyalty member identifier."),
        _optional("signup_date", "timestamp", "Date the member joined the program.", "the member's first purchase"),
        _optional("tier", "string", "Current loyalty tier.", "the program's lowest tier (`none` without tiers)",
                  vocabulary="tiers"),
        _optional("points_balance", "int", "Unspent loyalty points.", "0", min=0),
        _optional("region", "string", "Home region of the member.", f"`{UNKNOWN}`", vocabulary="regions"),
        _optional("birth_year", "int", "Year of birth, when given.", "null", nullable=True, min=1900, max=2015),
        _optional("marketing_consent", "bool", "Whether the member accepts marketing offers.",
                  "the program's `customers.marketing_consent`"),
    ),
    primary_key=("customer_id",),
    not_after_run_date=("signup_date",),
    when_absent="derived from transactions: one member per customer_id, defaults for the rest",
)

TRANSACTIONS = Table(
    name="transactions",
    description="One row per receipt line: a visit (transaction_id) has one line per product.",
    columns=(
        _optional("transaction_id", "string", "Receipt identifier; shared by the lines of one visit.",
                  "`customer_id@ts` (one visit per customer and timestamp)"),
        Column("customer_id", "string", "Member who made the purchase."),
        Column("ts", "timestamp", "Store-local time of the purchase (a UTC offset, if given, is ignored)."),
        _optional("store_id", "string", "Store where the purchase happened.", f"`{UNKNOWN}`"),
        _optional("channel", "string", "Where the order was placed.", f"`{UNKNOWN}`", vocabulary="purchase_channels"),
        _optional("product_id", "string", "Product bought.", f"the line's category, else `{UNKNOWN}`"),
        _optional("category", "string", "Product category: a node of the product hierarchy.",
                  f"the product's finest hierarchy level in `products`, else `{UNKNOWN}`", vocabulary=HIERARCHY),
        _optional("quantity", "int", "Units bought.", "1", min=0, min_strict=True),
        Column(
            "amount", "float", "Line amount in currency units.", negative_only_when="is_refund"
        ),
        _optional("is_refund", "bool", "Whether the line refunds an earlier purchase.", "`amount < 0`"),
    ),
    primary_key=("transaction_id", "product_id"),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    not_after_run_date=("ts",),
    required=True,
    when_absent="required: validation stops",
)

OFFERS = Table(
    name="offers",
    description="One row per reward offer the program can make.",
    columns=(
        Column("offer_id", "string", "Offer identifier."),
        _optional("name", "string", "Human-readable offer name.", "the offer_id"),
        _optional("reward_category", "string", "What the reward is about: a node of the product hierarchy.",
                  f"`{UNKNOWN}`", vocabulary=HIERARCHY),
        _optional("offer_type", "string", "Kind of reward.", f"`{UNKNOWN}`", vocabulary="offer_types"),
        _optional("value", "float", "Value of the reward to the customer, in currency units.", "0", min=0),
        _optional("cost_per_redemption", "float", "Cost to the business of one redemption.", "0", min=0),
        _optional("min_spend", "float", "Minimum basket spend to redeem.", "0", min=0),
        _optional("eligible_tiers", "string_list", "Tiers that may receive the offer.",
                  "every listed tier (none without tiers)", vocabulary="tiers"),
        _optional("channels", "string_list", "Channels the offer can be shown or sent on.",
                  "every listed offer channel", vocabulary="offer_channels"),
        Column("valid_from", "timestamp", "First moment the offer can be redeemed."),
        Column("valid_to", "timestamp", "Last moment the offer can be redeemed."),
        _optional("budget_redemptions", "int", "Redemption budget; empty means unlimited.", "null (unlimited)",
                  nullable=True, min=0),
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
        _optional("channel", "string", "Channel used to send the offer.", f"`{UNKNOWN}`", vocabulary="offer_channels"),
        _optional("viewed_at", "timestamp", "When the member first viewed the offer.", "null", nullable=True),
        Column("redeemed_at", "timestamp", "When the member redeemed the offer.", nullable=True),
        _optional("is_control", "bool", "Randomly held out: eligible but not sent.", "false"),
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
        _optional("comment", "string", "Free-text comment, when given.", "null", nullable=True),
    ),
    primary_key=("customer_id", "submitted_at"),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    not_after_run_date=("submitted_at",),
)

# One column per hierarchy level of the program (see ``products_table``); the built-in sample program: ``category``.
PRODUCTS = Table(
    name="products",
    description="One row per product, with its node at every level of the program's hierarchy.",
    columns=(Column("product_id", "string", "Product identifier."),),
    primary_key=("product_id",),
)

OFFER_PRODUCTS = Table(
    name="offer_products",
    description="Which products an offer covers (an offer without rows here covers its reward_category).",
    columns=(
        Column("offer_id", "string", "Offer."),
        Column("product_id", "string", "A product the offer covers."),
    ),
    primary_key=("offer_id", "product_id"),
    foreign_keys=(
        ForeignKey("offer_id", "offers", "offer_id"),
        ForeignKey("product_id", "products", "product_id"),
    ),
)

# The tables every validated folder holds and downstream steps read today.
TABLES: dict[str, Table] = {
    t.name: t for t in (CUSTOMERS, TRANSACTIONS, OFFERS, OFFER_EVENTS, FEEDBACK)
}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
# Tables about the product catalogue, validated (and written) beside them.
CATALOGUE_TABLES: tuple[str, ...] = (PRODUCTS.name, OFFER_PRODUCTS.name)


def products_table(levels: list[str] | tuple[str, ...]) -> Table:
    """The products table of a program whose hierarchy has ``levels`` (coarsest first)."""
    level_columns = tuple(
        Column(level, "string", f"The product's node at hierarchy level '{level}'.", vocabulary=f"{HIERARCHY}.{level}")
        for level in levels
    )
    return replace(PRODUCTS, columns=PRODUCTS.columns + level_columns)


def tables_for(program: Program) -> dict[str, Table]:
    """Every table of ``program``: the five above, its products table and offer_products."""
    return {**TABLES, PRODUCTS.name: products_table(program.hierarchy.levels), OFFER_PRODUCTS.name: OFFER_PRODUCTS}


def table(name: str) -> Table:
    """The declared table called ``name``; a clear error for an unknown name."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table '{name}'; expected one of {list(TABLES)}") from None


def empty_frame(name: str | Table):
    """An empty DataFrame with the validated dtypes of table ``name`` (or of the Table given)."""
    import pandas as pd

    t = name if isinstance(name, Table) else table(name)
    return pd.DataFrame({c.name: pd.Series(dtype=pandas_dtype(c)) for c in t.columns})
