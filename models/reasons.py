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
BIAS_COLUMNS = {"bias", "expected_value", "intercept", "BiasTerm", "__bias__"}
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


def _value_shown(v: np.ndarray) -> tuple:
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


@lru_cache(maxsize=4096)
def _phraser(name: str):
    """The function phrasing feature ``name`` from (value, category words, offer-type words), or None."""
    found = _phrasing(name)
    return found[0] if found is not None else None


@lru_cache(maxsize=4096)
def _phrasing(name: str):
    """(phraser, key) of feature ``name`` (see ``_TEMPLATES``), or None when it has no template."""
    if name in _TEMPLATES:
        return _TEMPLATES[name]
    if name.startswith("visit_share_"):
        part = name[len("visit_share_"):]
        if part == "before_11":
            return (lambda v, cat, otype: f"{_pct(v)} of visits before 11:00"), _pct_key
        if part in _DAYPART_WORDS:
            return (lambda v, cat, otype: f"{_pct(v)} of visits {_DAYPART_WORDS[part]}"), _pct_key
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


SMALL_BATCH_ROWS = 64  # up to this many rows, reasons are phrased row by row (faster there)


def _reason_codes_per_row(
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
    """``reason_codes`` row by row: the same reasons, for the few rows of an online decision (the
    vectorised path's fixed cost, ~2.5 ms, is more than a handful of rows cost one at a time)."""
    n = len(offer_categories)
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

    Per row, with r1 = max(1, max_reasons - 1): the speaking features with the largest positive
    contributions (ties: the earlier column), phrased, up to r1 distinct texts from the first 3 * r1
    places of the ranking; then the habit tags about the offer's category, then the other tags, up to
    ``max_reasons``. Vectorised over rows: each distinct phrase and tag list is built once.
    """
    n = len(offer_categories)
    descriptions = feature_descriptions() if descriptions is None else descriptions
    if n <= SMALL_BATCH_ROWS:
        return _reason_codes_per_row(habit_tags, offer_categories, feature_names, contributions, feature_values,
                                     cold_start, context_daypart, context_channel, max_reasons, descriptions)
    cold = np.zeros(n, dtype=bool) if cold_start is None else np.asarray(cold_start, dtype=bool)
    cols = [str(c) for c in feature_names] if feature_names is not None else []
    contrib = np.asarray(contributions, dtype=float) if contributions is not None and len(cols) else None
    varr = np.asarray(feature_values, dtype=object) if feature_values is not None and len(cols) else None
    category = _strings([offer_categories[i] for i in range(n)])
    cat_code, cat_names = pd.factorize(category)
    # cold start: the context speaks for them
    when = _DAYPART_WORDS.get(context_daypart or "", context_daypart or "now")
    lists = [[f"new customer: a popular {humanize(c)} offer {when} on {context_channel}"] for c in cat_names]
    outcome = cat_code.astype(np.int64)  # which of ``lists`` each row gets (a copy of)
    warm = np.flatnonzero(~cold)
    if not len(warm):
        return list(map(list.copy, map(lists.__getitem__, outcome.tolist())))

    book = _TextBook()
    offered, offered_row = _tag_candidates(habit_tags, warm, cat_code[warm], cat_names, book)
    r1 = max(1, max_reasons - 1)  # reasons from contributions; the last slot is kept for a habit tag
    width = max(r1, min(max_reasons, r1 + offered.shape[1]))
    chosen = np.full((len(warm), width), -1, dtype=np.int64)
    count = np.zeros(len(warm), dtype=np.int64)
    if contrib is not None and varr is not None:
        vcol = {c: j for j, c in enumerate(cols)}  # a repeated name reads its last column, as before
        speaks = np.asarray([_speaks(c) for c in cols], dtype=bool)
        rows = np.flatnonzero(~cold & ~np.isnan(contrib).all(axis=1))
        otype = varr[rows, vcol["offer_type"]] if "offer_type" in vcol else np.full(len(rows), None, dtype=object)
        phrases = _Phrases(cols, [vcol[c] for c in cols], varr, rows, category[rows], cat_code[rows], otype,
                           descriptions, book)
        at = np.searchsorted(warm, rows)
        # positive contributions of speaking features; 0 (not a reason) for the rest, NaN included
        work = np.fmax(contrib if len(rows) == n else contrib[rows], 0.0)
        work[:, ~speaks] = 0.0
        places = min(3 * r1, len(cols))  # how far down its ranking a row looks
        # every row looks at its first r1 places (unless it runs out of positive contributions):
        # rank and phrase those at once
        top = np.full((len(rows), min(r1, places)), -1, dtype=np.int64)
        for k in range(top.shape[1]):
            j = work.argmax(axis=1)  # the top of equal contributions, like a stable sort
            positive = np.flatnonzero(work[np.arange(len(rows)), j] > 0)
            top[positive, k] = j[positive]
            work[positive, j[positive]] = 0.0
        cells = np.flatnonzero(top.ravel() >= 0)
        ids = np.full(top.size, -1, dtype=np.int64)
        ids[cells] = phrases.texts(cells // top.shape[1], top.ravel()[cells])
        ids = ids.reshape(top.shape)
        for k in range(top.shape[1]):
            _append(chosen, count, at, ids[:, k])
        # the rows still short of r1 (empty or repeated phrases) look further, one place at a time
        live = np.flatnonzero((count[at] < r1) & (top[:, -1] >= 0))
        for _ in range(places - top.shape[1]):
            if not len(live):
                break
            j = work[live].argmax(axis=1)
            positive = work[live, j] > 0
            live, j = live[positive], j[positive]
            work[live, j] = 0.0
            _append(chosen, count, at[live], phrases.texts(live, j))
            live = live[count[at[live]] < r1]
    # the habit tags, on-topic first, while there is room
    for k in range(offered.shape[1]):
        room = np.flatnonzero(count < max_reasons)
        if not len(room):
            break
        _append(chosen, count, room, offered[offered_row[room], k])
    kept = np.minimum(count, max_reasons) if max_reasons >= 0 else np.maximum(count + max_reasons, 0)
    chosen[np.arange(width)[None, :] >= kept[:, None]] = -1
    # one list per distinct outcome, copied per row; nothing chosen: the model's ranking speaks
    fallback = np.where(kept == 0, cat_code[warm], -1)
    code, first = _group([chosen[:, k] for k in range(width)] + [fallback])
    texts = book.texts
    outcome[warm] = len(lists) + code
    lists += [
        [texts[t] for t in row if t >= 0] or [f"the model ranks this {humanize(cat_names[c])} offer highest for you"]
        for row, c in zip(chosen[first].tolist(), cat_code[warm[first]].tolist())
    ]
    return list(map(list.copy, map(lists.__getitem__, outcome.tolist())))


def _strings(values: list) -> np.ndarray:
    """``str`` of each value, as an object array (str values as they are)."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    if len(arr) and pd.api.types.infer_dtype(arr, skipna=False) != "string":
        arr[:] = [str(v) for v in values]
    return arr


def _group(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, one row per code) for rows grouped by equal values of every key array."""
    code, size = np.zeros(len(keys[0]) if keys else 0, dtype=np.int64), 1
    for key in keys:
        part, uniques = pd.factorize(key)
        if size * len(uniques) >= 2**62:  # renumber before the codes could overflow
            code, seen = pd.factorize(code)
            size = len(seen)
        code, size = code * len(uniques) + part, size * len(uniques)
    code, _ = pd.factorize(code)
    first = np.empty(int(code.max()) + 1 if len(code) else 0, dtype=np.int64)
    first[code[::-1]] = np.arange(len(code))[::-1]
    return code, first


def _append(chosen: np.ndarray, count: np.ndarray, rows: np.ndarray, ids: np.ndarray) -> None:
    """Append text ``ids[k]`` to row ``rows[k]``'s reasons unless it is empty (-1) or there already."""
    new = (ids >= 0) & ~(chosen[rows] == ids[:, None]).any(axis=1)
    rows, ids = rows[new], ids[new]
    chosen[rows, count[rows]] = ids
    count[rows] += 1


class _TextBook:
    """Distinct texts and their ids (equal texts share an id, so ids compare like the texts)."""

    def __init__(self):
        self.texts: list[str] = []
        self._ids: dict[str, int] = {}

    def id(self, text: str | None) -> int:
        if not text:
            return -1
        found = self._ids.get(text)
        if found is None:
            found = self._ids[text] = len(self.texts)
            self.texts.append(text)
        return found


def _tag_candidates(habit_tags, warm, cat_code, cat_names, book: _TextBook) -> tuple[np.ndarray, np.ndarray]:
    """(text ids of habit tags in the order they are offered, padded with -1: about the offer's
    category first, then the others; which of those rows each warm row uses)."""
    tags = [habit_tags[i] for i in warm.tolist()]
    # one look per distinct tag object (a customer's list is shared by their rows), then per content
    obj, obj_first = _group([np.fromiter(map(id, tags), dtype=np.int64, count=len(tags))])
    contents: dict[tuple, int] = {}
    obj_content = np.empty(len(obj_first), dtype=np.int64)
    for k, r in enumerate(obj_first.tolist()):
        t = tags[r] if tags[r] is not None else []
        texts = tuple(_tag_text(x) for x in ([t] if isinstance(t, str) else list(t)))
        obj_content[k] = contents.setdefault(texts, len(contents))
    by_content = list(contents)
    code, first = _group([obj_content[obj], cat_code])
    offered = []
    for r in first.tolist():
        texts = by_content[obj_content[obj[r]]]
        cat = cat_names[cat_code[r]]
        words = _CATEGORY_WORDS.get(cat, (humanize(cat),))
        on_topic = [t for t in texts if any(w in t for w in words)]
        offered.append([book.id(t) for t in on_topic + [t for t in texts if t not in on_topic]])
    ids = np.full((len(offered), max(map(len, offered), default=0)), -1, dtype=np.int64)
    for k, row in enumerate(offered):
        ids[k, : len(row)] = row
    return ids, code


class _Phrases:
    """Text ids of (row, feature) cells, each distinct phrase built once (see ``_TEMPLATES``)."""

    def __init__(self, cols, value_col, values, rows, category, cat_code, otype, descriptions, book):
        self.cols, self.value_col, self.values, self.rows = cols, value_col, values, rows
        self.category, self.otype, self.descriptions, self.book = category, otype, descriptions, book
        self.cat_code = cat_code
        if len(otype) and pd.api.types.infer_dtype(otype, skipna=False) == "string":
            self.otype_code = pd.factorize(otype)[0]
        else:  # the same object phrases the same; equal but different objects (1, 1.0, True) may not
            self.otype_code = pd.factorize(np.fromiter(map(id, otype), dtype=np.int64, count=len(otype)))[0]

    def texts(self, cells: np.ndarray, j: np.ndarray) -> np.ndarray:
        out = np.full(len(cells), -1, dtype=np.int64)
        if not len(cells):
            return out
        order = np.argsort(j, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(j[order]) != 0])
        for a, b in zip(starts.tolist(), np.r_[starts[1:], len(order)].tolist()):
            at = order[a:b]
            out[at] = self._feature(int(j[order[a]]), cells[at])
        return out

    def _feature(self, j: int, cells: np.ndarray) -> np.ndarray:
        name = self.cols[j]
        raw = self.values[self.rows[cells], self.value_col[j]]
        out = np.full(len(cells), -1, dtype=np.int64)
        if pd.api.types.infer_dtype(raw, skipna=False) not in ("floating", "integer", "mixed-integer-float"):
            for k, c in enumerate(cells.tolist()):  # str, bool, None, mixed: one at a time
                out[k] = self._phrase(name, raw[k], c)
            return out
        v = raw.astype(np.float64)  # float(value), as phrase() reads it
        found = _phrasing(name)
        if found is None:  # "description: value"
            sel = np.arange(len(cells))
            shown = _value_shown(v)
        else:
            sel = np.flatnonzero(~np.isnan(v))  # NaN says nothing
            shown = found[1](v[sel], self.cat_code[cells[sel]], self.otype_code[cells[sel]])
        keys = [np.asarray(k).view(np.int64) if np.asarray(k).dtype == np.float64 else np.asarray(k)
                for k in (shown if isinstance(shown, tuple) else (shown,))]
        if not len(sel):
            return out
        code, first = _group(keys)
        ids = np.asarray([self._phrase(name, raw[sel[r]], int(cells[sel[r]])) for r in first.tolist()], dtype=np.int64)
        out[sel] = ids[code]
        return out

    def _phrase(self, name: str, value, cell: int) -> int:
        return self.book.id(phrase(name, value, self.category[cell], self.otype[cell], self.descriptions))


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
        # A path credits at most a few features: keep, per tree, the columns of the features it
        # splits on (over its leaves), in tree order, so rows add only those up.
        self._sizes = np.asarray(sizes, dtype=np.int64)
        self._columns = []
        for t, (lo, size) in enumerate(zip(self.offsets.tolist(), sizes)):
            block = self.leaf_contrib[lo: lo + size, :n_f]
            for f in np.flatnonzero((block != 0).any(axis=0)).tolist():
                self._columns.append((t, f, np.ascontiguousarray(block[:, f])))
        bias, total = [], 0.0
        for b in self.leaf_contrib[self.offsets, n_f].tolist():
            total += b  # summed in tree order, as the rows' contributions are
            bias.append(total)
        self._bias = np.asarray(bias)

    def contributions(self, leaves: np.ndarray, block_rows: int = 65536) -> np.ndarray:
        """(n_rows, n_features + 1) from ``booster.predict(X, pred_leaf=True)``; last column the bias."""
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(leaves), -1)
        n, n_t = leaves.shape
        if n * n_t <= 20_000:  # a few rows: a dense gather is quickest
            return self.leaf_contrib[leaves + self.offsets[None, :n_t]].sum(axis=1)
        bad = np.flatnonzero(((leaves < 0) | (leaves >= self._sizes[None, :n_t])).any(axis=0))
        if len(bad):
            t = int(bad[0])
            raise ValueError(
                f"TreePaths.contributions: leaf indices of tree {t} must be in [0, {int(self._sizes[t])}), "
                f"got {int(leaves[:, t].min())}..{int(leaves[:, t].max())}"
            )
        n_f = len(self.feature_names)
        out = np.empty((n, n_f + 1))
        for lo in range(0, n, block_rows):
            by_tree = np.ascontiguousarray(leaves[lo: lo + block_rows].T)
            acc = np.zeros((n_f + 1, by_tree.shape[1]))
            part = np.empty(by_tree.shape[1])
            # per (tree, feature it splits on), in tree order: each sum adds the same terms in the
            # same order as the dense product did (minus exact zeros), so the values are identical
            for t, f, column in self._columns:
                if t >= n_t:
                    break
                np.take(column, by_tree[t], out=part, mode="clip")  # indices checked above
                np.add(acc[f], part, out=acc[f])
            acc[n_f] = self._bias[n_t - 1] if n_t else 0.0
            out[lo: lo + by_tree.shape[1]] = acc.T
        return out

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
