"""Reason phrasing (models.reasons.reason_codes) and path contributions (TreePaths)."""

import numpy as np
import pytest

from models.reasons import TreePaths, reason_codes

DESCRIPTIONS = {"tenure_days": "Days since sign-up.", "flag_x": "A flag.", "same_a": "Same.", "same_b": "Same."}


def one_feature(name, value, category="coffee", offer_type=None, **kw):
    """The reasons of rows that each have one feature pushing P(redeem) up (and no habit tags)."""
    values = value if isinstance(value, list) else [value]
    n = len(values)
    out = reason_codes(
        habit_tags=[None] * n,
        offer_categories=[category] * n,
        feature_names=[name, "offer_type"],
        contributions=np.tile([1.0, 0.0], (n, 1)),
        feature_values=np.array([[v, offer_type] for v in values], dtype=object),
        max_reasons=2,
        descriptions=DESCRIPTIONS,
        **kw,
    )
    return [r[0] for r in out] if isinstance(value, list) else out[0][0]


@pytest.mark.parametrize(
    "name, value, category, offer_type, expected",
    [
        ("cust_visit_share_reward_category", 0.1, "coffee", None, "buys coffee on 10% of visits"),
        ("cust_visit_share_reward_category", 0.0999, "coffee", None, "rarely buys coffee: room to grow"),
        ("cust_attach_rate_reward_category", 0.2, "bakery", None, "adds bakery to 20% of related visits"),
        ("cust_attach_rate_reward_category", 0.1999, "bakery", None, "rarely adds bakery: room to grow"),
        ("attach_bakery_given_coffee", 0.19, "bakery", None, "rarely adds bakery to coffee (19% of coffee visits)"),
        ("attach_bakery_given_coffee", 0.2, "bakery", None, "adds bakery to 20% of coffee visits"),
        ("visit_share_before_11", 0.8, "coffee", None, "80% of visits before 11:00"),
        ("visit_share_before_9", 0.3, "coffee", None, "30% of visits before 9:00"),
        ("visit_share_cold_drinks", 0.25, "coffee", None, "buys cold drinks on 25% of visits"),
        ("visit_share_cold_drinks", 0.05, "coffee", None, "rarely buys cold drinks"),
        ("spend_share_bakery", 0.125, "coffee", None, "12% of spend goes to bakery"),  # 12.5 rounds to even
        ("spend_share_bakery", 0.135, "coffee", None, "14% of spend goes to bakery"),
        ("cust_redeem_rate_offer_type", 0.4, "coffee", "bonus_points", "redeemed 40% of earlier bonus points offers"),
        ("cust_redeem_rate_offer_type", 0.4, "coffee", None, "redeemed 40% of earlier this category offers"),
        ("cust_redeemed_reward_category", 3.0, "cold_drinks", None, "redeemed 3 earlier cold drinks offers"),
        ("avg_basket_365d", 4.005, "coffee", None, "usual basket 4.00"),  # 4.005 is 4.00499... in binary
        ("avg_basket_365d", 4.015, "coffee", None, "usual basket 4.01"),
        ("visit_hour_mean", 8.5, "coffee", None, "usually comes in around 08:30"),
        ("visit_hour_mean", 23.999, "coffee", None, "usually comes in around 23:00"),
        ("visits_30d", 2.5, "coffee", None, "2 visits in the last 30 days"),
        ("visits_30d", 3.5, "coffee", None, "4 visits in the last 30 days"),
        # no template: the catalogue description (or the humanized name) and the value
        ("tenure_days", 120.0, "coffee", None, "Days since sign-up: 120"),
        ("tenure_days", 12.345, "coffee", None, "Days since sign-up: 12.35"),
        ("flag_x", True, "coffee", None, "A flag: yes"),
        ("last_nps_group", "promoter", "coffee", None, "last nps group: promoter"),
    ],
)
def test_each_template_family_phrases_the_customers_value(name, value, category, offer_type, expected):
    assert one_feature(name, value, category, offer_type) == expected


