"""The profile of the hand-built three-customer world, feature by feature, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import circmean, circstd

from features import build_profiles, feature_names
from features.catalogue import FEATURES, FEATURES_BY_NAME

NAN = float("nan")
# c1's visit hours are 8:00, 8:30, 10:00, 12:00; c3's 15:00 and 18:00 (scipy as the independent reference).
C1_HOURS, C3_HOURS = [8.0, 8.5, 10.0, 12.0], [15.0, 18.0]

EXPECTED: dict[str, dict[str, float]] = {
    # recency
    "days_since_last_visit": {"c1": 40 / 24, "c2": NAN, "c3": 243 - 18 / 24},
    "visits_30d": {"c1": 3, "c2": 0, "c3": 0},
    "visits_90d": {"c1": 4, "c2": 0, "c3": 0},
    "visits_365d": {"c1": 4, "c2": 0, "c3": 2},
    "spend_30d": {"c1": 7 + 4 + 10 - 3, "c2": 0, "c3": 0},  # the refund-only receipt nets out
    "spend_90d": {"c1": 29, "c2": 0, "c3": 0},
    "spend_365d": {"c1": 29, "c2": 0, "c3": 7.5},
    "avg_basket_365d": {"c1": 29 / 4, "c2": NAN, "c3": 7.5 / 2},
    "distinct_visit_days_365d": {"c1": 4, "c2": 0, "c3": 2},
    "tenure_days": {"c1": 424, "c2": 9, "c3": 273},
    # habits
    "visit_share_before_9": {"c1": 0.5, "c2": NAN, "c3": 0},
    "visit_share_9_to_11": {"c1": 0.25, "c2": NAN, "c3": 0},
    "visit_share_11_to_14": {"c1": 0.25, "c2": NAN, "c3": 0},
    "visit_share_14_to_17": {"c1": 0, "c2": NAN, "c3": 0.5},
    "visit_share_after_17": {"c1": 0, "c2": NAN, "c3": 0.5},
    "visit_share_before_11": {"c1": 0.75, "c2": NAN, "c3": 0},
    "weekend_visit_share": {"c1": 0.25, "c2": NAN, "c3": 0},  # 2026-02-14 is a Saturday
    "visit_hour_mean": {"c1": circmean(C1_HOURS, high=24), "c2": NAN, "c3": 16.5},
    "visit_hour_spread": {"c1": circstd(C1_HOURS, high=24), "c2": NAN, "c3": circstd(C3_HOURS, high=24)},
    "channel_share_store": {"c1": 0.5, "c2": NAN, "c3": 0},
    "channel_share_app": {"c1": 0.5, "c2": NAN, "c3": 0},
    "channel_share_web": {"c1": 0, "c2": NAN, "c3": 0.5},
    "channel_share_drive_thru": {"c1": 0, "c2": NAN, "c3": 0.5},
    "top_store_visit_share": {"c1": 0.75, "c2": NAN, "c3": 1.0},
    "distinct_stores_365d": {"c1": 2, "c2": 0, "c3": 1},
    # affinity: c1 bought coffee 12, bakery 3, breakfast 6, lunch 9, cold drinks 2 (total 32)
    "top_category_spend_share_365d": {"c1": 12 / 32, "c2": NAN, "c3": 4.5 / 7.5},
    "category_spend_entropy_365d": {
        "c1": -sum(p * np.log(p) for p in (12 / 32, 3 / 32, 6 / 32, 9 / 32, 2 / 32)), "c2": NAN,
        "c3": -sum(p * np.log(p) for p in (4.5 / 7.5, 3 / 7.5))},
    "visit_share_coffee": {"c1": 0.75, "c2": NAN, "c3": 0},
    "visit_share_snacks": {"c1": 0, "c2": NAN, "c3": 1.0},
    "attach_bakery_given_coffee": {"c1": 1 / 3, "c2": NAN, "c3": NAN},
    "attach_breakfast_given_coffee": {"c1": 1 / 3, "c2": NAN, "c3": NAN},
    "attach_bakery_given_tea": {"c1": NAN, "c2": NAN, "c3": NAN},
    "attach_snacks_given_cold_drinks": {"c1": 0, "c2": NAN, "c3": 1},
    "attach_cold_drinks_given_lunch": {"c1": 1, "c2": NAN, "c3": NAN},
    "distinct_products_365d": {"c1": 5, "c2": 0, "c3": 2},
    "distinct_categories_365d": {"c1": 5, "c2": 0, "c3": 2},
    # rhythm: c1 visit days 2025-12-01, 2026-02-14, 02-20, 02-27 -> gaps 75, 6, 7
    "gap_days_mean": {"c1": 88 / 3, "c2": NAN, "c3": 21},
    "gap_days_std": {"c1": float(np.std([75, 6, 7])), "c2": NAN, "c3": NAN},
    "visit_trend_30_vs_prev_60": {"c1": (3 / 30) / (1 / 60), "c2": NAN, "c3": NAN},
    "spend_trend_30_vs_prev_60": {"c1": (18 / 30) / (11 / 60), "c2": NAN, "c3": NAN},
    "overdue_ratio": {"c1": (40 / 24) / (88 / 3), "c2": NAN, "c3": (243 - 0.75) / 21},
    # loyalty
    "tier_ordinal": {"c1": 1, "c2": 0, "c3": 3},
    "points_balance": {"c1": 200, "c2": 0, "c3": 5000},
    "points_to_next_tier": {"c1": 4000 - 200, "c2": 1200, "c3": NAN},
    "feedback_count": {"c1": 2, "c2": 0, "c3": 1},
    "last_nps_score": {"c1": 9, "c2": NAN, "c3": 7},
    "mean_nps_score": {"c1": 7.5, "c2": NAN, "c3": 7},
    "last_nps_group": {"c1": 1, "c2": NAN, "c3": 0},
    "days_since_last_feedback": {"c1": 4, "c2": NAN, "c3": 181},
    # offer history: c1 got o1 (discount, bakery; viewed, redeemed) and o2 (bonus_points, coffee; viewed only
    # after AS_OF); its control row and the event sent at AS_OF do not count. c3 got o2, never viewed.
    "offers_sent": {"c1": 2, "c2": 0, "c3": 1},
    "offers_viewed": {"c1": 1, "c2": 0, "c3": 0},
    "offers_redeemed": {"c1": 1, "c2": 0, "c3": 0},
    "offers_view_rate": {"c1": 0.5, "c2": NAN, "c3": 0},
    "offers_redeem_rate": {"c1": 0.5, "c2": NAN, "c3": 0},
    "offers_discount_sent": {"c1": 1, "c2": 0, "c3": 0},
    "offers_discount_redeem_rate": {"c1": 1, "c2": NAN, "c3": NAN},
    "offers_bonus_points_sent": {"c1": 1, "c2": 0, "c3": 1},
    "offers_bonus_points_viewed": {"c1": 0, "c2": 0, "c3": 0},
    "offers_bogo_sent": {"c1": 0, "c2": 0, "c3": 0},
    "days_since_last_offer": {"c1": 14, "c2": NAN, "c3": 212},
    "days_since_last_redemption": {"c1": 19, "c2": NAN, "c3": NAN},
    # gaps (all history, visit days): c1 2025-12-01, 2026-02-14, 02-20, 02-27 (gaps 75, 6, 7; last day 2
    # days before AS_OF); c2 none (signed up 9 days before); c3 2025-06-10 and 07-01 (264 and 243 days before)
    "repeat_visit_days": {"c1": 3, "c2": 0, "c3": 1},
    "first_to_last_visit_days": {"c1": 88, "c2": 0, "c3": 21},
    "days_since_first_visit": {"c1": 90, "c2": 9, "c3": 264},
    "gap_days_mean_all": {"c1": 88 / 3, "c2": NAN, "c3": 21},
    "gap_days_std_all": {"c1": float(np.std([75, 6, 7])), "c2": NAN, "c3": NAN},
    "gap_days_cv_all": {"c1": float(np.std([75, 6, 7])) / (88 / 3), "c2": NAN, "c3": NAN},
    "last_gap_days": {"c1": 7, "c2": NAN, "c3": 21},
    "overdue_vs_usual_gap": {"c1": 2 / (88 / 3), "c2": NAN, "c3": 243 / 21},
    "overdue_gap_z": {"c1": (2 - 88 / 3) / float(np.std([75, 6, 7])), "c2": NAN, "c3": NAN},
}


@pytest.fixture
def profile(tiny_profile) -> pd.DataFrame:
    return tiny_profile


def test_one_row_per_customer_signed_up_before_as_of(profile):
    assert profile["customer_id"].tolist() == ["c1", "c2", "c3"]  # c4 signs up after AS_OF


def test_columns_are_customer_id_then_the_catalogue_in_order(profile):
    assert list(profile.columns) == ["customer_id", *feature_names()]


def test_dtypes_follow_the_declarations(profile):
    assert {f.name: str(profile[f.name].dtype) for f in FEATURES} == {f.name: f.dtype for f in FEATURES}


@pytest.mark.parametrize("feature", sorted(EXPECTED))
def test_feature_matches_hand_computed_value(profile, feature):
    got = profile.set_index("customer_id")[feature]
    for customer, want in EXPECTED[feature].items():
        value = got[customer]
        if math.isnan(want):
            assert math.isnan(value), f"{feature}[{customer}]: expected NaN, got {value}"
        else:
            assert value == pytest.approx(want, rel=1e-9, abs=1e-9), f"{feature}[{customer}]"


def test_every_family_is_checked_by_hand():
    families = {FEATURES_BY_NAME[name].family for name in EXPECTED}
    assert families == {f.family for f in FEATURES}


def test_counts_are_zero_not_nan_for_a_customer_without_history(profile):
    c2 = profile.set_index("customer_id").loc["c2"]
    counts = [f.name for f in FEATURES if f.dtype == "int64" and f.name not in ("tier_ordinal", "points_balance")]
    assert (c2[counts] == 0).all()


def test_event_of_an_unknown_offer_counts_overall_but_in_no_group(tiny, as_of):
    events = pd.concat([tiny["offer_events"], tiny["offer_events"].iloc[[4]].assign(offer_id="o9")], ignore_index=True)
    profile = build_profiles({**tiny, "offer_events": events}, as_of).set_index("customer_id")
    assert profile.loc["c3", "offers_sent"] == 2
    assert profile.loc["c3", "offers_bonus_points_sent"] == 1
