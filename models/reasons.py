"""Reason codes: why an offer was chosen, in plain words, from habit tags and model contributions."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

# Columns of a LightGBM pred_contrib frame that are not features.
_BIAS_COLUMNS = {"bias", "expected_value", "intercept", "BiasTerm", "__bias__"}


def feature_descriptions() -> dict[str, str]:
    """Plain-word description of each profile feature, from the feature catalogue when it is there."""
    try:
        from features.catalogue import FEATURES
    except ImportError:  # the catalogue is optional for the policy
        return {}
    out = {}
    for f in FEATURES:
        name = getattr(f, "name", None)
        desc = getattr(f, "description", None)
        if name and desc:
            out[name] = str(desc)
    return out


def humanize(name: str) -> str:
    """``share_visits_before_11`` -> ``share visits before 11``."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", str(name))).strip()


def format_value(value) -> str | None:
    """A short rendering of a feature value, or None when there is nothing to show."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if abs(value - round(value)) < 1e-9:
            return str(int(round(value)))
        return f"{value:.2f}"
    text = str(value)
    return text if text and text.lower() not in {"nan", "none", "<na>", "nat"} else None


def _tag_text(tag) -> str:
    return humanize(tag) if re.fullmatch(r"[A-Za-z0-9_\-:]+", str(tag)) else str(tag)


def reason_codes(
    habit_tags: Sequence,
    offer_categories: Sequence[str],
    contributions: pd.DataFrame | None = None,
    feature_values: pd.DataFrame | None = None,
    cold_start: Sequence[bool] | None = None,
    context_daypart: str | None = None,
    context_channel: str | None = None,
    max_reasons: int = 3,
    descriptions: Mapping[str, str] | None = None,
) -> list[list[str]]:
    """Up to ``max_reasons`` plain-word reasons per chosen (customer, offer) row.

    Habit tags that mention the offer's category come first, then the features that pushed the
    predicted redemption up the most (positive contributions, largest first), then other habit tags.
    Cold-start rows explain themselves from the context and offer popularity.
    """
    n = len(offer_categories)
    descriptions = feature_descriptions() if descriptions is None else descriptions
    cold = np.zeros(n, dtype=bool) if cold_start is None else np.asarray(cold_start, dtype=bool)
    contrib_cols, contrib = [], None
    if contributions is not None:
        contrib_cols = [c for c in contributions.columns if str(c) not in _BIAS_COLUMNS]
        contrib = contributions[contrib_cols].to_numpy(dtype=float)
    out: list[list[str]] = []
    for i in range(n):
        category = str(offer_categories[i])
        if cold[i]:
            where = f"{context_daypart} on {context_channel}" if context_daypart else "this context"
            out.append([f"new customer: popular {category} offer for {where}"][:max_reasons])
            continue
        tags = habit_tags[i] if habit_tags[i] is not None else []
        tags = [str(t) for t in (list(tags) if not isinstance(tags, str) else [tags])]
        on_topic = [_tag_text(t) for t in tags if category.replace("_", " ") in _tag_text(t)]
        reasons = list(on_topic)
        if contrib is not None and i < len(contrib):
            row = contrib[i]
            if not np.isnan(row).all():
                order = np.argsort(-np.nan_to_num(row, nan=-np.inf))
                for j in order:
                    if len(reasons) >= max_reasons or not row[j] > 0:
                        break
                    name = str(contrib_cols[j])
                    label = descriptions.get(name, humanize(name))
                    value = None
                    if feature_values is not None and name in feature_values.columns:
                        value = format_value(feature_values.iloc[i][name])
                    text = f"{label}: {value}" if value is not None else label
                    if text not in reasons:
                        reasons.append(text)
        for t in tags:
            if len(reasons) >= max_reasons:
                break
            text = _tag_text(t)
            if text not in reasons:
                reasons.append(text)
        out.append(reasons[:max_reasons] or [f"the model ranks this {category.replace('_', ' ')} offer highest for you"])
    return out