def test_values_near_a_threshold_or_a_rounding_tie_in_one_batch_are_phrased_apart():
    # equal-looking values must not share a phrase when a threshold or the rounding tells them apart
    assert one_feature("cust_visit_share_reward_category", [0.1, 0.0999999, 0.1000001, 0.0996]) == [
        "buys coffee on 10% of visits", "rarely buys coffee: room to grow",
        "buys coffee on 10% of visits", "rarely buys coffee: room to grow",
    ]
    assert one_feature("attach_bakery_given_coffee", [0.2, 0.19999999, 0.1951], "bakery") == [
        "adds bakery to 20% of coffee visits", "rarely adds bakery to coffee (20% of coffee visits)",
        "rarely adds bakery to coffee (20% of coffee visits)",
    ]
    assert one_feature("avg_basket_365d", [4.005, 4.0050000001, 4.00499, 0.015, 0.025]) == [
        "usual basket 4.00", "usual basket 4.01", "usual basket 4.00",
        "usual basket 0.01", "usual basket 0.03"]  # where 100 * v is 1.5 or 2.5, yet v itself is not a tie
    assert one_feature("days_since_last_visit", [0.4, -0.4, 0.6]) == [
        "last visit 0 days ago", "last visit -0 days ago", "last visit 1 days ago"]
    assert one_feature("tenure_days", [3.0, 3.0000000001, 3.004, 3.006]) == [
        "Days since sign-up: 3", "Days since sign-up: 3", "Days since sign-up: 3.00", "Days since sign-up: 3.01"]
    assert one_feature("tenure_days", [0.065, 0.075]) == ["Days since sign-up: 0.07", "Days since sign-up: 0.07"]


def test_the_category_and_offer_type_of_each_row_are_named():
    out = reason_codes(
        habit_tags=[None] * 3, offer_categories=["coffee", "tea", "coffee"],
        feature_names=["cust_redeem_rate_offer_type", "cust_share_of_reward_category", "offer_type"],
        contributions=np.array([[2.0, 1.0, 0.0]] * 3),
        feature_values=np.array([[0.5, 0.3, "discount"], [0.5, 0.3, "bonus_points"], [0.5, 0.3, "bonus_points"]],
                                dtype=object),
        max_reasons=3,
    )
    assert out == [
        ["redeemed 50% of earlier discount offers", "30% of spend goes to coffee"],
        ["redeemed 50% of earlier bonus points offers", "30% of spend goes to tea"],
        ["redeemed 50% of earlier bonus points offers", "30% of spend goes to coffee"],
    ]


def test_missing_values_say_nothing_and_the_next_contribution_speaks():
    for missing in (None, np.nan, "not a number"):
        out = reason_codes(
            habit_tags=[None], offer_categories=["coffee"],
            feature_names=["visit_share_before_11", "visits_30d"],
            contributions=np.array([[2.0, 1.0]]),
            feature_values=np.array([[missing, 4.0]], dtype=object), max_reasons=2,
        )
        assert out == [["4 visits in the last 30 days"]]


def test_strongest_positive_speaking_contributions_first_ties_to_the_earlier_column():
    names = ["send_hour", "offer_value", "visits_30d", "visits_90d", "weekend_visit_share", "visit_share_before_11"]
    values = np.array([[8.0, 2.0, 3.0, 9.0, 0.25, 0.7]], dtype=object)
    out = reason_codes([None], ["coffee"], names, np.array([[9.0, 8.0, 0.5, 0.5, 0.7, -1.0]]), values, max_reasons=4)
    # the offer's mechanics and the moment never speak; negative contributions are not reasons
    assert out == [["25% of visits at weekends", "3 visits in the last 30 days", "9 visits in the last 90 days"]]
    out = reason_codes([None], ["coffee"], names, np.array([[9.0, 8.0, 0.0, np.nan, -0.1, -1.0]]), values)
    assert out == [["the model ranks this coffee offer highest for you"]]


