"""Benchmark the synthetic generator: 100k customers x 365 days against the 5k demo size in the same run.

Each size runs in its own child process so that peak memory is measured per size.
Run: flock /tmp/bench.lock .venv/bin/python benchmarks/bench_generate.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.report import markdown_table, peak_rss_mb, update_section  # noqa: E402

DAYS = 365
SEED = 42
REFERENCE_CUSTOMERS = 5_000
REFERENCE_REPEATS = 3
LARGE_CUSTOMERS = 100_000


def _child(n_customers: int, days: int) -> dict:
    """Generate (and write to Parquet) once in this process; report time, rows and peak memory."""
    import resource

    from pipelines.synthetic import generate, write

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    started, cpu_started = time.perf_counter(), cpu()
    data = generate(n_customers=n_customers, days=days, seed=SEED)
    generated, generated_cpu = time.perf_counter() - started, cpu() - cpu_started
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write(data, tmp)
        written = time.perf_counter() - started
    rows = {name: len(frame) for name, frame in data.tables.items()}
    return {"generate_s": generated, "generate_cpu_s": generated_cpu, "write_s": written, "rows": rows, "peak_rss_mb": peak_rss_mb()}


def _run(n_customers: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n_customers), str(DAYS)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    refs = [_run(REFERENCE_CUSTOMERS) for _ in range(REFERENCE_REPEATS)]
    ref = sorted(refs, key=lambda r: r["generate_s"])[REFERENCE_REPEATS // 2]  # median run
    large = _run(LARGE_CUSTOMERS)

    rows = []
    for label, n, r in (("reference (demo size)", REFERENCE_CUSTOMERS, ref), ("large", LARGE_CUSTOMERS, large)):
        total_rows = sum(r["rows"].values())
        rows.append(
            {
                "run": label,
                "customers x days": f"{n:,} x {DAYS}",
                "generate wall (s)": f"{r['generate_s']:.1f}",
                "generate CPU (s)": f"{r['generate_cpu_s']:.1f}",
                "write parquet (s)": f"{r['write_s']:.1f}",
                "transactions": f"{r['rows']['transactions']:,}",
                "offer_events": f"{r['rows']['offer_events']:,}",
                "all rows": f"{total_rows:,}",
                "rows/s (generate)": f"{total_rows / r['generate_s']:,.0f}",
                "peak RSS (MB)": f"{r['peak_rss_mb']:,.0f}",
            }
        )
    per_cd_ref = ref["generate_s"] / (REFERENCE_CUSTOMERS * DAYS)
    per_cd_large = large["generate_s"] / (LARGE_CUSTOMERS * DAYS)
    scaling = per_cd_large / per_cd_ref
    cpu_scaling = (large["generate_cpu_s"] / LARGE_CUSTOMERS) / (ref["generate_cpu_s"] / REFERENCE_CUSTOMERS)
    body = "\n".join(
        [
            f"`generate(n, {DAYS}, seed={SEED})` then `write(..., fmt='parquet')`, each size in a fresh process "
            f"(reference: median of {REFERENCE_REPEATS} runs).",
            "",
            markdown_table(rows),
            "",
            f"- Time per customer-day: {per_cd_ref * 1e6:.2f} us at {REFERENCE_CUSTOMERS:,} customers, "
            f"{per_cd_large * 1e6:.2f} us at {LARGE_CUSTOMERS:,}: **scaling ratio {scaling:.2f}** "
            "(1.0 = perfectly linear; above 1 = slower per unit at scale); "
            f"on CPU time (user + system, less sensitive to other jobs on the machine): **{cpu_scaling:.2f}**.",
            f"- Large run: {large['generate_s']:.0f} s to generate (target < 120 s on 2 cores), "
            f"{large['generate_s'] / ref['generate_s']:.1f}x the reference time for "
            f"{LARGE_CUSTOMERS / REFERENCE_CUSTOMERS:.0f}x the customers.",
            "- The machine is shared with other jobs, so absolute times are noisy; the ratios are the figures "
            "to compare.",
        ]
    )
    path = update_section("generate", "Synthetic data generation", body)
    print(body)
    print(f"written to {path}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(_child(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
