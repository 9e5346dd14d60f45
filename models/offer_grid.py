"""The offer rows of a customers x offers grid in one context, as the offer model's numbers.

``offer_matrix`` gives what ``numeric_matrix(to_matrix(offer_features(...)))`` gives, built by broadcasting
(customer columns once per customer, offer and context columns once per offer, interactions per pair):
what the API and the lists score with. The rules of each column are ``models.offer_response``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pandas.api.types as ptypes

from models.columns import require_columns
from models.offer_response import (
    CONTEXT_KEYS,
    DAYPART_KEY,
    OFFER_ATTRIBUTE_COLUMNS,
    MissingContextError,
    _basket,
    _check_inputs,
    _context_columns,
    _interaction_columns,
    _offer_columns,
    offer_feature_columns,
)
from models.tabular import MissingFeaturesError, numeric_matrix, to_matrix


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
