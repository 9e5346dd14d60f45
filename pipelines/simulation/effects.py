"""The planted treatment effect of a continued loyalty program: effect classes, their shares, the state.

Everyone keeps visiting as the generator planted it (persona visit rate by weekday, persona baskets); the
customers the list treats receive their offers, the holdout does not. Each (customer, offer) gets a planted
effect class, drawn per customer and reward category from how habitual the category already is for the persona:

* ``persuadable``: a redemption is an extra visit (the reward line plus a usual basket), and the offer lifts the
  visit rate by ``HALO`` for the rest of the window;
* ``sure_thing``: a redemption replaces a purchase the customer would have made at full price anyway (the
  next organic line of that category is displaced), so revenue only loses the reward's value;
* ``lost_cause``: never redeems, nothing changes;
* ``put_off`` (a small group per customer, larger among occasional visitors): the offer lowers the visit
  rate by ``PUT_OFF_DROP`` for the window and is never redeemed.

Both worlds share their random draws (common random numbers), so the realised effect of each treated customer
is known exactly; it goes to ``ground_truth/treatment_effects.parquet`` per (customer, offer) with the expected
effect next to it. The output folder is the whole program (history plus the simulated days), so a simulated
program can be scored, simulated and measured again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.schema import CATEGORIES
from pipelines.synthetic import (
    ADDON_CATEGORY,
    ANCHOR_CATEGORY,
    BASKET_SIZE,
    HOUR_MIXTURES,
    PERSONAS,
)

EFFECT_CLASSES: tuple[str, ...] = ("persuadable", "sure_thing", "lost_cause", "put_off")
HALO = 0.30  # visit-rate lift per persuadable offer, for the rest of the window
PUT_OFF_DROP = 0.40  # visit-rate drop of a put-off customer who receives an offer
PUT_OFF_SHARE = np.array([0.03, 0.03, 0.03, 0.03, 0.12, 0.03])  # per persona (occasional: 12%)
LOST_CAUSE_SHARE = 0.25  # of the customers a category is not habitual for
SURE_THING_SCALE = 0.5  # expected lines of the category per visit at which the customer is surely a sure thing
INDIV_NOISE_SD, RESPONSIVENESS_SD = 0.3, 0.5  # as the generator: what a model of the history cannot see
TRUTH_FILE = "treatment_effects"
SIMULATION_FILE = "simulation.json"
_NS = np.int64(10**9)
_DAY_NS = np.int64(86_400) * _NS


class SimulationError(ValueError):
    """The inputs of a simulation are unusable (not a generated program, a list without offers, ...)."""


# --------------------------------------------------------------------------------------------------
# The planted effect
# --------------------------------------------------------------------------------------------------


def habit_share() -> np.ndarray:
    """Expected lines of each reward category per visit, by persona (personas x categories)."""
    extra_lines = BASKET_SIZE @ np.arange(BASKET_SIZE.shape[1])  # lines after the first
    return ANCHOR_CATEGORY + extra_lines[:, None] * ADDON_CATEGORY


def class_probabilities() -> np.ndarray:
    """P(persuadable, sure_thing, lost_cause) per persona x category (the put-off group is drawn per customer)."""
    sure = np.clip(habit_share() / SURE_THING_SCALE, 0.0, 0.9)
    persuadable = (1.0 - sure) * (1.0 - LOST_CAUSE_SHARE)
    return np.stack([persuadable, sure, 1.0 - sure - persuadable], axis=-1)


def _draw_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each element of ``rows`` an index drawn from the distribution ``probs[row]``."""
    cdf = np.cumsum(probs, axis=1)[rows]
    u = rng.random(len(rows))
    return np.minimum((u[:, None] > cdf).sum(axis=1), probs.shape[1] - 1)


# --------------------------------------------------------------------------------------------------
# The program to continue
# --------------------------------------------------------------------------------------------------


