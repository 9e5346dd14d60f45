"""`rewards train`: build training sets, fit the models and their baselines, evaluate out of time,
log everything to MLflow, register a version and run the champion gate.

Reads like a script: load -> training set -> out-of-time split -> fit model and baselines ->
evaluate -> log (params, metrics, plots, manifest, model) -> register -> gate.
"""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

CHURN = "churn"
OFFERS = "offers"
KINDS = (CHURN, OFFERS)
DEFAULT_SEED = 42


@dataclass
class TrainResult:
    """What one training run produced: the registered version, metrics per model, the gate decision."""

    kind: str
    model_name: str
    version: str
    run_id: str
    metrics: dict[str, dict[str, float]]  # "model" and each "baseline_<name>" -> metrics
    decision: object  # models.evaluation.PromotionDecision
    timings: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    windows: str = ""  # the snapshot dates chosen, in words (churn)

    def summary(self) -> dict:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "run_id": self.run_id,
            "metrics": self.metrics,
            "decision": self.decision.as_tags(),
            "promoted": self.decision.promote,
            "timings": self.timings,
            "rows": self.rows,
            "windows": self.windows,
        }


# ---------------------------------------------------------------------------------------------
# MLflow plumbing


def _experiment_id(client, name: str) -> str:
    from pipelines.config import artifact_root

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = (artifact_root() / name).resolve()
    location.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=location.as_uri())


