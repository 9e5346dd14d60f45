"""A cold-start prior for offers without any offer history: P(redeem) for a (customer, offer) pair before
the offer-response model has seen a single send of that offer.

    odds(prior) = odds(base_rate) * affinity_factor * value_factor

- ``base_rate``: the program's overall redemption rate of sent (not control) offers when ``offer_events``
  has any (``base_redemption_rate``), else ``DEFAULT_BASE_RATE``.
- ``affinity_factor = exp(AFFINITY_LOG_ODDS * (affinity - REFERENCE_AFFINITY))``: ``affinity`` (0..1) is
  how much of the customer's shopping is at the offer's node (``offer_affinity``: the long node-affinity
  table of ``features.node_affinity``, at the nodes ``features.hierarchy.offer_nodes`` gives the offer).
- ``value_factor = ((1 + ratio) / (1 + REFERENCE_VALUE_RATIO)) ** VALUE_ELASTICITY``: ``ratio`` is the
  offer's value over the customer's average basket (``value_ratio``): the same reward counts more to a
  small basket.

Both factors are 1 at their reference (a typical pair keeps the base rate) and 1 where the input is
unknown (a customer with no purchase history, an offer on no node, no average basket): the prior
then says only what the program's rate says. Scaling the odds, not the probability, keeps the prior
inside (0, 1) however large the factors. Pure: frames in, arrays out; nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# Redemption rate assumed when the program has never sent an offer (offer_events absent or without sends):
# a common redemption rate of targeted loyalty coupons; replaced by the program's own rate as soon as it has one.
DEFAULT_BASE_RATE = 0.10
# A customer whose whole shopping is at the offer's node has e^(2 * 0.9) ~ 6x the odds of the typical pair;
# one who never shops there e^(-0.2) ~ 0.8x.
AFFINITY_LOG_ODDS = 2.0
REFERENCE_AFFINITY = 0.1  # spread over about ten nodes: the typical pair
# A reward worth a whole basket: ((1 + 1) / 1.2) ** 1 ~ 1.7x the odds of one worth a fifth of it.
VALUE_ELASTICITY = 1.0
REFERENCE_VALUE_RATIO = 0.2
SHARE_COLUMNS = ("spend_share_365d", "visit_share_365d")


class ColdStartInputError(ValueError):
    """A cold-start input lacks a column it needs: names the input, the columns expected and found."""


def _require(frame: pd.DataFrame, columns, who: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ColdStartInputError(f"cold_start: {who} lacks columns {missing}; expected {list(columns)}, found "
                                  f"{list(frame.columns)}; build it with the function its docstring names")


def base_redemption_rate(offer_events: pd.DataFrame | None, default: float = DEFAULT_BASE_RATE) -> float:
    """The share of sent offers (``is_control`` false) that were redeemed; ``default`` without any send."""
    if not 0 < default < 1:
        raise ValueError(f"cold_start: default base rate must be in (0, 1), got {default}")
    if offer_events is None or not len(offer_events):
        return default
    _require(offer_events, ["redeemed_at"], "offer_events")
    sent = offer_events
    if "is_control" in sent.columns:
        sent = sent[~sent["is_control"].fillna(False).astype(bool)]
    if not len(sent):
        return default
    rate = float(sent["redeemed_at"].notna().mean())
    return float(np.clip(rate, 1e-4, 1 - 1e-4))


def offer_affinity(pairs: pd.DataFrame, node_affinity: pd.DataFrame, offer_nodes: pd.DataFrame) -> np.ndarray:
    """Per pair (``customer_id, offer_id`` rows): the customer's affinity to the offer's node, in [0, 1].

    At each level the offer reaches, the mean of the customer's spend share and visit share
    (``SHARE_COLUMNS`` of ``features.node_affinity.node_affinity_features``) summed over the offer's
    nodes at that level (capped at 1); then the mean over those levels. 0 for a customer with history
    but none at the offer's nodes; NaN (unknown) for a customer with no row in ``node_affinity`` or an
    offer with no row in ``offer_nodes`` (``features.hierarchy.offer_nodes``).
    """
    _require(pairs, ["customer_id", "offer_id"], "pairs")
    _require(node_affinity, ["customer_id", "level", "node", *SHARE_COLUMNS], "node_affinity")
    _require(offer_nodes, ["offer_id", "level", "node"], "offer_nodes")
    keys = pd.DataFrame({"row": np.arange(len(pairs)), "customer_id": pairs["customer_id"].astype("str").to_numpy(),
                         "offer_id": pairs["offer_id"].astype("str").to_numpy()})
    on_nodes = keys.merge(offer_nodes[["offer_id", "level", "node"]].astype("str"), on="offer_id")
    shares = node_affinity[["customer_id", "level", "node", *SHARE_COLUMNS]].astype(
        {"customer_id": "str", "level": "str", "node": "str"})
    joined = on_nodes.merge(shares, on=["customer_id", "level", "node"], how="left")
    share = joined[list(SHARE_COLUMNS)].astype(float).fillna(0.0).mean(axis=1)
    per_level = share.groupby([joined["row"], joined["level"]]).sum().clip(upper=1.0)
    affinity = per_level.groupby(level="row").mean().reindex(np.arange(len(pairs))).to_numpy(dtype=float)
    known = keys["customer_id"].isin(set(shares["customer_id"])).to_numpy()
    return np.where(known, affinity, np.nan)


def value_ratio(pairs: pd.DataFrame, offer_value: Mapping | pd.Series, avg_basket: Mapping | pd.Series) -> np.ndarray:
    """Per pair: the offer's value (missing: 0, as the offers contract says) over the customer's average
    basket (``avg_basket_365d`` of the profile); NaN when the basket is unknown or not positive."""
    _require(pairs, ["customer_id", "offer_id"], "pairs")
    value = pairs["offer_id"].astype("str").map(pd.Series(offer_value).rename(index=str)).astype(float).fillna(0.0)
    basket = pairs["customer_id"].astype("str").map(pd.Series(avg_basket).rename(index=str)).astype(float)
    basket = basket.where(basket > 0)
    return (value.clip(lower=0.0) / basket).to_numpy(dtype=float)


def cold_start_prior(
    base_rate: float,
    affinity: np.ndarray,
    ratio: np.ndarray,
    *,
    affinity_log_odds: float = AFFINITY_LOG_ODDS,
    reference_affinity: float = REFERENCE_AFFINITY,
    value_elasticity: float = VALUE_ELASTICITY,
    reference_value_ratio: float = REFERENCE_VALUE_RATIO,
) -> np.ndarray:
    """P(redeem) per pair from the base rate, ``offer_affinity`` and ``value_ratio`` (module docstring);
    NaN inputs leave their factor at 1."""
    if not 0 < base_rate < 1:
        raise ValueError(f"cold_start: base_rate must be in (0, 1), got {base_rate}")
    if affinity_log_odds < 0 or value_elasticity < 0:
        raise ValueError("cold_start: affinity_log_odds and value_elasticity must be >= 0 (more affinity or value "
                         f"never lowers the prior), got {affinity_log_odds} and {value_elasticity}")
    affinity = np.asarray(affinity, dtype=float)
    ratio = np.asarray(ratio, dtype=float)
    if affinity.shape != ratio.shape:
        raise ValueError(f"cold_start: affinity and ratio must have one value per pair; got shapes "
                         f"{affinity.shape} and {ratio.shape}")
    a, v = _log_odds_terms(affinity, ratio, affinity_log_odds, reference_affinity, value_elasticity,
                           reference_value_ratio)
    return 1.0 / (1.0 + np.exp(-(np.log(base_rate / (1 - base_rate)) + a + v)))


def _log_odds_terms(affinity: np.ndarray, ratio: np.ndarray, affinity_log_odds: float = AFFINITY_LOG_ODDS,
                    reference_affinity: float = REFERENCE_AFFINITY, value_elasticity: float = VALUE_ELASTICITY,
                    reference_value_ratio: float = REFERENCE_VALUE_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """The affinity and value terms of the prior's log-odds (0 where the input is unknown)."""
    a = affinity_log_odds * np.nan_to_num(np.clip(affinity, 0, 1) - reference_affinity, nan=0.0)
    v = value_elasticity * np.nan_to_num(np.log1p(np.maximum(ratio, 0.0)) - np.log1p(reference_value_ratio), nan=0.0)
    return a, v


