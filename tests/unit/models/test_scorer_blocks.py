"""MatrixScorer scores a big grid in blocks of customers (bounded memory) and explains the chosen pairs
from their own rows: the scores and reasons are those of the whole grid at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import build_profiles
from models.offer_response import offer_features, offer_matrix

AS_OF = pd.Timestamp("2026-05-01")


@pytest.fixture(scope="module")
def fitted(sample):
    from models.offer_response import OfferResponseModel
    from models.offer_taxonomy import TaxonomySource

    tables = sample.tables
    ids = np.sort(tables["customers"]["customer_id"].unique())[:120]
    small = {k: (v[v["customer_id"].isin(ids)] if "customer_id" in v.columns else v) for k, v in tables.items()}
    profiles = build_profiles(small, AS_OF)
    X = offer_features(profiles, tables["offers"], {"timestamp": AS_OF, "channel": "app"}, tables=small, as_of=AS_OF)
    z = -1.5 + 4.0 * X["node_d0_visit_share_365d"].fillna(0).to_numpy() + 0.02 * X["offer_value"].to_numpy()
    y = (np.random.default_rng(2).random(len(X)) < 1 / (1 + np.exp(-z))).astype(int)
    model = OfferResponseModel(n_estimators=30, min_child_samples=10).fit(X, y)
    lookup = TaxonomySource(small, AS_OF).lookup(profiles["customer_id"], tables["offers"])
    return small, profiles, model, lookup, ids


def test_aligned_offer_matrix_gives_the_grid_rows_of_its_pairs(fitted, sample):
    small, profiles, model, lookup, _ = fitted
    offers = sample.tables["offers"].reset_index(drop=True)
    names, cats = list(model.feature_names_in_), {k: list(v) for k, v in model.categories_.items()}
    ctx = {"timestamp": AS_OF + pd.Timedelta(hours=13), "channel": "app"}
    grid = offer_matrix(profiles, offers, ctx, names, cats, taxonomy=lookup)
    rng = np.random.default_rng(0)
    r, c = rng.integers(0, len(profiles), 200), rng.integers(0, len(offers), 200)
    rows = offer_matrix(profiles.iloc[r], offers.iloc[c], ctx, names, cats, taxonomy=lookup, aligned=True)
    assert rows.shape == (200, len(names))
    np.testing.assert_array_equal(rows, grid[r, c])
    with pytest.raises(ValueError, match="aligned=True.*3 profiles and 2 offers"):
        offer_matrix(profiles.head(3), offers.head(2), ctx, names, cats, taxonomy=lookup, aligned=True)


@pytest.mark.parametrize("mb", [1e6, 0.0])
def test_blocks_of_customers_give_the_scores_and_reasons_of_one_grid(fitted, mb):
    """precompute_max_mb 1e6: PrecomputedScorer, 0: MatrixScorer; each with one block and with blocks of
    a few customers (grid_budget_mb tiny): same P(redeem), same chosen offers, same reasons."""
    from models.policy import Context
    from models.policy.scoring import _PairRequest
    from models.policy.setup import decision_setup

    small, profiles, model, _, ids = fitted

    class Churn:
        feature_names_in_ = []

        def predict_proba(self, X):
            return np.tile([0.5, 0.5], (len(X), 1))

    setup = decision_setup(small, Churn(), model, profiles=profiles, precompute_max_mb=mb, as_of=AS_OF,
                           predict=lambda m: model.booster_model_.booster_.predict(m))
    assert type(setup.scorer).__name__ == ("PrecomputedScorer" if mb else "MatrixScorer"), setup.scorer_note
    ctx = Context(pd.Timestamp("2026-05-02 12:30"), "app")
    whole = setup.decide(list(ids), ctx, 3).offer_columns
    scorer = setup.scorer
    per_customer_mb = len(setup.catalog) * len(scorer.names) * 8 / 2**20
    scorer.grid_budget_mb = 7.5 * per_customer_mb  # blocks of 7 customers
    assert scorer.block_rows(len(setup.catalog)) == 7
    blocks = setup.decide(list(ids), ctx, 3).offer_columns
    assert len(whole["offer_id"]) > 100
    np.testing.assert_array_equal(np.asarray(blocks["offer_id"]), np.asarray(whole["offer_id"]))
    np.testing.assert_array_equal(np.asarray(blocks["p_redeem"]), np.asarray(whole["p_redeem"]))
    assert list(blocks["reasons"]) == list(whole["reasons"]) and any(len(r) for r in whole["reasons"])
    batch = setup.book.batch(list(ids), with_profiles=True)
    cols = np.flatnonzero(setup.catalog.valid_to >= ctx.timestamp.value)
    _, handle = scorer.score_pairs(batch, np.flatnonzero(batch.known), setup.catalog, cols, ctx)
    assert isinstance(handle, _PairRequest)  # the grid was never held whole


def test_the_precomputed_scorer_holds_the_offers_valid_at_the_cut_and_scores_older_ones_per_call(fitted):
    """Sized on the offers still valid at the profiles' as_of; a request dated before it that names an
    offer expired by then is scored (and explained) like the matrix scorer scores it."""
    from models.policy import Context
    from models.policy.scoring import held_offers
    from models.policy.setup import decision_setup

    small, profiles, model, _, ids = fitted

    class Churn:
        feature_names_in_ = []

        def predict_proba(self, X):
            return np.tile([0.5, 0.5], (len(X), 1))

    setups = {mb: decision_setup(small, Churn(), model, profiles=profiles, precompute_max_mb=mb, as_of=AS_OF,
                                 predict=lambda m: model.booster_model_.booster_.predict(m)) for mb in (1e6, 0.0)}
    pre, matrix = setups[1e6], setups[0.0]
    catalog = pre.catalog
    held = held_offers(catalog, AS_OF)
    assert 0 < len(held) < len(catalog)  # the sample has offers that ended before the cut
    assert pre.scorer.stored.per_pair.shape[:2] == (len(profiles), len(held))
    early = Context(pd.Timestamp(catalog.valid_to[np.setdiff1d(np.arange(len(catalog)), held)].max()) - pd.Timedelta(days=1),
                    "app")
    a, b = pre.decide(list(ids), early, 3).offer_columns, matrix.decide(list(ids), early, 3).offer_columns
    cols = np.arange(len(catalog))  # expired offers among them: scored per call, from the rows it was built on
    batch = pre.book.batch(list(ids), with_profiles=False)
    p_pre, handle = pre.scorer.score_pairs(batch, np.flatnonzero(batch.known), catalog, cols, early)
    full = matrix.book.batch(list(ids), with_profiles=True)
    p_matrix, _ = matrix.scorer.score_pairs(full, np.flatnonzero(full.known), catalog, cols, early)
    np.testing.assert_allclose(p_pre, p_matrix, atol=1e-12)
    assert type(handle).__name__ == "_Fallback"
    np.testing.assert_array_equal(np.asarray(a["offer_id"]), np.asarray(b["offer_id"]))
    np.testing.assert_allclose(np.asarray(a["p_redeem"]), np.asarray(b["p_redeem"]), atol=1e-12)
    assert list(a["reasons"]) == list(b["reasons"])


def test_the_reference_from_the_sample_customers_tables_equals_the_one_from_all_tables(fitted, sample):
    """check_scorer cuts the source to its sampled customers: their taxonomy columns (and scores) are the
    ones computed from every customer's tables."""
    from models.offer_taxonomy import TaxonomySource
    from models.policy import Context
    from models.policy.scoring import _reference_scores

    small, profiles, model, _, ids = fitted
    source = TaxonomySource(small, AS_OF)
    few = profiles.iloc[[3, 17, 40]].reset_index(drop=True)
    cut = source.for_customers(few["customer_id"])
    assert len(cut.tables["transactions"]) < len(source.tables["transactions"]) / 10
    offers = sample.tables["offers"].reset_index(drop=True)
    contexts = [Context(pd.Timestamp("2026-05-02 12:30"), "app")]
    full = _reference_scores(model, few, offers, contexts, source)[0]
    np.testing.assert_array_equal(_reference_scores(model, few, offers, contexts, cut)[0], full)
