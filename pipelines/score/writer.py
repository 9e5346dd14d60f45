"""Writing a campaign list: the list, its exclusions and its summary, all or nothing.

Outputs are written atomically: the list, ``<stem>.exclusions<suffix>`` (every customer without an
offer, with the reason) and ``<stem>.summary.json``; a failed run leaves the previous outputs as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.campaign import EXCLUSION_COLUMNS, LIST_COLUMNS, ROW_COLUMNS, STATUS_OK, CampaignSummary, withdraw_offers
from models.policy import STATUS_BUDGET
from models.policy.budget import BudgetAllocation
from pipelines.score.request import ScoreError


class ListWriteError(RuntimeError):
    """A campaign list could not be written consistently (its two passes disagree): a bug, not bad input."""


_ARROW_TYPES: dict[str, pa.DataType] = {
    "customer_id": pa.string(),
    "status": pa.string(),
    "reason": pa.string(),
    "holdout": pa.bool_(),
    "rank": pa.int64(),
    "offer_id": pa.string(),
    "offer_name": pa.string(),
    "reward_category": pa.string(),
    "offer_type": pa.string(),
    "p_redeem": pa.float64(),
    "expected_value": pa.float64(),
    "score": pa.float64(),
    "churn_risk": pa.float64(),
    "cold_start": pa.bool_(),
    "reasons": pa.list_(pa.string()),
    "campaign": pa.string(),
    "as_of": pa.timestamp("us"),
    "offer_model_version": pa.string(),
    "churn_model_version": pa.string(),
}
ROW_SCHEMA = pa.schema([(c, _ARROW_TYPES[c]) for c in ROW_COLUMNS])
LIST_SCHEMA = pa.schema([(c, _ARROW_TYPES[c]) for c in LIST_COLUMNS])
EXCLUSION_SCHEMA = pa.schema([(c, _ARROW_TYPES[c]) for c in EXCLUSION_COLUMNS])
CSV_LIST_SEPARATOR = " | "


def output_paths(out: Path) -> dict[str, Path]:
    """Where the list, the exclusions and the summary of ``out`` go."""
    out = Path(out)
    return {
        "list": out,
        "exclusions": out.with_name(f"{out.stem}.exclusions{out.suffix}"),
        "summary": out.with_name(f"{out.stem}.summary.json"),
    }


class _TableSink:
    """Appends Arrow tables to one Parquet or CSV file with a fixed schema."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str):
        self.path, self.schema, self.fmt = path, schema, fmt
        self.writer = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        if self.fmt == ".parquet":
            import pyarrow.parquet as pq

            if self.writer is None:
                self.writer = pq.ParquetWriter(self.path, self.schema)
            if table.num_rows:
                self.writer.write_table(table, row_group_size=table.num_rows)
        else:
            out = table.to_pandas()
            if "reasons" in out.columns:
                out["reasons"] = [CSV_LIST_SEPARATOR.join(map(str, r)) if r is not None else "" for r in out["reasons"]]
            out.to_csv(self.path, mode="w" if self.writer is None else "a", header=self.writer is None, index=False)
            self.writer = True
        self.rows += table.num_rows

    def close(self) -> None:
        if self.fmt == ".parquet":
            if self.writer is None:
                import pyarrow.parquet as pq

                self.writer = pq.ParquetWriter(self.path, self.schema)
            self.writer.close()
        elif self.writer is None:
            pd.DataFrame(columns=self.schema.names).to_csv(self.path, index=False)


def row_table(rows: pd.DataFrame | pa.Table) -> pa.Table:
    """List rows (``ROW_COLUMNS``) as an Arrow table with ``ROW_SCHEMA``."""
    if isinstance(rows, pa.Table):
        return rows.select(ROW_SCHEMA.names).cast(ROW_SCHEMA)
    return pa.Table.from_pandas(rows, schema=ROW_SCHEMA, preserve_index=False)


def row_scalars(table: pa.Table) -> pd.DataFrame:
    """Every column of a row table but the reasons, as pandas (the reasons stay in Arrow: converting
    millions of small lists to Python and back would cost more than everything else in the pass)."""
    return table.drop_columns(["reasons"]).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _rows_after_withdrawal(scalars: pd.DataFrame, reasons: pa.ChunkedArray) -> pa.Table:
    """A row table from ``withdraw_offers`` output (its ``_row`` column points into ``reasons``)."""
    budget = scalars["status"].to_numpy(dtype=object) == STATUS_BUDGET
    picks = pa.array(scalars["_row"].to_numpy(dtype=np.int64), mask=budget)
    columns = {c: pa.array(scalars[c], type=ROW_SCHEMA.field(c).type, from_pandas=True)
               for c in ROW_SCHEMA.names if c != "reasons"}
    columns["reasons"] = pc.fill_null(reasons.take(picks), pa.scalar([], type=ROW_SCHEMA.field("reasons").type))
    return pa.Table.from_pydict({c: columns[c] for c in ROW_SCHEMA.names}, schema=ROW_SCHEMA)



def _note(allocation: BudgetAllocation, table: pa.Table) -> None:
    """Pass one: the rows of one table (in list order) into the budget allocation."""
    status = table.column("status").to_numpy(zero_copy_only=False)
    allocation.note(
        table.column("offer_id").to_numpy(zero_copy_only=False), status == STATUS_OK,
        table.column("score").to_numpy(zero_copy_only=False), table.column("p_redeem").to_numpy(zero_copy_only=False),
    )


