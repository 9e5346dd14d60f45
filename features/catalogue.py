"""The feature catalogue: every profile feature declared once, in the order profiles carry them.

A declaration says what a feature means (description), how it is stored (dtype), which slice of
history it looks at (window, always relative to ``as_of`` and strictly before it) and which family
computes it. Each family has one function (``features.profiles.FAMILY_FUNCTIONS``) that returns
exactly its declared columns; tests hold the functions to the declarations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from data_contracts.program import coffee_program, program_digest

if TYPE_CHECKING:
    from data_contracts.program import Program

Dtype = Literal["float64", "int64"]

# Windows, as written in the declarations.
W30, W90, W365 = "30d", "90d", "365d"
ALL = "all history"
SNAPSHOT = "current value (not point-in-time)"

# The program a catalogue is made from when none is given: the built-in default program file.
def default_program() -> Program:
    """The built-in default program (``data_contracts.program.coffee_program``)."""
    return coffee_program()


Dayparts = tuple[tuple[str, float, float], ...]  # (name, start_hour, end_hour), [start, end), in order

# Hour-of-day boundaries of the default program's dayparts: [start, end).
DAYPARTS: Dayparts = default_program().daypart_edges
DAYPART_NAMES: tuple[str, ...] = tuple(name for name, _, _ in DAYPARTS)


def _starts(dayparts: Dayparts | None) -> np.ndarray:
    return np.array([start for _, start, _ in (DAYPARTS if dayparts is None else dayparts)[1:]])


def daypart_index(hours, dayparts: Dayparts | None = None) -> np.ndarray:
    """Position in ``dayparts`` (default DAYPARTS) of each fractional hour of day: the one hour-to-daypart rule."""
    return np.searchsorted(_starts(dayparts), np.asarray(hours, dtype=float), side="right")


def daypart_names(hours, dayparts: Dayparts | None = None) -> np.ndarray:
    """The daypart name of each fractional hour of day (None where the hour is missing)."""
    hours = np.asarray(hours, dtype=float)
    names = [name for name, _, _ in (DAYPARTS if dayparts is None else dayparts)]
    out = np.asarray(names, dtype=object)[daypart_index(hours, dayparts)]
    out[np.isnan(hours)] = None
    return out


def _clock(hour: float) -> str:
    return f"{int(hour):d}:{round(hour % 1 * 60):02d}"


def daypart_hours_text(start: float, end: float) -> str:
    """A daypart's hours in words: 'before 9:00', 'between 9:00 and 11:00', 'after 17:00'."""
    if start <= 0:
        return f"before {_clock(end)}"
    if end >= 24:
        return f"after {_clock(start)}"
    return f"between {_clock(start)} and {_clock(end)}"


def daypart(hour: float, dayparts: Dayparts | None = None) -> str:
    """The daypart name of one fractional hour of day."""
    parts = DAYPARTS if dayparts is None else dayparts
    return parts[int(np.searchsorted(_starts(parts), hour, side="right"))][0]


FAMILIES: tuple[str, ...] = ("recency", "habits", "affinity", "rhythm", "loyalty", "offer_history", "gaps")


@dataclass(frozen=True)
class Feature:
    """One declared profile feature."""

    name: str
    description: str
    dtype: Dtype
    window: str
    family: str
    # What the value is when it cannot be computed (no visits, no offers, ...).
    missing: str = "NaN"

    @property
    def point_in_time(self) -> bool:
        """False for values read from the current customers table (no history): they can leak into past snapshots."""
        return self.window != SNAPSHOT


def _f(name: str, description: str, window: str, family: str, dtype: Dtype = "float64", missing: str = "NaN"):
    return Feature(name, description, dtype, window, family, missing)


def _count(name: str, description: str, window: str, family: str) -> Feature:
    return Feature(name, description, "int64", window, family, "0")


