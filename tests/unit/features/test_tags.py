"""Habit tags: per-row rules over profile features, declared from the program, never NaN-triggered."""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.program import coffee_program
from features import habit_tags
from features.tags import HABIT_TAGS, habit_tag_declarations


def test_tiny_world_tags(tiny_profile):
    tags = habit_tags(tiny_profile.set_index("customer_id"))
    assert tags.to_dict() == {
        "c1": ["coffee regular", "app first"],  # a category of the data, a channel of the program
        "c2": ["new member"],
        "c3": ["web first", "drive thru first"],  # one visit on each: half of the visits each
    }


def test_a_daypart_regular_who_stopped_coming_is_tagged_both(tiny_profile):
    row = tiny_profile.iloc[[0]].assign(
        visits_90d=20, visit_share_before_9=0.9, visit_share_coffee=0.1, distinct_visit_days_365d=40,
        overdue_ratio=5.0, days_since_last_visit=20.0, channel_share_app=0.1,
    )
    assert habit_tags(row).iloc[0] == ["before 9 regular", "lapsing"]


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


def _program(**changes):
    data = coffee_program().model_dump(mode="json")
    data.update(changes)
    from data_contracts.program import Program

    return Program.model_validate(data)


def test_tags_are_named_from_the_program_dayparts_and_channels():
    program = _program(
        dayparts=[{"name": "morning", "start_hour": 0.0, "end_hour": 12.0},
                  {"name": "evening", "start_hour": 12.0, "end_hour": 24.0}],
        purchase_channels={"kind": "listed", "values": ["store", "online"]},
        tiers={"kind": "none"},
    )
    tags = {t.name: t for t in habit_tag_declarations(program)}
    assert {"morning regular", "evening regular", "online first"} <= set(tags)
    assert not {"before 9 regular", "app first", "store first"} & set(tags)  # the first listed channel is the usual one
    assert tags["morning regular"].description.startswith("At least 6 visits in 90 days, 60%+ of them before 12:00")
    profile = pd.DataFrame({"visits_90d": [8, 8], "visit_share_morning": [0.7, 0.2], "channel_share_online": [0.1, 0.9]})
    assert habit_tags(profile, program).tolist() == [["morning regular"], ["online first"]]


@pytest.mark.parametrize("missing", ["visit_share_before_9", "visits_90d"])
def test_a_tag_whose_features_the_profiles_lack_is_never_earned(missing):
    profile = pd.DataFrame({"visits_90d": [8], "visit_share_before_9": [0.9]}).drop(columns=missing)
    assert habit_tags(profile).tolist() == [[]]