def test_repeated_phrases_count_once_and_the_ranking_is_read_only_so_far():
    names = ["same_a", "same_b", "tenure_days", "visits_30d"]
    values = np.array([[1, 1.0, 30.0, 4.0]], dtype=object)
    out = reason_codes([None], ["coffee"], names, np.array([[4.0, 3.0, 2.0, 1.0]]), values, max_reasons=3,
                       descriptions=DESCRIPTIONS)
    assert out == [["Same: 1", "Days since sign-up: 30"]]
    # max_reasons=2 keeps one contribution reason and looks at most 3 places down the ranking
    names = ["a1", "a2", "a3", "visits_30d"]
    values = np.array([[None, None, None, 4.0]], dtype=object)
    out = reason_codes([["lunch_crowd"]], ["coffee"], names, np.array([[4.0, 3.0, 2.0, 1.0]]), values, max_reasons=2)
    assert out == [["lunch crowd"]]
    out = reason_codes([["lunch_crowd"]], ["coffee"], names, np.array([[4.0, 3.0, 2.0, 1.0]]), values, max_reasons=3)
    assert out == [["4 visits in the last 30 days", "lunch crowd"]]


def test_habit_tags_about_the_offer_come_first_without_repeats():
    tags = ["weekend_family", "morning_coffee_regular", "buys coffee before 11:00", "weekend_family"]
    out = reason_codes(
        habit_tags=[tags, tags, "bakery_lover", None, ("lunch_crowd",)],
        offer_categories=["coffee", "snacks", "bakery", "tea", "lunch"],
        feature_names=["visits_30d"], contributions=np.array([[1.0]] * 5),
        feature_values=np.array([[12.0]] * 5, dtype=object), max_reasons=4,
    )
    assert out == [
        ["12 visits in the last 30 days", "morning coffee regular", "buys coffee before 11:00", "weekend family"],
        ["12 visits in the last 30 days", "weekend family", "morning coffee regular", "buys coffee before 11:00"],
        ["12 visits in the last 30 days", "bakery lover"],
        ["12 visits in the last 30 days"],
        ["12 visits in the last 30 days", "lunch crowd"],
    ]


def test_a_tag_that_repeats_a_contribution_reason_is_not_repeated():
    out = reason_codes(
        [["lunch crowd", "tea_drinker"]], ["tea"], ["mystery"], np.array([[1.0]]),
        np.array([["x"]], dtype=object), max_reasons=3, descriptions={"mystery": "lunch crowd"},
    )
    assert out == [["lunch crowd: x", "tea drinker", "lunch crowd"]]
    out = reason_codes([["tea_drinker"]], ["tea"], ["tag_twin"], np.array([[1.0]]), np.array([[1]], dtype=object),
                       max_reasons=3, descriptions={"tag_twin": "tea drinker"})
    assert out == [["tea drinker: 1", "tea drinker"]]


@pytest.mark.parametrize("max_reasons, expected", [
    (1, ["25% of visits at weekends"]),
    (2, ["25% of visits at weekends", "morning coffee regular"]),
    (3, ["25% of visits at weekends", "3 visits in the last 30 days", "morning coffee regular"]),
    (4, ["25% of visits at weekends", "3 visits in the last 30 days", "morning coffee regular", "lunch crowd"]),
])
def test_max_reasons_keeps_one_slot_for_a_habit_tag(max_reasons, expected):
    out = reason_codes(
        [["lunch_crowd", "morning_coffee_regular"]], ["coffee"], ["visits_30d", "weekend_visit_share"],
        np.array([[0.5, 0.7]]), np.array([[3.0, 0.25]], dtype=object), max_reasons=max_reasons,
    )
    assert out == [expected]


def test_cold_start_rows_speak_from_the_context_and_others_still_get_reasons():
    out = reason_codes(
        habit_tags=[["lunch_crowd"], ["lunch_crowd"], None],
        offer_categories=["cold_drinks", "coffee", "cold_drinks"],
        feature_names=["visits_30d"], contributions=np.array([[np.nan], [1.0], [np.nan]]),
        feature_values=np.array([[None], [5.0], [None]], dtype=object),
        cold_start=[True, False, False], context_daypart="11_to_14", context_channel="push",
    )
    assert out == [
        ["new customer: a popular cold drinks offer between 11:00 and 14:00 on push"],  # tags are not read
        ["5 visits in the last 30 days", "lunch crowd"],
        ["the model ranks this cold drinks offer highest for you"],  # all-NaN contributions, no tags
    ]
    assert reason_codes([None], ["tea"], cold_start=[True], context_daypart=None, context_channel="app") == [
        ["new customer: a popular tea offer now on app"]]
    assert reason_codes([], []) == []


