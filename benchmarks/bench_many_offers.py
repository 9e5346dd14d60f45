"""A thousand active offers: the offer API (`/recommend` at 200 req/s) and a campaign list (100k households, top 3),
each against the same work with 10 active offers, measured in the same run.

    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_many_offers.py [--only api|list] [--customers 100000]

Models: grocery data (3,000 households x 365 days, seed 42) generated, validated by the real
`rewards validate` (GX) and trained by the real `rewards train all` into a throwaway SQLite MLflow store
under data/bench/many_offers/ (data cached there; the models are retrained every run, so they are the
current code's). Active offers: the generator's 1,000 coupons ran in eight past campaigns, so a new
campaign re-issues all 1,000 (same commodities, products, values, channels; new ids `N-<id>`, never seen by
the model) valid from the as_of date for 28 days; the reference issues only the first 10 of them.

api: two real servers (`bentoml serve serving.service:OfferService`, 2 workers each, on loopback),
profiles built by the real `rewards features`, one with 1,000 active offers and one with 10; open-loop
aiohttp load (benchmarks/bench_service.run_rate) at 200 req/s, the two servers alternated for several
rounds, the first one straight after `/readyz` says ready (no warm-up by the client: the server warms
itself before it reports ready); p50/p95/p99 and errors; target p99 <= 25 ms, 0 errors with 1,000 offers
in every round. The sample replies are taken after the rounds.

list: grocery data at N households (cached; tables as `rewards validate` writes them, see
benchmarks/grocery_data.py), profiles by `rewards features`, then `rewards score --k 3 --channel app`
once with the 10-offer subset (`--offers`) and once with all 1,000, for each of --list-settings (the
CLI's own chunking, then --workers 1 and 2 with --chunk-size 5000); wall time and peak RSS of the whole process
tree (workers included); target <= 180 s and <= 8 GB with 1,000 offers; then a cProfile breakdown of
one 2,000-household chunk.
Writes the "many_offers_api" and "many_offers_list" sections of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import grocery_data  # noqa: E402
from benchmarks.report import group_rss_mb, markdown_table, previous_section, update_section  # noqa: E402

WORK = grocery_data.CACHE / "many_offers"
AS_OF = grocery_data.END_DATE
WHEN = f"{AS_OF}T08:15:00"
SEND_AT = f"{AS_OF}T09:00:00"
TRAIN_CUSTOMERS, SEED = 3000, 42
REFERENCE_OFFERS = 10
API_RATE, TARGET_P99_MS = 200.0, 25.0
TARGET_LIST_S, TARGET_LIST_MB = 180.0, 8 * 1024
API_KEY = "bench-key"
CAMPAIGN_DAYS = 28


def cli(*args: str, env: dict | None = None, log: Path | None = None) -> float:
    """Run `rewards ARGS` (the real CLI, a fresh process); its wall seconds. Raises with its output's tail."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"rewards {' '.join(args[:2])} exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - started


def mlflow_env() -> dict[str, str]:
    return {"REWARDS_DATA_DIR": str(WORK), "MLFLOW_TRACKING_URI": f"sqlite:///{WORK / 'mlflow.db'}",
            "REWARDS_ARTIFACT_ROOT": str(WORK / "mlartifacts")}


def train_models() -> dict:
    """Grocery 3,000 households through the real validate (cached) and `rewards train all` (every run)."""
    from benchmarks.bench_service import ensure_champions

    raw, _ = grocery_data.raw(TRAIN_CUSTOMERS, 365, SEED)
    validated = WORK / "train" / "validated"
    timings = {}
    if not (validated / "program.toml").exists():
        shutil.rmtree(validated.parent, ignore_errors=True)
        timings["validate_s"] = cli("validate", str(raw), "--out", str(validated), "--quarantine",
                                    str(validated.parent / "quarantine"), "--report-dir", str(validated.parent / "reports"),
                                    "--run-date", AS_OF)
    (WORK / "mlflow.db").unlink(missing_ok=True)  # a fresh store: the champions are this run's models
    shutil.rmtree(WORK / "mlartifacts", ignore_errors=True)
    env = mlflow_env()
    timings["train_s"] = cli("train", "all", "--data", str(validated), env=env, log=WORK / "train.log")
    ensure_champions(env["MLFLOW_TRACKING_URI"])
    return {"validated": validated, "raw": raw, **timings}


