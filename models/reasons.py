"""Reason codes: why an offer was chosen, in plain words, from model contributions and habit tags.

The features that pushed P(redeem) up the most (positive contributions) are phrased with the
customer's own values ("buys baby care on 80% of visits"), then the customer's habit tags that concern
the offer's category ("baby care regular"), then other tags. The rules are declared once
(``contribution_slots``, ``ranking_depth``, ``tags_in_order``, ``cold_start_reason``,
``fallback_reason``); ``reason_codes`` applies them row by row for the few rows of an online
decision and vectorised for lists, and a test holds the two to the same output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from models.phrasing import (  # noqa: F401  (humanize, phrase, format_value: importable from here as before)
    format_value,
    category_words,
    daypart_words,
    feature_descriptions,
    humanize,
    phrase,
    phrasing,
    speaks,
    tag_text,
    value_shown,
)
from models.tree_paths import TreePaths  # noqa: F401  (importable from here as before)

# Columns of a pred_contrib frame that are not features.
BIAS_COLUMNS = {"bias", "expected_value", "intercept", "BiasTerm", "__bias__"}


# --------------------------------------------------------------------------------------------
# The rules, declared once: both paths below read them
# --------------------------------------------------------------------------------------------

SMALL_BATCH_ROWS = 64  # up to this many rows, reasons are phrased row by row (faster there)


def contribution_slots(max_reasons: int) -> int:
    """How many reasons come from model contributions: all but one slot, kept for a habit tag."""
    return max(1, max_reasons - 1)


def ranking_depth(max_reasons: int) -> int:
    """How far down its contribution ranking a row looks for distinct phrases."""
    return 3 * contribution_slots(max_reasons)


def cold_start_reason(category, context_daypart: str | None, context_channel: str | None, program=None) -> str:
    """The reason of a customer we know nothing about: the context speaks for them (its daypart in the
    hours ``program`` declares; default the built-in program's)."""
    return (f"new customer: a popular {humanize(category)} offer {daypart_words(context_daypart, program)} "
            f"on {context_channel}")


def fallback_reason(category) -> str:
    """The reason when nothing else speaks: the model's ranking."""
    return f"the model ranks this {humanize(category)} offer highest for you"


def tags_in_order(tags, category: str) -> list[str]:
    """A customer's habit tags as texts, those about the offer's ``category`` first."""
    tags = [] if tags is None else tags
    texts = [tag_text(t) for t in ([tags] if isinstance(tags, str) else list(tags))]
    words = category_words(category)
    on_topic = [t for t in texts if any(w in t for w in words)]
    return on_topic + [t for t in texts if t not in on_topic]


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
    program=None,
) -> list[list[str]]:
    """``reason_codes`` row by row: the same reasons, for the few rows of an online decision (the
    vectorised path's fixed cost, ~2.5 ms, is more than a handful of rows cost one at a time)."""
    n = len(offer_categories)
    cold = np.zeros(n, dtype=bool) if cold_start is None else np.asarray(cold_start, dtype=bool)
    cols = [str(c) for c in feature_names] if feature_names is not None else []
    contrib = np.asarray(contributions, dtype=float) if contributions is not None and len(cols) else None
    varr = np.asarray(feature_values, dtype=object) if feature_values is not None and len(cols) else None
    vcol = {c: j for j, c in enumerate(cols)}
    speaking = np.asarray([speaks(c) for c in cols], dtype=bool)
    order = None
    if contrib is not None:
        ranked = np.where(np.isnan(contrib) | ~speaking[None, :], -np.inf, contrib)
        order = np.argsort(-ranked, axis=1, kind="stable")[:, : ranking_depth(max_reasons)]
        all_nan = np.isnan(contrib).all(axis=1)  # once for every row, not per row in the loop
    out: list[list[str]] = []
    for i in range(n):
        category = str(offer_categories[i])
        if cold[i]:
            out.append([cold_start_reason(category, context_daypart, context_channel, program)])
            continue
        def value_of(name: str, i: int = i):
            return varr[i, vcol[name]] if varr is not None and name in vcol else None

        otype = value_of("offer_type")
        reasons: list[str] = []
        # the strongest positive contributions, phrased (keep one slot for a habit tag)
        if order is not None and not all_nan[i]:
            r = contrib[i]
            for j in order[i]:
                if len(reasons) >= contribution_slots(max_reasons) or not r[j] > 0:
                    break
                name = str(cols[j])
                text = phrase(name, value_of(name), category, otype, descriptions)
                if text and text not in reasons:
                    reasons.append(text)
        for t in tags_in_order(habit_tags[i], category):
            if len(reasons) >= max_reasons:
                break
            if t not in reasons:
                reasons.append(t)
        out.append(reasons[:max_reasons] or [fallback_reason(category)])
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
    program=None,
) -> list[list[str]]:
    """Up to ``max_reasons`` plain-word reasons per chosen (customer, offer) row.

    ``contributions`` (float) and ``feature_values`` (object) have one row per entry of
    ``offer_categories`` and one column per ``feature_names`` entry (NaN rows for cold-start
    customers). Cold-start rows explain themselves from the context (its daypart in ``program``'s hours).

    Per row, with r1 = contribution_slots(max_reasons): the speaking features with the largest positive
    contributions (ties: the earlier column), phrased, up to r1 distinct texts from the first 3 * r1
    places of the ranking; then the habit tags about the offer's category, then the other tags, up to
    ``max_reasons``. Vectorised over rows: each distinct phrase and tag list is built once.
    """
    n = len(offer_categories)
    descriptions = feature_descriptions() if descriptions is None else descriptions
    if n <= SMALL_BATCH_ROWS:
        return _reason_codes_per_row(habit_tags, offer_categories, feature_names, contributions, feature_values,
                                     cold_start, context_daypart, context_channel, max_reasons, descriptions,
                                     program)
    cold = np.zeros(n, dtype=bool) if cold_start is None else np.asarray(cold_start, dtype=bool)
    cols = [str(c) for c in feature_names] if feature_names is not None else []
    contrib = np.asarray(contributions, dtype=float) if contributions is not None and len(cols) else None
    varr = np.asarray(feature_values, dtype=object) if feature_values is not None and len(cols) else None
    category = _strings([offer_categories[i] for i in range(n)])
    cat_code, cat_names = pd.factorize(category)
    # cold start: the context speaks for them
    lists = [[cold_start_reason(c, context_daypart, context_channel, program)] for c in cat_names]
    outcome = cat_code.astype(np.int64)  # which of ``lists`` each row gets (a copy of)
    warm = np.flatnonzero(~cold)
    if not len(warm):
        return list(map(list.copy, map(lists.__getitem__, outcome.tolist())))

    book = _TextBook()
    offered, offered_row = _tag_candidates(habit_tags, warm, cat_code[warm], cat_names, book)
    r1 = contribution_slots(max_reasons)
    width = max(r1, min(max_reasons, r1 + offered.shape[1]))
    chosen = np.full((len(warm), width), -1, dtype=np.int64)
    count = np.zeros(len(warm), dtype=np.int64)
    if contrib is not None and varr is not None:
        vcol = {c: j for j, c in enumerate(cols)}  # a repeated name reads its last column, as before
        speaking = np.asarray([speaks(c) for c in cols], dtype=bool)
        rows = np.flatnonzero(~cold & ~np.isnan(contrib).all(axis=1))
        otype = varr[rows, vcol["offer_type"]] if "offer_type" in vcol else np.full(len(rows), None, dtype=object)
        phrases = _Phrases(cols, [vcol[c] for c in cols], varr, rows, category[rows], cat_code[rows], otype,
                           descriptions, book)
        at = np.searchsorted(warm, rows)
        # positive contributions of speaking features; 0 (not a reason) for the rest, NaN included
        work = np.fmax(contrib if len(rows) == n else contrib[rows], 0.0)
        work[:, ~speaking] = 0.0
        places = min(ranking_depth(max_reasons), len(cols))  # how far down its ranking a row looks
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
        [texts[t] for t in row if t >= 0] or [fallback_reason(cat_names[c])]
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
        texts = tuple(tag_text(x) for x in ([t] if isinstance(t, str) else list(t)))
        obj_content[k] = contents.setdefault(texts, len(contents))
    by_content = list(contents)
    code, first = _group([obj_content[obj], cat_code])
    offered = []
    for r in first.tolist():
        texts = by_content[obj_content[obj[r]]]
        offered.append([book.id(t) for t in tags_in_order(list(texts), cat_names[cat_code[r]])])
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
        found = phrasing(name)
        if found is None:  # "description: value"
            sel = np.arange(len(cells))
            shown = value_shown(v)
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
