"""`rewards train uplift`: learn the incremental effect of offers from randomised control events, evaluate it
out of time against the response model used as an uplift ranking, log to MLflow, register and gate.

The gate is the uplift model's own: a version becomes ``champion`` of ``offer-uplift`` only when its
out-of-time Qini coefficient beats the response model's on the same rows and the current uplift champion's
(by ``margin``). The policy's default objective changes to uplift only once such a champion exists
(``default_objective``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.policy.context import OBJECTIVE_EXPECTED_VALUE, OBJECTIVE_UPLIFT, OBJECTIVES

UPLIFT_MODEL_NAME = "offer-uplift"


class UpliftObjectiveError(LookupError):
    """The uplift objective was asked for, but the registry has no champion uplift model."""


def out_of_time_split(meta: pd.DataFrame, valid_sends: int = 1) -> np.ndarray:
    """True for the rows sent on the last ``valid_sends`` send dates (validation), False before."""
    from models.uplift import UpliftError

    days = np.sort(meta["sent_at"].dt.normalize().unique())
    if len(days) <= valid_sends:
        raise UpliftError(f"out-of-time evaluation needs more than {valid_sends} send date(s) with control rows; "
                          f"found {len(days)}: run more randomised campaigns (e.g. `rewards simulate` exploration waves)")
    return (meta["sent_at"].dt.normalize() >= days[-valid_sends]).to_numpy()


def _champion_qini(client, X, y, t) -> tuple[float | None, str | None]:
    from mlflow.exceptions import MlflowException

    from models.uplift import qini_coefficient
    from pipelines.registry import CHAMPION, load_version

    try:
        mv = client.get_model_version_by_alias(UPLIFT_MODEL_NAME, CHAMPION)
    except MlflowException:
        return None, None
    model = load_version(client, UPLIFT_MODEL_NAME, mv.version)
    return qini_coefficient(y, t, model.predict(X)), str(mv.version)


def train_uplift(tables: dict[str, pd.DataFrame], tracking_uri: str, *, seed: int = 42, window_days: int = 30,
                 since: pd.Timestamp | None = None, valid_sends: int = 1, margin_rate: float = 0.65,
                 margin: float = 0.0, evaluation_out: Path | None = None, params: dict | None = None,
                 program=None) -> dict:
    """Train, evaluate out of time against the champion response model, log, register and gate."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    from models.uplift import UpliftModel, qini_curve, uplift_metrics, uplift_training_set
    from pipelines.config import OFFER_MODEL_NAME
    from pipelines.tracking import experiment_id, tracking_uri_for
    from pipelines.registry import CHALLENGER, CHAMPION, load_champion

    timings = {}
    t0 = time.perf_counter()
    X, y, t, meta = uplift_training_set(tables, window_days=window_days, margin_rate=margin_rate, since=since,
                                        program=program)
    timings["training_set_s"] = time.perf_counter() - t0
    valid = out_of_time_split(meta, valid_sends)
    t0 = time.perf_counter()
    model = UpliftModel(random_state=seed, **(params or {})).fit(X[~valid], y[~valid], t[~valid])
    timings["fit_s"] = time.perf_counter() - t0
    response, response_version = load_champion(OFFER_MODEL_NAME, tracking_uri)
    Xv, yv, tv = X[valid], y[valid], t[valid]
    scores = {"uplift": model.predict(Xv), "response": response.predict_proba(Xv)[:, 1]}
    metrics = {name: uplift_metrics(yv, tv, s) for name, s in scores.items()}
    evaluation = {
        "outcome": f"margin in {window_days} days after the send, net of reward cost, minus the {window_days} days before",
        "rows_train": int((~valid).sum()), "rows_valid": int(valid.sum()),
        "validation_from": str(meta.loc[valid, "sent_at"].min()),
        "response_model_version": str(response_version), "metrics": metrics,
        "curves": {name: qini_curve(yv, tv, s).round(4).to_dict(orient="list") for name, s in scores.items()},
    }
    client = MlflowClient(tracking_uri=tracking_uri)
    exp_id = experiment_id(client, UPLIFT_MODEL_NAME)

    with tracking_uri_for(tracking_uri), mlflow.start_run(experiment_id=exp_id, run_name=f"uplift-seed{seed}") as run:
        mlflow.log_params({**{f"model.{k}": v for k, v in model.get_params().items()}, "seed": seed,
                           "window_days": window_days, "since": str(since), "valid_sends": valid_sends,
                           "margin_rate": margin_rate, "rows_train": evaluation["rows_train"],
                           "rows_valid": evaluation["rows_valid"], "response_model_version": str(response_version)})
        mlflow.log_metrics({f"{name}_{k}": float(v) for name, m in metrics.items() for k, v in m.items() if np.isfinite(v)})
        mlflow.log_metrics({f"time_{k}": v for k, v in timings.items()})
        mlflow.log_dict(evaluation, "uplift_evaluation.json")
        champ_qini, champ_version = _champion_qini(client, Xv, yv, tv)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=UPLIFT_MODEL_NAME,
                                        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE)
        version = str(info.registered_model_version)
        q = metrics["uplift"]["qini"]
        if q <= metrics["response"]["qini"] + margin:
            promote, reason = False, f"Qini {q:.2f} does not beat the response model's {metrics['response']['qini']:.2f} (margin {margin})"
        elif champ_qini is not None and q <= champ_qini + margin:
            promote, reason = False, f"Qini {q:.2f} does not beat champion v{champ_version}'s {champ_qini:.2f} (margin {margin})"
        else:
            promote, reason = True, (f"Qini {q:.2f} beats the response model's {metrics['response']['qini']:.2f}"
                                     + (f" and champion v{champ_version}'s {champ_qini:.2f}" if champ_qini is not None else ""))
        alias = CHAMPION if promote else CHALLENGER
        tags = {"gate.metric": "qini", "gate.decision": "promoted" if promote else "kept_as_challenger", "gate.reason": reason}
        mlflow.set_tags({**tags, "kind": "uplift"})
        for k, v in tags.items():
            client.set_model_version_tag(UPLIFT_MODEL_NAME, version, k, v)
        client.set_registered_model_alias(UPLIFT_MODEL_NAME, alias, version)
        run_id = run.info.run_id
    evaluation.update({"model_name": UPLIFT_MODEL_NAME, "version": version, "run_id": run_id, "promoted": promote,
                       "gate_reason": reason})
    if evaluation_out is not None:
        Path(evaluation_out).parent.mkdir(parents=True, exist_ok=True)
        Path(evaluation_out).write_text(json.dumps(evaluation, indent=2) + "\n")
    scored = meta[valid].reset_index(drop=True).assign(uplift_score=scores["uplift"], response_score=scores["response"])
    return {**evaluation, "timings": timings, "validation_rows": scored, "model": model}