def new_campaign(validated: Path, out: Path, n_offers: int | None) -> Path:
    """A folder like ``validated`` (its other tables linked) whose catalogue adds a campaign re-issuing ``n_offers``
    coupons (all when None) under new ids, valid from AS_OF for CAMPAIGN_DAYS days (the other offers all ended
    before). Rebuilt every run (cheap)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for path in validated.iterdir():
        if path.name not in ("offers.parquet", "offer_products.parquet"):
            (out / path.name).symlink_to(path.resolve())
    offers = pd.read_parquet(validated / "offers.parquet")
    covered = pd.read_parquet(validated / "offer_products.parquet")
    issued = offers.sort_values("offer_id").head(n_offers if n_offers else len(offers))
    start = pd.Timestamp(AS_OF)
    again = issued.assign(offer_id="N-" + issued["offer_id"], valid_from=start,
                          valid_to=start + pd.Timedelta(days=CAMPAIGN_DAYS) - pd.Timedelta(seconds=1))
    again_products = covered[covered["offer_id"].isin(issued["offer_id"])].assign(
        offer_id=lambda f: "N-" + f["offer_id"])
    pd.concat([offers, again], ignore_index=True).astype(offers.dtypes.to_dict()).to_parquet(
        out / "offers.parquet", index=False)
    pd.concat([covered, again_products], ignore_index=True).to_parquet(out / "offer_products.parquet", index=False)
    return out


def active_offers(folder: Path, when: str) -> int:
    offers = pd.read_parquet(folder / "offers.parquet")
    t = pd.Timestamp(when)
    return int(((offers["valid_from"] <= t) & (offers["valid_to"] >= t)).sum())


def build_profiles(folder: Path) -> tuple[Path, float]:
    """`rewards features` into a profiles folder beside ``folder``; its seconds."""
    out = folder.parent / f"profiles-{folder.name}" / "profiles.parquet"
    seconds = cli("features", "--data", str(folder), "--as-of", AS_OF, "--out", str(out))
    return out, seconds


# --------------------------------------------------------------------------------------------------
# api
# --------------------------------------------------------------------------------------------------


API_PROFILED = {  # (file part, function) -> label: where one /recommend decision spends its time
    ("models/offer_grid.py", "offer_matrix"): "offer rows (models/offer_grid.offer_matrix)",
    ("models/tabular.py", "to_matrix"): "of which frame -> matrix (models/tabular.to_matrix)",
    ("models/offer_response.py", "_interaction_columns"): "of which interaction columns (offer_response._interaction_columns)",
    ("pipelines/compiled.py", "__call__"): "P(redeem), compiled trees",
    ("models/policy/scoring.py", "explain_pairs"): "reasons (scoring.explain_pairs)",
}


def api_breakdown(folder: Path, profiles: Path, n: int = 100) -> tuple[float, str, str]:
    """In process, the server's own state (serving.loading.load_state): ms per one-customer decision over ``n``
    households, and a cProfile of ``n`` more (cumulative shares of API_PROFILED); the scorer note."""
    import cProfile
    import logging
    import pstats

    from models.policy import Context
    from pipelines.config import environment
    from serving.loading import Settings, load_state

    notes: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "scorer" in record.getMessage():
                notes.append(record.getMessage())

    handler = Keep()
    logging.getLogger().addHandler(handler)
    try:
        with environment(**mlflow_env(), REWARDS_VALIDATED_DIR=str(folder), REWARDS_PROFILES_PATH=str(profiles),
                         REWARDS_DECISION_LOG=str(WORK / "serve" / "decisions-inproc.jsonl"), REWARDS_API_KEYS=API_KEY):
            state = load_state(Settings.from_env())
    finally:
        logging.getLogger().removeHandler(handler)
    ids = pd.read_parquet(profiles, columns=["customer_id"])["customer_id"].astype(str).tolist()
    ctx = Context(pd.Timestamp(WHEN), "app", "S001")
    state.decide(ids[:1], ctx, 3, None)  # warm-up
    started = time.perf_counter()
    for c in ids[:n]:
        state.decide([c], ctx, 3, None)
    per_ms = (time.perf_counter() - started) / n * 1000
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.runcall(lambda: [state.decide([c], ctx, 3, None) for c in ids[n:2 * n]])
    total = time.perf_counter() - t0
    stats = pstats.Stats(profiler).stats
    parts = {label: sum(v[3] for (f, _, name), v in stats.items() if part in f and name == func)
             for (part, func), label in API_PROFILED.items()}
    text = ", ".join(f"{label} {v / total:.0%}" for label, v in parts.items())
    return per_ms, text, "; ".join(dict.fromkeys(notes))


def worst_second(p99s: list) -> str:
    """'second / its p99' of the slowest second of a run (``run_rate``'s p99_by_second)."""
    known = [(p, i) for i, p in enumerate(p99s) if p is not None]
    if not known:
        return "-"
    p, i = max(known)
    return f"{i} / {p:g}"


def previous_figures(section: str | None) -> dict | None:
    """What the section being replaced said: when it was measured, the 1,000-offer rounds' p99s, the memory."""
    import re

    if not section:
        return None
    measured = re.search(r"_Measured ([^_]+?) on ", section)
    p99s = [float(m.group(1)) for m in re.finditer(r"^\|[^|\n]*\| 1,000 \|(?:[^|\n]*\|)*?\s*[\d.]+ / [\d.]+ / ([\d.]+) \|",
                                                section, re.M)]
    memory = re.search(r"Server memory \(arbiter and workers\): ([\d,]+ MB with 1,000 offers)", section)
    if not p99s:
        return None
    return {"measured": measured.group(1) if measured else "?", "p99s": " / ".join(f"{p:g}" for p in p99s),
            "worst": f"{max(p99s):g}", "memory": memory.group(1) if memory else "not given"}


def drain(url: str, timeout: float = 180.0) -> float:
    """Seconds until ``/healthz`` answers within 50 ms again (the server has worked off its queue)."""
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        t0 = time.perf_counter()
        try:
            httpx.get(f"{url}/healthz", timeout=30).raise_for_status()
            if time.perf_counter() - t0 < 0.05:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return round(time.perf_counter() - started, 1)


def api(args, models: dict) -> None:
    from benchmarks.bench_service import cpu_times, free_port, machine_during, run_rate
    from pipelines.serve import start_server, stop_server, wait_ready

    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    folders = {n: new_campaign(models["validated"], WORK / "serve" / f"offers-{n}", None if n == 1000 else n)
               for n in (1000, REFERENCE_OFFERS)}
    servers, rows, status, launched, ready_at = {}, [], {}, {}, {}
    try:
        for n, folder in folders.items():
            profiles, seconds = build_profiles(folder)
            print(f"profiles for {folder.name} in {seconds:.0f} s", flush=True)
            port = free_port()
            log = WORK / "serve" / f"server-{n}.log"
            env = {**mlflow_env(), "REWARDS_VALIDATED_DIR": str(folder), "REWARDS_PROFILES_PATH": str(profiles),
                   "REWARDS_DECISION_LOG": str(WORK / "serve" / f"decisions-{n}.jsonl"), "REWARDS_API_KEYS": API_KEY,
                   "REWARDS_SERVE_WORKERS": str(args.workers)}
            proc = start_server("127.0.0.1", port, env=env, log_path=log)
            servers[n] = (proc, f"http://127.0.0.1:{port}", profiles)
            launched[n] = time.perf_counter()
        for n, (proc, url, _) in servers.items():
            wait_ready(url, timeout=240, process=proc, log_path=WORK / "serve" / f"server-{n}.log")
            ready_at[n] = time.perf_counter()
        ids = pd.read_parquet(servers[1000][2], columns=["customer_id"])["customer_id"].astype(str).tolist()
        rng = random.Random(0)
        order = [rng.choice(ids) for _ in range(100_000)]
        ctx = {"timestamp": WHEN, "channel": "app", "store_id": "S001"}

        def body(i: int) -> dict:
            return {"customer_id": order[i % len(order)], "k": 3, "context": ctx}

        import gc

        import httpx

        gc.collect()
        gc.freeze()
        # Round 1 starts straight after /readyz: whatever a fresh server still has to do shows in it.
        for round_no in range(args.rounds):
            for n in ((1000, REFERENCE_OFFERS) if round_no % 2 == 0 else (REFERENCE_OFFERS, 1000)):
                since_ready, cpu_before = time.perf_counter() - ready_at[n], cpu_times()
                r = asyncio.run(run_rate(servers[n][1], "/recommend", args.rate, args.seconds, body))
                r.update(offers=n, round=round_no + 1, load=round(os.getloadavg()[0], 1), since_ready=round(since_ready, 1),
                         **machine_during(cpu_before, cpu_times()),
                         drained_s=drain(servers[n][1]))  # an overloaded server's backlog must not spill into the next run
                print("api", json.dumps(r), flush=True)
                rows.append(r)
        rss = {n: group_rss_mb(proc.pid) for n, (proc, _, _) in servers.items()}
        sample, served = {}, {}
        for n, (_, url, _) in servers.items():
            with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=60) as client:
                status[n] = client.post("/status", json={}).json()
                replies = [client.post("/recommend", json=body(i)).json() for i in range(200)]
            counts = [len(r.get("offers") or []) for r in replies]
            served[n] = {"with_offers": sum(c > 0 for c in counts), "offers": sum(counts), "asked": len(replies)}
            sample[n] = next((r for r in replies if r.get("offers")), replies[0])
        print("replies holding offers", served, flush=True)
        print("status", json.dumps(status, default=str)[:600], flush=True)
        print("sample /recommend with 1,000 offers:", json.dumps(sample[1000], default=str)[:1500], flush=True)
    finally:
        for proc, _, _ in servers.values():
            stop_server(proc)
    active = {n: active_offers(folder, WHEN) for n, folder in folders.items()}
    inproc = {n: api_breakdown(folder, servers[n][2]) for n, folder in folders.items()}
    print("in process", inproc, flush=True)

    def agg(n: int, key: str) -> float:
        values = [r[key] for r in rows if r["offers"] == n and r[key] is not None]
        return float(np.median(values)) if values else float("nan")

    many, few = [r for r in rows if r["offers"] == 1000], [r for r in rows if r["offers"] == REFERENCE_OFFERS]
    p99_many, p99_few = agg(1000, "p99"), agg(REFERENCE_OFFERS, "p99")
    worst_many = max((r["p99"] if r["p99"] is not None else float("inf") for r in many), default=float("inf"))
    errors_many = sum(r["errors"] for r in many)
    ok = errors_many == 0 and worst_many <= TARGET_P99_MS and all(r["throughput"] >= 0.95 * args.rate for r in many)
    load_end = os.getloadavg()[0]
    table = [{
        "round": r["round"], "active offers": f"{active[r['offers']]:,}", "starts s after ready": r["since_ready"],
        "/recommend p50 / p95 / p99 (ms)": f"{r['p50']} / {r['p95']} / {r['p99']}", "throughput (req/s)": r["throughput"],
        "errors": r["errors"], "p99 first s (ms)": r["p99_by_second"][0],
        "worst second: s / p99 (ms)": worst_second(r["p99_by_second"]),
        "load avg": r["load"], "machine busy %": r["busy_pct"], "VM steal (ms)": r["steal_ms"],
        "backlog drained after (s)": r["drained_s"],
    } for r in rows]
    warmups = {n: "; ".join(f"worker {w['worker']} {w.get('warmup')}" for w in status[n].get("workers", []))
               for n in servers}
    before = previous_figures(previous_section("many_offers_api"))
    reasons = [o.get("reasons") for o in sample[1000].get("offers", [])] if isinstance(sample[1000], dict) else []
    text = f"""
Real servers (`bentoml serve serving.service:OfferService`, {args.workers} workers each, {status[1000].get('scorer')} scorer) on
loopback, both up for the whole run; open-loop aiohttp client on the same machine (`benchmarks/bench_service.run_rate`:
latency from each request's scheduled send time), {args.rate:.0f} req/s for {args.seconds:.0f} s per run, the two servers
alternated for {args.rounds} rounds, **round 1 of each server straight after its `/readyz` said ready** (no warm-up by
the client; the servers became ready {ready_at[1000] - launched[1000]:.0f} s and {ready_at[REFERENCE_OFFERS] - launched[REFERENCE_OFFERS]:.0f} s after their start; each worker warms itself up
first, `serving/warmup.py`: 1,000 offers {warmups[1000]}). `/recommend` asks k=3 for a random profiled household at {WHEN}, channel app.
Models: grocery, {TRAIN_CUSTOMERS:,} households x 365 days (seed 42), real `rewards validate` and `rewards train all`
(versions {status[1000].get('model_versions')}); profiles by `rewards features`. Offers: a new campaign re-issues the
1,000 coupons under new ids (never seen by the model) valid from {AS_OF}: **{active[1000]:,} active** at the request
time ({status[1000].get('offers')} in the catalogue); reference: the same with only {active[REFERENCE_OFFERS]} re-issued
({status[REFERENCE_OFFERS].get('offers')} in the catalogue).

{markdown_table(table)}

"p99 first s": the requests scheduled in the round's first second (round 1: the first second after `/readyz`);
"worst second": the second of the round whose requests had the highest p99. "machine busy %": the share of the
{os.cpu_count()} cores in use by anything during the round (other engineers' jobs included); "VM steal": CPU time the
hypervisor took from this virtual machine during the round (ms, summed over the cores; while it lasts nothing here runs).

Median p99: **{p99_many:.1f} ms with {active[1000]:,} offers, {p99_few:.1f} ms with {active[REFERENCE_OFFERS]} (ratio
{p99_many / p99_few:.2f})**; median p50 {agg(1000, 'p50'):.1f} vs {agg(REFERENCE_OFFERS, 'p50'):.1f} ms (ratio
{agg(1000, 'p50') / agg(REFERENCE_OFFERS, 'p50'):.2f}). Errors: {errors_many} with 1,000 offers,
{sum(r['errors'] for r in few)} with {REFERENCE_OFFERS}. Target (p99 <= {TARGET_P99_MS:.0f} ms at {args.rate:.0f} req/s, 0 errors, every
1,000-offer run): **{'met' if ok else 'not met'}** (worst p99 {worst_many} ms).
In process, on the server's own state (`serving.loading.load_state`), one decision takes **{inproc[1000][0]:.0f} ms with
{active[1000]:,} offers, {inproc[REFERENCE_OFFERS][0]:.0f} ms with {active[REFERENCE_OFFERS]}** (mean of 100 households; at {args.rate:.0f} req/s the
{args.workers} workers have {1000 * args.workers / args.rate:.0f} ms per decision). Scorer: {inproc[1000][2] or status[1000].get('scorer')}.
Where a decision's time goes with 1,000 offers (cProfile, cumulative shares; parts overlap): {inproc[1000][1]}.
Server memory (arbiter and workers): {rss[1000]:,.0f} MB with 1,000 offers, {rss[REFERENCE_OFFERS]:,.0f} MB with {REFERENCE_OFFERS}.
Replies after the rounds (200 households each): {served[1000]['with_offers']} of {served[1000]['asked']} hold an offer
({served[1000]['offers']} offers) with 1,000 active, {served[REFERENCE_OFFERS]['with_offers']} of {served[REFERENCE_OFFERS]['asked']}
({served[REFERENCE_OFFERS]['offers']} offers) with {REFERENCE_OFFERS}.
A reply's reasons with 1,000 offers: {json.dumps(reasons[:2])[:300]}.
Machine load average {load_start:.1f} at the start, {load_end:.1f} at the end ({os.cpu_count()} cores{', shared with other jobs: compare the ratio' if max(load_start, load_end) > 1.5 else ''}).
Whole run {time.perf_counter() - started:.0f} s (training {models.get('train_s', 0):.0f} s before it).
{f"Before this run, this section said (measured {before['measured']}): 1,000-offer rounds p99 {before['p99s']} ms (worst {before['worst']} ms), server memory {before['memory']}." if before else ""}
"""
    print(text)
    print(f"VERDICT many_offers_api: p99 {p99_many:.1f} ms median, {worst_many} ms worst, {errors_many} errors with "
          f"{active[1000]:,} active offers at {args.rate:.0f} req/s (target <= {TARGET_P99_MS:.0f} ms, 0 errors): "
          f"{'met' if ok else 'not met'}; reference {active[REFERENCE_OFFERS]} offers p99 {p99_few:.1f} ms, ratio "
          f"{p99_many / p99_few:.2f}", flush=True)
    (WORK / "api_section.md").write_text(text)
    if not args.no_write:
        update_section("many_offers_api", "Offer API with 1,000 active offers (grocery)", text)


