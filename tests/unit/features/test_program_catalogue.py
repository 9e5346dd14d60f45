"""A catalogue made from a program: its dayparts, listed channels, ordered tiers and tier points name
the vocabulary-dependent columns; the built-in default program's catalogue is the one of before."""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.program import Program, ProgramError, coffee_program, parse_program, program_to_toml
from features import build_profiles
from features.catalogue import FEATURES, catalogue, feature_names, feature_set_digest
from features.profiles import compute_family
from features.history import prepare_history

# The built-in program's catalogue (name, dtype): as before catalogues were made from programs, less the wide
# per-category spend-share and offer-history blocks (replaced by long per-node features) plus two size-independent
# summaries;
# the coffee models and benchmarks depend on it column for column.
DEFAULT_CATALOGUE = [
    ["days_since_last_visit", "float64"],
    ["visits_30d", "int64"],
    ["visits_90d", "int64"],
    ["visits_365d", "int64"],
    ["spend_30d", "float64"],
    ["spend_90d", "float64"],
    ["spend_365d", "float64"],
    ["avg_basket_365d", "float64"],
    ["distinct_visit_days_365d", "int64"],
    ["tenure_days", "float64"],
    ["visit_share_before_9", "float64"],
    ["visit_share_9_to_11", "float64"],
    ["visit_share_11_to_14", "float64"],
    ["visit_share_14_to_17", "float64"],
    ["visit_share_after_17", "float64"],
    ["visit_share_before_11", "float64"],
    ["weekend_visit_share", "float64"],
    ["visit_hour_mean", "float64"],
    ["visit_hour_spread", "float64"],
    ["channel_share_store", "float64"],
    ["channel_share_app", "float64"],
    ["channel_share_web", "float64"],
    ["channel_share_drive_thru", "float64"],
    ["top_store_visit_share", "float64"],
    ["distinct_stores_365d", "int64"],
    ["top_category_spend_share_365d", "float64"],
    ["category_spend_entropy_365d", "float64"],
    ["visit_share_coffee", "float64"],
    ["visit_share_tea", "float64"],
    ["visit_share_cold_drinks", "float64"],
    ["visit_share_bakery", "float64"],
    ["visit_share_breakfast", "float64"],
    ["visit_share_lunch", "float64"],
    ["visit_share_snacks", "float64"],
    ["visit_share_merchandise", "float64"],
    ["attach_bakery_given_coffee", "float64"],
    ["attach_breakfast_given_coffee", "float64"],
    ["attach_bakery_given_tea", "float64"],
    ["attach_snacks_given_cold_drinks", "float64"],
    ["attach_cold_drinks_given_lunch", "float64"],
    ["distinct_products_365d", "int64"],
    ["distinct_categories_365d", "int64"],
    ["gap_days_mean", "float64"],
    ["gap_days_std", "float64"],
    ["visit_trend_30_vs_prev_60", "float64"],
    ["spend_trend_30_vs_prev_60", "float64"],
    ["overdue_ratio", "float64"],
    ["tier_ordinal", "int64"],
    ["points_balance", "int64"],
    ["points_to_next_tier", "float64"],
    ["feedback_count", "int64"],
    ["last_nps_score", "float64"],
    ["mean_nps_score", "float64"],
    ["last_nps_group", "float64"],
    ["days_since_last_feedback", "float64"],
    ["offers_sent", "int64"],
    ["offers_viewed", "int64"],
    ["offers_redeemed", "int64"],
    ["offers_view_rate", "float64"],
    ["offers_redeem_rate", "float64"],
    ["offers_discount_sent", "int64"],
    ["offers_discount_viewed", "int64"],
    ["offers_discount_redeemed", "int64"],
    ["offers_discount_view_rate", "float64"],
    ["offers_discount_redeem_rate", "float64"],
    ["offers_bogo_sent", "int64"],
    ["offers_bogo_viewed", "int64"],
    ["offers_bogo_redeemed", "int64"],
    ["offers_bogo_view_rate", "float64"],
    ["offers_bogo_redeem_rate", "float64"],
    ["offers_bonus_points_sent", "int64"],
    ["offers_bonus_points_viewed", "int64"],
    ["offers_bonus_points_redeemed", "int64"],
    ["offers_bonus_points_view_rate", "float64"],
    ["offers_bonus_points_redeem_rate", "float64"],
    ["offers_free_item_sent", "int64"],
    ["offers_free_item_viewed", "int64"],
    ["offers_free_item_redeemed", "int64"],
    ["offers_free_item_view_rate", "float64"],
    ["offers_free_item_redeem_rate", "float64"],
    ["offers_tier_boost_sent", "int64"],
    ["offers_tier_boost_viewed", "int64"],
    ["offers_tier_boost_redeemed", "int64"],
    ["offers_tier_boost_view_rate", "float64"],
    ["offers_tier_boost_redeem_rate", "float64"],
    ["offers_informational_sent", "int64"],
    ["offers_informational_viewed", "int64"],
    ["offers_informational_redeemed", "int64"],
    ["offers_informational_view_rate", "float64"],
    ["offers_informational_redeem_rate", "float64"],
    ["days_since_last_offer", "float64"],
    ["days_since_last_redemption", "float64"],
    ["repeat_visit_days", "int64"],
    ["first_to_last_visit_days", "float64"],
    ["days_since_first_visit", "float64"],
    ["gap_days_mean_all", "float64"],
    ["gap_days_std_all", "float64"],
    ["gap_days_cv_all", "float64"],
    ["last_gap_days", "float64"],
    ["overdue_vs_usual_gap", "float64"],
    ["overdue_gap_z", "float64"],
]


