"""`rewards measure`: a campaign list against what happened afterwards, treated vs holdout, with ROI.

Reads the list written by `rewards score` (and its exclusions and summary beside it), the program's tables
after the send (``--data``: e.g. the folder `rewards simulate` wrote), measures with ``models.measurement``
and writes ``<list>.measurement.json`` beside the list; the measurement is also logged to MLflow, in the
experiment of the offer model that made the list, tagged with both model versions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from models.measurement import (
    DEFAULT_BOOTSTRAP,
    Economics,
    MeasurementError,
    churn_band,
    gain_curve,
    measure_campaign,
    window_outcomes,
)

CONTROL_REASON = "control_group"


def output_path(list_path: Path, kind: str) -> Path:
    """``<list>.<kind>.<ext>`` beside the list (``spring.parquet`` -> ``spring.measurement.json``)."""
    list_path = Path(list_path)
    ext = "html" if kind == "report" else "json"
    return list_path.with_name(f"{list_path.stem}.{kind}.{ext}")


def list_meta(list_path: Path) -> dict:
    """as_of, send time and channel of a campaign list (from its summary, else from the list)."""
    summary_path = Path(list_path).with_name(Path(list_path).stem + ".summary.json")
    if summary_path.exists():
        s = json.loads(summary_path.read_text())
        return {"campaign": s.get("campaign"), "as_of": pd.Timestamp(s["as_of"]),
                "send_at": pd.Timestamp(s.get("send_at") or pd.Timestamp(s["as_of"]) + pd.Timedelta(hours=9)),
                "channel": s.get("channel", "email"), "summary": s}
    listed = pd.read_parquet(list_path, columns=["campaign", "as_of"])
    as_of = pd.Timestamp(listed["as_of"].iloc[0])
    return {"campaign": str(listed["campaign"].iloc[0]), "as_of": as_of, "send_at": as_of + pd.Timedelta(hours=9),
            "channel": "email", "summary": None}


def read_decision_log(path: Path) -> dict:
    """The offer API's decision log (JSON lines) as a list: each customer's first decision; control-group
    customers are the holdout; the window starts at the first decision's context time."""
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not records:
        raise MeasurementError(f"--campaign '{path}': the decision log has no decisions to measure")
    log = pd.DataFrame(records)
    missing = [c for c in ("customer_id", "status", "control_group", "offers", "context", "churn_risk") if c not in log]
    if missing:
        raise MeasurementError(f"--campaign '{path}': decision records lack fields {missing}; expected the offer API's log")
    log["decided"] = pd.to_datetime(log["context"].map(lambda c: c["timestamp"]))
    log = log.sort_values("decided", kind="stable").drop_duplicates("customer_id").reset_index(drop=True)
    versions = log["model_versions"].iloc[0] if "model_versions" in log else {}
    held = log[log["control_group"].astype(bool)]
    offered = log[~log["control_group"].astype(bool)].explode("offers").dropna(subset=["offers"])
    listed = pd.concat([
        pd.DataFrame({"customer_id": held["customer_id"], "holdout": True, "rank": np.nan, "offer_id": None,
                      "score": np.nan, "churn_risk": held["churn_risk"]}),
        pd.DataFrame({"customer_id": offered["customer_id"], "holdout": False,
                      "rank": offered["offers"].map(lambda o: o["rank"]), "offer_id": offered["offers"].map(lambda o: o["offer_id"]),
                      "score": offered["offers"].map(lambda o: o["score"]), "churn_risk": offered["churn_risk"]}),
    ], ignore_index=True)
    listed["offer_model_version"] = versions.get("offer-response")
    listed["churn_model_version"] = versions.get("churn-risk")
    others = log[~log["control_group"].astype(bool) & (log["offers"].map(len) == 0)]
    exclusions = pd.DataFrame({"customer_id": others["customer_id"], "reason": others["status"],
                               "churn_risk": others["churn_risk"]})
    send_at = log["decided"].min()
    as_of = pd.Timestamp(log["profiles_as_of"].iloc[0]) if "profiles_as_of" in log else send_at.normalize()
    return {"list": listed, "exclusions": exclusions, "campaign": f"decisions:{Path(path).stem}", "as_of": as_of,
            "send_at": send_at, "channel": None, "summary": None, "any_send": True}