def test_a_batch_gives_each_row_what_it_gets_alone():
    # 300 rows take the vectorised path, single rows the per-row one (SMALL_BATCH_ROWS): the two agree.
    from models.reasons import SMALL_BATCH_ROWS

    assert 1 <= SMALL_BATCH_ROWS < 300
    rng = np.random.default_rng(3)
    names = ["visits_30d", "cust_visit_share_reward_category", "attach_bakery_given_coffee", "avg_basket_365d",
             "visit_hour_mean", "tenure_days", "last_nps_group", "send_hour", "offer_type"]
    n = 300
    values = np.empty((n, len(names)), dtype=object)
    values[:, :6] = np.round(rng.random((n, 6)) * [20, 1, 1, 9, 24, 400], 3)
    values[:, 6] = rng.choice(["promoter", "passive", None], n)
    values[:, 7] = 8.0
    values[:, 8] = rng.choice(["discount", "bonus_points"], n)
    contrib = rng.choice([-0.2, 0.0, 0.1, 0.3, np.nan], size=(n, len(names)))
    tag_lists = [["lunch_crowd"], ["morning_coffee_regular", "bakery_lover"], None, "weekend_family"]
    tags = [tag_lists[i] for i in rng.integers(0, 4, n)]
    cats = list(rng.choice(["coffee", "bakery", "lunch"], n))
    cold = rng.random(n) < 0.1
    for max_reasons in (1, 3, 4):
        batch = reason_codes(tags, cats, names, contrib, values, cold, "before_9", "app", max_reasons)
        alone = [reason_codes(tags[i: i + 1], cats[i: i + 1], names, contrib[i: i + 1], values[i: i + 1],
                              cold[i: i + 1], "before_9", "app", max_reasons)[0] for i in range(n)]
        assert batch == alone
        assert all(1 <= len(r) <= max_reasons for r in batch)
    assert len({id(r) for r in batch}) == n  # every row its own list


@pytest.fixture(scope="module")
def small_booster():
    import lightgbm as lgb

    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 6))
    X[rng.random(2000) < 0.1, 1] = np.nan
    X[:, 5] = 0.0  # never split on
    y = ((X[:, 0] + np.nan_to_num(X[:, 1]) - X[:, 2] * X[:, 3]) > 0.3).astype(int)
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, min_child_samples=5, verbose=-1).fit(X, y)
    return model.booster_, X


def test_tree_path_contributions_of_a_large_batch_match_small_batches_and_add_up(small_booster):
    booster, X = small_booster
    paths = TreePaths(booster.dump_model())
    leaves = booster.predict(X, pred_leaf=True)
    big = paths.contributions(leaves)  # 2000 rows x 40 trees: the per-feature column path
    small = np.concatenate([paths.contributions(leaves[i: i + 100]) for i in range(0, len(X), 100)])  # dense
    assert big.shape == (2000, 7)
    np.testing.assert_allclose(big, small, rtol=0, atol=1e-12)
    np.testing.assert_allclose(big.sum(axis=1), booster.predict(X, raw_score=True), atol=1e-9)
    assert np.all(big[:, 5] == 0.0)  # a feature no tree splits on gets nothing
    assert np.all(big[:, -1] == big[0, -1])  # the bias is the same for every row
    # the first 10 trees only (e.g. a model read at an earlier iteration)
    first10 = paths.contributions(leaves[:, :10])
    np.testing.assert_allclose(first10.sum(axis=1), booster.predict(X, raw_score=True, num_iteration=10), atol=1e-9)


def test_tree_path_contributions_reject_leaves_outside_their_tree(small_booster):
    booster, X = small_booster
    paths = TreePaths(booster.dump_model())
    leaves = booster.predict(X, pred_leaf=True)
    leaves[7, 3] = 15  # tree 3 has at most 15 leaves: 0..14
    with pytest.raises(ValueError, match=r"leaf indices of tree 3 must be in \[0, \d+\)"):
        paths.contributions(leaves)