# --------------------------------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------------------------------


def run_score(folder: Path, profiles: Path, out: Path, offers: list[str] | None, workers: int | None,
              chunk: int | None, kill_mb: float, kill_s: float) -> dict:
    """One `rewards score` process: wall time, peak RSS of its process tree (sampled every 0.2 s), its summary."""
    from benchmarks.bench_score import _tree_rss

    args = [sys.executable, "-m", "pipelines.cli", "score", "--as-of", AS_OF, "--campaign", "bench", "--k", "3",
            "--channel", "app", "--holdout", "0.05", "--send-at", SEND_AT, "--data", str(folder), "--profiles",
            str(profiles), "--out", str(out), "--no-progress"]
    if workers is not None:
        args += ["--workers", str(workers)]
    if chunk is not None:
        args += ["--chunk-size", str(chunk)]
    if offers:
        args += ["--offers", ",".join(offers)]
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, **mlflow_env()}, start_new_session=True)
    peak, done, killed = 0, threading.Event(), None

    def sample() -> None:
        nonlocal peak, killed
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            over_memory, over_time = peak > kill_mb * 2**20, time.perf_counter() - started > kill_s
            if (over_memory or over_time) and killed is None:  # the machine is shared: stop a run far past its target
                killed = (f"stopped at {time.perf_counter() - started:.0f} s with {peak / 2**20:,.0f} MB "
                          f"({'memory' if over_memory else 'time'} cap {kill_mb:,.0f} MB / {kill_s:.0f} s)")
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    done.set()
    watcher.join()
    wall = time.perf_counter() - started
    if killed:
        return {"wall_s": wall, "peak_rss_mb": peak / 2**20, "summary": {}, "killed": killed}
    if proc.returncode != 0:
        raise RuntimeError(f"rewards score failed with {proc.returncode}:\n{(stdout + stderr)[-3000:]}")
    summary = json.loads(out.with_name(f"{out.stem}.summary.json").read_text())
    return {"wall_s": wall, "peak_rss_mb": peak / 2**20, "summary": summary, "killed": None}