def read_list(list_path: Path) -> dict:
    """The list, its exclusions (when beside it) and summary, and when it was sent (or a decision log)."""
    list_path = Path(list_path)
    if not list_path.exists():
        raise MeasurementError(f"--campaign '{list_path}' does not exist; write it with `rewards score`")
    if list_path.suffix == ".jsonl":
        return read_decision_log(list_path)
    listed = pd.read_parquet(list_path) if list_path.suffix == ".parquet" else pd.read_csv(list_path)
    excl_path = list_path.with_name(f"{list_path.stem}.exclusions{list_path.suffix}")
    exclusions = None
    if excl_path.exists():
        exclusions = pd.read_parquet(excl_path) if excl_path.suffix == ".parquet" else pd.read_csv(excl_path)
    return {"list": listed, "exclusions": exclusions, **list_meta(list_path)}


def customer_frame(lst: dict, tables: dict[str, pd.DataFrame], window_days: int, economics: Economics,
                   profiles: Path | None = None) -> pd.DataFrame:
    """One row per considered customer: held out / treated, outcomes in the window and before it, the
    campaign's redemptions and their cost, tier, churn-risk band and (from ``profiles``) habit tags."""
    listed, exclusions = lst["list"], lst["exclusions"]
    if not listed["holdout"].astype(bool).any():
        raise MeasurementError(
            f"the list of campaign '{lst['campaign']}' has no holdout group (no row with holdout = true): "
            "there is nothing to compare the treated customers with; score it again with --holdout above 0")
    held = listed[listed["holdout"].astype(bool)]
    sent = listed[~listed["holdout"].astype(bool) & listed["offer_id"].notna()]
    first_offer = sent.sort_values(["customer_id", "rank"]).drop_duplicates("customer_id").set_index("customer_id")
    parts = [pd.DataFrame({"customer_id": held["customer_id"].astype(str), "held_out": True,
                           "churn_risk": held["churn_risk"].to_numpy(dtype=float)}),
             pd.DataFrame({"customer_id": first_offer.index.astype(str), "held_out": False,
                           "churn_risk": first_offer["churn_risk"].to_numpy(dtype=float)})]
    if exclusions is not None:
        other = exclusions[exclusions["reason"] != CONTROL_REASON]
        parts.append(pd.DataFrame({"customer_id": other["customer_id"].astype(str), "held_out": False,
                                   "churn_risk": other["churn_risk"].to_numpy(dtype=float)}))
    frame = pd.concat(parts, ignore_index=True).drop_duplicates("customer_id").set_index("customer_id")
    frame["treated"] = frame.index.isin(first_offer.index) & ~frame["held_out"]
    frame["offer_id"] = first_offer["offer_id"].reindex(frame.index).where(frame["treated"], None)
    frame["list_score"] = sent.groupby("customer_id")["score"].sum().reindex(frame.index) if "score" in sent else np.nan

    start = pd.Timestamp(lst["send_at"])
    end = start + pd.Timedelta(days=window_days)
    tx = tables["transactions"]
    in_window = (tx["ts"] >= start) & (tx["ts"] < end)
    if not in_window.any():
        last = tx["ts"].max()
        raise MeasurementError(
            f"the measurement window [{start}, {end}) is empty: the data in --data has no transactions in it "
            f"(its last is at {last}); simulate or collect the days after the list was sent, then measure")
    now = window_outcomes(tx, frame.index, start, end, economics)
    before = window_outcomes(tx, frame.index, start - pd.Timedelta(days=window_days), start, economics)
    frame = frame.join(now).join(before.add_prefix("pre_"))

    events = tables["offer_events"]
    offers = tables["offers"].set_index("offer_id")
    # A list's own sends; for a decision log, any send of a decided offer (the API does not write offer_events).
    same_send = True if lst.get("any_send") else events["sent_at"] == lst["send_at"]
    red = events[same_send & ~events["is_control"].astype(bool)
                 & events["redeemed_at"].notna() & (events["redeemed_at"] >= start) & (events["redeemed_at"] < end)]
    pairs = pd.MultiIndex.from_frame(sent[["customer_id", "offer_id"]].astype(str))
    red = red[pd.MultiIndex.from_frame(red[["customer_id", "offer_id"]].astype(str)).isin(pairs)]
    red_cost = red["offer_id"].map(offers["cost_per_redemption"]).astype(float)
    frame["redemptions"] = red.groupby("customer_id").size().reindex(frame.index).fillna(0).astype(int)
    frame["reward_cost"] = red_cost.groupby(red["customer_id"]).sum().reindex(frame.index).fillna(0.0)
    tiers = tables["customers"].set_index("customer_id")["tier"]
    frame["tier"] = tiers.reindex(frame.index).fillna("unknown").astype(str)
    frame["churn_band"] = churn_band(frame["churn_risk"])
    if profiles is not None:
        tags = pd.read_parquet(profiles, columns=["customer_id", "habit_tags"]).set_index("customer_id")["habit_tags"]
        frame["habit_tags"] = tags.reindex(frame.index).to_numpy()
    return frame


