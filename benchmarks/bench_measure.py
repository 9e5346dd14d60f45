"""Campaign measurement benchmark: does the 95% interval cover the planted truth in at least 9 of 10 seeds?

    .venv/bin/python benchmarks/bench_measure.py [--seeds 10] [--customers 3000]

For each seed: generate a program, score a campaign (k=3) with a 10% holdout using models trained once on a
reference program, simulate 30 days, measure, and compare the measured incremental revenue per treated
customer with the planted truth (the realised effects in ground_truth/treatment_effects.parquet). Coverage is
a statistical property, so this is a benchmark, not a timed test; one seed runs in the tests. Timings of each
step are given as ratios against scoring the list in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before lightgbm loads
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from benchmarks.report import markdown_table, update_section  # noqa: E402

SECTION = "measure"
TITLE = "Campaign measurement (coverage of the planted truth)"
REQUIRED_COVERAGE = 9


def _train_reference(root: Path, customers: int) -> str:
    from pipelines.config import environment
    from pipelines.io import write_validated
    from pipelines.registry import promote_latest_without_champion
    from pipelines.synthetic import generate
    from pipelines.train import train_all

    uri = f"sqlite:///{root / 'mlflow.db'}"
    data = generate(n_customers=customers, days=365, seed=1000, end_date="2026-06-30")
    validated = write_validated(data.tables, root / "reference" / "validated")
    with environment(REWARDS_DATA_DIR=str(root), REWARDS_ARTIFACT_ROOT=str(root / "mlartifacts"), MLFLOW_TRACKING_URI=uri):
        train_all(validated, tracking_uri=uri, max_ece=0.1)
        promote_latest_without_champion(["churn-risk", "offer-response"], "bench_measure reference models", uri)
    return uri


def measure_seed(root: Path, seed: int, customers: int, models: dict) -> dict:
    from pipelines.io import write_validated
    from pipelines.measure import list_meta, run_measure
    from pipelines.score import ScoreRequest, run_score
    from pipelines.simulate import read_program, simulate_campaign, write_program
    from pipelines.synthetic import generate, write

    folder = root / f"seed{seed}"
    data = generate(n_customers=customers, days=365, seed=seed, end_date="2026-06-30")
    write(data, folder / "raw")
    validated = write_validated(data.tables, folder / "validated")
    t = time.perf_counter()
    campaign = folder / "lists" / "bench.parquet"
    run_score(ScoreRequest(as_of=pd.Timestamp("2026-06-30"), campaign=f"bench-{seed}", out=campaign, k=3, holdout=0.1,
                           data=validated, workers=1, progress=False), models=models)
    score_s = time.perf_counter() - t
    t = time.perf_counter()
    program = read_program(folder / "raw")
    meta = list_meta(campaign)
    program, window = simulate_campaign(program, pd.read_parquet(campaign), meta["send_at"], 30, meta["channel"], seed)
    write_program(program, folder / "raw", folder / "after", {"seed": seed})
    simulate_s = time.perf_counter() - t
    t = time.perf_counter()
    m = run_measure(campaign, folder / "after", window_days=30)
    measure_s = time.perf_counter() - t
    eff = window.effects
    truth = eff[eff["treated"]].groupby("customer_id")["realised_incremental_revenue"].sum().mean()
    rev = m["incremental_per_treated"]["revenue"]
    return {"seed": seed, "treated": m["customers_treated"], "held out": m["customers_held_out"],
            "truth": round(float(truth), 2), "measured": round(rev["value"], 2), "95% interval": f"[{rev['low']:.2f}, {rev['high']:.2f}]",
            "covered": "yes" if rev["low"] <= truth <= rev["high"] else "NO",
            "ROI": f"{m['roi']['value']:.0%}" if m["roi"]["value"] is not None else "n/a",
            "score s": round(score_s, 1), "simulate / score": round(simulate_s / score_s, 2),
            "measure / score": round(measure_s / score_s, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    from pipelines.registry import load_champion

    with tempfile.TemporaryDirectory(prefix="bench_measure_") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        uri = _train_reference(root, args.customers)
        train_s = time.perf_counter() - t
        models = {"offer": load_champion("offer-response", uri), "churn": load_champion("churn-risk", uri)}
        rows = []
        for seed in range(1, args.seeds + 1):
            rows.append(measure_seed(root, seed, args.customers, models))
            print(rows[-1], flush=True)
    covered = sum(r["covered"] == "yes" for r in rows)
    verdict = "holds" if covered >= REQUIRED_COVERAGE * args.seeds / 10 else "DOES NOT hold"
    body = (
        f"Generate {args.customers:,} customers x 365 days, score a campaign (k=3) with a 10% holdout (models trained "
        f"once on a reference program, {train_s:.0f} s), simulate 30 days, `rewards measure`. The 95% interval of "
        f"incremental revenue per treated customer covered the planted truth in **{covered} of {args.seeds} seeds** "
        f"(target: at least 9 of 10; {verdict}).\n\n" + markdown_table(rows)
        + "\n\nTruth: the mean realised effect per treated customer (both worlds share their random draws, so each "
        "customer's effect is exact). Ratios: simulating and measuring against scoring the list, same run.\n"
    )
    print(body)
    if not args.no_write:
        update_section(SECTION, TITLE, body)
    return 0 if covered >= REQUIRED_COVERAGE * args.seeds / 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