def list_breakdown(n: int = 2000) -> tuple[dict, str]:
    """Where one list chunk's time goes with 1,000 active offers: bench_score.time_breakdown (cProfile, one worker,
    one thread) on ``n`` households resampled from the 3,000-household folder with the re-issued campaign."""
    from benchmarks.bench_score import time_breakdown
    from pipelines.io import read_validated

    folder = new_campaign(WORK / "train" / "validated", WORK / "breakdown" / "offers-1000", None)
    profiles, _ = build_profiles(folder)
    env = {"as_of": AS_OF, "profiles": profiles, "tables": read_validated(folder), "uri": mlflow_env()["MLFLOW_TRACKING_URI"]}
    from pipelines.config import environment

    with environment(**mlflow_env()):
        parts = time_breakdown(env, n)
    total = parts.pop("total")
    text = (f"Where the time goes, one chunk of {n:,} households x 1,000 offers in one worker, one thread "
            f"(`benchmarks/bench_score.time_breakdown`, cProfile, {total:.1f} s; parts overlap): "
            + ", ".join(f"{k} {v:.1f} s ({v / total:.0%})" for k, v in parts.items()) + ".")
    return parts, text


def parse_settings(text: str) -> list[tuple[int | None, int | None]]:
    """``"default,1x5000"`` -> [(None, None), (1, 5000)]: `rewards score` --workers x --chunk-size per setting."""
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if item == "default":
            out.append((None, None))
        else:
            workers, chunk = item.split("x")
            out.append((int(workers), int(chunk)))
    return out