def default_objective(tracking_uri: str | None = None) -> str:
    """The policy's default objective: uplift once an uplift model has been promoted, else expected value."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from pipelines.config import tracking_uri as default_uri
    from pipelines.registry import CHAMPION

    try:
        MlflowClient(tracking_uri=tracking_uri or default_uri()).get_model_version_by_alias(UPLIFT_MODEL_NAME, CHAMPION)
    except MlflowException:
        return OBJECTIVE_EXPECTED_VALUE
    return OBJECTIVE_UPLIFT


def resolve_objective(requested: str | None, tracking_uri: str | None = None) -> str:
    """The objective a list or an API ranks by: ``requested`` when given, else ``default_objective``."""
    if requested is None:
        return default_objective(tracking_uri)
    if requested not in OBJECTIVES:
        raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {requested!r}")
    return requested


def uplift_for(objective: str, tracking_uri: str | None = None) -> tuple[object, str] | tuple[None, None]:
    """(champion uplift model, version) when ``objective`` is uplift, else (None, None).

    Raises UpliftObjectiveError, naming what to run, when there is no champion ``offer-uplift``."""
    from pipelines.config import tracking_uri as default_uri
    from pipelines.registry import NoChampionError, load_champion

    if objective != OBJECTIVE_UPLIFT:
        return None, None
    uri = tracking_uri or default_uri()
    try:
        return load_champion(UPLIFT_MODEL_NAME, uri)
    except NoChampionError:
        raise UpliftObjectiveError(
            f"objective 'uplift' ranks by the champion '{UPLIFT_MODEL_NAME}' model, but the MLflow store at {uri} has "
            f"none: run `rewards train uplift --data DIR --since DATE` on tables with randomised control sends (it "
            f"becomes champion when its Qini gate promotes it), or rank by objective 'expected_value'"
        ) from None


def run_uplift_cli(data_dir: Path, *, seed: int, margin: float, since: str | None, window_days: int = 30) -> None:
    """`rewards train uplift`: train on the tables in ``data_dir`` and print the comparison and the gate."""
    import typer

    from models.uplift import UpliftError
    from pipelines.config import reports_dir, tracking_uri
    from pipelines.io import read_validated
    from pipelines.registry import NoChampionError

    from pipelines.validate import resolve_program

    try:
        tables = read_validated(Path(data_dir))
        program, _, _ = resolve_program(Path(data_dir))  # validate copied the program file into the folder
        res = train_uplift(tables, tracking_uri(), seed=seed, margin=margin, window_days=window_days,
                           margin_rate=program.economics.gross_margin_rate,
                           since=pd.Timestamp(since) if since else None,
                           evaluation_out=reports_dir() / "uplift_evaluation.json", program=program)
    except (FileNotFoundError, UpliftError, NoChampionError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"\n== {UPLIFT_MODEL_NAME} version {res['version']} (run {res['run_id']}): "
               f"{res['rows_train']:,} rows to train, {res['rows_valid']:,} to validate from {res['validation_from']}")
    typer.echo("| model | qini | uplift@10% | uplift@20% | uplift@30% |\n|---|---|---|---|---|")
    for name, m in res["metrics"].items():
        typer.echo(f"| {name} | {m['qini']:.2f} | {m['uplift_at_10']:.3f} | {m['uplift_at_20']:.3f} | {m['uplift_at_30']:.3f} |")
    typer.echo(f"gate on qini -> {'promoted' if res['promoted'] else 'kept as challenger'}: {res['gate_reason']}")
    typer.echo(f"evaluation: {reports_dir() / 'uplift_evaluation.json'}")