def _recency() -> list[Feature]:
    fam = "recency"
    out = [
        _f("days_since_last_visit", "Days from the last visit to as_of (fractional).", ALL, fam),
    ]
    for w, days in ((W30, 30), (W90, 90), (W365, 365)):
        out.append(_count(f"visits_{days}d", f"Visits (distinct receipts with a purchase) in the last {days} days.", w, fam))
    for w, days in ((W30, 30), (W90, 90), (W365, 365)):
        out.append(
            _f(f"spend_{days}d", f"Net spend in the last {days} days (refund lines subtract).", w, fam, missing="0")
        )
    out += [
        _f("avg_basket_365d", "Net spend per visit over the last 365 days.", W365, fam),
        _count("distinct_visit_days_365d", "Calendar days with at least one visit in the last 365 days.", W365, fam),
        _f("tenure_days", "Days from signup_date to as_of.", "since signup", fam, missing="-"),
    ]
    return out


def _habits(program: Program) -> list[Feature]:
    fam = "habits"
    out = []
    for part, start, end in program.daypart_edges:
        out.append(
            _f(f"visit_share_{part}", f"Share of visits with hour in [{start:g}, {end:g}).", W365, fam)
        )
    out += [
        _f("visit_share_before_11", "Share of visits before 11:00 (the morning).", W365, fam),
        _f("weekend_visit_share", "Share of visits on Saturday or Sunday (weekday share is 1 minus this).", W365, fam),
        _f("visit_hour_mean", "Typical visit hour: circular mean of the hour of day, in [0, 24).", W365, fam),
        _f(
            "visit_hour_spread",
            "Spread of visit hours: circular standard deviation in hours (0 when always the same time).",
            W365,
            fam,
        ),
    ]
    channels = program.allowed("purchase_channels")
    if channels is None:  # an open vocabulary: no column per value, only what does not grow with it
        out.append(_f("top_channel_visit_share", "Share of visits through the customer's most used channel.", W365, fam))
    for ch in channels or ():
        out.append(_f(f"channel_share_{ch}", f"Share of visits through channel '{ch}'.", W365, fam))
    out += [
        _f("top_store_visit_share", "Share of visits at the customer's most visited store.", W365, fam),
        _count("distinct_stores_365d", "Distinct stores visited.", W365, fam),
    ]
    return out


def attach_column_prefix(target: str) -> str:
    """How the attach-rate columns of the program's [habits] pairs with this target node begin."""
    return f"attach_{target}_given_"


def attach_columns_by_target(columns, targets) -> dict[str, str]:
    """Per target node (of ``targets``): the first attach-rate column among ``columns`` (a profile's, in
    catalogue order, so the program's first declared pair with that target); nodes without one are left out."""
    columns = [str(c) for c in columns if str(c).startswith("attach_")]
    out: dict[str, str] = {}
    for target in dict.fromkeys(str(t) for t in targets):
        prefix = attach_column_prefix(target)
        found = next((c for c in columns if c.startswith(prefix)), None)
        if found is not None:
            out[target] = found
    return out


def _affinity(program: Program) -> list[Feature]:
    fam = "affinity"
    out = []
    # Spend by category is kept long (features.node_affinity, every level of the program's hierarchy);
    # the profile keeps only summaries whose width does not depend on the taxonomy.
    out += [
        _f("top_category_spend_share_365d", "Share of purchase spend (refunds excluded) on the customer's top "
           "category.", W365, fam),
        _f("category_spend_entropy_365d", "Entropy (nats) of purchase spend over categories: 0 when one category "
           "takes it all.", W365, fam),
    ]
    # Visit shares and attach rates of the nodes the program file names under [habits] (none by default):
    # habit tags read them; the offer model reads the long per-node features, and the attach rate of the
    # offer's own node (``attach_columns_by_target``).
    for cat in program.habits.visit_share_nodes:
        out.append(_f(f"visit_share_{cat}", f"Share of visits whose basket holds '{cat}'.", W365, fam))
    for target, given in program.habits.attach_pairs:
        out.append(
            _f(
                f"{attach_column_prefix(target)}{given}",
                f"P('{target}' in basket | '{given}' in basket); NaN without a '{given}' visit.",
                W365,
                fam,
            )
        )
    out += [
        _count("distinct_products_365d", "Distinct products bought.", W365, fam),
        _count("distinct_categories_365d", "Distinct categories bought.", W365, fam),
    ]
    return out