def campaign_list(args, models: dict) -> None:
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    raw, generated = grocery_data.raw(args.customers, 365, SEED)
    folder = new_campaign(grocery_data.by_construction(raw), raw.parent / "offers-1000", None)
    profiles, profile_s = build_profiles(folder)
    print(f"profiles for {args.customers:,} households in {profile_s:.0f} s", flush=True)
    offers = pd.read_parquet(folder / "offers.parquet")
    reissued = sorted(offers.loc[offers["offer_id"].str.startswith("N-"), "offer_id"])
    n_active = active_offers(folder, SEND_AT)
    out_dir = WORK / "lists"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []  # (settings label, reference result, many result)
    for workers, chunk in parse_settings(args.list_settings):
        label = ("`rewards score` defaults" if workers is None else f"`--workers {workers} --chunk-size {chunk}`")
        pair = {}
        for kind, subset in (("reference", reissued[:REFERENCE_OFFERS]), ("many", None)):
            res = run_score(folder, profiles, out_dir / f"{kind}.parquet", subset, workers, chunk, args.kill_mb, args.kill_s)
            print("list", label, kind, json.dumps({k: v for k, v in res.items() if k != "summary"}),
                  json.dumps(res["summary"], default=str)[:600], flush=True)
            pair[kind] = res
        runs.append((label, pair["reference"], pair["many"]))
    breakdown = list_breakdown()[1] if args.breakdown else ""
    print(breakdown, flush=True)
    load_end = os.getloadavg()[0]

    def ok(r: dict) -> tuple[bool, bool]:
        return (not r["killed"] and r["wall_s"] <= TARGET_LIST_S, not r["killed"] and r["peak_rss_mb"] <= TARGET_LIST_MB)

    def row(label: str, n: int, r: dict, ref: dict) -> dict:
        s = r["summary"]
        return {"settings": label, "active offers": f"{n:,}",
                "wall s": f"{r['wall_s']:.1f}" + (" (stopped)" if r["killed"] else ""),
                "x 10 offers": f"{r['wall_s'] / ref['wall_s']:.2f}", "peak RSS MB (tree)": f"{r['peak_rss_mb']:,.0f}",
                "workers": s.get("workers", "-"), "customers with offers": f"{s.get('customers_with_offers', 0):,}",
                "offers written": f"{s.get('offers', 0):,}"}

    table = [row(label, n, r, ref) for label, ref, many in runs for n, r in ((REFERENCE_OFFERS, ref), (n_active, many))]
    verdicts = []
    for label, ref, many in runs:
        time_ok, mem_ok = ok(many)
        verdicts.append(f"{label}: time **{'met' if time_ok else 'not met'}** ({many['wall_s']:.0f} s"
                        f"{', stopped' if many['killed'] else ''}), memory **{'met' if mem_ok else 'not met'}** "
                        f"({many['peak_rss_mb']:,.0f} MB); 1,000 offers cost {many['wall_s'] / ref['wall_s']:.1f}x the "
                        f"{REFERENCE_OFFERS}-offer list")
    stopped = "".join(f"{label}, {kind}: **{r['killed']}**: it did not finish, its figures are lower bounds.\n"
                      for label, ref, many in runs for kind, r in (("10 offers", ref), ("1,000 offers", many)) if r["killed"])
    text = f"""
`rewards score --k 3 --channel app --holdout 0.05 --send-at {SEND_AT} --profiles ...`, one fresh process per run (models
from MLflow included), peak RSS of the whole process tree (workers included; psutil RSS summed, as in the batch-scoring
section) sampled every 0.2 s, a run stopped past {args.kill_mb:,.0f} MB or {args.kill_s:.0f} s (the machine is shared). Data:
grocery, {args.customers:,} households x 365 days (seed 42), tables as `rewards validate` writes them
(`benchmarks/grocery_data.py`, no GX){f', generated in {generated:.0f} s' if generated else ' (cached under data/bench/)'};
profiles by `rewards features` in {profile_s:.0f} s (not counted). A new campaign re-issues the 1,000 coupons (new ids)
valid from {AS_OF}: **{n_active:,} active** at the send time; the reference scores the same households with `--offers`
naming {REFERENCE_OFFERS} of them. Models: grocery, {TRAIN_CUSTOMERS:,} households, real `rewards validate` + `rewards train all`.

{markdown_table(table)}

Target ({args.customers:,} x {n_active:,} offers, top 3, <= {TARGET_LIST_S:.0f} s and <= {TARGET_LIST_MB / 1024:.0f} GB):
""" + "".join(f"- {v}.\n" for v in verdicts) + f"""
Machine load average {load_start:.1f} at the start, {load_end:.1f} at the end ({os.cpu_count()} cores{', shared with other jobs: compare the ratio' if max(load_start, load_end) > 1.5 else ''}).
{breakdown}
{stopped}Whole run {time.perf_counter() - started:.0f} s (training {models.get('train_s', 0):.0f} s before it).
"""
    print(text)
    for label, ref, many in runs:
        time_ok, mem_ok = ok(many)
        print(f"VERDICT many_offers_list ({label}): {many['wall_s']:.0f} s{' (stopped)' if many['killed'] else ''}, "
              f"{many['peak_rss_mb']:,.0f} MB for {args.customers:,} x {n_active:,} offers (target <= {TARGET_LIST_S:.0f} s, "
              f"<= {TARGET_LIST_MB / 1024:.0f} GB): time {'met' if time_ok else 'not met'}, memory {'met' if mem_ok else 'not met'}; "
              f"reference {REFERENCE_OFFERS} offers {ref['wall_s']:.0f} s, ratio {many['wall_s'] / ref['wall_s']:.2f}", flush=True)
    (WORK / "list_section.md").write_text(text)
    if not args.no_write:
        update_section("many_offers_list", "Campaign list with 1,000 active offers (grocery)", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("api", "list"), default=None, help="run one of the two (default: both)")
    parser.add_argument("--customers", type=int, default=100_000, help="households in the campaign list")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each API run")
    parser.add_argument("--rate", type=float, default=API_RATE, help="API request rate (req/s); the target is at 200")
    parser.add_argument("--rounds", type=int, default=3, help="API rounds (each runs both servers)")
    parser.add_argument("--workers", type=int, default=2, help="server workers (api)")
    parser.add_argument("--list-settings", default="default,1x5000,2x5000",
                        help="list: `rewards score` settings to run, comma-separated: 'default' (its own) or WORKERSxCHUNK")
    parser.add_argument("--kill-mb", type=float, default=12 * 1024,
                        help="stop a list run whose process tree passes this many MB (the machine is shared)")
    parser.add_argument("--kill-s", type=float, default=900, help="stop a list run after this many seconds")
    parser.add_argument("--reuse-models", action="store_true",
                        help="score with the last run's models instead of retraining (quick reruns while the code is unchanged)")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="list: skip the cProfile breakdown of one 2,000-household chunk")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.reuse_models and (WORK / "mlflow.db").exists():
        models = {"validated": WORK / "train" / "validated", "train_s": 0.0}
        print("reusing the models of the last run (--reuse-models)", flush=True)
    else:
        models = train_models()
        print(f"models trained in {models['train_s']:.0f} s", flush=True)
    if args.only in (None, "api"):
        api(args, models)
    if args.only in (None, "list"):
        campaign_list(args, models)


if __name__ == "__main__":
    main()