@dataclass
class Program:
    """A generated program's tables with the hidden state the simulation continues from."""

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]
    persona: np.ndarray  # per customer (row of tables["customers"]), index into PERSONAS
    rate: np.ndarray  # planted mean visits per day
    churn_day_ns: np.ndarray  # churn moment (ns), int64 max when not churned
    home_store: np.ndarray

    @property
    def customer_ids(self) -> np.ndarray:
        return self.tables["customers"]["customer_id"].astype(str).to_numpy()

# --------------------------------------------------------------------------------------------------
# One simulated window
# --------------------------------------------------------------------------------------------------


@dataclass
class Window:
    """What happened in one simulated window: new rows for two tables and the per-(customer, offer) truth."""

    transactions: pd.DataFrame
    offer_events: pd.DataFrame
    effects: pd.DataFrame


class _Catalogue:
    """Products and offers as arrays."""

    def __init__(self, products: pd.DataFrame, offers: pd.DataFrame):
        cat_index = {c: i for i, c in enumerate(CATEGORIES)}
        self.product_id = products["product_id"].astype(str).to_numpy()
        self.price = products["price"].to_numpy(dtype=float)
        self.product_cat = products["category"].map(cat_index).to_numpy(dtype=np.int64)
        self.by_cat = [np.flatnonzero(self.product_cat == c) for c in range(len(CATEGORIES))]
        self.mean_price = np.array([self.price[i].mean() if len(i) else 0.0 for i in self.by_cat])
        extra_lines = BASKET_SIZE @ np.arange(BASKET_SIZE.shape[1])
        # Expected receipt value per persona: the anchor line plus the expected extra lines.
        self.basket_value = ANCHOR_CATEGORY @ self.mean_price + extra_lines * (ADDON_CATEGORY @ self.mean_price)
        self.offers = offers.set_index(offers["offer_id"].astype(str))
        self.offer_cat = self.offers["reward_category"].map(cat_index)

    def product_in(self, rng: np.random.Generator, cats: np.ndarray) -> np.ndarray:
        """A product drawn uniformly within each given category."""
        counts = np.array([len(i) for i in self.by_cat])
        offsets = np.r_[0, np.cumsum(counts)[:-1]]
        within = np.floor(rng.random(len(cats)) * counts[cats]).astype(np.int64)
        return np.concatenate(self.by_cat)[offsets[cats] + within]

    def reward_paid(self, otype: np.ndarray, value: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(amount paid for the reward line, quantity) by offer type."""
        paid = np.where(otype == "free_item", 0.0, np.where(otype == "discount", np.maximum(price - value, 0.0), price))
        return np.round(paid, 2), np.where(otype == "bogo", 2, 1)

    def expected_paid(self, otype: np.ndarray, value: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """E[amount paid for the reward line] over the category's products."""
        out = np.empty(len(otype))
        for i, (t, v, c) in enumerate(zip(otype, value, cat, strict=True)):
            prices = self.price[self.by_cat[c]]
            out[i] = self.reward_paid(np.full(len(prices), t), np.full(len(prices), v), prices)[0].mean()
        return out


def _hours(rng: np.random.Generator, persona: np.ndarray) -> np.ndarray:
    """Hour of day per visit: the persona's main daypart, a little spread, inside opening hours."""
    main = np.array([max(HOUR_MIXTURES[p], key=lambda m: m[2])[:2] for p in PERSONAS])
    return np.clip(rng.normal(main[persona, 0], main[persona, 1]), 6.0, 21.4)


def _recent_visits(transactions: pd.DataFrame, ids: np.ndarray, start: pd.Timestamp) -> np.ndarray:
    """Receipts in the 28 days before ``start`` per customer (order of ``ids``)."""
    tx = transactions[(transactions["ts"] >= start - pd.Timedelta(days=28)) & (transactions["ts"] < start)
                      & ~transactions["is_refund"].astype(bool)]
    counts = tx.groupby("customer_id")["transaction_id"].nunique()
    return counts.reindex(ids).fillna(0).to_numpy(dtype=float)

