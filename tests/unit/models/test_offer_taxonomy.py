"""On the coffee sample (one level: category; offers on a whole category) the taxonomy columns reproduce
the old per-category columns and are computed the same for a new offer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import build_profiles
from models.offer_response import offer_features
from models.offer_taxonomy import taxonomy_columns

AS_OF = pd.Timestamp("2026-05-01")


@pytest.fixture(scope="module")
def rows(sample):
    tables = sample.tables
    ids = np.sort(tables["customers"]["customer_id"].unique())[:300]
    small = {k: (v[v["customer_id"].isin(ids)] if "customer_id" in v.columns else v) for k, v in tables.items()}
    profiles = build_profiles(small, AS_OF)
    offers = tables["offers"]
    new = offers.iloc[[0]].assign(offer_id="never_seen", reward_category="tea")
    offers = pd.concat([offers, new], ignore_index=True)
    context = {"timestamp": AS_OF, "channel": "app"}
    return offer_features(profiles, offers, context, tables=small), offer_features(profiles, offers, context)


def test_width_is_fixed_and_taxonomy_is_only_added(rows):
    with_taxonomy, without = rows
    assert list(with_taxonomy.columns) == list(without.columns) + taxonomy_columns()
    assert with_taxonomy[list(without.columns)].equals(without)


def test_node_columns_reproduce_the_per_category_profile_columns(rows, sample):
    """On coffee (one level: category) the long node columns equal the wide per-category profile columns
    they replace in the offer model, and the long offer history equals the per-category sends."""
    got, _ = rows
    ids = got["customer_id"].unique()
    small = {k: (v[v["customer_id"].isin(ids)] if "customer_id" in v.columns else v) for k, v in sample.tables.items()}
    profiles = build_profiles(small, AS_OF).set_index("customer_id")
    seen = got[got["offer_id"] != "never_seen"]
    wide = np.array([profiles.at[c, f"visit_share_{cat}"] for c, cat in zip(seen["customer_id"], seen["reward_category"])])
    assert np.isfinite(wide).sum() > 1000
    np.testing.assert_allclose(seen["node_d0_visit_share_365d"], wide, atol=1e-9)
    events = small["offer_events"].merge(small["offers"][["offer_id", "reward_category"]], on="offer_id")
    events = events[(events["sent_at"] < AS_OF) & ~events["is_control"]]
    sent = events.groupby(["customer_id", "reward_category"]).size()
    redeemed = events[events["redeemed_at"] < AS_OF].groupby(["customer_id", "reward_category"]).size()
    key = pd.MultiIndex.from_arrays([seen["customer_id"], seen["reward_category"]])
    np.testing.assert_array_equal(seen["cust_sent_reward_category"], sent.reindex(key).fillna(0).to_numpy())
    np.testing.assert_array_equal(seen["cust_redeemed_reward_category"], redeemed.reindex(key).fillna(0).to_numpy())
    assert seen["cust_sent_reward_category"].sum() > 100
    overall = profiles.loc[seen["customer_id"], "offers_redeem_rate"].to_numpy()
    s, r = seen["cust_sent_reward_category"].to_numpy(), seen["cust_redeemed_reward_category"].to_numpy()
    np.testing.assert_allclose(seen["cust_redeem_rate_reward_category_shrunk"], (r + 3 * overall) / (s + 3), equal_nan=True)
    assert got[[c for c in got.columns if c.startswith("node_d1_")]].isna().all().all()  # coffee has one level


def test_an_offer_never_seen_is_scored_from_its_node(rows):
    got, _ = rows
    new = got[got["offer_id"] == "never_seen"].reset_index(drop=True)
    tea = got[(got["reward_category"] == "tea") & (got["offer_id"] != "never_seen")].drop_duplicates("customer_id")
    tea = tea.set_index("customer_id").loc[new["customer_id"]].reset_index()
    for col in taxonomy_columns()[:6] + ["offer_products_bought_share", "offer_product_purchases"]:
        np.testing.assert_allclose(new[col], tea[col], equal_nan=True, err_msg=col)
    assert new["offer_product_purchases"].sum() > 0


def test_offer_matrix_gives_the_taxonomy_columns_of_offer_features(sample):
    """The broadcast builder (lists, the API) and the row path (training, the reference) agree on the
    taxonomy columns too, cell for cell, with the cut at the profiles' as_of."""
    from models.offer_response import offer_matrix
    from models.offer_taxonomy import TaxonomySource
    from models.tabular import learn_layout, numeric_matrix, to_matrix

    tables = sample.tables
    ids = np.sort(tables["customers"]["customer_id"].unique())[:200]
    small = {k: (v[v["customer_id"].isin(ids)] if "customer_id" in v.columns else v) for k, v in tables.items()}
    profiles = build_profiles(small, AS_OF)
    offers = tables["offers"]
    ctx = {"timestamp": AS_OF + pd.Timedelta(hours=9), "channel": "app"}
    rows = offer_features(profiles, offers, ctx, tables=small, as_of=AS_OF)
    names, categories = learn_layout(rows)
    assert set(taxonomy_columns()) <= set(names)
    expected = numeric_matrix(to_matrix(rows, names, categories, "reference"))
    lookup = TaxonomySource(small, AS_OF).lookup(profiles["customer_id"], offers)
    grid = offer_matrix(profiles, offers, ctx, names, categories, taxonomy=lookup)
    np.testing.assert_allclose(grid.reshape(-1, len(names)), expected, rtol=0, atol=1e-12, equal_nan=True)
    j = names.index("node_d0_visits_90d")
    assert np.nanmax(grid[:, :, j]) > 0


