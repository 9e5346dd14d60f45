"""offer_features: the one place customer x offer x context rows are built (training, API, batch)."""

import numpy as np
import pandas as pd
import pytest

from data_contracts.errors import MissingColumnsError
from features import feature_names
from models.offer_response import MissingContextError, offer_feature_columns, offer_features


@pytest.fixture
def profiles():
    frame = pd.DataFrame(0.0, index=range(2), columns=feature_names())
    frame.insert(0, "customer_id", pd.Series(["c1", "c2"], dtype="str"))
    frame["spend_share_bakery"] = [0.6, 0.1]
    frame["visit_share_bakery"] = [0.8, 0.2]
    frame["offers_cat_bakery_sent"] = [4.0, 0.0]
    frame["offers_cat_bakery_redeemed"] = [3.0, 0.0]
    frame["offers_cat_bakery_redeem_rate"] = [0.75, np.nan]
    frame["offers_redeem_rate"] = [0.5, 0.2]
    frame["visit_share_before_9"] = [0.9, 0.0]
    frame["attach_bakery_given_coffee"] = [0.7, 0.1]
    frame["avg_basket_365d"] = [5.0, 0.0]
    return frame


@pytest.fixture
def offers():
    return pd.DataFrame(
        {"offer_id": ["bk", "cf"], "reward_category": ["bakery", "coffee"], "offer_type": ["discount", "bogo"],
         "value": [2.0, 3.0], "min_spend": [4.0, 0.0], "cost_per_redemption": [1.0, 1.5]}
    )


def test_dict_context_scores_every_customer_offer_pair(profiles, offers):
    rows = offer_features(profiles, offers, {"timestamp": "2026-06-30 08:30", "channel": "app"})
    assert len(rows) == 4
    assert list(rows.columns) == ["customer_id", "offer_id"] + offer_feature_columns()
    bk = rows[rows["offer_id"] == "bk"].set_index("customer_id")
    # the per-category spend and offer-history blocks are not the offer model's: its category history is long
    # (taxonomy columns); a [habits] visit share or attach rate is a profile column like others
    assert not {"spend_share_bakery", "offers_cat_bakery_sent", "cust_share_of_reward_category"} & set(rows.columns)
    assert rows["visit_share_bakery"].tolist() == [0.8, 0.8, 0.2, 0.2]
    assert rows["attach_bakery_given_coffee"].tolist() == [0.7, 0.7, 0.1, 0.1]
    # the attach rate of the offer's node: the program's first [habits] pair with that target (coffee.toml:
    # bakery given coffee, then bakery given tea); an offer on a node no pair targets has none
    assert bk["cust_attach_rate_reward_category"].tolist() == [0.7, 0.1]
    assert rows.loc[rows["offer_id"] == "cf", "cust_attach_rate_reward_category"].isna().all()
    assert bk.loc["c1", "send_daypart"] == "before_9"
    assert bk.loc["c1", "send_weekday"] == "tue" and bk.loc["c1", "send_is_weekend"] == 0.0
    assert bk.loc["c1", "offer_value_to_avg_basket"] == pytest.approx(0.4)
    assert np.isnan(bk.loc["c2", "offer_value_to_avg_basket"])  # no basket yet: unknown, not infinite
    cf = rows[rows["offer_id"] == "cf"].iloc[0]
    assert np.isnan(cf["offer_value_share_of_min_spend"])


def test_frame_context_builds_exactly_the_given_rows_in_order(profiles, offers):
    ctx = pd.DataFrame({"customer_id": ["c2", "c1"], "offer_id": ["bk", "cf"],
                        "sent_at": pd.to_datetime(["2026-06-27 12:00", "2026-06-29 18:00"]), "channel": ["email", "push"]})
    rows = offer_features(profiles, offers, ctx)
    assert rows[["customer_id", "offer_id", "send_channel", "send_daypart", "send_weekday"]].values.tolist() == [
        ["c2", "bk", "email", "11_to_14", "sat"], ["c1", "cf", "push", "after_17", "mon"]]


