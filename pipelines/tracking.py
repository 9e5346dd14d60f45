"""MLflow plumbing of `rewards train`: experiments, the logged run, plots, registration and the champion gate.

``log_training_run`` is the one MLflow block of both trainings: params, tags, metrics, timings and
the feature manifest, plots and the comparison table, the current champion re-scored on the same
validation rows, then the model registered as a new version and its alias set by the gate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path

CHURN = "churn"
OFFERS = "offers"


def experiment_id(client, name: str) -> str:
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
    mlflow.log_text(comparison_text(metrics, kind), "comparison.md")
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


def log_training_run(
    client, *, kind: str, model_name: str, run_name: str, model, params: Mapping[str, object],
    metrics: dict[str, dict[str, float]], timings: Mapping[str, float], manifest: dict, data_digest: str,
    X_example, y_valid, scores: Mapping[str, object], score_champion: Callable, primary: str,
    margin: float, max_ece: float, baselines=None, extra_metrics: Mapping[str, dict[str, float]] | None = None,
    program_digest: str | None = None,
) -> tuple[str, object, str]:
    """Log one training run, register the model and gate it; returns (version, decision, run_id).

    ``baselines`` (``models.evaluation.BaselineRuns``) are tagged ok / failed and handed to the gate;
    ``extra_metrics`` are logged beside ``metrics`` (e.g. the margin over the best baseline);
    ``program_digest`` (the program file of the data) is a param, a run tag and a tag of the version,
    so scoring can refuse data of another program."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id(client, model_name), run_name=run_name) as run:
        mlflow.log_params({f"model.{k}": v for k, v in model.get_params().items()})
        program = {"program_digest": program_digest} if program_digest else {}
        mlflow.log_params({**params, "best_iteration": model.best_iteration_, "n_features": model.n_features_in_,
                           "data_digest": data_digest, **program})
        mlflow.set_tags({"data_digest": data_digest, "kind": kind, **program,
                         **(baselines.as_tags() if baselines is not None else {})})
        _log_metrics(mlflow, {**metrics, **(extra_metrics or {})})
        mlflow.log_metrics({f"time_{k}": v for k, v in timings.items()})
        mlflow.log_dict(manifest, "feature_manifest.json")
        version, decision = _compare_register_and_gate(
            client, mlflow, kind, model_name, model, X_example, y_valid, scores, metrics, score_champion,
            primary, margin, max_ece, baselines,
        )
        if program_digest:
            client.set_model_version_tag(model_name, version, "program_digest", program_digest)
        return version, decision, run.info.run_id


TABLE_METRICS = {
    CHURN: ["roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile", "capture_top_decile"],
    OFFERS: ["roc_auc", "pr_auc", "log_loss", "ece", "hit_rate_at_3", "ndcg_at_3", "map_at_3"],
}


def comparison_text(metrics: dict[str, dict[str, float]], kind: str) -> str:
    from models.evaluation import comparison_table

    table = comparison_table(metrics, TABLE_METRICS[kind])
    header = "| model | " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * (len(table.columns) + 1)]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row.to_numpy()) + " |")
    return "\n".join(lines) + "\n"


@contextmanager
def tracking_uri_for(uri: str):
    """Point MLflow's fluent API at ``uri`` for the block, then restore what the caller had.

    ``mlflow.set_tracking_uri`` also writes (or, given None, deletes) the MLFLOW_TRACKING_URI
    environment variable, so the variable is restored too: later code in the process must not end
    up on another store.
    """
    import mlflow

    from pipelines.config import environment

    try:
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri
    except ImportError:  # private helper gone in a later MLflow: set it for the block only
        _use_tracking_uri = None
    with environment(MLFLOW_TRACKING_URI=uri):  # restored afterwards, whatever mlflow does to it
        if _use_tracking_uri is None:
            mlflow.set_tracking_uri(uri)
            yield
        else:
            with _use_tracking_uri(uri):
                yield
