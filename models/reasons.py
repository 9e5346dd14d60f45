"""Reason codes: why an offer was chosen, in plain words, from model contributions and habit tags.

The features that pushed P(redeem) up the most (LightGBM pred_contrib > 0) are phrased with the
customer's own values ("buys coffee on 80% of visits"), then the customer's habit tags that concern
the offer's category ("morning coffee regular"), then other tags.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

# Columns of a pred_contrib frame that are not features.
_BIAS_COLUMNS = {"bias", "expected_value", "intercept", "BiasTerm", "__bias__"}
# Words in habit tags that concern a reward category.
_CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "coffee": ("coffee",),
    "tea": ("tea",),
    "cold_drinks": ("cold drink",),
    "bakery": ("bakery", "pastry", "croissant"),
    "breakfast": ("breakfast", "morning"),
    "lunch": ("lunch",),
    "snacks": ("snack",),
    "merchandise": ("merchandise",),
}
_DAYPART_WORDS = {
    "before_9": "before 9:00", "9_to_11": "between 9:00 and 11:00", "11_to_14": "between 11:00 and 14:00",
    "14_to_17": "between 14:00 and 17:00", "after_17": "after 17:00",
}


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


_TEMPLATES = {
    "cust_visit_share_reward_category": lambda v, cat, otype: (
        f"buys {cat} on {_pct(v)} of visits" if v >= 0.1 else f"rarely buys {cat}: room to grow"),
    "cust_share_of_reward_category": lambda v, cat, otype: f"{_pct(v)} of spend goes to {cat}",
    "cust_attach_rate_reward_category": lambda v, cat, otype: (
        f"adds {cat} to {_pct(v)} of related visits" if v >= 0.2 else f"rarely adds {cat}: room to grow"),
    "cust_redeem_rate_reward_category": lambda v, cat, otype: f"redeemed {_pct(v)} of earlier {cat} offers",
    "cust_redeem_rate_reward_category_shrunk": lambda v, cat, otype: f"redeems about {_pct(v)} of {cat} offers",
    "cust_redeemed_reward_category": lambda v, cat, otype: f"redeemed {v:.0f} earlier {cat} offers",
    "cust_sent_reward_category": lambda v, cat, otype: f"received {v:.0f} earlier {cat} offers",
    "cust_redeem_rate_offer_type": lambda v, cat, otype: f"redeemed {_pct(v)} of earlier {otype} offers",
    "cust_redeem_rate_offer_type_shrunk": lambda v, cat, otype: f"redeems about {_pct(v)} of {otype} offers",
    "cust_visit_share_send_daypart": lambda v, cat, otype: f"{_pct(v)} of visits fall in this part of the day",
    "days_since_last_visit": lambda v, cat, otype: f"last visit {v:.0f} days ago",
    "visits_30d": lambda v, cat, otype: f"{v:.0f} visits in the last 30 days",
    "visits_90d": lambda v, cat, otype: f"{v:.0f} visits in the last 90 days",
    "offers_redeem_rate": lambda v, cat, otype: f"redeemed {_pct(v)} of offers sent",
    "weekend_visit_share": lambda v, cat, otype: f"{_pct(v)} of visits at weekends",
    "avg_basket_365d": lambda v, cat, otype: f"usual basket {v:.2f}",
    "visit_hour_mean": lambda v, cat, otype: f"usually comes in around {int(v) % 24:02d}:{int(round(v % 1 * 60)) % 60:02d}",
}


@lru_cache(maxsize=4096)
def _phraser(name: str):
    """The function phrasing feature ``name`` from (value, category words, offer-type words), or None."""
    if name in _TEMPLATES:
        return _TEMPLATES[name]
    if name.startswith("visit_share_"):
        part = name[len("visit_share_"):]
        if part == "before_11":
            return lambda v, cat, otype: f"{_pct(v)} of visits before 11:00"
        if part in _DAYPART_WORDS:
            return lambda v, cat, otype: f"{_pct(v)} of visits {_DAYPART_WORDS[part]}"
        what = humanize(part)
        return lambda v, cat, otype: f"buys {what} on {_pct(v)} of visits" if v >= 0.1 else f"rarely buys {what}"
    if name.startswith("spend_share_"):
        what = humanize(name[len("spend_share_"):])
        return lambda v, cat, otype: f"{_pct(v)} of spend goes to {what}"
    m = re.fullmatch(r"attach_(.+)_given_(.+)", name)
    if m:
        target, given = humanize(m.group(1)), humanize(m.group(2))
        return lambda v, cat, otype: (
            f"rarely adds {target} to {given} ({_pct(v)} of {given} visits)" if v < 0.2
            else f"adds {target} to {_pct(v)} of {given} visits")
    return None


def phrase(name: str, value, category, offer_type, descriptions: Mapping[str, str]) -> str | None:
    """One feature of one (customer, offer) row in plain words; None when it says nothing useful."""
    if not _speaks(name):
        return None  # the offer's mechanics and the moment alone say nothing about this customer
    v = _num(value)
    fn = _phraser(name)
    if fn is not None:
        return fn(v, _words(category), _words(offer_type)) if v is not None else None
    label = descriptions.get(name, humanize(name)).rstrip(".")
    shown = format_value(value)
    return f"{label}: {shown}" if shown is not None else None


@lru_cache(maxsize=4096)
def _speaks(name: str) -> bool:
    """Whether a feature can be phrased as a reason about the customer (offer mechanics and timing cannot)."""
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
def _tag_text(tag) -> str:
    return humanize(tag) if re.fullmatch(r"[A-Za-z0-9_\-:]+", str(tag)) else str(tag)


def reason_codes(
    habit_tags: Sequence,
    offer_categories: Sequence[str],
    feature_names: Sequence[str] | None = None,
    contributions: np.ndarray | None = None,
    feature_values: np.ndarray | None = None,
    cold_start: Sequence[bool] | None = None,
    context_daypart: str | None = None,
    context_channel: str | None = None,
    max_reasons: int = 3,
    descriptions: Mapping[str, str] | None = None,
) -> list[list[str]]:
    """Up to ``max_reasons`` plain-word reasons per chosen (customer, offer) row.

    ``contributions`` (float) and ``feature_values`` (object) have one row per entry of
    ``offer_categories`` and one column per ``feature_names`` entry (NaN rows for cold-start
    customers). Cold-start rows explain themselves from the context.
    """
    n = len(offer_categories)
    descriptions = feature_descriptions() if descriptions is None else descriptions
    cold = np.zeros(n, dtype=bool) if cold_start is None else np.asarray(cold_start, dtype=bool)
    cols = [str(c) for c in feature_names] if feature_names is not None else []
    contrib = np.asarray(contributions, dtype=float) if contributions is not None and len(cols) else None
    varr = np.asarray(feature_values, dtype=object) if feature_values is not None and len(cols) else None
    vcol = {c: j for j, c in enumerate(cols)}
    speaks = np.asarray([_speaks(c) for c in cols], dtype=bool)
    order = None
    if contrib is not None:
        ranked = np.where(np.isnan(contrib) | ~speaks[None, :], -np.inf, contrib)
        order = np.argsort(-ranked, axis=1, kind="stable")[:, : max(1, max_reasons - 1) * 3]
        all_nan = np.isnan(contrib).all(axis=1)  # once for every row, not per row in the loop
    out: list[list[str]] = []
    for i in range(n):
        category = str(offer_categories[i])
        if cold[i]:
            when = _DAYPART_WORDS.get(context_daypart or "", context_daypart or "now")
            out.append([f"new customer: a popular {humanize(category)} offer {when} on {context_channel}"])
            continue
        def value_of(name: str, i: int = i):
            return varr[i, vcol[name]] if varr is not None and name in vcol else None

        otype = value_of("offer_type")
        reasons: list[str] = []
        # the strongest positive contributions, phrased (keep one slot for a habit tag)
        if order is not None and not all_nan[i]:
            r = contrib[i]
            for j in order[i]:
                if len(reasons) >= max(1, max_reasons - 1) or not r[j] > 0:
                    break
                name = str(cols[j])
                text = phrase(name, value_of(name), category, otype, descriptions)
                if text and text not in reasons:
                    reasons.append(text)
        tags = habit_tags[i] if habit_tags[i] is not None else []
        tags = [_tag_text(t) for t in ([tags] if isinstance(tags, str) else list(tags))]
        words = _CATEGORY_WORDS.get(category, (humanize(category),))
        on_topic = [t for t in tags if any(w in t for w in words)]
        for t in on_topic + [t for t in tags if t not in on_topic]:
            if len(reasons) >= max_reasons:
                break
            if t not in reasons:
                reasons.append(t)
        out.append(reasons[:max_reasons] or [f"the model ranks this {humanize(category)} offer highest for you"])
    return out


class TreePaths:
    """Per-feature contributions of a LightGBM model along each row's decision path (Saabas).

    Each split on a row's path credits its feature with the change in node value, so per row the
    contributions plus the bias add up to the raw score, like ``pred_contrib`` (TreeSHAP) but at the
    cost of a prediction: LightGBM finds the leaves (``pred_leaf``), and each leaf's path
    contributions are precomputed from ``Booster.dump_model()``. ``check`` compares the sums with
    the booster's raw scores.
    """

    def __init__(self, dump: dict):
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("TreePaths supports single-output models only")
        self.feature_names = list(dump["feature_names"])
        n_f = len(self.feature_names)
        trees = [t["tree_structure"] for t in dump["tree_info"]]
        sizes = [max(int(t.get("num_leaves", 1)), 1) for t in dump["tree_info"]]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.leaf_contrib = np.zeros((int(sum(sizes)), n_f + 1))
        self.leaf_value = np.zeros(int(sum(sizes)))
        objective = str(dump.get("objective", ""))
        sigmoid = [part for part in objective.split() if part.startswith("sigmoid:")]
        # binary objective: P = 1 / (1 + exp(-sigmoid * raw)); None for anything else
        self.sigmoid = float(sigmoid[0].split(":")[1]) if objective.startswith("binary") and sigmoid else None
        for t, root in enumerate(trees):
            base = float(root.get("internal_value", root.get("leaf_value", 0.0)))
            stack = [(root, np.zeros(n_f))]
            while stack:
                node, acc = stack.pop()
                if "split_feature" not in node:
                    row = self.offsets[t] + int(node.get("leaf_index", 0))
                    self.leaf_contrib[row, :n_f] = acc
                    self.leaf_contrib[row, n_f] = base
                    self.leaf_value[row] = float(node["leaf_value"])
                    continue
                f, here = int(node["split_feature"]), float(node["internal_value"])
                for child in (node["left_child"], node["right_child"]):
                    value = float(child["internal_value"] if "split_feature" in child else child["leaf_value"])
                    nxt = acc.copy()
                    nxt[f] += value - here
                    stack.append((child, nxt))

    def contributions(self, leaves: np.ndarray) -> np.ndarray:
        """(n_rows, n_features + 1) from ``booster.predict(X, pred_leaf=True)``; last column the bias."""
        from scipy import sparse

        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(leaves), -1)
        n, n_t = leaves.shape
        if n * n_t <= 20_000:  # a few rows: a dense gather beats building a sparse matrix
            return self.leaf_contrib[leaves + self.offsets[None, :n_t]].sum(axis=1)
        cols = (leaves + self.offsets[None, :n_t]).ravel()
        indicator = sparse.csr_matrix(
            (np.ones(len(cols)), cols, np.arange(0, n * n_t + 1, n_t)), shape=(n, len(self.leaf_contrib))
        )
        return np.asarray(indicator @ self.leaf_contrib)

    def raw_scores(self, leaves: np.ndarray) -> np.ndarray:
        """The raw scores (log-odds) of rows from their leaves: the sum of the leaf values."""
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(leaves), -1)
        return self.leaf_value[leaves + self.offsets[None, : leaves.shape[1]]].sum(axis=1)

    def probabilities(self, leaves: np.ndarray) -> np.ndarray:
        if self.sigmoid is None:
            raise ValueError("TreePaths.probabilities needs a binary objective")
        return 1.0 / (1.0 + np.exp(-self.sigmoid * self.raw_scores(leaves)))

    def check(self, booster, X: np.ndarray, atol: float = 1e-6) -> float:
        """Largest gap between the contribution sums and the booster's raw scores on ``X``."""
        X = np.asarray(X, dtype=np.float64)
        raw = np.asarray(booster.predict(X, raw_score=True, num_threads=1))
        leaves = booster.predict(X, pred_leaf=True, num_threads=1)
        gap = float(np.max(np.abs(self.contributions(leaves).sum(axis=1) - raw))) if len(raw) else 0.0
        if not gap <= atol:
            raise ValueError(f"TreePaths: contributions do not add up to the raw scores (gap {gap:.3g} > {atol})")
        return gap
