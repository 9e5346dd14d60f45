"""The offer model on the grocery scenario (3,000 households x 365 days, seeded): with the taxonomy and
offer-product features it beats category popularity out of time and recovers the planted truth.

Generated and validated through the real CLI (real GX validation); the model is trained on the
validated tables with ``offer_response_training_set(taxonomy=True)``.
"""

from __future__ import annotations

import pandas as pd
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from models.baselines import PopularityBaseline
from models.evaluation import offer_metrics, offer_time_split
from models.offer_response import OfferResponseModel
from models.training_sets import offer_response_training_set
from pipelines.cli import app
from pipelines.io import read_validated, read_validated_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 0
# Thresholds (measured at seed 0: model NDCG@3 0.228 / hit@3 0.373 / ROC-AUC 0.553 against category
# popularity 0.171 / 0.285 / 0.518; the planted p_redeem itself reaches ROC-AUC 0.589 on this split).
NDCG3_MARGIN, HIT3_MARGIN, AUC_MARGIN = 0.03, 0.05, 0.015


@pytest.fixture(scope="module")
def grocery(tmp_path_factory):
    root = tmp_path_factory.mktemp("grocery_offers")
    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--scenario", "grocery", "--customers", "3000", "--days", "365",
                                 "--out", str(root / "raw")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", str(root / "raw"), "--out", str(root / "validated"),
                                 "--quarantine", str(root / "q"), "--report-dir", str(root / "reports"),
                                 "--run-date", "2026-06-30"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    tables = read_validated(root / "validated")
    for name in ("products", "offer_products"):
        tables[name] = read_validated_table(root / "validated", name)
    truth = pd.read_parquet(root / "raw" / "ground_truth" / "coupon_redemption.parquet")
    households = pd.read_parquet(root / "raw" / "ground_truth" / "households.parquet")
    return tables, truth.drop_duplicates(["customer_id", "offer_id"]), households.set_index("customer_id")


def _fit_and_score(tables, taxonomy: bool):
    X, y, meta = offer_response_training_set(tables, taxonomy=taxonomy)
    train, valid = offer_time_split(meta, valid_days=60)
    y = y.to_numpy()
    model = OfferResponseModel(random_state=SEED).fit(X[train], y[train])
    customers = meta.loc[valid, "customer_id"].to_numpy()
    scores = model.predict_proba(X[valid])[:, 1]
    popularity = PopularityBaseline(key="reward_category").fit(meta[train], y[train]).predict_proba(meta[valid])[:, 1]
    return (offer_metrics(y[valid], scores, customers), offer_metrics(y[valid], popularity, customers),
            meta[valid].reset_index(drop=True), scores)


@pytest.fixture(scope="module")
def fitted(grocery):
    return _fit_and_score(grocery[0], taxonomy=True)


def test_offer_model_beats_category_popularity_out_of_time(fitted):
    model, popularity, _, _ = fitted
    assert model["ranked_users"] > 500
    assert model["ndcg_at_3"] > popularity["ndcg_at_3"] + NDCG3_MARGIN, (model["ndcg_at_3"], popularity["ndcg_at_3"])
    assert model["hit_rate_at_3"] > popularity["hit_rate_at_3"] + HIT3_MARGIN, (
        model["hit_rate_at_3"], popularity["hit_rate_at_3"])
    assert model["roc_auc"] > popularity["roc_auc"] + AUC_MARGIN, (model["roc_auc"], popularity["roc_auc"])


def test_taxonomy_features_are_what_beats_popularity(grocery, fitted):
    without, popularity, _, _ = _fit_and_score(grocery[0], taxonomy=False)
    assert fitted[0]["ndcg_at_3"] > without["ndcg_at_3"] + 0.03, (fitted[0]["ndcg_at_3"], without["ndcg_at_3"])
    assert without["ndcg_at_3"] < popularity["ndcg_at_3"] + NDCG3_MARGIN  # without them no column sees the coupon's node or products


def test_offer_model_recovers_the_planted_truth(grocery, fitted):
    _, truth, households = grocery
    _, _, meta, scores = fitted
    planted = meta.merge(truth, on=["customer_id", "offer_id"], how="left", validate="many_to_one")
    assert planted["p_redeem"].notna().all()
    assert spearmanr(scores, planted["p_redeem"]).correlation > 0.3
    share = planted["repertoire_share"].to_numpy()
    assert scores[share > 0.5].mean() > 1.5 * scores[share == 0].mean()  # coupons on products already bought
    baby = planted["baby_coupon"].to_numpy()
    home = planted["customer_id"].map(households["has_baby"]).to_numpy(dtype=bool)
    assert scores[baby & home].mean() > 1.5 * scores[baby & ~home].mean()  # baby care for households with a baby
