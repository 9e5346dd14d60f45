"""`rewards demo`: the main job end to end on the built-in sample, one CLI step after another."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import typer

from pipelines import config

DEMO_API_KEY = "demo-key"


def _run(args: list[str], ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run one `rewards` step, echoing it; stop the demo on an unexpected exit code."""
    shown = "rewards " + " ".join(shlex.quote(a) for a in args)
    typer.secho(f"\n$ {shown}", bold=True)
    started = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "pipelines.cli", *args])
    typer.secho(f"  ({time.perf_counter() - started:.1f} s, exit {code})", dim=True)
    if code not in ok_codes:
        typer.secho(f"demo stopped: `{shown}` exited with {code}", fg="red", err=True)
        raise typer.Exit(code)
    return code


def _serve_and_show(port: int, keep_serving: bool, customer_id: str, timestamp: str) -> None:
    import httpx

    from pipelines.serve import example_curl, start_server, stop_server, wait_ready

    typer.secho(f"\n$ rewards serve --host 127.0.0.1 --port {port}", bold=True)
    proc = start_server("127.0.0.1", port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", timeout=180, process=proc)
        curl = example_curl(port, customer_id, timestamp, api_key=os.environ["REWARDS_API_KEYS"].split(",")[0])
        out = subprocess.run(curl, shell=True, capture_output=True, text=True, timeout=30)
        typer.secho("\nThe offer API is up. Ask it for offers with:\n", fg="green")
        typer.echo(f"  {curl}\n")
        try:
            typer.echo(json.dumps(json.loads(out.stdout), indent=2))
        except json.JSONDecodeError:
            typer.secho(f"unexpected answer from /recommend: {out.stdout or out.stderr}", fg="red", err=True)
            raise typer.Exit(1) from None
        if keep_serving:
            typer.secho("\nServing on http://127.0.0.1:%d (Ctrl-C to stop)" % port, fg="green")
            try:
                proc.wait()
            except KeyboardInterrupt:
                pass
        else:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).raise_for_status()
    finally:
        stop_server(proc)


def _showcase_customer(campaign: Path, profiles: Path) -> str:
    """A member who got offers in the campaign list: the first with the most "... regular" habit tags
    (a daypart and a category of the program's own vocabulary), when there is one."""
    import pandas as pd

    listed = pd.read_parquet(campaign, columns=["customer_id", "offer_id", "holdout"])
    offered = set(listed.loc[listed["offer_id"].notna() & ~listed["holdout"], "customer_id"])
    tags = pd.read_parquet(profiles, columns=["customer_id", "habit_tags"])
    tags = tags[tags["customer_id"].isin(offered)]
    regular = tags["habit_tags"].map(lambda t: sum(str(x).endswith(" regular") for x in list(t)))
    chosen = tags[regular == regular.max()] if len(tags) and regular.max() > 0 else tags
    if chosen.empty:
        raise typer.Exit(f"demo: the campaign list {campaign} offers nothing to anyone; nothing to show")
    return str(chosen["customer_id"].iloc[0])


def demo_command(
    customers: int = typer.Option(5000, help="Customers in the generated sample."),
    days: int = typer.Option(365, help="Days of history in the generated sample."),
    seed: int = typer.Option(42, help="Random seed of the generator."),
    port: int = typer.Option(3000, help="Port for the offer API at the end of the demo."),
    serve: bool = typer.Option(
        None,
        "--serve/--no-serve",
        help="Keep the offer API running at the end (default: only when attached to a terminal and not in CI).",
    ),
) -> None:
    """Run the main job end to end on the built-in sample: generate, validate, profile, train, score, serve."""
    if serve is None:
        serve = sys.stdin.isatty() and not os.environ.get("CI")
    os.environ.setdefault("REWARDS_API_KEYS", DEMO_API_KEY)
    as_of = config.SAMPLE_END_DATE
    raw, validated = config.raw_dir(), config.validated_dir()
    profiles = config.profiles_dir() / "profiles.parquet"
    campaign = config.campaigns_dir() / "demo.parquet"

    typer.secho(f"reward-recommender demo: data in {config.data_dir()}, MLflow at {config.tracking_uri()}", bold=True)
    _run(["generate", "--customers", str(customers), "--days", str(days), "--seed", str(seed), "--out", str(raw)])
    _run(["validate", str(raw), "--out", str(validated)], ok_codes=(0, 1))
    _run(["features", "--data", str(validated), "--as-of", as_of, "--out", str(profiles)])
    _run(["train", "all", "--data", str(validated)])
    _run(["models"])
    _run(
        [
            "score", "--as-of", as_of, "--campaign", "demo", "--k", "3", "--holdout", "0.05",
            "--data", str(validated), "--profiles", str(profiles), "--out", str(campaign),
        ]
    )
    report = _measure_and_report(raw, campaign, as_of, profiles)
    customer_id = _showcase_customer(campaign, profiles)
    _serve_and_show(port, serve, customer_id, f"{as_of}T08:15:00")
    typer.secho(f"\ndemo finished; the campaign report: {report}", fg="green", bold=True)


def _measure_and_report(raw: Path, campaign: Path, as_of: str, profiles: Path) -> Path:
    """Close the loop: simulate 30 days after the list, measure it against its holdout, train the uplift
    model on simulated exploration campaigns, and write the report."""
    after, explored = config.data_dir() / "simulated", config.data_dir() / "explored"
    _run(["simulate", "--campaign", str(campaign), "--data", str(raw), "--days", "30", "--out", str(after)])
    _run(["measure", "--campaign", str(campaign), "--data", str(after), "--window-days", "30", "--profiles", str(profiles)])
    _run(["simulate", "--explore-waves", "4", "--days", "30", "--data", str(raw), "--out", str(explored), "--seed", "1"])
    code = _run(["train", "uplift", "--data", str(explored), "--since", as_of], ok_codes=(0, 2))
    evaluation = config.reports_dir() / "uplift_evaluation.json"
    _run(["report", "--campaign", str(campaign), *(["--evaluation", str(evaluation)] if code == 0 else [])])
    report = campaign.with_name(f"{campaign.stem}.report.html")
    typer.secho(f"\nThe campaign report: {report}", fg="green", bold=True)
    return report
