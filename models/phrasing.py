"""Phrasing of reasons: a feature value or a habit tag in plain words, and the words of the vocabularies.

The words come from the data and the program file, never from a list here: a category (a hierarchy
node) is its own name with underscores as spaces ("baby_care" -> "baby care"), and a daypart is its
hours as the program file declares them ("before 9:00", "between 11:00 and 14:00"; the default
program's when no program is given, ``daypart_words(name, program)`` otherwise).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from data_contracts.program import Program


def _daypart_hours(program: Program | None = None) -> dict[str, tuple[float, float]]:
    from features.catalogue import DAYPARTS

    parts = DAYPARTS if program is None else program.daypart_edges
    return {name: (start, end) for name, start, end in parts}


@lru_cache(maxsize=1)
def feature_descriptions() -> dict[str, str]:
    """Description of each profile feature, from the feature catalogue when it is there."""
    try:
        from features.catalogue import FEATURES
    except ImportError:  # the catalogue is optional for the policy
        return {}
    return {f.name: str(f.description) for f in FEATURES if getattr(f, "name", None)}


@lru_cache(maxsize=4096)
def humanize(name: str) -> str:
    """``share_visits_before_11`` -> ``share visits before 11``."""
    return " ".join(str(name).replace("-", "_").replace("_", " ").split())


def _num(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


@lru_cache(maxsize=256)
def _words(category) -> str:
    return humanize(category) if category is not None else "this category"


# What a phrase shows of a value, as numbers, for arrays of values: reason_codes phrases each
# distinct (feature, what is shown, category, offer type) once.
def _pct_shown(v: np.ndarray) -> np.ndarray:
    """``_pct(v)``: ``f"{100 * v:.0f}"`` rounds half to even, like ``np.rint``."""
    return np.rint(100 * v)


def _int_shown(v: np.ndarray) -> np.ndarray:
    """``f"{v:.0f}"``."""
    return np.rint(v)


def _cents_shown(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``f"{v:.2f}"``: ``rint(100 * v)`` where that is surely the decimal rounding (not near a tie),
    else the value itself."""
    hundred = 100 * v
    unsure = ~(np.abs(hundred) < 1e8) | (np.abs(hundred - np.floor(hundred) - 0.5) < 1e-6)
    return np.where(unsure, np.nan, np.rint(hundred)), np.where(unsure, v, 0.0)


