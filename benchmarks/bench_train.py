"""Training benchmark: churn and offer-response models on 100k customers vs a 10k reference in the same run.

Run under the machine-wide benchmark lock:
    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_train.py [--customers 100000] [--reference 10000]

Measures, per size: training-set construction (profiles at 12 churn snapshots 15 days apart, which
gives ~1M rows at 100k customers; the pipeline default is 6 x 30 days; profiles at each send
date for the offer rows) and the fits (LightGBM + calibration, and the baselines). The target is the
two model fits on ~1M churn rows and ~500k offer rows in under 3 minutes on 2 cores; offer events
are sampled down to about ``--offer-rows`` sends to keep the run within ~10 minutes. The 10k run is
the reference: the ratio shows how the fit scales with rows.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before lightgbm loads (see pipelines/train.py)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.report import markdown_table, peak_rss_mb, update_section  # noqa: E402

SECTION = "train"
TITLE = "Model training (churn + offer response)"


def _sample_offer_events(tables: dict, target_rows: int, seed: int) -> dict:
    events = tables["offer_events"]
    if len(events) <= target_rows:
        return tables
    rng = np.random.default_rng(seed)
    keep = rng.random(len(events)) < target_rows / len(events)
    return {**tables, "offer_events": events[keep].reset_index(drop=True)}


def measure(n_customers: int, offer_rows: int, snapshots: int, every_days: int, seed: int = 7) -> dict:
    from models.baselines import BGNBDBaseline, PopularityBaseline, RecencyRuleBaseline
    from models.churn import ChurnModel
    from models.offer_response import OfferResponseModel
    from models.training_sets import churn_snapshot_dates, churn_training_set, offer_response_training_set
    from pipelines.synthetic import generate

    out: dict = {"customers": n_customers}
    t = time.perf_counter()
    data = generate(n_customers=n_customers, days=365, seed=seed, end_date="2026-06-30")
    tables = data.tables
    out["generate_s"] = time.perf_counter() - t
    del data
    gc.collect()

    t = time.perf_counter()
    X, y, meta = churn_training_set(
        tables, churn_snapshot_dates(tables, 60, n_snapshots=snapshots, every_days=every_days), horizon_days=60
    )
    out["churn_set_s"] = time.perf_counter() - t
    out["churn_rows"] = len(X)
    t = time.perf_counter()
    # As rewards train fits it: BG/NBD inside, customers kept whole across the early-stopping split.
    ChurnModel(random_state=seed, n_jobs=2, bgnbd_horizon_days=60).fit(X, y.to_numpy(),
                                                                      groups=meta["customer_id"].to_numpy())
    out["churn_fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    RecencyRuleBaseline().fit(X, y.to_numpy())
    BGNBDBaseline(random_state=seed).fit(meta, y.to_numpy())
    out["churn_baselines_s"] = time.perf_counter() - t
    del X, y, meta
    gc.collect()

    sent = tables["offer_events"]
    target = int(offer_rows / max(1e-9, (~sent["is_control"]).mean()) * 1.15)  # exclusions drop ~10-15%
    small = _sample_offer_events(tables, target, seed)
    t = time.perf_counter()
    Xo, yo, mo = offer_response_training_set(small)
    out["offer_set_s"] = time.perf_counter() - t
    out["offer_rows"] = len(Xo)
    t = time.perf_counter()
    OfferResponseModel(random_state=seed, n_jobs=2).fit(Xo, yo.to_numpy())
    out["offer_fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    PopularityBaseline(key="offer_id").fit(mo, yo.to_numpy())
    PopularityBaseline(key="reward_category").fit(mo, yo.to_numpy())
    out["offer_baselines_s"] = time.perf_counter() - t
    out["both_fits_s"] = out["churn_fit_s"] + out["offer_fit_s"] + out["churn_baselines_s"] + out["offer_baselines_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--reference", type=int, default=10_000)
    parser.add_argument("--offer-rows", type=int, default=500_000)
    parser.add_argument("--snapshots", type=int, default=12, help="churn snapshots (12 x 15 days: ~1M rows at 100k)")
    parser.add_argument("--every-days", type=int, default=15)
    parser.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    snap = {"snapshots": args.snapshots, "every_days": args.every_days}
    ref = measure(args.reference, offer_rows=args.offer_rows * args.reference // args.customers, **snap)
    print("reference", ref, flush=True)
    big = measure(args.customers, offer_rows=args.offer_rows, **snap)
    print("target", big, flush=True)

    rows = []
    for r in (ref, big):
        rows.append(
            {
                "customers": f"{r['customers']:,}",
                "churn rows": f"{r['churn_rows']:,}",
                "offer rows": f"{r['offer_rows']:,}",
                "churn set (s)": f"{r['churn_set_s']:.1f}",
                "offer set (s)": f"{r['offer_set_s']:.1f}",
                "churn fit (s)": f"{r['churn_fit_s']:.1f}",
                "offer fit (s)": f"{r['offer_fit_s']:.1f}",
                "baselines (s)": f"{r['churn_baselines_s'] + r['offer_baselines_s']:.1f}",
                "all fits (s)": f"{r['both_fits_s']:.1f}",
            }
        )
    rows_ratio = (big["churn_rows"] + big["offer_rows"]) / (ref["churn_rows"] + ref["offer_rows"])
    fit_ratio = big["both_fits_s"] / ref["both_fits_s"]
    verdict = "meets" if big["both_fits_s"] < 180 else "MISSES"
    body = (
        f"`benchmarks/bench_train.py`: generated data (365 days, seed 7), {args.snapshots} churn snapshots "
        f"{args.every_days} days apart, "
        f"offer events sampled to ~{args.offer_rows:,} sends; LightGBM with n_jobs=2, `OMP_WAIT_POLICY=PASSIVE`.\n\n"
        + markdown_table(rows)
        + f"\n\nAll fits (both models with calibration/early stopping, and the four baselines) at "
        f"{args.customers:,} customers: **{big['both_fits_s']:.0f} s** ({verdict} the 180 s target). "
        f"Reference in the same run: {args.reference:,} customers. Rows grow {rows_ratio:.1f}x, fit time "
        f"{fit_ratio:.1f}x (ratio of ratios {fit_ratio / rows_ratio:.2f}; below 1 means sub-linear). "
        f"Training-set construction (profile builds) is the larger cost: churn {big['churn_set_s']:.0f} s, "
        f"offers {big['offer_set_s']:.0f} s. Peak RSS {peak_rss_mb():.0f} MB."
    )
    print(body)
    if not args.no_write:
        update_section(SECTION, TITLE, body)


if __name__ == "__main__":
    main()