def cold_start_priors(pairs: pd.DataFrame, *, node_affinity: pd.DataFrame, offer_nodes: pd.DataFrame,
                      offer_value: Mapping | pd.Series, avg_basket: Mapping | pd.Series,
                      offer_events: pd.DataFrame | None = None) -> np.ndarray:
    """The whole prior for ``pairs`` in one call: base rate from ``offer_events``, affinity, value ratio."""
    return cold_start_prior(base_redemption_rate(offer_events), offer_affinity(pairs, node_affinity, offer_nodes),
                            value_ratio(pairs, offer_value, avg_basket))


class ColdStartOfferModel:
    """The prior as an offer model: what ``rewards score`` ranks offers by while no offer-response model can
    be trained (offers, but no offer history). It reads the taxonomy columns of ``offer_features`` rows
    (the customer's spend and visit shares at the offer's node, every level joined) and the offer's value
    over the average basket, so the policy scores it through its own path (``FrameScorer``) with the same
    eligibility, contact rules, budget and holdout as a trained model; its decisions are flagged
    ``cold_start``. ``contributions`` splits the log-odds into the base rate (bias), the affinity term (on
    the finest node's visit share) and the value term, so reasons name the offer's node.
    """

    is_prior = True
    categories_: dict = {}

    def __init__(self, base_rate: float = DEFAULT_BASE_RATE):
        if not 0 < base_rate < 1:
            raise ValueError(f"cold_start: base_rate must be in (0, 1), got {base_rate}")
        from models.offer_taxonomy import DEPTHS

        self.base_rate = base_rate
        self._levels = [(f"node_d{d}_spend_share_365d", f"node_d{d}_visit_share_365d") for d in range(DEPTHS)]
        self.feature_names_in_ = [c for pair in self._levels for c in pair] + ["offer_value_to_avg_basket"]

    def _inputs(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(affinity, value ratio) per row: the inputs of ``cold_start_prior``."""
        _require(X, self.feature_names_in_, "offer rows")
        per_level = np.column_stack([
            np.minimum(X[[s, v]].to_numpy(dtype=float).mean(axis=1), 1.0) for s, v in self._levels])
        with np.errstate(invalid="ignore"):
            affinity = np.where(np.isnan(per_level).all(axis=1), np.nan, np.nanmean(
                np.where(np.isnan(per_level), np.nan, per_level), axis=1)) if len(X) else np.zeros(0)
        return affinity, X["offer_value_to_avg_basket"].to_numpy(dtype=float)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = cold_start_prior(self.base_rate, *self._inputs(X))
        return np.column_stack([1 - p, p])

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        a, v = _log_odds_terms(*self._inputs(X))
        out = pd.DataFrame(0.0, index=X.index, columns=[*self.feature_names_in_, "bias"])
        out["node_d0_visit_share_365d"] = a
        out["offer_value_to_avg_basket"] = v
        out["bias"] = np.log(self.base_rate / (1 - self.base_rate))
        return out
