"""Offer response: will this customer redeem this offer, sent in this context?

``offer_features`` builds the customer x offer x context rows; training, the service and batch
scoring all call it, so the model always sees the same columns. ``OfferResponseModel`` is LightGBM
on those rows. Offer identity is deliberately not a feature: offers are described by their
attributes and by how this customer relates to the offer's reward category and type, so a new offer
can be scored on day one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from data_contracts.errors import MissingColumnsError
from data_contracts.schema import OFFERS
from features.catalogue import FEATURES, attach_columns_by_target, daypart_names, feature_names
from models.columns import MissingInputError, require_columns
from models.lgbm import LightGBMBinaryClassifier

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# What a sending context must say: when, and through which channel. It may say which daypart that is, in
# its program's names (``models.policy.Context.as_dict``, the training rows); else the built-in program's.
CONTEXT_KEYS: tuple[str, ...] = ("timestamp", "channel")
DAYPART_KEY = "daypart"


class MissingContextError(MissingInputError):
    """The sending context (a mapping or frame) lacks the timestamp or the channel."""

# Offer attributes and sending context, as the model sees them.
OFFER_ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "offer_type",
    "reward_category",
    "offer_value",
    "offer_min_spend",
    "offer_cost",
    "offer_value_share_of_min_spend",
)
CONTEXT_COLUMNS: tuple[str, ...] = ("send_channel", "send_daypart", "send_weekday", "send_hour", "send_is_weekend")
# How this customer relates to this offer: the columns that let the model generalise to new offers.
# They depend on (customer, offer) only; CONTEXT_COLUMNS are the only ones that change with the
# sending moment and channel (the policy's precomputed scorer relies on this).
# The customer's history with the offer's category (its node at every level, its products, the offers sent
# on it) is in the taxonomy columns (``models.offer_taxonomy``), computed from long data. The attach rate is
# the profile's of the program's first [habits] pair whose target is the offer's node (NaN without one).
INTERACTION_COLUMNS: tuple[str, ...] = (
    "cust_attach_rate_reward_category",
    "cust_redeem_rate_offer_type",
    "cust_sent_offer_type",
    "cust_redeem_rate_offer_type_shrunk",
    "offer_value_to_avg_basket",
    "offer_min_spend_to_avg_basket",
)


# The all-offers block of the offer history; any other ``offers_<type>_*`` column is a per-type block.
_ALL_OFFERS_BLOCK = frozenset(f"offers_{s}" for s in ("sent", "viewed", "redeemed", "view_rate", "redeem_rate"))
# Profile columns that are not features, and those read from the current customers table (not point in time).
_NOT_FEATURES = frozenset(("customer_id", "as_of", "habit_tags"))
_SNAPSHOT = frozenset(f.name for f in FEATURES if not f.point_in_time) | {"tier_ordinal", "points_balance",
                                                                            "points_to_next_tier"}


def _is_per_offer_group_feature(name: str) -> bool:
    # The per-type offer-history blocks enter through the interaction columns, and per-category spend shares
    # are long (the offer model reads the offer's node from the taxonomy columns, whatever the taxonomy).
    # The visit shares and attach rates of the program's [habits] nodes are profile columns like the others:
    # a program declares them or not, so the width never follows the taxonomy; they carry the customer's
    # basket habits across nodes (docs/model-card.md: what they restore on the built-in sample).
    return (name.startswith("offers_") and name not in _ALL_OFFERS_BLOCK) or name.startswith("spend_share_")


def profile_columns_used(columns: Sequence[str] | None = None) -> list[str]:
    """The profile features copied as they are into offer rows, in the profiles' (catalogue) order.

    ``columns``: a profile frame's columns (its program's catalogue); default: the built-in program's
    catalogue. Point-in-time features only: tier and points are read from the current customers table,
    so in past training rows they would carry the future.
    """
    names = feature_names(point_in_time_only=True) if columns is None else [  # any program's catalogue
        c for c in columns if c not in _NOT_FEATURES and c not in _SNAPSHOT]
    return [n for n in names if not _is_per_offer_group_feature(n)]


def offer_feature_columns() -> list[str]:
    """The model-facing columns of an offer row, in order."""
    return profile_columns_used() + list(OFFER_ATTRIBUTE_COLUMNS) + list(CONTEXT_COLUMNS) + list(INTERACTION_COLUMNS)


def daypart_of(hours: pd.Series, dayparts=None) -> pd.Series:
    """The daypart name of fractional hours of day in ``dayparts`` (a program's ``daypart_edges``; default
    the built-in program's)."""
    return pd.Series(daypart_names(hours.to_numpy(dtype=float), dayparts), index=hours.index, dtype="str")


def send_dayparts(sent_at: pd.Series, program=None) -> pd.Series:
    """The daypart names of send times as ``program`` names them (default: the built-in program): the
    ``daypart`` of training rows' contexts, as ``Context.daypart`` names a decision's."""
    ts = pd.to_datetime(sent_at)
    return daypart_of(ts.dt.hour + ts.dt.minute / 60.0, None if program is None else program.daypart_edges)


def _context_frame(context, profiles: pd.DataFrame, offers: pd.DataFrame) -> pd.DataFrame:
    """One row per (customer, offer, [as_of]) to score, with timestamp and channel."""
    if isinstance(context, Mapping):
        require_columns(context, CONTEXT_KEYS, "offer_features: context", what="keys", error=MissingContextError)
        pairs = profiles[["customer_id"]].merge(offers[["offer_id"]], how="cross")
        pairs["timestamp"] = pd.Timestamp(context["timestamp"])
        pairs["channel"] = str(context["channel"])
        if context.get(DAYPART_KEY) is not None:
            pairs[DAYPART_KEY] = str(context[DAYPART_KEY])
        return pairs
    if not isinstance(context, pd.DataFrame):
        raise TypeError(f"offer_features: context must be a dict or a DataFrame, got {type(context).__name__}")
    ctx = context
    if "timestamp" not in ctx.columns and "sent_at" in ctx.columns:
        ctx = ctx.rename(columns={"sent_at": "timestamp"})
    require_columns(ctx.columns, CONTEXT_KEYS, "offer_features: context", error=MissingContextError)
    if "customer_id" in ctx.columns and "offer_id" in ctx.columns:
        return ctx.reset_index(drop=True)
    if len(ctx) != 1:
        raise ValueError(
            "offer_features: a context frame without customer_id and offer_id must have exactly one row "
            f"(applied to every customer x offer pair), got {len(ctx)} rows"
        )
    return _context_frame(ctx.iloc[0].to_dict(), profiles, offers)


def _lookup(frame: pd.DataFrame, column_by_row: pd.Series) -> np.ndarray:
    """Per row i, the value of column ``column_by_row[i]`` (NaN where that column does not exist)."""
    out = np.full(len(frame), np.nan)
    for col in column_by_row.dropna().unique():
        if col in frame.columns:
            mask = (column_by_row == col).to_numpy()
            out[mask] = pd.to_numeric(frame.loc[mask, col], errors="coerce").to_numpy(dtype=float)
    return out


def _shrunk_rate(redeemed: np.ndarray, sent: np.ndarray, prior: np.ndarray, strength: float = 3.0) -> np.ndarray:
    """A group redemption rate pulled toward the customer's overall rate: stable with few sends."""
    return (np.nan_to_num(redeemed) + strength * prior) / (np.nan_to_num(sent) + strength)


NEEDED_OFFER_COLUMNS: tuple[str, ...] = ("offer_id", "offer_type", "reward_category", "value", "min_spend",
                                          "cost_per_redemption")


# The profile columns the interaction columns cannot do without (the rest may be absent: features of
# tables a program does not have are left out of its profiles, and of the models trained on them).
NEEDED_PROFILE_COLUMNS: tuple[str, ...] = ("customer_id", "avg_basket_365d", "offers_redeem_rate")


def _check_inputs(profiles: pd.DataFrame, offers: pd.DataFrame) -> None:
    need_profile = list(NEEDED_PROFILE_COLUMNS)
    missing = [c for c in need_profile if c not in profiles.columns]
    if missing:
        raise MissingColumnsError("profiles", missing, list(profiles.columns))
    missing = [c for c in NEEDED_OFFER_COLUMNS if c not in offers.columns]
    if missing:
        raise MissingColumnsError(OFFERS.name, missing, list(offers.columns))


def _offer_columns(otype: pd.Series, cat: pd.Series, value, min_spend, cost) -> dict:
    """OFFER_ATTRIBUTE_COLUMNS from the offers' attributes (one entry per row or per offer)."""
    return {
        "offer_type": otype,
        "reward_category": cat,
        "offer_value": value,
        "offer_min_spend": min_spend,
        "offer_cost": cost,
        "offer_value_share_of_min_spend": value / min_spend.where(min_spend > 0),
    }


def _context_columns(ts: pd.Series, channel: pd.Series, daypart: pd.Series | None = None) -> dict:
    """CONTEXT_COLUMNS from send timestamps, channels and (when the context names them) dayparts."""
    hours = ts.dt.hour + ts.dt.minute / 60.0
    return {
        "send_channel": channel.astype("str"),
        "send_daypart": daypart_of(hours) if daypart is None else daypart.astype("str").set_axis(ts.index),
        "send_weekday": pd.Series(np.array(WEEKDAYS, dtype=object)[ts.dt.weekday.to_numpy()], dtype="str"),
        "send_hour": hours.astype(float),
        "send_is_weekend": (ts.dt.weekday >= 5).astype(float),
    }


def _interaction_columns(lookup, columns, cat: pd.Series, otype: pd.Series, value, min_spend, basket,
                         overall_rate) -> dict:
    """INTERACTION_COLUMNS. ``lookup(column_names)`` gives the profile value of the named column for
    each pair (NaN where the column does not exist); the arithmetic broadcasts, so the same code
    serves one row per pair (``offer_features``) and a customers x offers grid (``offer_matrix``).
    ``columns``: the profile's columns (its program's catalogue: which attach rates it has).
    """
    attach = attach_columns_by_target(columns, cat.unique())
    sent_type = lookup("offers_" + otype + "_sent")
    redeemed_type = lookup("offers_" + otype + "_redeemed")
    return {
        "cust_attach_rate_reward_category": lookup(cat.map(attach)),
        "cust_redeem_rate_offer_type": lookup("offers_" + otype + "_redeem_rate"),
        "cust_sent_offer_type": sent_type,
        "cust_redeem_rate_offer_type_shrunk": _shrunk_rate(redeemed_type, sent_type, overall_rate),
        "offer_value_to_avg_basket": value / basket,
        "offer_min_spend_to_avg_basket": min_spend / basket,
    }


def _basket(profiles: pd.DataFrame) -> pd.Series:
    """The average basket where it is positive (a ratio to no basket is unknown, not infinite)."""
    return pd.to_numeric(profiles["avg_basket_365d"], errors="coerce").where(lambda s: s > 0)


def offer_features(profiles: pd.DataFrame, offers: pd.DataFrame, context, *, tables=None, as_of=None) -> pd.DataFrame:
    """Customer x offer x context rows: customer_id, offer_id, [as_of], then ``offer_feature_columns()``.

    ``profiles``: one row per customer (``features.build_profiles``), or several per customer with an
    ``as_of`` column (training: the profile as of each send date). ``offers``: rows of the offers
    table. ``context``: ``{"timestamp": ..., "channel": ...}`` applied to every customer x offer pair,
    or a frame with customer_id, offer_id, timestamp (or sent_at), channel, and ``as_of`` when the
    profiles carry one, giving exactly the rows to build (in that order).
    ``models.offer_grid.offer_matrix`` builds the same rows for a customers x offers grid as model-ready numbers.
    ``tables`` (validated tables, with ``products`` and ``offer_products`` when the program has them)
    adds ``models.offer_taxonomy.taxonomy_columns()``: the customer's history with the offer's node at
    every level and with its own products, strictly before each row's ``as_of`` (else ``as_of``, the
    cut of the profiles being scored; else the send timestamp).
    """
    _check_inputs(profiles, offers)
    rows = _context_frame(context, profiles, offers)
    keys = ["customer_id", "as_of"] if ("as_of" in profiles.columns and "as_of" in rows.columns) else ["customer_id"]
    prof_cols = list(dict.fromkeys(keys + [c for c in profiles.columns if c not in ("habit_tags",)]))
    rows = rows[[c for c in rows.columns if c not in prof_cols or c in keys]]
    merged = rows.merge(profiles[prof_cols], on=keys, how="left", validate="many_to_one", indicator="_profile")
    unknown = merged.pop("_profile") == "left_only"
    if unknown.any():
        raise ValueError(
            f"offer_features: {int(unknown.sum())} context rows name customers (at as_of) missing from profiles, "
            f"e.g. {merged.loc[unknown, 'customer_id'].head(3).tolist()}"
        )
    off = offers[list(NEEDED_OFFER_COLUMNS)].drop_duplicates("offer_id")
    merged = merged.merge(off, on="offer_id", how="left", validate="many_to_one")
    if merged["offer_type"].isna().any():
        bad = merged.loc[merged["offer_type"].isna(), "offer_id"].unique()[:3].tolist()
        raise ValueError(f"offer_features: context names offers missing from the offers table, e.g. {bad}")

    cat = merged["reward_category"].astype("str")
    otype = merged["offer_type"].astype("str")
    value = merged["value"].astype(float)
    min_spend = merged["min_spend"].astype(float)
    overall_rate = pd.to_numeric(merged["offers_redeem_rate"], errors="coerce").to_numpy(dtype=float)

    out = pd.DataFrame({"customer_id": merged["customer_id"].astype("str"), "offer_id": merged["offer_id"].astype("str")})
    if keys == ["customer_id", "as_of"]:
        out["as_of"] = merged["as_of"]
    out = pd.concat([out, merged[profile_columns_used(profiles.columns)].reset_index(drop=True)],
                    axis=1)
    extra = {
        **_offer_columns(otype, cat, value, min_spend, merged["cost_per_redemption"].astype(float)),
        **_context_columns(pd.to_datetime(merged["timestamp"]), merged["channel"], merged.get(DAYPART_KEY)),
        **_interaction_columns(lambda names: _lookup(merged, names), profiles.columns, cat, otype, value, min_spend,
                               _basket(merged), overall_rate),
    }
    for name in list(OFFER_ATTRIBUTE_COLUMNS) + list(CONTEXT_COLUMNS) + list(INTERACTION_COLUMNS):
        col = extra[name]
        out[name] = col.to_numpy() if isinstance(col, pd.Series) else col
    if tables is not None:
        from models.offer_taxonomy import offer_taxonomy_features

        if "as_of" in out.columns:
            cut = out["as_of"]
        elif as_of is not None:
            cut = pd.Timestamp(as_of)
        else:
            cut = pd.to_datetime(merged["timestamp"]).to_numpy()
        keyed = pd.DataFrame({"customer_id": out["customer_id"], "offer_id": out["offer_id"], "as_of": cut})
        taxonomy = offer_taxonomy_features(tables, keyed, offers)  # the offers being scored
        out = pd.concat([out, taxonomy.set_axis(out.index)], axis=1)
    return out


class OfferResponseModel(LightGBMBinaryClassifier):
    """LightGBM over ``offer_features`` rows: P(redeemed within the offer's validity)."""

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.06,
        num_leaves: int = 15,
        min_child_samples: int = 100,
        subsample: float = 0.5,
        colsample_bytree: float = 0.5,
        reg_lambda: float = 1.0,
        validation_fraction: float = 0.15,
        early_stopping_rounds: int = 30,
        random_state: int = 0,
        n_jobs: int = 2,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: pd.DataFrame, y) -> "OfferResponseModel":
        X, y = self._check_fit_inputs(X, y)
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"{type(self).__name__}: validation_fraction must be in [0, 1), got {self.validation_fraction}")
        self._fit_booster(X, y, self.validation_fraction)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Columns: P(not redeemed), P(redeemed)."""
        M = self._matrix(X)
        return self.booster_model_.predict_proba(M)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row additive contributions to the log-odds (LightGBM pred_contrib): one column per feature + "bias".

        Each row sums to the logit of ``predict_proba(X)[:, 1]``.
        """
        M = self._matrix(X)
        contrib = self.booster_model_.predict(M, pred_contrib=True)
        return pd.DataFrame(
            np.asarray(contrib), columns=list(self.feature_names_in_) + ["bias"], index=X.index
        )


def __getattr__(name: str):
    # offer_matrix and offer_attribute_numbers live in models.offer_grid (which builds on this module's rows);
    # they stay importable from here
    if name in ("offer_matrix", "offer_attribute_numbers"):
        from models import offer_grid

        return getattr(offer_grid, name)
    raise AttributeError(f"module 'models.offer_response' has no attribute {name!r}")