def _clock_shown(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``int(v)`` and ``round(v % 1 * 60)`` (numpy's mod has Python's sign convention)."""
    return np.trunc(v), np.rint(np.mod(v, 1) * 60)


def value_shown(v: np.ndarray) -> tuple:
    """``format_value(v)`` for numbers that are not bools: a whole number, else two decimals."""
    whole = np.abs(v - np.rint(v)) < 1e-9
    cents, rest = _cents_shown(v)
    return whole, np.where(whole, np.rint(v), cents), np.where(whole, 0.0, rest)


# name -> (phrase from (value, category words, offer-type words), key). The key maps arrays of
# (values, category codes, offer-type codes) to arrays such that equal keys give equal phrases:
# what the phrase shows of the value, every threshold it compares the value with, and the category
# or offer type when the phrase names them.
_TEMPLATES = {
    "cust_visit_share_reward_category": (
        lambda v, cat, otype: f"buys {cat} on {_pct(v)} of visits" if v >= 0.1 else f"rarely buys {cat}: room to grow",
        lambda v, cat, otype: (_pct_shown(v), v >= 0.1, cat)),
    "cust_share_of_reward_category": (
        lambda v, cat, otype: f"{_pct(v)} of spend goes to {cat}",
        lambda v, cat, otype: (_pct_shown(v), cat)),
    "cust_attach_rate_reward_category": (
        lambda v, cat, otype: (
            f"adds {cat} to {_pct(v)} of related visits" if v >= 0.2 else f"rarely adds {cat}: room to grow"),
        lambda v, cat, otype: (_pct_shown(v), v >= 0.2, cat)),
    "cust_redeem_rate_reward_category": (
        lambda v, cat, otype: f"redeemed {_pct(v)} of earlier {cat} offers",
        lambda v, cat, otype: (_pct_shown(v), cat)),
    "cust_redeem_rate_reward_category_shrunk": (
        lambda v, cat, otype: f"redeems about {_pct(v)} of {cat} offers",
        lambda v, cat, otype: (_pct_shown(v), cat)),
    "cust_redeemed_reward_category": (
        lambda v, cat, otype: f"redeemed {v:.0f} earlier {cat} offers",
        lambda v, cat, otype: (_int_shown(v), cat)),
    "cust_sent_reward_category": (
        lambda v, cat, otype: f"received {v:.0f} earlier {cat} offers",
        lambda v, cat, otype: (_int_shown(v), cat)),
    "cust_redeem_rate_offer_type": (
        lambda v, cat, otype: f"redeemed {_pct(v)} of earlier {otype} offers",
        lambda v, cat, otype: (_pct_shown(v), otype)),
    "cust_redeem_rate_offer_type_shrunk": (
        lambda v, cat, otype: f"redeems about {_pct(v)} of {otype} offers",
        lambda v, cat, otype: (_pct_shown(v), otype)),
    "cust_visit_share_send_daypart": (
        lambda v, cat, otype: f"{_pct(v)} of visits fall in this part of the day",
        lambda v, cat, otype: _pct_shown(v)),
    "days_since_last_visit": (
        lambda v, cat, otype: f"last visit {v:.0f} days ago", lambda v, cat, otype: _int_shown(v)),
    "visits_30d": (lambda v, cat, otype: f"{v:.0f} visits in the last 30 days", lambda v, cat, otype: _int_shown(v)),
    "visits_90d": (lambda v, cat, otype: f"{v:.0f} visits in the last 90 days", lambda v, cat, otype: _int_shown(v)),
    "offers_redeem_rate": (
        lambda v, cat, otype: f"redeemed {_pct(v)} of offers sent", lambda v, cat, otype: _pct_shown(v)),
    "weekend_visit_share": (
        lambda v, cat, otype: f"{_pct(v)} of visits at weekends", lambda v, cat, otype: _pct_shown(v)),
    "avg_basket_365d": (lambda v, cat, otype: f"usual basket {v:.2f}", lambda v, cat, otype: _cents_shown(v)),
    "visit_hour_mean": (
        lambda v, cat, otype: f"usually comes in around {int(v) % 24:02d}:{int(round(v % 1 * 60)) % 60:02d}",
        lambda v, cat, otype: _clock_shown(v)),
}


def _taxonomy_templates() -> dict:
    """The taxonomy columns (``models.offer_taxonomy``): the offer's own node (``node_d0_*``) is named as the
    data names the offer's reward category; the levels above as its wider category; the offer's products."""
    out = {}
    for d in range(3):
        where = (lambda cat: cat) if d == 0 else (lambda cat: f"{cat}'s wider category")
        out[f"node_d{d}_spend_share_365d"] = (
            lambda v, cat, otype, w=where: f"{_pct(v)} of spend goes to {w(cat)}",
            lambda v, cat, otype: (_pct_shown(v), cat))
        out[f"node_d{d}_visit_share_365d"] = (
            lambda v, cat, otype, w=where: (f"buys {w(cat)} on {_pct(v)} of visits" if v >= 0.1
                                            else f"rarely buys {w(cat)}: room to grow"),
            lambda v, cat, otype: (_pct_shown(v), v >= 0.1, cat))
        out[f"node_d{d}_days_since_last_purchase"] = (
            lambda v, cat, otype, w=where: f"last bought {w(cat)} {v:.0f} days ago",
            lambda v, cat, otype: (_int_shown(v), cat))
        for days in (30, 90, 180):
            out[f"node_d{d}_visits_{days}d"] = (
                lambda v, cat, otype, w=where, days=days: f"bought {w(cat)} on {v:.0f} visits in the last {days} days",
                lambda v, cat, otype: (_int_shown(v), cat))
    out.update({
        "offer_product_purchases": (lambda v, cat, otype: f"bought this offer's products {v:.0f} times before",
                                    lambda v, cat, otype: _int_shown(v)),
        "offer_product_purchases_90d": (
            lambda v, cat, otype: f"bought this offer's products {v:.0f} times in the last 90 days",
            lambda v, cat, otype: _int_shown(v)),
        "days_since_offer_product_purchase": (
            lambda v, cat, otype: f"last bought this offer's products {v:.0f} days ago",
            lambda v, cat, otype: _int_shown(v)),
        "offer_products_bought_share": (lambda v, cat, otype: f"has bought {_pct(v)} of this offer's products",
                                        lambda v, cat, otype: _pct_shown(v)),
    })
    return out


_TEMPLATES.update(_taxonomy_templates())


@lru_cache(maxsize=4096)
def _phraser(name: str):
    """The function phrasing feature ``name`` from (value, category words, offer-type words), or None."""
    found = phrasing(name)
    return found[0] if found is not None else None


@lru_cache(maxsize=4096)
def phrasing(name: str):
    """(phraser, key) of feature ``name`` (see ``_TEMPLATES``), or None when it has no template."""
    if name in _TEMPLATES:
        return _TEMPLATES[name]
    if name.startswith("visit_share_"):
        part = name[len("visit_share_"):]
        if part == "before_11":
            return (lambda v, cat, otype: f"{_pct(v)} of visits before 11:00"), _pct_key
        if part in _daypart_hours():
            words = daypart_words(part)
            return (lambda v, cat, otype: f"{_pct(v)} of visits {words}"), _pct_key
        what = humanize(part)
        return (
            lambda v, cat, otype: f"buys {what} on {_pct(v)} of visits" if v >= 0.1 else f"rarely buys {what}",
            lambda v, cat, otype: (_pct_shown(v), v >= 0.1),
        )
    if name.startswith("spend_share_"):
        what = humanize(name[len("spend_share_"):])
        return (lambda v, cat, otype: f"{_pct(v)} of spend goes to {what}"), _pct_key
    m = re.fullmatch(r"attach_(.+)_given_(.+)", name)
    if m:
        target, given = humanize(m.group(1)), humanize(m.group(2))
        return (
            lambda v, cat, otype: (
                f"rarely adds {target} to {given} ({_pct(v)} of {given} visits)" if v < 0.2
                else f"adds {target} to {_pct(v)} of {given} visits"),
            lambda v, cat, otype: (_pct_shown(v), v < 0.2),
        )
    return None


def _pct_key(v, cat, otype):
    return _pct_shown(v)


def phrase(name: str, value, category, offer_type, descriptions: Mapping[str, str]) -> str | None:
    """One feature of one (customer, offer) row in plain words; None when it says nothing useful."""
    if not speaks(name):
        return None  # the offer's mechanics and the moment alone say nothing about this customer
    v = _num(value)
    fn = _phraser(name)
    if fn is not None:
        return fn(v, _words(category), _words(offer_type)) if v is not None else None
    label = descriptions.get(name, humanize(name)).rstrip(".")
    shown = format_value(value)
    return f"{label}: {shown}" if shown is not None else None


@lru_cache(maxsize=4096)
def speaks(name: str) -> bool:
    """Whether a feature can be phrased as a reason about the customer (offer mechanics and timing cannot)."""
    if name.startswith("offer_product"):  # the customer's history with the offer's own products
        return True
    return not (name.startswith(("send_", "offer_")) or name in ("reward_category", "offer_type"))


def format_value(value) -> str | None:
    """A short rendering of a feature value, or None when there is nothing to show."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    v = _num(value)
    if v is not None:
        return str(int(round(v))) if abs(v - round(v)) < 1e-9 else f"{v:.2f}"
    text = str(value)
    return text if text and text.lower() not in {"nan", "none", "<na>", "nat"} else None


@lru_cache(maxsize=4096)
def tag_text(tag) -> str:
    return humanize(tag) if re.fullmatch(r"[A-Za-z0-9_\-:]+", str(tag)) else str(tag)


def category_words(category: str) -> tuple[str, ...]:
    """The words of habit tags that concern ``category``: its node name in words ("baby care")."""
    return (humanize(category),)


def daypart_words(daypart: str | None, program: Program | None = None) -> str:
    """A daypart in words from its hours in ``program`` (default: the built-in program): 'before 9:00';
    a name the program does not declare in words of its own; 'now' without one."""
    from features.catalogue import daypart_hours_text

    hours = _daypart_hours(program).get(daypart or "")
    if hours is not None:
        return daypart_hours_text(*hours)
    return humanize(daypart) if daypart else "now"