def _rhythm() -> list[Feature]:
    fam = "rhythm"
    return [
        _f("gap_days_mean", "Mean days between consecutive visit days; NaN with fewer than 2 visit days.", W365, fam),
        _f(
            "gap_days_std",
            "Population standard deviation of days between visit days; NaN with fewer than 2 gaps.",
            W365,
            fam,
        ),
        _f(
            "visit_trend_30_vs_prev_60",
            "Visits per day in the last 30 days over visits per day in the 60 days before; NaN when the "
            "earlier 60 days have no visit.",
            W90,
            fam,
        ),
        _f(
            "spend_trend_30_vs_prev_60",
            "Net spend per day in the last 30 days over the 60 days before; NaN when the earlier spend is <= 0.",
            W90,
            fam,
        ),
        _f(
            "overdue_ratio",
            "days_since_last_visit / gap_days_mean: above 1 means later than usual.",
            W365,
            fam,
        ),
    ]


def _loyalty(program: Program) -> list[Feature]:
    fam = "loyalty"
    tiers = program.ordered_tiers
    out = []
    if tiers:  # an order only listed tiers have
        ordinals = ", ".join(f"{t} {i}" for i, t in enumerate(tiers))
        out.append(Feature("tier_ordinal", f"Loyalty tier as an ordinal: {ordinals}.", "int64", SNAPSHOT, fam, "-"))
    out.append(Feature("points_balance", "Unspent loyalty points.", "int64", SNAPSHOT, fam, "-"))
    if program.tiers.points:
        out.append(_f(
            "points_to_next_tier",
            "Points still needed to reach the next tier's points (the program file's `tiers.points`); "
            "NaN at the top tier.",
            SNAPSHOT,
            fam,
        ))
    return out + [
        _count("feedback_count", "NPS answers given.", ALL, fam),
        _f("last_nps_score", "Most recent NPS score (0-10).", ALL, fam),
        _f("mean_nps_score", "Mean NPS score over all answers.", ALL, fam),
        _f(
            "last_nps_group",
            "Most recent NPS group as a number: detractor (0-6) -1, passive (7-8) 0, promoter (9-10) 1.",
            ALL,
            fam,
        ),
        _f("days_since_last_feedback", "Days from the most recent NPS answer to as_of.", ALL, fam),
    ]


def _offer_block(prefix: str, what: str, fam: str) -> list[Feature]:
    return [
        _count(f"{prefix}_sent", f"Offers sent{what} (control hold-outs are not sent).", ALL, fam),
        _count(f"{prefix}_viewed", f"Offers sent{what} and viewed before as_of.", ALL, fam),
        _count(f"{prefix}_redeemed", f"Offers sent{what} and redeemed before as_of.", ALL, fam),
        _f(f"{prefix}_view_rate", f"Viewed / sent{what}; NaN when none sent.", ALL, fam),
        _f(f"{prefix}_redeem_rate", f"Redeemed / sent{what}; NaN when none sent.", ALL, fam),
    ]


def _offer_history(program: Program) -> list[Feature]:
    fam = "offer_history"
    out = _offer_block("offers", "", fam)
    for t in program.allowed("offer_types") or ():  # listed offer types; an open vocabulary has no per-type block
        out += _offer_block(f"offers_{t}", f" of type '{t}'", fam)
    # per reward category: long (features.catalogue.NODE_OFFER_FEATURES, joined at the offer's node)
    out += [
        _f("days_since_last_offer", "Days from the most recent sent offer to as_of.", ALL, fam),
        _f("days_since_last_redemption", "Days from the most recent redemption to as_of.", ALL, fam),
    ]
    return out