def run_measure(list_path: Path, data_dir: Path, window_days: int = 30, economics: Economics | None = None,
                n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, profiles: Path | None = None) -> dict:
    """Measure the list against ``data_dir`` and write ``<list>.measurement.json``; the measurement is returned."""
    from pipelines.io import read_validated

    economics = economics or Economics()
    if window_days < 1:
        raise MeasurementError(f"--window-days must be >= 1, got {window_days}")
    lst = read_list(list_path)
    try:
        tables = read_validated(Path(data_dir))
    except FileNotFoundError as err:
        raise MeasurementError(str(err)) from None
    if profiles is not None and not Path(profiles).exists():
        raise MeasurementError(f"--profiles '{profiles}' does not exist; build it with `rewards features` or leave it out")
    frame = customer_frame(lst, tables, window_days, economics, profiles)
    members = int((tables["customers"]["signup_date"] < lst["as_of"]).sum())
    result = measure_campaign(frame, economics, window_days, members, n_boot=n_boot, seed=seed)
    treated = frame[frame["treated"]]
    result["gain_curve"] = gain_curve(treated["list_score"].fillna(0).to_numpy(), treated["redemptions"].to_numpy())
    end = pd.Timestamp(lst["send_at"]) + pd.Timedelta(days=window_days)
    versions = {k: str(lst["list"][f"{k}_model_version"].dropna().iloc[0])
                for k in ("offer", "churn") if f"{k}_model_version" in lst["list"] and lst["list"][f"{k}_model_version"].notna().any()}
    result = {
        "campaign": lst["campaign"], "list": str(Path(list_path).resolve()), "data": str(Path(data_dir).resolve()),
        "as_of": str(lst["as_of"]), "send_at": str(lst["send_at"]), "window_days": window_days,
        "window": [str(lst["send_at"]), str(end)],
        "window_observed_until": str(min(end, tables["transactions"]["ts"].max())),
        "economics": {"gross_margin_rate": economics.gross_margin_rate, "currency": economics.currency,
                      "operating_cost_per_month": economics.operating_cost_per_month,
                      "gross_margin_by_node": dict(economics.gross_margin_by_node)},
        "model_versions": versions,
        "method": ("intention to treat over every considered customer, divided by the share treated outside the "
                   "holdout; outcomes adjusted for the same-length pre-period (CUPED); 95% percentile bootstrap "
                   f"intervals ({n_boot} resamples within each group)"),
        **result,
        "list_summary": _list_counts(lst),
    }
    out = output_path(list_path, "measurement")
    from pipelines.io import atomic_path

    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    out.chmod(0o644)
    result["outputs"] = {"measurement": str(out)}
    return result


def _list_counts(lst: dict) -> dict | None:
    """The list's own counts (considered, with offers, excluded by reason) from its summary."""
    s = lst.get("summary")
    if not s:
        return None
    return {k: s.get(k) for k in ("customers_considered", "customers_with_offers", "customers_excluded",
                                  "excluded_by_reason", "offers", "expected_redemptions", "expected_cost",
                                  "holdout_fraction")}


