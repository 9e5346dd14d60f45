"""Training against a REAL MLflow SQLite store: versions, aliases, the champion gate, artifacts, quality.

The sample (3000 customers x 365 days, seed 42) goes through the real validation step, then both
models are trained once for the module; later tests add churn versions to exercise the gate.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory, sample_raw_dir):
    """Validated sample tables and an empty MLflow store (URI, artifact root) in a temp folder."""
    from pipelines.config import SAMPLE_END_DATE
    from pipelines.validate import validate_directory

    root = tmp_path_factory.mktemp("train")
    result = validate_directory(
        sample_raw_dir, root / "validated", root / "quarantine", root / "reports", run_date=SAMPLE_END_DATE
    )
    assert result.written, "the sample must pass validation"
    return {"validated": root / "validated", "uri": f"sqlite:///{root / 'mlflow.db'}", "artifacts": root / "mlartifacts"}


@pytest.fixture(scope="module")
def env(store):
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
    mp.setenv("REWARDS_ARTIFACT_ROOT", str(store["artifacts"]))
    yield store
    mp.undo()


@pytest.fixture(scope="module")
def first_run(env):
    from pipelines.train import train_all

    return train_all(env["validated"], tracking_uri=env["uri"], seed=42)


@pytest.fixture(scope="module")
def client(env):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=env["uri"])


def _aliases(client, name):
    return {a: str(client.get_model_version_by_alias(name, a).version) for a in ("champion", "challenger")
            if _has_alias(client, name, a)}


def _has_alias(client, name, alias):
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version_by_alias(name, alias)
        return True
    except MlflowException:
        return False


def test_first_versions_are_promoted_and_logged_with_plots(first_run, client, env):
    # train_all must leave the caller's MLflow settings alone (mlflow.set_tracking_uri edits the env var)
    assert os.environ["MLFLOW_TRACKING_URI"] == env["uri"]
    for kind, name in (("churn", CHURN_MODEL_NAME), ("offers", OFFER_MODEL_NAME)):
        res = first_run[kind]
        assert res["version"] == "1" and res["promoted"], res["decision"]
        assert res["decision"]["gate.champion_value"] == "none"
        assert _aliases(client, name) == {"champion": "1"}
        run = client.get_run(res["run_id"])
        exp = client.get_experiment(run.info.experiment_id)
        assert exp.name == name
        assert exp.artifact_location == (env["artifacts"] / name).resolve().as_uri()
        assert run.data.tags["gate.decision"] == "promoted"
        assert run.data.params["data_digest"] == run.data.tags["data_digest"] and len(run.data.tags["data_digest"]) == 64
        top = {a.path for a in client.list_artifacts(res["run_id"])}
        assert {"plots", "feature_manifest.json", "comparison.md"} <= top
        plots = {a.path for a in client.list_artifacts(res["run_id"], "plots")}
        assert plots == {f"plots/{p}.png" for p in ("roc", "precision_recall", "calibration", "lift", "feature_importance")}
        assert client.get_model_version(name, "1").tags["gate.decision"] == "promoted"
    churn_metrics = client.get_run(first_run["churn"]["run_id"]).data.metrics
    assert {"roc_auc", "pr_auc", "baseline_recency_roc_auc", "baseline_bgnbd_pr_auc", "ece"} <= set(churn_metrics)
    offer_metrics = client.get_run(first_run["offers"]["run_id"]).data.metrics
    assert {"ndcg_at_3", "baseline_offer_popularity_ndcg_at_3", "baseline_category_popularity_roc_auc"} <= set(offer_metrics)


def test_load_champion_returns_our_estimators(first_run, env):
    from models.churn import ChurnModel
    from models.offer_response import OfferResponseModel
    from pipelines.registry import NoChampionError, load_champion

    churn, version = load_champion(CHURN_MODEL_NAME, env["uri"])
    assert isinstance(churn, ChurnModel) and version == "1"
    offers, _ = load_champion(OFFER_MODEL_NAME, env["uri"])
    assert isinstance(offers, OfferResponseModel) and hasattr(offers, "contributions")
    with pytest.raises(NoChampionError, match="has no 'champion' version"):
        load_champion("no-such-model", env["uri"])


def test_churn_quality_beats_both_baselines(first_run):
    m = first_run["churn"]["metrics"]
    assert m["model"]["roc_auc"] >= 0.80
    for baseline in ("baseline_recency", "baseline_bgnbd"):
        assert m["model"]["roc_auc"] > m[baseline]["roc_auc"]
        assert m["model"]["pr_auc"] > m[baseline]["pr_auc"]
        assert m["model"]["brier"] < m[baseline]["brier"]
    assert m["model"]["ece"] < 0.05


def test_offer_quality_beats_popularity(first_run):
    m = first_run["offers"]["metrics"]
    assert m["model"]["roc_auc"] >= 0.75
    for baseline in ("baseline_offer_popularity", "baseline_category_popularity"):
        assert m["model"]["ndcg_at_3"] > m[baseline]["ndcg_at_3"]
        assert m["model"]["roc_auc"] > m[baseline]["roc_auc"]


def test_morning_commuters_are_likelier_to_redeem_a_bakery_offer(first_run, env, sample):
    from features import build_profiles
    from models.offer_response import offer_features
    from pipelines.config import SAMPLE_END_DATE
    from pipelines.io import read_validated
    from pipelines.registry import load_champion

    model, _ = load_champion(OFFER_MODEL_NAME, env["uri"])
    tables = read_validated(env["validated"])
    profiles = build_profiles(tables, pd.Timestamp(SAMPLE_END_DATE))
    offers = tables["offers"]
    bakery = offers[(offers["reward_category"] == "bakery") & (offers["offer_type"] != "informational")].head(1)
    assert len(bakery) == 1
    rows = offer_features(profiles, bakery, {"timestamp": pd.Timestamp(SAMPLE_END_DATE) + pd.Timedelta(hours=9),
                                             "channel": "app"}, tables=tables, as_of=SAMPLE_END_DATE)
    scored = pd.DataFrame({"customer_id": rows["customer_id"], "p": model.predict_proba(rows)[:, 1]})
    scored = scored.merge(sample.ground_truth["customers"][["customer_id", "persona"]], on="customer_id")
    commuters = scored.loc[scored["persona"] == "morning_commuter", "p"].mean()
    others = scored.loc[scored["persona"] != "morning_commuter", "p"].mean()
    assert commuters >= 1.3 * others, (commuters, others)
    contrib = model.contributions(rows.head(3))
    assert contrib.columns[-1] == "bias" and len(contrib.columns) == model.n_features_in_ + 1


def test_second_run_with_a_margin_stays_challenger(first_run, env, client):
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["train", "churn", "--data", str(env["validated"]), "--margin", "0.5"])
    assert result.exit_code == 0, result.output
    assert "baseline_recency" in result.output and "-> challenger" in result.output
    assert _aliases(client, CHURN_MODEL_NAME) == {"champion": "1", "challenger": "2"}
    tags = client.get_model_version(CHURN_MODEL_NAME, "2").tags
    assert tags["gate.decision"] == "challenger" and tags["gate.margin"] == "0.5"
    assert float(tags["gate.candidate_value"]) == pytest.approx(float(tags["gate.champion_value"]))  # same seed: a tie


def test_better_candidate_replaces_a_weak_champion(first_run, env, client):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.train import train_all

    # A deliberately weak version, made champion by hand (the manual override is recorded) ...
    weak = train_all(env["validated"], env["uri"], seed=42, kinds=("churn",),
                     params={"churn": {"n_estimators": 2, "num_leaves": 2, "early_stopping_rounds": 1,
                                       "start": "constant"}})["churn"]
    assert not weak["promoted"]
    out = CliRunner().invoke(app, ["promote", "--model", CHURN_MODEL_NAME, "--version", weak["version"],
                                   "--reason", "gate test"])
    assert out.exit_code == 0, out.output
    assert client.get_model_version(CHURN_MODEL_NAME, weak["version"]).tags["gate.manual_reason"] == "gate test"
    # ... is beaten by the default model by more than the margin, so the gate promotes it.
    strong = train_all(env["validated"], env["uri"], seed=42, kinds=("churn",), margin=0.005)["churn"]
    assert strong["promoted"], strong["decision"]
    assert float(strong["decision"]["gate.candidate_value"]) > float(strong["decision"]["gate.champion_value"]) + 0.005
    assert _aliases(client, CHURN_MODEL_NAME)["champion"] == strong["version"]
    listing = CliRunner().invoke(app, ["models"])
    assert listing.exit_code == 0 and f"v{strong['version']}" in listing.output and "champion" in listing.output
    missing = CliRunner().invoke(app, ["promote", "--model", CHURN_MODEL_NAME, "--version", "99"])
    assert missing.exit_code == 2 and "cannot promote" in missing.output


def test_train_command_rejects_unknown_model(env):
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["train", "pricing"])
    assert result.exit_code == 2 and "unknown model 'pricing'" in result.output


def test_a_model_without_champion_gets_its_newest_version_promoted(first_run, env, client):
    from pipelines.registry import promote_latest_without_champion

    # A scratch registered model with two versions and no alias, built from a real logged churn model.
    source = client.get_model_version_by_alias(CHURN_MODEL_NAME, "champion")
    client.create_registered_model("scratch-model")
    for _ in range(2):
        client.create_model_version("scratch-model", source=source.source, run_id=source.run_id)

    promoted = promote_latest_without_champion(["scratch-model", CHURN_MODEL_NAME], "test setup", env["uri"])

    assert promoted == ["scratch-model"]  # churn-risk already has a champion: left alone
    assert _aliases(client, "scratch-model") == {"champion": "2"}
    assert promote_latest_without_champion(["scratch-model"], "again", env["uri"]) == []
