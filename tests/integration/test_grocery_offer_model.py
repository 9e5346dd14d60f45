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
# Thresholds (measured at seed 0: model NDCG@3 0.213 / hit@3 0.336 / ROC-AUC 0.552 against category
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
    grocery_root["root"] = root
    return tables, truth.drop_duplicates(["customer_id", "offer_id"]), households.set_index("customer_id")


grocery_root: dict = {}  # where the module's grocery data lives (set by the fixture above)


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
    # measured at seed 0: 0.213 with, 0.186 without (no column then sees the coupon's node, products or
    # the coupons sent on its category)
    assert fitted[0]["ndcg_at_3"] > without["ndcg_at_3"] + 0.02, (fitted[0]["ndcg_at_3"], without["ndcg_at_3"])
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


# ---------------------------------------------------------------------------------------------------
# The pipeline end to end on grocery: `rewards train` carries the taxonomy columns, and `rewards score`
# and the offer API (the real server, over HTTP) decide with them.
# ---------------------------------------------------------------------------------------------------

AS_OF = "2026-05-01"  # the last coupon campaign runs 2026-04-24 .. 2026-05-21
DECISION_TIME = "2026-05-01T09:00:00"


@pytest.fixture(scope="module")
def trained(grocery, tmp_path_factory):
    from pipelines.config import environment

    root = grocery_root["root"]
    work = tmp_path_factory.mktemp("grocery_pipeline")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "REWARDS_ARTIFACT_ROOT": str(work / "art")}
    runner = CliRunner()

    def run(*args):
        with environment(**env):
            result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    run("features", "--data", root / "validated", "--out", work / "profiles.parquet", "--as-of", AS_OF)
    run("train", "all", "--data", root / "validated", "--max-ece", "1")
    listed = run("score", "--as-of", AS_OF, "--campaign", "spring", "--out", work / "list.parquet",
                 "--data", root / "validated", "--k", "3", "--workers", "1", "--channel", "email")
    return {"root": root, "work": work, "env": env, "score_output": listed.output}


def _champion(env):
    from pipelines.config import OFFER_MODEL_NAME, environment
    from pipelines.registry import load_champion

    with environment(**env):
        return load_champion(OFFER_MODEL_NAME, env["MLFLOW_TRACKING_URI"])[0]


def _profiles(tables, validated):
    from features import build_profiles
    from pipelines.io import read_validated_program

    # in the grocery program's own catalogue (its dayparts and channels), as `rewards features` builds them
    return build_profiles(tables, pd.Timestamp(AS_OF), program=read_validated_program(validated)[0])


def _reference(model, tables, profiles, customer_id, offer_ids, context):
    """P(redeem) from the model's own path: offer_features with the taxonomy columns as of the profiles."""
    from models.offer_response import offer_features

    prof = profiles[profiles["customer_id"] == customer_id]
    offers = tables["offers"][tables["offers"]["offer_id"].isin(offer_ids)]
    X = offer_features(prof, offers, context, tables=tables, as_of=pd.Timestamp(AS_OF))
    return dict(zip(X["offer_id"], model.predict_proba(X)[:, 1], strict=True))


def test_the_trained_champion_carries_the_taxonomy_columns_and_the_list_uses_them(trained):
    from models.offer_taxonomy import taxonomy_columns

    model = _champion(trained["env"])
    assert set(taxonomy_columns()) <= set(model.feature_names_in_)
    rows = pd.read_parquet(trained["work"] / "list.parquet")
    offered = rows[rows["offer_id"].notna()]
    assert offered["customer_id"].nunique() > 1000, trained["score_output"]
    tables = read_validated(trained["root"] / "validated")
    profiles = _profiles(tables, trained["root"] / "validated")
    ctx = {"timestamp": pd.Timestamp(AS_OF) + pd.Timedelta(hours=9), "channel": "email"}
    for customer_id, mine in list(offered.groupby("customer_id"))[:5]:
        ref = _reference(model, tables, profiles, customer_id, mine["offer_id"].tolist(), ctx)
        for offer_id, p in zip(mine["offer_id"], mine["p_redeem"], strict=True):
            assert p == pytest.approx(ref[offer_id], abs=1e-9), (customer_id, offer_id)
    # reasons speak of the coupon's own node (its reward category as the data names it) and products
    reasons = [r for rs in offered["reasons"] for r in rs]
    named = sum(any(c.replace("_", " ") in r for r in rs) for c, rs in zip(offered["reward_category"], offered["reasons"]))
    assert named > 0.1 * len(offered), reasons[:10]
    assert any("this offer's products" in r for r in reasons)


def test_the_offer_api_decides_with_the_taxonomy_columns_over_http(trained, tmp_path):
    import httpx

    from pipelines.serve import start_server, stop_server, wait_ready
    from tests.integration.service_fixtures import free_port

    env = {**trained["env"], "REWARDS_VALIDATED_DIR": str(trained["root"] / "validated"),
           "REWARDS_PROFILES_PATH": str(trained["work"] / "profiles.parquet"), "REWARDS_DATA_DIR": str(trained["work"]),
           "REWARDS_DECISION_LOG": str(tmp_path / "decisions.jsonl"), "REWARDS_API_KEYS": "k1"}
    port = free_port()
    proc = start_server("127.0.0.1", port, env=env, log_path=tmp_path / "server.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout=240, process=proc, log_path=tmp_path / "server.log")
        rows = pd.read_parquet(trained["work"] / "list.parquet")
        customer_id = rows.loc[rows["offer_id"].notna() & ~rows["holdout"], "customer_id"].iloc[0]
        resp = httpx.post(f"{url}/recommend", headers={"X-API-Key": "k1"}, timeout=60, json={
            "customer_id": customer_id, "k": 3, "context": {"timestamp": DECISION_TIME, "channel": "email"}})
        assert resp.status_code == 200, resp.text
        offers = resp.json()["offers"]
        assert len(offers) == 3
        tables = read_validated(trained["root"] / "validated")
        ref = _reference(_champion(trained["env"]), tables, _profiles(tables, trained["root"] / "validated"), customer_id,
                         [o["offer_id"] for o in offers], {"timestamp": pd.Timestamp(DECISION_TIME), "channel": "email"})
        for o in offers:
            assert o["p_redeem"] == pytest.approx(ref[o["offer_id"]], abs=1e-6), o
    finally:
        stop_server(proc)