def files_digest(directory: Path) -> str:
    """sha256 over the names and bytes of the table files in ``directory`` (the training data digest)."""
    digest = hashlib.sha256()
    for path in sorted(Path(directory).glob("*.parquet")):
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _current_champion(client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None


def _champion_metrics(client, champion, score_fn, primary: str) -> tuple[dict | None, str]:
    """The champion's metrics on THIS run's validation rows (re-scored); its logged ones if it cannot be."""
    from pipelines.registry import load_version

    if champion is None:
        return None, "none"
    try:
        model = load_version(client, champion.name, champion.version)
        return score_fn(model), "rescored on this validation split"
    except Exception as err:  # a champion with other features/classes: compare on what it logged
        logged = client.get_run(champion.run_id).data.metrics
        if primary not in logged:
            return None, f"champion could not be rescored ({type(err).__name__}) and logged no {primary}"
        return {primary: logged[primary]}, f"logged metric (rescoring failed: {type(err).__name__}: {err})"


def _log_metrics(mlflow, metrics: dict[str, dict[str, float]]) -> None:
    flat = {}
    for who, values in metrics.items():
        prefix = "" if who == "model" else f"{who}_"
        for k, v in values.items():
            if v is not None and v == v:  # MLflow rejects NaN in some stores; NaN shows as absent
                flat[f"{prefix}{k}"] = float(v)
    mlflow.log_metrics(flat)


def _log_plots(mlflow, curves, importances) -> None:
    from pipelines import plots

    for fn, path in (
        (plots.roc_figure, "plots/roc.png"),
        (plots.precision_recall_figure, "plots/precision_recall.png"),
        (plots.calibration_figure, "plots/calibration.png"),
        (plots.lift_figure, "plots/lift.png"),
    ):
        fig = fn(curves)
        mlflow.log_figure(fig, path)
        plots.close(fig)
    fig = plots.importance_figure(importances)
    mlflow.log_figure(fig, "plots/feature_importance.png")
    plots.close(fig)


def _compare_register_and_gate(
    client, mlflow, kind, name, model, input_example, yv, scores, metrics, score_champion, primary, margin, max_ece,
    baselines=None,
):
    """Inside the run: plots and comparison, the current champion's metrics, then register and gate."""
    _log_plots(mlflow, {k: (yv, s) for k, s in scores.items()}, model.feature_importances_)
    mlflow.log_text(_table_text(metrics, kind), "comparison.md")
    champion = _current_champion(client, name)
    champ_metrics, source = _champion_metrics(client, champion, score_champion, primary)
    if champion is not None and champ_metrics is not None:
        _log_metrics(mlflow, {f"champion_v{champion.version}": champ_metrics})
    return _register_and_gate(
        client, mlflow, model, input_example, name, metrics["model"], champ_metrics, source, primary, margin, max_ece,
        baselines,
    )


def _register_and_gate(client, mlflow, model, X_example, model_name, candidate, champion_metrics,
                       champion_source, primary, margin, max_ece, baselines=None):
    """Log the model as a new registered version, decide its alias, record the decision everywhere."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    from models.evaluation import promotion_decision

    # Integer features are declared as doubles: at scoring time a missing value turns them into floats.
    ints = [c for c in X_example.columns if pd.api.types.is_integer_dtype(X_example[c].dtype)]
    X_example = X_example.astype({c: "float64" for c in ints})
    signature = infer_signature(X_example, model.predict_proba(X_example)[:, 1])
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=X_example,
        registered_model_name=model_name,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    )
    version = str(info.registered_model_version)
    decision = promotion_decision(candidate, champion_metrics, metric=primary, margin=margin, max_ece=max_ece,
                                  baselines=baselines)
    tags = {**decision.as_tags(), "gate.champion_source": champion_source}
    mlflow.set_tags(tags)
    mlflow.log_params({"gate_margin": margin, "gate_max_ece": max_ece, "gate_metric": primary})
    for k, v in tags.items():
        client.set_model_version_tag(model_name, version, k, v)
    client.set_registered_model_alias(model_name, decision.alias, version)
    return version, decision


# ---------------------------------------------------------------------------------------------
# The two trainings


def train_churn(tables, *, client, data_digest: str, seed: int = DEFAULT_SEED, horizon_days: int = 60,
                max_inactive_days: int = 180, margin: float = 0.0, max_ece: float = 0.05,
                n_jobs: int = 2, params: dict | None = None, as_of=None, n_snapshots: int | None = None,
                every_days: int | None = None) -> TrainResult:
    """Churn: snapshots every 30 days, out-of-time split, ChurnModel vs recency rule and BG/NBD."""
    import mlflow

    from features import make_manifest
    from models.baselines import BGNBDBaseline, RecencyRuleBaseline
    from models.churn import ChurnModel
    from models.evaluation import (PRIMARY_METRIC, churn_metrics, churn_time_split, margins_over_baselines,
                                   run_baselines)
    from models.training_sets import churn_training_set, churn_windows
    from pipelines.config import CHURN_MODEL_NAME

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    windows = churn_windows(tables, horizon_days, as_of=as_of, n_snapshots=n_snapshots, every_days=every_days)
    dates = windows.dates
    X, y, meta = churn_training_set(tables, dates, horizon_days=horizon_days, max_inactive_days=max_inactive_days)
    timings["training_set_s"] = time.perf_counter() - t0
    train, valid = churn_time_split(meta, horizon_days)
    y_arr = y.to_numpy()

    t0 = time.perf_counter()
    model = ChurnModel(random_state=seed, n_jobs=n_jobs, **{"bgnbd_horizon_days": horizon_days, **(params or {})})
    model.fit(X[train], y_arr[train], groups=meta.loc[train, "customer_id"].to_numpy())
    timings["fit_model_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    baselines = run_baselines({
        "recency": lambda: RecencyRuleBaseline().fit(X[train], y_arr[train]).predict_proba(X[valid])[:, 1],
        "bgnbd": lambda: BGNBDBaseline(horizon_days=horizon_days, random_state=seed)
        .fit(meta[train], y_arr[train]).predict_proba(meta[valid])[:, 1],
    })
    timings["fit_baselines_s"] = time.perf_counter() - t0

    yv = y_arr[valid]
    scores = {"model": model.predict_proba(X[valid])[:, 1],
              **{f"baseline_{name}": s for name, s in baselines.scores.items()}}
    metrics = {who: churn_metrics(yv, s) for who, s in scores.items()}
    primary = PRIMARY_METRIC[CHURN]

    def score_champion(champ):
        return churn_metrics(yv, champ.predict_proba(X[valid])[:, 1])

    exp_id = _experiment_id(client, CHURN_MODEL_NAME)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"churn-seed{seed}") as run:
        mlflow.log_params({f"model.{k}": v for k, v in model.get_params().items()})
        mlflow.log_params(
            {
                "seed": seed, "horizon_days": horizon_days, "max_inactive_days": max_inactive_days,
                "snapshot_dates": ",".join(str(d.date()) for d in dates),
                "validation_as_of": str(meta.loc[valid, "as_of"].max().date()),
                "rows_train": int(train.sum()), "rows_valid": int(valid.sum()),
                "rows_excluded_inactive": meta.attrs["excluded_inactive"], "rows_candidates": meta.attrs["candidates"],
                "positive_rate_train": round(float(y_arr[train].mean()), 4),
                "best_iteration": model.best_iteration_, "n_features": model.n_features_in_,
                "data_digest": data_digest, **{f"window.{k}": v for k, v in windows.as_params().items()},
            }
        )
        mlflow.set_tags({"data_digest": data_digest, "kind": CHURN, **baselines.as_tags()})
        _log_metrics(mlflow, {**metrics, "margin_over_best_baseline": margins_over_baselines(metrics)})
        mlflow.log_metrics({f"time_{k}": v for k, v in timings.items()})
        mlflow.log_dict(make_manifest(X.assign(customer_id=meta["customer_id"].to_numpy()).loc[valid], dates[-1], data_digest),
                        "feature_manifest.json")
        version, decision = _compare_register_and_gate(
            client, mlflow, CHURN, CHURN_MODEL_NAME, model, X[valid].head(5), yv, scores, metrics, score_champion,
            primary, margin, max_ece, baselines,
        )
        run_id = run.info.run_id
    return TrainResult(CHURN, CHURN_MODEL_NAME, version, run_id, metrics, decision, timings,
                       {"train": int(train.sum()), "valid": int(valid.sum())}, windows.describe())


def train_offers(tables, *, client, data_digest: str, seed: int = DEFAULT_SEED, response_days: int = 30,
                 valid_days: int = 60, margin: float = 0.0, max_ece: float = 0.05, n_jobs: int = 2,
                 snapshot_every_days: int = 1, params: dict | None = None) -> TrainResult:
    """Offer response: one row per sent offer, out-of-time split, OfferResponseModel vs popularity baselines."""
    import mlflow

    from features import make_manifest
    from models.baselines import PopularityBaseline
    from models.evaluation import PRIMARY_METRIC, offer_metrics, offer_time_split, run_baselines
    from models.offer_response import OfferResponseModel
    from models.training_sets import offer_response_training_set
    from pipelines.config import OFFER_MODEL_NAME

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    X, y, meta = offer_response_training_set(tables, response_days=response_days,
                                             snapshot_every_days=snapshot_every_days)
    timings["training_set_s"] = time.perf_counter() - t0
    train, valid = offer_time_split(meta, valid_days=valid_days)
    y_arr = y.to_numpy()

    t0 = time.perf_counter()
    model = OfferResponseModel(random_state=seed, n_jobs=n_jobs, **(params or {})).fit(X[train], y_arr[train])
    timings["fit_model_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    baselines = run_baselines({
        f"{key}_popularity": lambda column=column: PopularityBaseline(key=column).fit(meta[train], y_arr[train])
        .predict_proba(meta[valid])[:, 1] for key, column in (("offer", "offer_id"), ("category", "reward_category"))
    })
    timings["fit_baselines_s"] = time.perf_counter() - t0

    yv = y_arr[valid]
    customers = meta.loc[valid, "customer_id"].to_numpy()
    scores = {"model": model.predict_proba(X[valid])[:, 1],
              **{f"baseline_{name}": s for name, s in baselines.scores.items()}}
    metrics = {who: offer_metrics(yv, s, customers) for who, s in scores.items()}
    primary = PRIMARY_METRIC[OFFERS]

    def score_champion(champ):
        return offer_metrics(yv, champ.predict_proba(X[valid])[:, 1], customers)

    exp_id = _experiment_id(client, OFFER_MODEL_NAME)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"offers-seed{seed}") as run:
        mlflow.log_params({f"model.{k}": v for k, v in model.get_params().items()})
        mlflow.log_params(
            {
                "seed": seed, "response_days": response_days, "valid_days": valid_days,
                "snapshot_every_days": snapshot_every_days, "profile_builds": meta.attrs["profile_builds"],
                "validation_from": str(meta.loc[valid, "sent_at"].min().date()),
                "rows_train": int(train.sum()), "rows_valid": int(valid.sum()),
                "rows_candidates": meta.attrs["candidates"],
                "rows_excluded_unobserved": meta.attrs["excluded_unobserved"],
                "rows_excluded_budget_used_up": meta.attrs["excluded_budget_used_up"],
                "rows_excluded_no_profile": meta.attrs["excluded_no_profile"],
                "positive_rate_train": round(float(y_arr[train].mean()), 4),
                "best_iteration": model.best_iteration_, "n_features": model.n_features_in_,
                "data_digest": data_digest,
            }
        )
        mlflow.set_tags({"data_digest": data_digest, "kind": OFFERS, **baselines.as_tags()})
        _log_metrics(mlflow, metrics)
        mlflow.log_metrics({f"time_{k}": v for k, v in timings.items()})
        manifest = make_manifest(X.assign(customer_id=meta["customer_id"].to_numpy()).loc[valid],
                                 meta.loc[valid, "as_of"].max(), data_digest)
        mlflow.log_dict(manifest, "feature_manifest.json")
        version, decision = _compare_register_and_gate(
            client, mlflow, OFFERS, OFFER_MODEL_NAME, model, X[valid].head(5), yv, scores, metrics, score_champion,
            primary, margin, max_ece, baselines,
        )
        run_id = run.info.run_id
    return TrainResult(OFFERS, OFFER_MODEL_NAME, version, run_id, metrics, decision, timings,
                       {"train": int(train.sum()), "valid": int(valid.sum())})


TABLE_METRICS = {
    CHURN: ["roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile", "capture_top_decile"],
    OFFERS: ["roc_auc", "pr_auc", "log_loss", "ece", "hit_rate_at_3", "ndcg_at_3", "map_at_3"],
}


def _table_text(metrics: dict[str, dict[str, float]], kind: str) -> str:
    from models.evaluation import comparison_table

    table = comparison_table(metrics, TABLE_METRICS[kind])
    header = "| model | " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * (len(table.columns) + 1)]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row.to_numpy()) + " |")
    return "\n".join(lines) + "\n"


def train_all(
    validated_dir,
    tracking_uri: str | None = None,
    seed: int = DEFAULT_SEED,
    *,
    kinds: tuple[str, ...] = KINDS,
    horizon_days: int = 60,
    margin: float = 0.0,
    max_ece: float = 0.05,
    n_jobs: int = 2,
    params: dict[str, dict] | None = None,
    windows: dict | None = None,
) -> dict[str, dict]:
    """Train, log, register and gate the models in ``kinds`` from validated tables; returns summaries by kind.

    ``params`` overrides estimator hyperparameters per kind, e.g. ``{"churn": {"num_leaves": 15}}``;
    ``windows`` the churn snapshot choice (``as_of``, ``n_snapshots``, ``every_days``; see
    ``models.training_sets.churn_windows``).
    """
    from mlflow import MlflowClient

    from pipelines.config import tracking_uri as default_tracking_uri
    from pipelines.io import read_validated

    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"train_all: unknown model kinds {unknown}; expected some of {list(KINDS)}")
    tables = read_validated(Path(validated_dir))
    digest = files_digest(Path(validated_dir))
    uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    with _tracking_uri(uri):
        return _train_kinds(tables, client, digest, kinds, seed=seed, horizon_days=horizon_days, margin=margin,
                            max_ece=max_ece, n_jobs=n_jobs, params=params, windows=windows)


@contextmanager
def _tracking_uri(uri: str):
    """Point MLflow's fluent API at ``uri`` for the block, then restore what the caller had.

    ``mlflow.set_tracking_uri`` also writes (or, given None, deletes) the MLFLOW_TRACKING_URI
    environment variable, so the variable is restored too: later code in the process must not end
    up on another store.
    """
    import mlflow

    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri
    except ImportError:  # private helper gone in a later MLflow: set it for the block only
        _use_tracking_uri = None
    try:
        if _use_tracking_uri is None:
            mlflow.set_tracking_uri(uri)
            yield
        else:
            with _use_tracking_uri(uri):
                yield
    finally:
        if env_before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env_before


def _train_kinds(tables, client, digest, kinds, *, seed, horizon_days, margin, max_ece, n_jobs, params,
                 windows=None) -> dict:
    out: dict[str, dict] = {}
    if CHURN in kinds:
        res = train_churn(tables, client=client, data_digest=digest, seed=seed, horizon_days=horizon_days,
                          margin=margin, max_ece=max_ece, n_jobs=n_jobs, params=(params or {}).get(CHURN),
                          **(windows or {}))
        out[CHURN] = res.summary()
    if OFFERS in kinds:
        res = train_offers(tables, client=client, data_digest=digest, seed=seed, margin=margin, max_ece=max_ece,
                           n_jobs=n_jobs, params=(params or {}).get(OFFERS))
        out[OFFERS] = res.summary()
    return out


def train_command(
    which: Annotated[str, typer.Argument(help="Which model to train: churn, offers, all, or uplift (from randomised control events).")] = "all",
    data: Annotated[Path | None, typer.Option("--data", help="Validated tables folder (default: data/validated).")] = None,
    horizon_days: Annotated[int, typer.Option("--horizon-days", min=1, help="Churn label: no visit in this many days.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for the estimators.")] = DEFAULT_SEED,
    margin: Annotated[float, typer.Option("--margin", min=0.0, help="Promote only if the primary metric beats the champion by more than this.")] = 0.0,
    max_ece: Annotated[float, typer.Option("--max-ece", min=0.0, help="Sanity bound on the calibration error for promotion.")] = 0.05,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Churn validation date (default: the latest whose label window the data observes).")] = None,
    snapshots: Annotated[int | None, typer.Option("--snapshots", min=1, help="Churn training snapshots (default: up to 5, as many as the data labels).")] = None,
    every_days: Annotated[int | None, typer.Option("--every-days", min=1, help="Days between churn training snapshots (default 30).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="uplift: only offer events sent from this date.")] = None,
) -> None:
    """Train the churn and/or offer-response models, compare with baselines, register and gate in MLflow."""
    from pipelines.config import tracking_uri, validated_dir

    if which == "uplift":  # pipelines/train_uplift.py: its own training set, evaluation and gate
        from pipelines.train_uplift import run_uplift_cli

        return run_uplift_cli(data or validated_dir(), seed=seed, margin=margin, since=since)
    kinds = KINDS if which == "all" else (which,)
    if which not in (*KINDS, "all"):
        typer.echo(f"error: unknown model '{which}'; expected churn, offers or all", err=True)
        raise typer.Exit(2)
    folder = data or validated_dir()
    from data_contracts.errors import ContractError
    from models.evaluation import SplitError, margins_over_baselines
    from models.tabular import MissingFeaturesError
    from models.training_sets import LabelHorizonError, TrainingWindowError

    windows = {"as_of": as_of, "n_snapshots": snapshots, "every_days": every_days}
    try:
        results = train_all(folder, tracking_uri(), seed, kinds=kinds, horizon_days=horizon_days, margin=margin,
                            max_ece=max_ece, windows=windows)
    except (FileNotFoundError, ContractError, LabelHorizonError, SplitError, MissingFeaturesError,
            TrainingWindowError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    for kind, res in results.items():
        typer.echo(f"\n== {res['model_name']} version {res['version']} (run {res['run_id']})")
        if res["windows"]:
            typer.echo(f"snapshots: {res['windows']}")
        typer.echo(_table_text(res["metrics"], kind).rstrip())
        if kind == CHURN:
            ahead = margins_over_baselines(res["metrics"])
            typer.echo("margin over the best baseline (> 0: model ahead): "
                       + ", ".join(f"{k} {v:+.4f}" for k, v in ahead.items()))
        gate = res["decision"]
        if gate["gate.baselines_failed"] != "none":
            typer.echo(f"warning: baselines left out of the comparison: {gate['gate.baselines_failed']}", err=True)
        typer.echo(
            f"gate on {gate['gate.metric']}: candidate {gate['gate.candidate_value']} vs champion "
            f"{gate['gate.champion_value']} (margin {gate['gate.margin']}) -> {gate['gate.decision']}: {gate['gate.reason']}; "
            f"compared against baselines: {gate['gate.baselines']}"
        )
        typer.echo("timings: " + ", ".join(f"{k} {v:.1f}" for k, v in res["timings"].items()))
