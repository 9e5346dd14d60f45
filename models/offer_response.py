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
import pandas.api.types as ptypes

from data_contracts.errors import MissingColumnsError
from data_contracts.schema import OFFERS
from features.catalogue import FEATURES, attach_columns_by_target, daypart_names, feature_names
from models.columns import MissingInputError, require_columns
from models.lgbm import LightGBMBinaryClassifier
from models.tabular import MissingFeaturesError, numeric_matrix, to_matrix

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
    ``offer_matrix`` builds the same rows for a customers x offers grid as model-ready numbers.
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


def _as_slice(positions: list[int]):
    """Contiguous positions as a slice (a much faster assignment target than an index list)."""
    if positions == list(range(positions[0], positions[-1] + 1)):
        return slice(positions[0], positions[-1] + 1)
    return positions


def offer_matrix(
    profiles: pd.DataFrame, offers: pd.DataFrame, context: Mapping, names: Sequence[str],
    categories: Mapping[str, Sequence[str]], taxonomy=None, offer_numbers: np.ndarray | None = None,
    aligned: bool = False,
) -> np.ndarray:
    """The offer rows of every profile x offer pair in one context, as the model's numbers.

    Returns a float64 array (len(profiles), len(offers), len(names)) equal to
    ``numeric_matrix(to_matrix(offer_features(profiles, offers, context), names, categories))``
    reshaped by customer then offer, but built by broadcasting: customer columns are converted once
    per customer, offer and context columns once per offer, and only the interaction columns are
    computed per pair. This is what batch scoring runs for millions of customers.
    ``taxonomy`` (a ``models.offer_taxonomy.TaxonomyLookup`` of these customers and offers) gives the
    taxonomy columns; they equal ``offer_features(..., tables=, as_of=lookup.as_of)``'s.
    ``offer_numbers``: ``offer_attribute_numbers(offers, names, categories)`` when the caller keeps them
    (the offer attributes of a catalogue do not change between calls).
    ``aligned=True``: the pairs (profiles row k, offers row k) only, as a (len(profiles), len(names))
    array (the rows of those pairs in the grid; the reasons of a few chosen pairs need no grid).
    """
    _check_inputs(profiles, offers)
    require_columns(context, CONTEXT_KEYS, "offer_matrix: context", what="keys", error=MissingContextError)
    profiles = profiles.reset_index(drop=True)
    offers = offers.reset_index(drop=True)
    names = list(names)
    n_c, n_o = len(profiles), len(offers)
    if aligned and n_c != n_o:
        raise ValueError(f"offer_matrix(aligned=True) pairs profiles row k with offers row k: got {n_c} profiles "
                         f"and {n_o} offers")
    cat = offers["reward_category"].astype("str")
    otype = offers["offer_type"].astype("str")
    value = offers["value"].astype(float)
    min_spend = offers["min_spend"].astype(float)

    def numbers(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
        # plain numeric columns in one conversion (what to_matrix + numeric_matrix give them: float64,
        # NaN where missing); only categorical and other columns go through to_matrix, one by one
        dtypes = frame.dtypes
        plain = [c for c in cols if c not in categories and c in dtypes.index
                 and (ptypes.is_numeric_dtype(dtypes[c]) and not ptypes.is_bool_dtype(dtypes[c]))]
        out = np.empty((len(frame), len(cols)), dtype=np.float64)
        at = {c: j for j, c in enumerate(cols)}
        if plain:
            out[:, [at[c] for c in plain]] = frame[plain].to_numpy(dtype=np.float64, na_value=np.nan)
        rest = [c for c in cols if c not in set(plain)]
        if rest:
            cats = {c: categories[c] for c in rest if c in categories}
            out[:, [at[c] for c in rest]] = numeric_matrix(to_matrix(frame, rest, cats, "offer_matrix"))
        return out

    offer_part = None if offer_numbers is not None else pd.DataFrame(
        _offer_columns(otype, cat, value, min_spend, offers["cost_per_redemption"].astype(float)))
    when = pd.Series([pd.Timestamp(context["timestamp"])])
    named = context.get(DAYPART_KEY)
    context_part = pd.DataFrame(_context_columns(when, pd.Series([str(context["channel"])]),
                                                 None if named is None else pd.Series([str(named)])))
    numeric_cache: dict[str, np.ndarray] = {}

    def column(name: str) -> np.ndarray:
        if name not in numeric_cache:
            numeric_cache[name] = pd.to_numeric(profiles[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return numeric_cache[name]

    def lookup(column_names: pd.Series) -> np.ndarray:
        # one assignment per distinct column (offer types are few), not one per offer
        out = np.full(n_c if aligned else (n_c, n_o), np.nan)
        codes, distinct = pd.factorize(column_names)
        for k, name in enumerate(distinct.tolist()):
            if isinstance(name, str) and name in profiles.columns:
                if aligned:
                    out[codes == k] = column(name)[codes == k]
                else:
                    out[:, codes == k] = column(name)[:, None]
        return out

    cust_axis, offer_axis = (slice(None), slice(None)) if aligned else ((slice(None), None), (None, slice(None)))
    basket = _basket(profiles).to_numpy(dtype=float)[cust_axis]
    overall_rate = pd.to_numeric(profiles["offers_redeem_rate"], errors="coerce").to_numpy(dtype=float)[cust_axis]
    interactions = _interaction_columns(lookup, profiles.columns, cat, otype, value.to_numpy()[offer_axis],
                                        min_spend.to_numpy()[offer_axis], basket, overall_rate)

    from models.offer_taxonomy import taxonomy_columns

    taxonomy_names = set(taxonomy_columns())
    groups = {"customer": [], "offer": [], "context": [], "pair": [], "taxonomy": []}
    for j, name in enumerate(names):
        if name in interactions:
            groups["pair"].append(j)
        elif name in taxonomy_names:
            groups["taxonomy"].append(j)
        elif name in OFFER_ATTRIBUTE_COLUMNS:
            groups["offer"].append(j)
        elif name in context_part.columns:
            groups["context"].append(j)
        elif name in profiles.columns:
            groups["customer"].append(j)
        else:
            raise MissingFeaturesError("offer_matrix", [name], list(profiles.columns) + offer_feature_columns())
    shape = (n_c, len(names)) if aligned else (n_c, n_o, len(names))
    M = np.empty(shape, dtype=np.float64)
    per_customer = (slice(None), None) if not aligned else (slice(None),)
    per_offer = (None, slice(None)) if not aligned else (slice(None),)
    if groups["customer"]:
        M[..., _as_slice(groups["customer"])] = numbers(profiles, [names[j] for j in groups["customer"]])[per_customer]
    if groups["offer"]:
        if offer_numbers is None:
            offer_numbers = numbers(offer_part, [names[j] for j in groups["offer"]])
        M[..., _as_slice(groups["offer"])] = offer_numbers[per_offer]
    if groups["context"]:
        M[..., _as_slice(groups["context"])] = numbers(context_part, [names[j] for j in groups["context"]])[0]
    if groups["pair"]:
        # Stacked first: one block copy instead of a strided pass over the whole grid per column.
        pair = np.stack(np.broadcast_arrays(*[interactions[names[j]] for j in groups["pair"]]), axis=-1)
        M[..., _as_slice(groups["pair"])] = pair.reshape(*shape[:-1], len(groups["pair"]))
    if groups["taxonomy"]:
        if taxonomy is None:
            raise MissingFeaturesError(
                "offer_matrix (the offer model uses the taxonomy columns: give it a TaxonomyLookup of these "
                "customers and offers, built from the transactions and products)",
                [names[j] for j in groups["taxonomy"]], list(profiles.columns) + offer_feature_columns())
        wanted = [names[j] for j in groups["taxonomy"]]
        cut = taxonomy.pairs if aligned else taxonomy.grid
        block = cut(profiles["customer_id"].to_numpy(), offers["offer_id"].to_numpy(), wanted)
        M[..., _as_slice(groups["taxonomy"])] = np.stack([block[n] for n in wanted], axis=-1)
    return M


def offer_attribute_numbers(offers: pd.DataFrame, names: Sequence[str], categories: Mapping[str, Sequence[str]]) -> np.ndarray:
    """The OFFER_ATTRIBUTE_COLUMNS among ``names`` (in that order) of each offer, as ``offer_matrix`` codes them."""
    wanted = [n for n in names if n in OFFER_ATTRIBUTE_COLUMNS]
    part = pd.DataFrame(_offer_columns(offers["offer_type"].astype("str"), offers["reward_category"].astype("str"),
                                       offers["value"].astype(float), offers["min_spend"].astype(float),
                                       offers["cost_per_redemption"].astype(float)))
    cats = {c: categories[c] for c in wanted if c in categories}
    return numeric_matrix(to_matrix(part.reset_index(drop=True), wanted, cats, "offer_matrix"))


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