def log_to_mlflow(result: dict, measurement_path: Path, tracking_uri: str) -> str | None:
    """Log the measurement as a run in the experiment of the offer model that made the list (None when the
    registry does not know that model version)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME

    version = result["model_versions"].get("offer")
    if version is None:
        return None
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        mv = client.get_model_version(OFFER_MODEL_NAME, version)
        experiment_id = client.get_run(mv.run_id).info.experiment_id
    except MlflowException:
        return None
    run = client.create_run(experiment_id, run_name=f"measure-{result['campaign']}", tags={
        "kind": "measurement", "campaign": result["campaign"], "offer_model_run_id": mv.run_id,
        f"{OFFER_MODEL_NAME}.version": version,
        f"{CHURN_MODEL_NAME}.version": result["model_versions"].get("churn", ""),
    })
    inc = result["incremental_per_treated"]
    metrics = {"customers_treated": result["customers_treated"], "customers_held_out": result["customers_held_out"],
               "incremental_revenue_per_treated": inc["revenue"]["value"],
               "incremental_revenue_per_treated_low": inc["revenue"]["low"],
               "incremental_revenue_per_treated_high": inc["revenue"]["high"],
               "incremental_margin_per_treated": inc["margin"]["value"],
               "reward_cost": result["reward_cost"], "operating_cost_share": result["operating_cost_share"],
               "roi": result["roi"]["value"], "roi_low": result["roi"]["low"], "roi_high": result["roi"]["high"]}
    for k, v in metrics.items():
        if v is not None and np.isfinite(v):
            client.log_metric(run.info.run_id, k, float(v))
    client.log_artifact(run.info.run_id, str(measurement_path))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def program_economics(data_dir: Path, program_file: Path | None = None, **overrides) -> Economics:
    """The [economics] of the program that ``data_dir`` belongs to, with any option given on the command line on top."""
    from data_contracts.program import ProgramError
    from pipelines.validate import resolve_program

    try:
        program, _, _ = resolve_program(Path(data_dir), program_file)
    except ProgramError as err:
        _fail(str(err))
    e = program.economics
    values = {"gross_margin_rate": e.gross_margin_rate, "operating_cost_per_month": e.operating_cost_per_month,
              "currency": e.currency, "gross_margin_by_node": dict(e.gross_margin_by_node)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Economics(**values)


def _fail(message: str) -> None:
    typer.secho(f"rewards measure: {message}", fg="red", err=True)
    raise typer.Exit(2)


def measure_command(
    campaign: Path = typer.Option(..., "--campaign", help="The campaign list written by `rewards score`, or the offer API's decision log (.jsonl)."),
    data: Path = typer.Option(..., "--data", help="Tables covering the days after the send (e.g. `rewards simulate --out`)."),
    window_days: int = typer.Option(30, "--window-days", help="Days after the send to measure."),
    program: Path | None = typer.Option(None, "--program", help="The program file whose [economics] apply (default: DATA/program.toml, else the built-in sample program)."),
    margin_rate: float | None = typer.Option(None, "--margin-rate", help="Override economics.gross_margin_rate (0..1) of the program file."),
    operating_cost: float | None = typer.Option(None, "--operating-cost-per-month", help="Override economics.operating_cost_per_month of the program file."),
    currency: str | None = typer.Option(None, "--currency", help="Override economics.currency of the program file."),
    bootstrap: int = typer.Option(DEFAULT_BOOTSTRAP, "--bootstrap", min=100, help="Bootstrap resamples for the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    mlflow_log: bool = typer.Option(True, "--mlflow/--no-mlflow", help="Log the measurement to MLflow beside the models."),
    profiles: Path | None = typer.Option(None, "--profiles", help="Profiles at the list's as_of (adds a segment per habit tag)."),
) -> None:
    """Measure a campaign against its holdout: incremental revenue, margin and visits with 95% intervals, and ROI."""
    from pipelines.config import tracking_uri

    try:
        economics = program_economics(data, program, gross_margin_rate=margin_rate,
                                      operating_cost_per_month=operating_cost, currency=currency)
        result = run_measure(campaign, data, window_days, economics, n_boot=bootstrap, seed=seed, profiles=profiles)
    except MeasurementError as err:
        _fail(str(err))
    out = Path(result["outputs"]["measurement"])
    if mlflow_log:
        run_id = log_to_mlflow(result, out, tracking_uri())
        typer.echo(f"MLflow: run {run_id}" if run_id else
                   "MLflow: the offer model version of the list is not in the registry; measurement not logged")
    inc = result["incremental_per_treated"]["revenue"]
    cur = result["economics"]["currency"]
    typer.echo(f"treated {result['customers_treated']:,}, held out {result['customers_held_out']:,}, "
               f"other considered {result['customers_not_treated_not_held_out']:,}")
    typer.echo(f"incremental revenue per treated customer: {inc['value']:,.2f} {cur} "
               f"(95% interval {inc['low']:,.2f} to {inc['high']:,.2f})")
    r = result["roi"]
    if r["value"] is not None:
        typer.echo(f"ROI: {r['value']:.1%} (95% interval {r['low']:.1%} to {r['high']:.1%})")
    typer.echo(result["verdict"])
    typer.echo(f"measurement: {out}")