def write_campaign(
    chunks: Iterable[pd.DataFrame | pa.Table], out: Path, summary: CampaignSummary, meta: dict,
) -> dict:
    """Write the list, exclusions and summary of ``chunks`` atomically; return the summary dict.

    Two passes, both streaming: the rows go to a scratch Parquet file while the rows of offers with a
    limited redemption budget are noted; then, per offer, the lowest-priority offers beyond what its
    remaining budget covers (in expected redemptions) are withdrawn (``models.policy.budget``)
    as the rows are read back and written out. Customers who lose every offer are excluded with
    reason ``budget_exhausted``. Everything goes to temporary files next to the targets; they replace
    the targets only when all rows were written and the counts add up (the list is renamed last).
    """
    import pyarrow.parquet as pq

    from pipelines.io import atomic_path, remove_stale

    paths = output_paths(out)
    for path in paths.values():  # what a killed run left behind (its pid is dead)
        remove_stale(path.parent, path.name)
    fmt = paths["list"].suffix
    if fmt not in (".parquet", ".csv"):
        raise ScoreError(f"--out '{out}': expected a .parquet or .csv file, got '{fmt or 'no suffix'}'")
    with ExitStack() as stack:
        # Entered first, renamed last: a list on disk always has its exclusions and summary.
        tmp = {name: stack.enter_context(atomic_path(paths[name])) for name in ("list", "exclusions", "summary")}
        scratch = stack.enter_context(scratch_dir(paths["list"])) / "rows.parquet"  # removed however we leave
        started = time.perf_counter()
        plan = BudgetAllocation(summary.budget_remaining)
        customers = 0
        staged = pq.ParquetWriter(scratch, ROW_SCHEMA)
        for rows in chunks:  # whole customers per chunk: one row group each, read back as it was
            table = row_table(rows)
            if table.num_rows:
                _note(plan, table)
                customers += pc.count_distinct(table.column("customer_id")).as_py()
                staged.write_table(table, row_group_size=table.num_rows)
        staged.close()
        scored = time.perf_counter()
        withdrawn = plan.withdrawn()

        list_sink = _TableSink(tmp["list"], LIST_SCHEMA, fmt)
        excl_sink = _TableSink(tmp["exclusions"], EXCLUSION_SCHEMA, fmt)
        staged = pq.ParquetFile(scratch)
        position = 0
        for group in range(staged.num_row_groups):
            table = staged.read_row_group(group)
            scalars = row_scalars(table)
            gone = withdrawn[position: position + table.num_rows]
            position += table.num_rows
            if gone.any():
                summary.withdrawn_per_offer.update(scalars.loc[gone, "offer_id"].value_counts().to_dict())
                scalars = withdraw_offers(scalars.assign(_row=np.arange(len(scalars))), gone)
                table = _rows_after_withdrawal(scalars, table.column("reasons"))
            summary.add(scalars)
            offered = scalars["status"].to_numpy(dtype=object) == STATUS_OK
            listed = offered | scalars["holdout"].to_numpy(dtype=bool)
            list_sink.write(table.filter(pa.array(listed)))
            excl_sink.write(table.filter(pa.array(~offered)).rename_columns(
                ["reason" if c == "status" else c for c in table.column_names]))
        list_sink.close()
        excl_sink.close()
        if position != plan.rows or summary.customers_considered != customers:
            raise ListWriteError(
                f"the list's second pass read {position} rows of {summary.customers_considered} customers, but the "
                f"first wrote {plan.rows} rows of {customers} customers"
            )
        result = {**meta, **summary.as_dict()}
        result["pass_seconds"] = {"score": round(scored - started, 2),
                                  "budget_and_write": round(time.perf_counter() - scored, 2)}
        result["rows_in_list"] = list_sink.rows
        result["outputs"] = {name: str(p) for name, p in paths.items()}
        if excl_sink.rows != result["customers_excluded"]:
            raise ListWriteError(
                f"exclusions file has {excl_sink.rows} rows but the summary counts {result['customers_excluded']}"
            )
        tmp["summary"].write_text(json.dumps(result, indent=2, default=str) + "\n")
        for name in ("list", "exclusions", "summary"):  # temp files are private (0600); outputs are ordinary files
            tmp[name].chmod(0o644)
    return result


class scratch_dir:
    """A temporary folder next to the output (Spark's Parquet parts, the rows between the two passes); removed afterwards."""

    def __init__(self, out: Path):
        self.out = Path(out)

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.scratch-{os.getpid()}-", dir=self.out.parent))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)



def whole_customers(batches: Iterable[pd.DataFrame | pa.Table]) -> Iterator[pd.DataFrame | pa.Table]:
    """Re-cut row batches sorted by customer (pandas frames or Arrow tables) so that no customer's rows
    are split across two chunks."""
    carry = None
    for batch in batches:
        arrow = isinstance(batch, pa.Table)
        if carry is not None:
            batch = pa.concat_tables([carry, batch]) if arrow else pd.concat([carry, batch], ignore_index=True)
        if not len(batch):
            continue
        ids = batch.column("customer_id").to_numpy(zero_copy_only=False) if arrow else batch["customer_id"].to_numpy()
        tail = ids == ids[-1]
        if arrow:
            carry, head = batch.filter(pa.array(tail)), batch.filter(pa.array(~tail))
        else:
            carry, head = batch.loc[tail].reset_index(drop=True), batch.loc[~tail].reset_index(drop=True)
        if len(head):
            yield head
    if carry is not None and len(carry):
        yield carry