def _gaps() -> list[Feature]:
    fam = "gaps"
    return [
        _count("repeat_visit_days", "Visit days after the first one, all history (BG/NBD frequency).", ALL, fam),
        _f("first_to_last_visit_days", "Days from the first to the last visit day (BG/NBD recency); 0 with at "
           "most one visit day.", ALL, fam, missing="0"),
        _f("days_since_first_visit", "Days from the first visit day to as_of (BG/NBD T); from signup_date when "
           "there is no visit.", ALL, fam, missing="days since signup"),
        _f("gap_days_mean_all", "Mean days between consecutive visit days over all history; NaN with fewer than "
           "2 visit days.", ALL, fam),
        _f("gap_days_std_all", "Population standard deviation of the gaps between visit days over all history; "
           "NaN with fewer than 2 gaps.", ALL, fam),
        _f("gap_days_cv_all", "gap_days_std_all / gap_days_mean_all: 0 for a clockwork customer, above 1 for a "
           "bursty one.", ALL, fam),
        _f("last_gap_days", "Days between the last two visit days; NaN with fewer than 2 visit days.", ALL, fam),
        _f("overdue_vs_usual_gap", "Days from the last visit day to as_of over gap_days_mean_all: above 1 means "
           "later than usual.", ALL, fam),
        _f("overdue_gap_z", "(days from the last visit day to as_of - gap_days_mean_all) / gap_days_std_all; NaN "
           "when the gaps do not vary or are fewer than 2.", ALL, fam),
    ]


@dataclass(frozen=True)
class Catalogue:
    """The profile features one program's profiles carry, in order (``catalogue(program)`` makes it)."""

    features: tuple[Feature, ...]
    program_digest: str

    @property
    def by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}

    def names(self, point_in_time_only: bool = False) -> list[str]:
        return [f.name for f in self.features if f.point_in_time or not point_in_time_only]

    def family(self, family: str) -> list[Feature]:
        if family not in FAMILIES:
            raise KeyError(f"unknown feature family '{family}'; expected one of {list(FAMILIES)}")
        return [f for f in self.features if f.family == family]

    def digest(self) -> str:
        text = "\n".join(f"{f.name}:{f.dtype}" for f in self.features)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def catalogue(program: Program | None = None) -> Catalogue:
    """The catalogue of ``program`` (default: the built-in default program): its dayparts, listed
    purchase channels, ordered tiers and tier points name the columns that depend on a vocabulary."""
    program = default_program() if program is None else program
    digest = program_digest(program)
    if digest not in _CATALOGUES:  # cached by the program's digest (a program is not hashable)
        features = _recency() + _habits(program) + _affinity(program) + _rhythm() + _loyalty(program) + _offer_history(program) + _gaps()
        names = [f.name for f in features]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"program '{program.name}' ({program.source}): its vocabulary names features {twice} twice (a daypart "
                "or channel called like another feature's suffix); rename the daypart or channel in the program file"
            )
        _CATALOGUES[digest] = Catalogue(tuple(features), digest)
    return _CATALOGUES[digest]


_CATALOGUES: dict[str, Catalogue] = {}


FEATURES: tuple[Feature, ...] = catalogue().features  # the default program's catalogue
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


# Long families: not profile columns (one row per customer would need one column per node), but
# rows keyed by (customer, level, node) and by (customer, offer); the offer model joins them.
NODE_FEATURES: tuple[Feature, ...] = (
    _f("spend_share_365d", "Share of the customer's purchase spend (refunds excluded) on the node.", W365,
       "node_affinity", missing="0 (NaN without purchases)"),
    _f("visit_share_365d", "Share of the customer's visits whose basket holds the node.", W365, "node_affinity",
       missing="0 (NaN without visits)"),
    _f("days_since_last_purchase", "Days from the last visit with the node to as_of.", ALL, "node_affinity"),
    _count("visits_30d", "Visits with the node in the last 30 days.", W30, "node_affinity"),
    _count("visits_90d", "Visits with the node in the last 90 days.", W90, "node_affinity"),
    _count("visits_180d", "Visits with the node in the last 180 days.", "180d", "node_affinity"),
)
OFFER_PRODUCT_FEATURES: tuple[Feature, ...] = (
    _count("offer_product_purchases", "Purchase lines of the products the offer covers.", ALL, "offer_products"),
    _count("offer_product_purchases_90d", "Purchase lines of the offer's products in the last 90 days.", W90,
           "offer_products"),
    _f("days_since_offer_product_purchase", "Days from the last purchase of one of the offer's products to as_of.",
       ALL, "offer_products"),
    _f("offer_products_bought_share", "Share of the offer's products the customer ever bought; NaN when the "
       "offer covers no product.", ALL, "offer_products", missing="0"),
)
# Per (customer, reward node): the offers sent on the offer's own reward category (its node), kept long
# instead of one profile block per category; the offer model reads them at the offer's node.
NODE_OFFER_FEATURES: tuple[Feature, ...] = (
    _count("cust_sent_reward_category", "Offers sent (not control) on the offer's reward category before as_of.",
           ALL, "node_offer_history"),
    _count("cust_redeemed_reward_category", "Of those, redeemed before as_of.", ALL, "node_offer_history"),
    _f("cust_redeem_rate_reward_category", "Redeemed / sent on the offer's reward category; NaN when none sent.",
       ALL, "node_offer_history"),
    _f("cust_redeem_rate_reward_category_shrunk", "(redeemed + 3 x the customer's overall redeem rate) / (sent + 3): "
       "stable with few sends; NaN when the customer was never sent an offer.", ALL, "node_offer_history"),
)
LONG_FAMILIES: dict[str, tuple[Feature, ...]] = {"node_affinity": NODE_FEATURES, "offer_products": OFFER_PRODUCT_FEATURES,
                                                 "node_offer_history": NODE_OFFER_FEATURES}


