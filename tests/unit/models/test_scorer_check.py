"""check_scorer: a consistency check of a fast scorer against the model's own path, at a fixed cost.

A real (small) LightGBM offer-response model fitted on real offer rows of the seeded sample, so the
fast path (precomputed offer rows) and the reference (``offer_features`` + ``predict_proba``) are the
ones the API serves with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features import build_profiles
from models.offer_response import OfferResponseModel, offer_features
from models.policy import Context, ScorerMismatchError, check_scorer, precompute_scorer
from models.policy.offers import prepare_offers
from models.policy.scoring import VERIFY_CONTEXTS
from pipelines.config import SAMPLE_END_DATE

N_CUSTOMERS = 300


@pytest.fixture(scope="module")
def fitted(sample):
    ids = np.sort(sample.tables["customers"]["customer_id"].to_numpy(dtype=object))[:N_CUSTOMERS]
    tables = {name: frame[frame["customer_id"].isin(ids)].reset_index(drop=True) if "customer_id" in frame else frame
              for name, frame in sample.tables.items()}
    profiles = build_profiles(tables, SAMPLE_END_DATE)
    offers = sample.tables["offers"]
    X = offer_features(profiles, offers, {"timestamp": pd.Timestamp("2026-06-30 08:15"), "channel": "app"})
    z = -1.0 + 3.0 * X["cust_redeem_rate_offer_type_shrunk"].fillna(0).to_numpy()
    y = (np.random.default_rng(0).random(len(X)) < 1 / (1 + np.exp(-z))).astype(int)
    model = OfferResponseModel(n_estimators=30, min_child_samples=10).fit(X, y)
    return model, profiles, prepare_offers(offers)


class CountingModel:
    """The model, counting the rows its own path is asked to score."""

    def __init__(self, model):
        self.model, self.rows = model, 0

    def predict_proba(self, X):
        self.rows += len(X)
        return self.model.predict_proba(X)


def test_the_precomputed_scorer_reproduces_the_model_on_the_checked_sample(fitted):
    model, profiles, catalog = fitted
    scorer = precompute_scorer(model, profiles, catalog)
    assert check_scorer(scorer, model, profiles, catalog) < 1e-9


def test_a_real_mismatch_fails_loudly_naming_the_scorer_and_the_context(fitted):
    model, profiles, catalog = fitted
    scorer = precompute_scorer(model, profiles, catalog)
    j = scorer.names.index("cust_redeem_rate_offer_type_shrunk")
    scorer.stored.per_pair[:, :, scorer.stored.pair_cols.index(j)] += 0.5  # the fast rows no longer hold what the model is fed
    with pytest.raises(ScorerMismatchError,
                       match=r"PrecomputedScorer offer scores differ from model\.predict_proba\(offer_features\(\.\.\.\)\) "
                             r"by .* in context .*use FrameScorer"):
        check_scorer(scorer, model, profiles, catalog)


def test_the_check_costs_the_same_for_any_number_of_customers(fitted):
    """A fixed-size seeded sample: 25 customers x every offer x each context, however many profiles."""
    model, profiles, catalog = fitted
    scorer = precompute_scorer(model, profiles, catalog)
    seen = []
    for n in (50, N_CUSTOMERS):
        counting = CountingModel(model)
        check_scorer(scorer, counting, profiles.head(n), catalog, customers=25)
        seen.append(counting.rows)
    assert seen == [25 * len(catalog) * len(VERIFY_CONTEXTS)] * 2
    few = CountingModel(model)
    contexts = [Context(pd.Timestamp("2026-03-02 07:40"), "app")]
    check_scorer(scorer, few, profiles.head(10), catalog, customers=25, contexts=contexts)
    assert few.rows == 10 * len(catalog)  # fewer profiles than the sample: all of them