def test_clear_errors_for_missing_inputs(profiles, offers):
    with pytest.raises(MissingContextError, match=r"offer_features: context must contain keys \['channel'\]"):
        offer_features(profiles, offers, {"timestamp": "2026-06-30"})
    with pytest.raises(MissingColumnsError, match="table 'profiles'.*avg_basket_365d"):
        offer_features(profiles.drop(columns="avg_basket_365d"), offers, {"timestamp": "2026-06-30", "channel": "app"})
    # a feature of a table the program does not have is simply not built (nor learned from)
    absent = offer_features(profiles.drop(columns="visits_30d"), offers, {"timestamp": "2026-06-30", "channel": "app"})
    assert "visits_30d" not in absent.columns and "visits_90d" in absent.columns
    ctx = pd.DataFrame({"customer_id": ["nobody"], "offer_id": ["bk"], "timestamp": ["2026-06-30"], "channel": ["app"]})
    with pytest.raises(ValueError, match="name customers .* missing from profiles, e.g. \\['nobody'\\]"):
        offer_features(profiles, offers, ctx)
    ctx = ctx.assign(customer_id="c1", offer_id="zz")
    with pytest.raises(ValueError, match="offers missing from the offers table, e.g. \\['zz'\\]"):
        offer_features(profiles, offers, ctx)


def test_only_context_columns_change_with_the_sending_moment(profiles, offers):
    from models.offer_response import CONTEXT_COLUMNS

    morning = offer_features(profiles, offers, {"timestamp": "2026-06-30 08:30", "channel": "app"})
    evening = offer_features(profiles, offers, {"timestamp": "2026-07-04 19:00", "channel": "push"})
    changed = [c for c in morning.columns if not morning[c].equals(evening[c])]
    assert sorted(changed) == sorted(CONTEXT_COLUMNS)


def test_offer_matrix_gives_the_model_the_same_numbers_as_offer_features(sample):
    """Batch scoring builds the grid by broadcasting; it must equal the row-by-row path bit for bit."""
    from features import build_profiles
    from models.offer_response import offer_matrix
    from models.tabular import learn_layout, numeric_matrix, to_matrix
    from pipelines.config import SAMPLE_END_DATE

    customers = sample.tables["customers"].sort_values("customer_id").head(300)
    tables = {name: (frame[frame["customer_id"].isin(customers["customer_id"])] if "customer_id" in frame else frame)
              for name, frame in sample.tables.items()}
    profiles = build_profiles(tables, pd.Timestamp(SAMPLE_END_DATE))
    offers = sample.tables["offers"].copy()
    offers.loc[offers.index[0], "min_spend"] = 0.0  # share of min spend: unknown, not infinite
    ctx = {"timestamp": "2026-06-27 12:40", "channel": "push"}
    rows = offer_features(profiles, offers, ctx)
    names, categories = learn_layout(rows)
    categories["offer_type"] = categories["offer_type"][1:]  # a type the model never saw: missing
    expected = numeric_matrix(to_matrix(rows, names, categories, "reference"))

    grid = offer_matrix(profiles, offers, ctx, names, categories)

    assert grid.shape == (len(profiles), len(offers), len(names))
    np.testing.assert_array_equal(grid.reshape(-1, len(names)), expected)  # NaN where NaN, else equal
    assert np.isnan(grid[:, :, names.index("offer_type")]).any()
    assert np.isnan(grid[:, 0, names.index("offer_value_share_of_min_spend")]).all()
    assert np.isfinite(grid[:, :, names.index("cust_redeem_rate_offer_type_shrunk")]).mean() > 0.5


def test_offer_matrix_names_what_is_missing(profiles, offers):
    from models.offer_response import offer_matrix
    from models.tabular import MissingFeaturesError

    with pytest.raises(MissingContextError, match=r"offer_matrix: context must contain keys \['channel'\]"):
        offer_matrix(profiles, offers, {"timestamp": "2026-06-30"}, ["offer_value"], {})
    with pytest.raises(MissingFeaturesError, match="no_such_feature"):
        offer_matrix(profiles, offers, {"timestamp": "2026-06-30", "channel": "app"}, ["no_such_feature"], {})