def test_offer_matrix_without_a_lookup_names_the_taxonomy_columns(sample):
    from models.offer_response import offer_matrix
    from models.tabular import MissingFeaturesError

    profiles = build_profiles({k: v for k, v in sample.tables.items()}, AS_OF).head(3)
    with pytest.raises(MissingFeaturesError, match=r"TaxonomyLookup.*node_d0_spend_share_365d"):
        offer_matrix(profiles, sample.tables["offers"], {"timestamp": AS_OF, "channel": "app"},
                     ["offer_value", "node_d0_spend_share_365d"], {})


def test_a_taxonomy_model_is_served_by_the_fast_scorers_and_checked_against_its_own_path(sample):
    """decision_setup with a model trained on the taxonomy columns: precomputed (API) and matrix (lists,
    big APIs) scorers both pass check_scorer, and the decisions agree with the reference scorer."""
    from models.offer_response import OfferResponseModel
    from models.policy import Context
    from models.policy.setup import decision_setup

    tables = sample.tables
    ids = np.sort(tables["customers"]["customer_id"].unique())[:150]
    small = {k: (v[v["customer_id"].isin(ids)] if "customer_id" in v.columns else v) for k, v in tables.items()}
    profiles = build_profiles(small, AS_OF)
    X = offer_features(profiles, tables["offers"], {"timestamp": AS_OF, "channel": "app"}, tables=small, as_of=AS_OF)
    z = -1.5 + 4.0 * X["node_d0_visit_share_365d"].fillna(0).to_numpy()
    y = (np.random.default_rng(1).random(len(X)) < 1 / (1 + np.exp(-z))).astype(int)
    model = OfferResponseModel(n_estimators=30, min_child_samples=10).fit(X, y)

    class Churn:
        feature_names_in_ = []

        def predict_proba(self, X):
            return np.tile([0.5, 0.5], (len(X), 1))

    from models.policy.scoring import MatrixScorer, PrecomputedScorer

    kinds = {}
    ctx = Context(pd.Timestamp("2026-05-02 08:30"), "app")
    for mb in (1e6, 0.0):
        setup = decision_setup(small, Churn(), model, profiles=profiles, predict=lambda m: model.booster_model_.booster_.predict(m),
                               precompute_max_mb=mb, as_of=AS_OF)
        kinds[mb] = setup.scorer_kind
        assert isinstance(setup.scorer, PrecomputedScorer if mb else MatrixScorer), setup.scorer_note
        decided = setup.decide(list(ids[:20]), ctx, 2, explain=False).offer_columns
        kinds[(mb, "p")] = np.asarray(decided["p_redeem"])
    assert kinds[1e6] == "precomputed" and kinds[0.0] == "matrix"
    np.testing.assert_allclose(kinds[(1e6, "p")], kinds[(0.0, "p")], atol=1e-9)
    with pytest.raises(Exception, match="as_of"):
        decision_setup(small, Churn(), model, profiles=profiles, predict=lambda m: m)
