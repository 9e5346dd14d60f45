"""Long node features: `node_affinity_features` (pandas groupby on string keys) against the integer-code kernel
`features.node_kernels.node_features_from_lines` and a DuckDB SQL reference, on grocery households.

    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_node_kernels.py [--customers 20000] [--skip-old]
        [--tables DIR]   # a folder holding customers/transactions/products.parquet (e.g. validated tables)

Data: `pipelines.scenarios.grocery.generate(N households, 365 days, seed 42)` (30 departments > 250
commodities), is_refund = amount < 0, cached as Parquet under data/bench/ (never committed). Each contender
runs in its own fresh process (load the tables, run once, peak RSS); the parent checks that the kernel's frame
equals `node_affinity_features`' (pandas.testing, exact dtypes and order, spend shares to 1e-12) and DuckDB's
(same keys, values to 1e-9), then prints the ratios and, unless --no-write, writes the "node_kernels" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The DuckDB reference: the one query of the long node features (benchmarks/bench_taxonomy_features.py).
from benchmarks.bench_taxonomy_features import duckdb_sql  # noqa: E402
from benchmarks.report import markdown_table, peak_rss_mb, update_section  # noqa: E402

CACHE = ROOT / "data" / "bench"
END_DATE = "2026-06-30"
AS_OF = END_DATE
SECTION, TITLE = "node_kernels", "Long node features on integer codes (grocery)"
TARGET_S = 30.0
KEYS = ["customer_id", "level", "node"]
TABLES = ("customers", "transactions", "products")



def data_dir(customers: int, days: int, seed: int) -> tuple[Path, float | None]:
    """The cached Parquet tables (generated once); the generation seconds when it ran now."""
    out = CACHE / f"node_kernels_{customers}_{days}_{seed}"
    if all((out / f"{t}.parquet").exists() for t in TABLES):
        return out, None
    from pipelines.io import write_frame
    from pipelines.scenarios.grocery import generate

    started = time.perf_counter()
    tables = generate(n_customers=customers, days=days, seed=seed, end_date=END_DATE).tables
    tables["transactions"]["is_refund"] = tables["transactions"]["amount"] < 0
    seconds = time.perf_counter() - started
    for name in TABLES:
        write_frame(tables[name], out / f"{name}.parquet")
    return out, seconds


def _load(directory: Path) -> dict:
    import pandas as pd

    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in TABLES}


def child(directory: Path, name: str, out_file: Path) -> dict:
    """One fresh process: load the tables, run one contender once, write its frame."""
    tables = _load(directory)
    from features.hierarchy import hierarchy_levels, product_nodes

    result: dict = {"rows": len(tables["transactions"]), "customers": len(tables["customers"])}
    nodes = product_nodes(tables)
    started = time.perf_counter()
    if name == "old":
        from features.node_affinity import node_affinity_features

        frame = node_affinity_features(tables, AS_OF, nodes=nodes)
    elif name == "new":
        from features.node_kernels import node_features_from_lines, purchase_lines_arrow

        lines = purchase_lines_arrow(tables, AS_OF)
        result["purchase_lines_s"] = round(time.perf_counter() - started, 2)
        t0 = time.perf_counter()
        frame = node_features_from_lines(lines, nodes)
        result["kernel_s"] = round(time.perf_counter() - t0, 2)
        result["lines"] = len(lines)
        result["seconds"] = round(time.perf_counter() - started, 2)
        del lines
        from features.node_affinity import purchase_lines  # for comparison: the object-array round trip

        t0 = time.perf_counter()
        purchase_lines(tables, AS_OF)
        result["object_purchase_lines_s"] = round(time.perf_counter() - t0, 2)
    else:
        import duckdb
        import pandas as pd

        con = duckdb.connect()
        con.execute(f"SET threads = {os.cpu_count()}")
        for table in TABLES:
            con.register(table, tables[table])
        frame = con.execute(duckdb_sql(hierarchy_levels(tables)), {"as_of": pd.Timestamp(AS_OF)}).df()
        con.close()
    result.setdefault("seconds", round(time.perf_counter() - started, 2))
    result["peak_rss_mb"] = round(peak_rss_mb())
    frame.to_parquet(out_file, index=False)
    result["out_rows"] = len(frame)
    return result


def run_child(directory: Path, name: str) -> dict:
    out_file = CACHE / "node_kernels_out" / f"{name}.parquet"  # ours, also when --tables names another folder
    out_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--child", name, "--tables", str(directory), "--out", str(out_file)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child '{name}' failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"file": str(out_file)}


def same_as_old(new_file: str, old_file: str) -> None:
    import pandas as pd
    import pandas.testing as pdt

    pdt.assert_frame_equal(pd.read_parquet(new_file), pd.read_parquet(old_file), check_exact=False, rtol=1e-12, atol=0)


def diff_to_duckdb(new_file: str, duck_file: str) -> float:
    """Largest absolute difference between the kernel's frame and DuckDB's (same keys, NaN where NaN)."""
    import numpy as np
    import pandas as pd

    from features.catalogue import node_feature_names

    ours = pd.read_parquet(new_file).astype({k: "str" for k in KEYS}).set_index(KEYS).sort_index()
    ref = pd.read_parquet(duck_file).astype({k: "str" for k in KEYS}).set_index(KEYS).sort_index()
    if not ours.index.equals(ref.index):
        raise AssertionError(f"DuckDB and the kernel hold different (customer, level, node) rows: {len(ours)} vs {len(ref)}")
    worst = 0.0
    for col in node_feature_names():
        a, b = ours[col].to_numpy("float64"), ref[col].to_numpy("float64")
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            raise AssertionError(f"'{col}': NaN pattern differs between the kernel and DuckDB")
        ok = ~np.isnan(a)
        worst = max(worst, float(np.max(np.abs(a[ok] - b[ok]), initial=0.0)))
    if worst > 1e-9:
        raise AssertionError(f"the kernel and DuckDB differ by up to {worst}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="grocery households (generated, cached)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tables", default=None, help="a folder with customers/transactions/products.parquet instead")
    parser.add_argument("--skip-old", action="store_true", help="leave node_affinity_features out (~5 min at 100k)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.tables), args.child, Path(args.out))))
        return
    load = os.getloadavg()[0]
    generated = None
    if args.tables:
        directory = Path(args.tables)
        data = f"the tables in `{directory}`"
    else:
        directory, generated = data_dir(args.customers, args.days, args.seed)
        data = (f"`pipelines.scenarios.grocery.generate({args.customers:,} households, {args.days} days, seed "
                f"{args.seed})`" + (f", generated in {generated:.0f} s" if generated else " (cached under data/bench/)"))
    results = {name: run_child(directory, name) for name in ["new", "duckdb"] + ([] if args.skip_old else ["old"])}
    print(json.dumps(results), flush=True)
    worst = diff_to_duckdb(results["new"]["file"], results["duckdb"]["file"])
    if not args.skip_old:
        same_as_old(results["new"]["file"], results["old"]["file"])
    new, ref = results["new"], results["duckdb"]["seconds"]
    rows = [{"run": "DuckDB SQL reference (same rows and columns)", "wall s": f"{ref:.1f}", "x DuckDB": "1.00",
             "peak RSS MB": results["duckdb"]["peak_rss_mb"]}]
    if not args.skip_old:
        old = results["old"]["seconds"]
        rows.append({"run": "`node_affinity_features` (groupby on string keys)", "wall s": f"{old:.1f}",
                     "x DuckDB": f"{old / ref:.2f}", "peak RSS MB": results["old"]["peak_rss_mb"]})
    rows += [
        {"run": "**`purchase_lines_arrow` + `node_features_from_lines`**", "wall s": f"**{new['seconds']:.1f}**",
         "x DuckDB": f"**{new['seconds'] / ref:.2f}**", "peak RSS MB": new["peak_rss_mb"]},
        {"run": "stage: `purchase_lines_arrow`", "wall s": f"{new['purchase_lines_s']:.1f}",
         "x DuckDB": f"{new['purchase_lines_s'] / ref:.2f}", "peak RSS MB": ""},
        {"run": "stage: `node_features_from_lines` (the kernel)", "wall s": f"{new['kernel_s']:.1f}",
         "x DuckDB": f"{new['kernel_s'] / ref:.2f}", "peak RSS MB": ""},
        {"run": "(for comparison: `purchase_lines`, object-array round trip)",
         "wall s": f"{new['object_purchase_lines_s']:.1f}", "x DuckDB": f"{new['object_purchase_lines_s'] / ref:.2f}",
         "peak RSS MB": ""},
    ]
    speedup = "" if args.skip_old else f" New / old: **{new['seconds'] / results['old']['seconds']:.3f}**."
    body = f"""
Data: {data}: {new['rows']:,} transaction lines ({new['lines']:,} purchase lines before as_of {AS_OF}),
{new['customers']:,} customers, {new['out_rows']:,} (customer, level, node) rows. Each contender in its own fresh
process (tables loaded first, not timed; peak RSS includes them; the new path's
peak includes the comparison `purchase_lines` run after it). The kernel's frame equals
`node_affinity_features`' (`pandas.testing.assert_frame_equal`, exact dtypes and order, spend shares to 1e-12
relative){' (old not run: --skip-old)' if args.skip_old else ''}; against DuckDB, the same keys and a max abs
difference of {worst:.2g}. Load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.

{markdown_table(rows)}

Target: the kernel path for 100k households under {TARGET_S:.0f} s.{speedup}
"""
    print(body)
    (CACHE / "node_kernels_out" / "section.md").write_text(body)
    if not args.no_write:
        update_section(SECTION, TITLE, body)


if __name__ == "__main__":
    main()
