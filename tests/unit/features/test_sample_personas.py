"""On the generated sample, the profiles recover the planted persona habits (ground truth is only read here)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from features import build_profiles, feature_names, habit_tags
from pipelines.config import SAMPLE_END_DATE


@pytest.fixture(scope="module")
def sample_profiles(sample):
    started = time.perf_counter()
    profiles = build_profiles(sample.tables, SAMPLE_END_DATE)
    elapsed = time.perf_counter() - started
    personas = sample.ground_truth["customers"][["customer_id", "persona", "churn_date"]]
    return profiles.merge(personas, on="customer_id", how="left", validate="one_to_one"), elapsed


def test_every_customer_is_profiled_once_with_finite_or_nan_features(sample, sample_profiles):
    profiles, _ = sample_profiles
    signed_up = (sample.tables["customers"]["signup_date"] < pd.Timestamp(SAMPLE_END_DATE)).sum()
    assert len(profiles) == signed_up and profiles["customer_id"].is_unique
    values = profiles[feature_names()].to_numpy(dtype="float64")
    assert not np.isinf(values).any()
    assert profiles["persona"].notna().all()


def test_build_takes_seconds_not_minutes(sample_profiles):
    _, elapsed = sample_profiles
    assert elapsed < 10.0, f"build_profiles on the 3000-customer sample took {elapsed:.1f}s (expected ~1-3s)"


def test_morning_commuters_visit_before_eleven(sample_profiles):
    profiles, _ = sample_profiles
    share = profiles.groupby("persona")["visit_share_before_11"].mean()
    assert share["morning_commuter"] > 0.6
    assert share.drop("morning_commuter").max() < 0.5


def test_bakery_attach_rate_differs_between_personas_as_planted(sample_profiles):
    # Planted: weekend families put pastries next to their coffee; commuters rarely buy bakery.
    profiles, _ = sample_profiles
    attach = profiles.groupby("persona")["attach_bakery_given_coffee"].mean()
    assert attach["weekend_family"] > attach["morning_commuter"] + 0.2
    assert attach["morning_commuter"] < 0.25


def test_bakery_offer_redemption_is_highest_for_morning_commuters(sample, sample_profiles):
    # Planted: morning commuters have the strongest bakery-offer affinity despite rarely buying bakery.
    # The offer history per reward category is long (the offer model's taxonomy columns).
    from models.offer_taxonomy import TaxonomyLookup

    profiles, _ = sample_profiles
    offers = sample.tables["offers"]
    bakery = offers[offers["reward_category"] == "bakery"].head(1)
    lookup = TaxonomyLookup(sample.tables, SAMPLE_END_DATE, profiles["customer_id"], bakery)
    names = ["cust_sent_reward_category", "cust_redeemed_reward_category"]
    grid = lookup.grid(profiles["customer_id"], bakery["offer_id"], names)
    frame = pd.DataFrame({n: grid[n][:, 0] for n in names}).assign(persona=profiles["persona"].to_numpy())
    sent = frame.groupby("persona")[names].sum()
    rate = sent["cust_redeemed_reward_category"] / sent["cust_sent_reward_category"]
    assert sent["cust_sent_reward_category"].min() > 10
    assert rate.idxmax() == "morning_commuter"


def test_daypart_and_weekend_habits_separate_personas(sample_profiles):
    profiles, _ = sample_profiles
    by = profiles.groupby("persona")
    assert by["visit_share_11_to_14"].mean().idxmax() == "lunch_crowd"
    assert by["visit_share_14_to_17"].mean().idxmax() == "afternoon_snacker"
    assert by["weekend_visit_share"].mean().idxmax() == "weekend_family"


def test_habit_tags_name_the_planted_personas(sample_profiles):
    profiles, _ = sample_profiles
    tags = habit_tags(profiles)
    for tag, persona in [
        ("before 9 regular", "morning_commuter"),  # a daypart of the program file
        ("11 to 14 regular", "lunch_crowd"),
        ("14 to 17 regular", "afternoon_snacker"),
        ("lunch regular", "lunch_crowd"),  # a category of the data
        ("weekend visitor", "weekend_family"),
    ]:
        has = tags.map(lambda t: tag in t)
        precision = (profiles.loc[has, "persona"] == persona).mean()
        recall = has[profiles["persona"] == persona].mean()
        assert precision > 0.9 and recall > 0.4, f"'{tag}': precision {precision:.2f}, recall {recall:.2f}"


def test_lapsing_tag_flags_customers_who_churned(sample_profiles):
    profiles, _ = sample_profiles
    churned = profiles["churn_date"].notna() & (profiles["churn_date"] < pd.Timestamp(SAMPLE_END_DATE))
    lapsing = habit_tags(profiles).map(lambda t: "lapsing" in t)
    assert churned[lapsing].mean() > 2 * churned[~lapsing].mean()