def node_feature_names() -> list[str]:
    """The columns of ``features.node_affinity.node_affinity_features`` after customer_id, level, node."""
    return [f.name for f in NODE_FEATURES]


def node_offer_feature_names() -> list[str]:
    """The offer-history columns per (customer, reward node) the offer model joins at the offer's node."""
    return [f.name for f in NODE_OFFER_FEATURES]


def offer_product_feature_names() -> list[str]:
    """The columns of ``features.offer_products.offer_product_features`` after customer_id, offer_id."""
    return [f.name for f in OFFER_PRODUCT_FEATURES]


def feature_names(point_in_time_only: bool = False, program: Program | None = None) -> list[str]:
    """Model feature names in catalogue order (a profile's column order after customer_id), of
    ``program``'s catalogue (default: the built-in default program).

    ``point_in_time_only`` leaves out the features read from the current customers table (tier,
    points), whose past values are unknown: use it for models trained on past snapshots.
    """
    return catalogue(program).names(point_in_time_only)


def family_features(family: str, program: Program | None = None) -> list[Feature]:
    """The declarations of one family, in catalogue order."""
    return catalogue(program).family(family)


def feature_set_digest(program: Program | None = None) -> str:
    """Short sha256 of the declared names and dtypes: changes whenever the model-facing contract does."""
    return catalogue(program).digest()


def long_families_markdown() -> list[str]:
    """The docs section of the long families (docs/features.md, rendered by pipelines.build_features)."""
    lines = [
        "## Taxonomy features (long: not profile columns)",
        "",
        "Per customer and hierarchy node, at every level of the program's hierarchy (the products table",
        "gives each product's node per level; without one, the transactions' `category` is the one level),",
        "one row per (customer_id, level, node) the customer bought from, strictly before `as_of`; and per",
        "(customer, offer), the customer's history with exactly the products the offer covers (its",
        "`offer_products` rows, or every product under its `reward_category` node). Their width does not",
        "grow with the taxonomy. The offer model joins them per row (`models.offer_taxonomy`): the offer's",
        "node at the finest three levels (`node_d0_*` its finest node, `node_d1_*` the level above, ...;",
        "several nodes at one level sum, recency takes the latest) and the offer-product columns, so an",
        "offer it never saw is scored from its nodes and products on day one.",
        "`offer_response_training_set(tables, taxonomy=True)` and `offer_features(..., tables=tables)` add them.",
        "",
    ]
    funcs = {"node_affinity": "features.node_affinity.node_affinity_features",
             "offer_products": "features.offer_products.offer_product_features",
             "node_offer_history": "models.offer_taxonomy.TaxonomyLookup (from offer_events and the offers' reward_category)"}
    for family, feats in LONG_FAMILIES.items():
        lines += [f"### {family} ({len(feats)} features)", "", f"Computed by `{funcs[family]}`.", "",
                  "| feature | dtype | window | missing | description |", "|---|---|---|---|---|"]
        lines += [f"| `{f.name}` | {f.dtype} | {f.window} | {f.missing} | {f.description} |" for f in feats]
        lines.append("")
    return lines
