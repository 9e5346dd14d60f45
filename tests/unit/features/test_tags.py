"""Habit tags: per-row rules over profile features, never NaN-triggered."""

from __future__ import annotations

import pandas as pd

from features import habit_tags
from features.tags import HABIT_TAGS


def test_tiny_world_tags(tiny_profile):
    tags = habit_tags(tiny_profile.set_index("customer_id"))
    assert tags.to_dict() == {"c1": ["app first"], "c2": ["new member"], "c3": ["afternoon snacker"]}


def test_a_morning_regular_who_stopped_coming_is_tagged_both(tiny_profile):
    row = tiny_profile.iloc[[0]].assign(
        visits_90d=20, visit_share_before_11=0.9, visit_share_coffee=0.8, distinct_visit_days_365d=40,
        overdue_ratio=5.0, days_since_last_visit=20.0, channel_share_app=0.1,
    )
    assert habit_tags(row).iloc[0] == ["morning coffee regular", "lapsing"]


def test_tags_depend_only_on_their_own_row(tiny_profile):
    alone = habit_tags(tiny_profile.iloc[[2]]).iloc[0]
    assert habit_tags(tiny_profile).iloc[2] == alone


def test_no_features_no_tags_and_empty_frames_work(tiny_profile):
    blank = tiny_profile.iloc[[1]].assign(tenure_days=400.0)
    assert habit_tags(blank).iloc[0] == []
    assert habit_tags(tiny_profile.iloc[[]]).empty


def test_tag_names_are_unique_and_described():
    names = [t.name for t in HABIT_TAGS]
    assert len(set(names)) == len(names) and all(t.description for t in HABIT_TAGS)
    assert habit_tags(pd.DataFrame(columns=[])).tolist() == []  # a frame without features: no tags, no error