def _program(**changes) -> Program:
    data = coffee_program().model_dump(mode="json")
    data.update(changes)
    return Program.model_validate(data)


GROCERY_LIKE = dict(
    dayparts=[{"name": "morning", "start_hour": 0.0, "end_hour": 11.0},
              {"name": "midday", "start_hour": 11.0, "end_hour": 15.0},
              {"name": "evening", "start_hour": 15.0, "end_hour": 24.0}],
    purchase_channels={"kind": "listed", "values": ["store", "online"]},
    tiers={"kind": "none"},
)


def test_the_default_catalogue_is_column_for_column_the_one_of_before():
    assert [(f.name, f.dtype) for f in FEATURES] == [tuple(x) for x in DEFAULT_CATALOGUE]
    assert catalogue().features == FEATURES == catalogue(coffee_program()).features
    assert feature_set_digest() == "0df5a5f2283e6f31"
    assert feature_names() == feature_names(program=coffee_program())


def test_a_grocery_program_has_its_own_daypart_and_channel_columns_and_no_tier_columns():
    names = feature_names(program=_program(**GROCERY_LIKE))
    assert [n for n in names if n.startswith("visit_share_") and n in {
        "visit_share_morning", "visit_share_midday", "visit_share_evening"}] == [
        "visit_share_morning", "visit_share_midday", "visit_share_evening"]
    assert [n for n in names if n.startswith("channel_share_")] == ["channel_share_store", "channel_share_online"]
    assert not {"visit_share_before_9", "visit_share_after_17", "channel_share_app"} & set(names)
    assert "tier_ordinal" not in names and "points_to_next_tier" not in names
    assert "points_balance" in names and "visit_share_before_11" in names  # no vocabulary in these
    assert feature_set_digest(_program(**GROCERY_LIKE)) != feature_set_digest()


def test_an_open_channel_vocabulary_has_no_column_per_value_but_a_top_channel_share(tiny, as_of):
    program = _program(purchase_channels={"kind": "open"})
    names = feature_names(program=program)
    assert "top_channel_visit_share" in names and not [n for n in names if n.startswith("channel_share_")]
    open_habits = compute_family("habits", prepare_history(tiny, as_of, program))
    listed = compute_family("habits", prepare_history(tiny, as_of)).filter(like="channel_share_")
    # the most used channel's share is the largest of the listed vocabulary's per-channel shares
    pd.testing.assert_series_equal(open_habits["top_channel_visit_share"], listed.max(axis=1, skipna=False),
                                   check_names=False)
    assert open_habits["top_channel_visit_share"].tolist()[0] == 0.5  # c1: 2 store and 2 app visits


def test_tier_columns_follow_the_program_tiers_and_points():
    no_points = _program(tiers={"kind": "listed", "values": ["basic", "plus"]})
    assert "tier_ordinal" in feature_names(program=no_points)
    assert "points_to_next_tier" not in feature_names(program=no_points)
    desc = catalogue(no_points).by_name["tier_ordinal"].description
    assert desc == "Loyalty tier as an ordinal: basic 0, plus 1."
    assert "tier_ordinal" not in feature_names(program=_program(tiers={"kind": "open"}))


def test_profiles_of_a_program_carry_exactly_its_catalogue(tiny, as_of):
    program = _program(**GROCERY_LIKE)
    tables = dict(tiny, customers=tiny["customers"].assign(tier="none"))
    profiles = build_profiles(tables, as_of, program=program)
    assert list(profiles.columns) == ["customer_id", *feature_names(program=program)]
    first = profiles.set_index("customer_id").loc["c1"]
    assert first["visit_share_morning"] + first["visit_share_midday"] + first["visit_share_evening"] == pytest.approx(1)
    assert (first["channel_share_store"], first["channel_share_online"]) == (0.5, 0.0)  # 2 of 4 in store, 2 in the app


def test_the_catalogue_is_cached_by_the_program_digest():
    program = _program(**GROCERY_LIKE)
    same = parse_program(program_to_toml(program))
    assert catalogue(same) is catalogue(program)


@pytest.mark.parametrize("points, match", [
    ({"bronze": 0, "silver": 10}, r"program.toml.*key 'tiers'.*'points' must give one value per tier"),
    ({"bronze": 0, "silver": 10, "gold": 5, "platinum": 20}, r"key 'tiers'.*'points' must be >= 0 and rise with"),
])
def test_tier_points_that_do_not_fit_the_tiers_name_the_key(points, match):
    tiers = {"kind": "listed", "values": ["bronze", "silver", "gold", "platinum"], "points": points}
    import tomli_w

    text = tomli_w.dumps({**coffee_program().model_dump(mode="json"), "tiers": tiers})
    with pytest.raises(ProgramError, match=match):
        parse_program(text, "program.toml")


def test_a_daypart_named_like_another_feature_is_refused_naming_it():
    program = _program(dayparts=[{"name": "before_11", "start_hour": 0.0, "end_hour": 11.0},
                                 {"name": "later", "start_hour": 11.0, "end_hour": 24.0}])
    with pytest.raises(ValueError, match=r"names features \['visit_share_before_11'\] twice.*rename the daypart"):
        catalogue(program)


def test_the_attach_column_of_a_node_is_the_programs_first_declared_pair_with_that_target():
    from features.catalogue import attach_columns_by_target

    columns = feature_names()  # coffee.toml: bakery given coffee, breakfast given coffee, bakery given tea, ...
    found = attach_columns_by_target(columns, ["bakery", "coffee", "snacks", "bakery"])
    assert found == {"bakery": "attach_bakery_given_coffee", "snacks": "attach_snacks_given_cold_drinks"}
    assert attach_columns_by_target(feature_names(program=_program(habits={})), ["bakery"]) == {}  # none declared
