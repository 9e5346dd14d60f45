"""`rewards train`: build training sets, fit the models and their baselines, evaluate out of time,
log everything to MLflow, register a version and run the champion gate.

Reads like a script: load -> training set -> out-of-time split -> fit model and baselines ->
evaluate -> log, register and gate (``pipelines.tracking.log_training_run``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from pipelines.tracking import CHURN, OFFERS, comparison_text, files_digest, log_training_run, tracking_uri_for

KINDS = (CHURN, OFFERS)
DEFAULT_SEED = 42


class OfferDataError(ValueError):
    """The validated tables cannot train an offer-response model: names the table and what is missing."""


def offer_data_gap(tables) -> str | None:
    """Why these tables cannot train the offer-response model (None when they can).

    It needs offers, offer events that were sent (not control) and both outcomes among them: some
    redeemed, some not. A purchase log alone, or an import where every event is a redemption (a
    discount code's uses), has no such contrast to learn from."""
    offers, events = tables.get("offers"), tables.get("offer_events")
    todo = ("add an offers table and an offer_events table with the offers sent (sent_at) and whether "
            "each was redeemed (redeemed_at), then `rewards validate` again")
    if offers is None or not len(offers):
        return f"table 'offers' is absent or empty (no offers defined); {todo}"
    sent = events if events is None else events[~events["is_control"].astype(bool)]
    if sent is None or not len(sent):
        return f"table 'offer_events' is absent or holds no sent offers (only control or no rows); {todo}"
    redeemed = int(sent["redeemed_at"].notna().sum())
    if redeemed in (0, len(sent)):
        found = "redeemed" if redeemed else "not redeemed"
        return (f"table 'offer_events': all {len(sent):,} sent offers were {found}, so column 'redeemed_at' "
                "holds one outcome only; expected both redeemed and not redeemed offers (e.g. an import "
                "records only a discount code's uses): add the offers sent that were not redeemed, "
                "or train churn only (`rewards train churn`)")
    return None


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


def train_churn(tables, *, client, data_digest: str, seed: int = DEFAULT_SEED, horizon_days: int = 60,
                max_inactive_days: int = 180, margin: float = 0.0, max_ece: float = 0.05,
                n_jobs: int = 2, params: dict | None = None, as_of=None, n_snapshots: int | None = None,
                every_days: int | None = None, program_digest: str | None = None, program=None) -> TrainResult:
    """Churn: snapshots every 30 days, out-of-time split, ChurnModel vs recency rule and BG/NBD; the
    profiles are ``program``'s catalogue (default: the built-in program's)."""
    from features import make_manifest
    from features.manifest import absent_features, drop_absent
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
    X, y, meta = churn_training_set(tables, dates, horizon_days=horizon_days, max_inactive_days=max_inactive_days,
                                    program=program)
    absent = absent_features(tables, program)
    X = drop_absent(X, absent)  # features of tables without rows are not learned from (nor zeros)
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

    version, decision, run_id = log_training_run(
        client, kind=CHURN, model_name=CHURN_MODEL_NAME, run_name=f"churn-seed{seed}", model=model,
        params={
            "seed": seed, "horizon_days": horizon_days, "max_inactive_days": max_inactive_days,
            "snapshot_dates": ",".join(str(d.date()) for d in dates),
            "validation_as_of": str(meta.loc[valid, "as_of"].max().date()),
            "rows_train": int(train.sum()), "rows_valid": int(valid.sum()),
            "rows_excluded_inactive": meta.attrs["excluded_inactive"], "rows_candidates": meta.attrs["candidates"],
            "positive_rate_train": round(float(y_arr[train].mean()), 4),
            **{f"window.{k}": v for k, v in windows.as_params().items()},
        },
        metrics=metrics, timings=timings, data_digest=data_digest,
        manifest=make_manifest(X.assign(customer_id=meta["customer_id"].to_numpy()).loc[valid], dates[-1], data_digest,
                               program_digest, absent, program=program),
        program_digest=program_digest,
        X_example=X[valid].head(5), y_valid=yv, scores=scores, score_champion=score_champion, primary=primary,
        margin=margin, max_ece=max_ece, baselines=baselines,
        extra_metrics={"margin_over_best_baseline": margins_over_baselines(metrics)},
    )
    return TrainResult(CHURN, CHURN_MODEL_NAME, version, run_id, metrics, decision, timings,
                       {"train": int(train.sum()), "valid": int(valid.sum())}, windows.describe())


def train_offers(tables, *, client, data_digest: str, seed: int = DEFAULT_SEED, response_days: int = 30,
                 valid_days: int = 60, margin: float = 0.0, max_ece: float = 0.05, n_jobs: int = 2,
                 snapshot_every_days: int = 1, params: dict | None = None,
                 program_digest: str | None = None, program=None) -> TrainResult:
    """Offer response: one row per sent offer, out-of-time split, OfferResponseModel vs popularity baselines;
    profiles are ``program``'s catalogue (default: the built-in program's)."""
    from features import make_manifest
    from models.baselines import PopularityBaseline
    from models.evaluation import PRIMARY_METRIC, offer_metrics, offer_time_split, run_baselines
    from models.offer_response import OfferResponseModel
    from models.offer_taxonomy import has_hierarchy
    from models.training_sets import offer_response_training_set
    from pipelines.config import OFFER_MODEL_NAME

    gap = offer_data_gap(tables)
    if gap is not None:
        raise OfferDataError(f"cannot train the offer-response model: {gap}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # The taxonomy columns (the offer's node at every level, its own products) whenever the program has a
    # category or a hierarchy: without a products table the transactions' category is the one level.
    taxonomy = has_hierarchy(tables)
    X, y, meta = offer_response_training_set(tables, response_days=response_days,
                                             snapshot_every_days=snapshot_every_days, taxonomy=taxonomy,
                                             program=program)
    from features.manifest import absent_features, drop_absent

    X = drop_absent(X, absent_features(tables, program))  # features of tables without rows are not learned from
    timings["training_set_s"] = time.perf_counter() - t0
    if y.nunique() < 2:
        raise OfferDataError(
            f"cannot train the offer-response model: table 'offer_events': the {len(y):,} sent offers whose "
            f"{response_days}-day response window the data observes all have one outcome (redeemed = "
            f"{int(y.iloc[0]) if len(y) else 'none'}); expected both redeemed and not redeemed offers"
        )
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

    version, decision, run_id = log_training_run(
        client, kind=OFFERS, model_name=OFFER_MODEL_NAME, run_name=f"offers-seed{seed}", model=model,
        params={
            "seed": seed, "response_days": response_days, "valid_days": valid_days,
            "snapshot_every_days": snapshot_every_days, "profile_builds": meta.attrs["profile_builds"],
            "taxonomy_columns": taxonomy,
            "validation_from": str(meta.loc[valid, "sent_at"].min().date()),
            "rows_train": int(train.sum()), "rows_valid": int(valid.sum()),
            "rows_candidates": meta.attrs["candidates"],
            "rows_excluded_unobserved": meta.attrs["excluded_unobserved"],
            "rows_excluded_budget_used_up": meta.attrs["excluded_budget_used_up"],
            "rows_excluded_no_profile": meta.attrs["excluded_no_profile"],
            "positive_rate_train": round(float(y_arr[train].mean()), 4),
        },
        metrics=metrics, timings=timings, data_digest=data_digest,
        manifest=make_manifest(X.assign(customer_id=meta["customer_id"].to_numpy()).loc[valid],
                               meta.loc[valid, "as_of"].max(), data_digest, program_digest),
        program_digest=program_digest,
        X_example=X[valid].head(5), y_valid=yv, scores=scores, score_champion=score_champion, primary=primary,
        margin=margin, max_ece=max_ece, baselines=baselines,
    )
    return TrainResult(OFFERS, OFFER_MODEL_NAME, version, run_id, metrics, decision, timings,
                       {"train": int(train.sum()), "valid": int(valid.sum())})


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
    from data_contracts.program import program_digest

    from pipelines.io import read_validated_program

    tables = read_validated(Path(validated_dir))
    program, note = read_validated_program(Path(validated_dir))
    if note:
        typer.echo(f"note: {note}")
    digest = files_digest(Path(validated_dir))
    uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    with tracking_uri_for(uri):
        return _train_kinds(tables, client, digest, kinds, seed=seed, horizon_days=horizon_days, margin=margin,
                            max_ece=max_ece, n_jobs=n_jobs, params=params, windows=windows,
                            program_digest=program_digest(program), program=program)


def _train_kinds(tables, client, digest, kinds, *, seed, horizon_days, margin, max_ece, n_jobs, params,
                 windows=None, program_digest=None, program=None) -> dict:
    out: dict[str, dict] = {}
    if CHURN in kinds:
        res = train_churn(tables, client=client, data_digest=digest, seed=seed, horizon_days=horizon_days,
                          margin=margin, max_ece=max_ece, n_jobs=n_jobs, params=(params or {}).get(CHURN),
                          program_digest=program_digest, program=program, **(windows or {}))
        out[CHURN] = res.summary()
    if OFFERS in kinds and kinds != (OFFERS,) and (gap := offer_data_gap(tables)) is not None:
        out[OFFERS] = {"skipped": f"offer-response model skipped: {gap}"}
    elif OFFERS in kinds:
        res = train_offers(tables, client=client, data_digest=digest, seed=seed, margin=margin, max_ece=max_ece,
                           n_jobs=n_jobs, params=(params or {}).get(OFFERS), program_digest=program_digest,
                           program=program)
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
            TrainingWindowError, OfferDataError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    for kind, res in results.items():
        if "skipped" in res:
            typer.echo(f"\n== {res['skipped']}")
            continue
        typer.echo(f"\n== {res['model_name']} version {res['version']} (run {res['run_id']})")
        if res["windows"]:
            typer.echo(f"snapshots: {res['windows']}")
        typer.echo(comparison_text(res["metrics"], kind).rstrip())
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
