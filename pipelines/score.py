"""`rewards score`: a campaign list for every customer, with a holdout group and a summary.

The same chain the offer API runs (profiles -> churn and offer models -> ``models.policy.recommend``)
applied to customers in chunks, so memory stays bounded whatever the customer count. ``ChunkScorer``
is that chain for one chunk; the in-process engine (``score_customers``) and the Spark engine
(``pipelines.spark_engine`` via ``mapInPandas``) both call it. Outputs are written atomically:
the list, ``<stem>.exclusions<suffix>`` (every customer without an offer, with the reason) and
``<stem>.summary.json``; a failed run leaves the previous outputs as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import typer

from data_contracts.schema import OFFER_CHANNELS
from models.campaign import (
    EXCLUSION_COLUMNS,
    LIST_COLUMNS,
    ROW_COLUMNS,
    STATUS_BUDGET,
    STATUS_OK,
    CampaignSummary,
    budget_keep,
    campaign_rows,
    remaining_budget,
    sort_rows,
    withdraw_offers,
)
from models.policy import Context, ContactHistory, OfferCatalog, PolicyConfig, check_scorer, customer_book, recommend

DEFAULT_CHUNK_SIZE = 50_000
# Customer attributes the policy needs next to the profile (consent and tier are not model features).
ATTRIBUTE_COLUMNS: tuple[str, ...] = ("tier", "marketing_consent")
CUSTOMER_TABLES: tuple[str, ...] = ("customers", "transactions", "offer_events", "feedback")

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


class ScoreError(ValueError):
    """The scoring run cannot start or finish: the message names the input and what to do."""


class Engine(str, Enum):
    local = "local"
    spark = "spark"


# --------------------------------------------------------------------------------------------
# One chunk: profiles in, list rows out (the unit both engines run)
# --------------------------------------------------------------------------------------------


@dataclass
class ChunkScorer:
    """Score one chunk of customers: churn risk, habit tags, then the policy, then list rows.

    Input: profile rows (customer_id + features) with the ``ATTRIBUTE_COLUMNS`` of the customers
    table attached. Output: ``models.campaign.ROW_COLUMNS`` rows sorted by customer_id and rank.
    Picklable, so Spark ships it to its workers as it is.
    """

    catalog: OfferCatalog
    history: ContactHistory
    offer_scorer: object  # a models.policy scorer (MatrixScorer with compiled trees over the champion offer model)
    churn_model: object
    model_versions: dict[str, str]
    context: Context
    config: PolicyConfig
    campaign: str
    as_of: pd.Timestamp
    k: int = 1
    offer_ids: Sequence[str] | None = None
    feature_names: list[str] | None = None  # from the profiles' manifest; default: the catalogue's
    offer_model: object = None  # the estimator behind offer_scorer: its own path is the reference
    checked: bool = False  # offer_scorer verified against offer_model on real rows (once per process)

    def __call__(self, chunk: pd.DataFrame) -> pd.DataFrame:
        from features import habit_tags
        from features.catalogue import feature_names

        if not len(chunk):
            return empty_rows()
        chunk = chunk.reset_index(drop=True)
        attrs = chunk[["customer_id", *ATTRIBUTE_COLUMNS]]
        names = self.feature_names or [c for c in feature_names() if c in chunk.columns]
        # What the offer API does with its snapshot (serving.loading.load_state), for this chunk.
        features = chunk[["customer_id", *names]]
        churn = np.asarray(self.churn_model.predict_proba(features.drop(columns=["customer_id"])))[:, 1]
        tags = chunk["habit_tags"].tolist() if "habit_tags" in chunk.columns else habit_tags(features).tolist()
        if not self.checked and self.offer_model is not None:
            # The fast scorer must give the model's own numbers on this data before it scores anything.
            check_scorer(self.offer_scorer, self.offer_model, features, self.catalog)
            self.checked = True
        book = customer_book(features, attrs, churn_risk=churn, habit_tags=tags)
        batch = book.batch(features["customer_id"].astype(str).tolist(), with_profiles=True)
        decisions = recommend(
            batch, self.catalog, self.history, self.context, self.offer_scorer, self.config, self.k,
            offer_ids=self.offer_ids,
        )
        rows = campaign_rows(decisions, self.campaign, self.as_of, self.model_versions)
        return sort_rows(rows)


def empty_rows() -> pd.DataFrame:
    return ROW_SCHEMA.empty_table().to_pandas()


# --------------------------------------------------------------------------------------------
# The in-process engine
# --------------------------------------------------------------------------------------------


def _chunk_positions(keys: pd.Series, ids: pd.Index, chunk_size: int) -> list[np.ndarray]:
    """Row positions of ``keys`` per chunk of ``ids`` (sorted), each chunk ``chunk_size`` ids wide."""
    pos = ids.get_indexer(keys.astype(str))
    chunk = np.where(pos >= 0, pos // chunk_size, -1)
    n_chunks = (len(ids) + chunk_size - 1) // chunk_size
    order = np.argsort(chunk, kind="stable")
    bounds = np.searchsorted(chunk[order], np.arange(n_chunks + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n_chunks)]


@dataclass
class TableChunk:
    """The customer-keyed tables of one chunk of customers (offers whole): profiles are built where
    the chunk is scored, so with worker processes the profile builds run in parallel too."""

    tables: dict[str, pd.DataFrame]
    as_of: pd.Timestamp

    def profiles(self) -> pd.DataFrame:
        from features import build_profiles

        return build_profiles(self.tables, self.as_of)

    def scoring_input(self) -> pd.DataFrame:
        return with_attributes(self.profiles(), self.tables["customers"])


def table_chunks(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, chunk_size: int) -> Iterator[TableChunk]:
    """The tables cut into chunks of ``chunk_size`` customers (sorted ids)."""
    ids = pd.Index(np.sort(tables["customers"]["customer_id"].astype(str).to_numpy(dtype=object)))
    positions = {name: _chunk_positions(tables[name]["customer_id"], ids, chunk_size) for name in CUSTOMER_TABLES}
    for i in range((len(ids) + chunk_size - 1) // chunk_size):
        part = dict(tables)
        for name in CUSTOMER_TABLES:
            part[name] = tables[name].iloc[positions[name][i]]
        yield TableChunk(part, as_of)


def profile_chunks_from_file(path: Path, chunk_size: int) -> Iterator[pa.Table]:
    """Profiles read from a Parquet file ``chunk_size`` rows at a time, as Arrow tables (converted to
    pandas where they are scored, so worker processes share that work too)."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
        yield pa.Table.from_batches([batch])


def with_attributes(profiles: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Profiles with the customers table's tier and consent attached (NA for unknown customers)."""
    attrs = customers if customers.index.name == "customer_id" else customers.set_index("customer_id")
    attrs = attrs[list(ATTRIBUTE_COLUMNS)].reindex(profiles["customer_id"].astype(str))
    out = profiles.drop(columns=[c for c in ATTRIBUTE_COLUMNS if c in profiles.columns])
    return out.assign(**{c: attrs[c].to_numpy() for c in ATTRIBUTE_COLUMNS})


def default_workers() -> int:
    """One scoring process per usable core."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def score_customers(
    chunks: Iterable[pd.DataFrame | pa.Table | TableChunk],
    scorer: ChunkScorer,
    customers: pd.DataFrame | None = None,
    on_chunk: Callable[[int], None] | None = None,
    workers: int = 1,
) -> Iterator[pd.DataFrame | pa.Table]:
    """The in-process engine: list rows, one chunk at a time and in chunk order.

    ``chunks``: ready profiles (pandas or Arrow; ``customers`` gives their tier and consent) or
    TableChunks. With ``workers`` > 1 the chunks are scored by that many worker processes (each
    scoring one chunk at a time, at most ``workers + 1`` chunks in flight, so memory stays bounded)
    while this process reads the next chunks and writes the rows that come back (as Arrow tables).
    """
    attrs = _attributes(customers)
    if workers <= 1:
        for chunk in chunks:
            rows, n_customers = _score_chunk(scorer, chunk, attrs)
            if on_chunk is not None:
                on_chunk(n_customers)
            yield rows
        return

    import multiprocessing
    import pickle
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    from pipelines.config import environment

    # spawn, not fork: the parent may already run OpenMP threads (LightGBM), which fork does not copy.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(pickle.dumps((scorer, attrs)),))
    pending: deque = deque()
    try:
        with environment(**WORKER_MALLOC_ENV):  # workers start on the first submits and inherit it
            for chunk in chunks:
                pending.append(pool.submit(_score_in_worker, chunk))
                if len(pending) > workers:
                    yield _collect(pending.popleft(), on_chunk)
        while pending:
            yield _collect(pending.popleft(), on_chunk)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# glibc malloc in the workers: keep the memory of one chunk's big arrays (the offer grid alone is
# ~700 MB for 50,000 customers x 20 offers) for the next chunk instead of unmapping it and faulting
# it back in page by page. Measured on 1M customers, 2 workers: system time 55 s -> 24 s, wall
# 112 s -> 93 s (without the mmap threshold: 48 s system). Other C libraries ignore these variables.
WORKER_MALLOC_ENV: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(2**32),
    "MALLOC_TRIM_THRESHOLD_": str(2**34),
    "MALLOC_TOP_PAD_": str(2**29),
}


def _attributes(customers: pd.DataFrame | None) -> pd.DataFrame | None:
    """The customers table's ATTRIBUTE_COLUMNS by customer_id (all a worker needs of it)."""
    if customers is None:
        return None
    attrs = customers if customers.index.name == "customer_id" else customers.set_index("customer_id")
    return attrs[list(ATTRIBUTE_COLUMNS)]


def _score_chunk(scorer: ChunkScorer, chunk, attrs: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    if isinstance(chunk, TableChunk):
        frame = chunk.scoring_input()
    else:
        frame = with_attributes(chunk.to_pandas() if isinstance(chunk, pa.Table) else chunk, attrs)
    return scorer(frame), len(frame)


def _collect(future, on_chunk) -> pa.Table:
    rows, n_customers = future.result()
    if on_chunk is not None:
        on_chunk(n_customers)
    return rows


_WORKER: tuple[ChunkScorer, pd.DataFrame | None] | None = None


def _init_worker(payload: bytes) -> None:
    """A scoring worker: one thread per process (the processes are the parallelism)."""
    import gc
    import pickle

    global _WORKER
    scorer, attrs = pickle.loads(payload)
    _WORKER = (single_threaded(scorer), attrs)
    gc.freeze()  # the models and indexes live for the whole run: keep them out of every collection


def single_threaded(scorer: ChunkScorer) -> ChunkScorer:
    """``scorer`` set to one thread per call, for processes that are themselves the parallelism."""
    if hasattr(scorer.offer_scorer, "max_threads"):
        scorer.offer_scorer.max_threads = 1
    predict = getattr(scorer.offer_scorer, "predict", None)
    if hasattr(predict, "threads"):
        predict.threads = 1
    return scorer


def _score_in_worker(chunk) -> tuple[pa.Table, int]:
    scorer, attrs = _WORKER
    rows, n_customers = _score_chunk(scorer, chunk, attrs)
    return row_table(rows), n_customers  # Arrow: cheap to send back and written as it is


# --------------------------------------------------------------------------------------------
# Writing: list, exclusions and summary, all or nothing
# --------------------------------------------------------------------------------------------


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


class _BudgetPlan:
    """Pass one of a list: notes the rows of offers with a limited budget, then decides which to withdraw."""

    def __init__(self, budget_remaining: dict[str, float]):
        limited = {str(o): float(b) for o, b in budget_remaining.items() if np.isfinite(b)}
        self.offers = pd.Index(sorted(limited))
        self.remaining = np.asarray([limited[o] for o in self.offers], dtype=float)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.rows = 0
        self.customers = 0

    def note(self, table: pa.Table) -> None:
        if len(self.offers):
            offer = table.column("offer_id").to_numpy(zero_copy_only=False)
            code = self.offers.get_indexer(pd.Index(offer, dtype=object).fillna(""))
            status = table.column("status").to_numpy(zero_copy_only=False)
            mine = np.flatnonzero((code >= 0) & (status == STATUS_OK))
            if len(mine):
                score = table.column("score").to_numpy(zero_copy_only=False)
                p = table.column("p_redeem").to_numpy(zero_copy_only=False)
                self.parts.append((self.rows + mine, code[mine], score[mine], p[mine]))
        self.rows += table.num_rows
        self.customers += pc.count_distinct(table.column("customer_id")).as_py()

    def withdrawn(self) -> np.ndarray:
        """A flag per row of the whole list (in order): True where the offer is withdrawn for budget."""
        out = np.zeros(self.rows, dtype=bool)
        if self.parts:
            position, code, score, p = (np.concatenate(x) for x in zip(*self.parts, strict=True))
            out[position[~budget_keep(code, score, p, self.remaining)]] = True
        return out


def write_campaign(
    chunks: Iterable[pd.DataFrame | pa.Table], out: Path, summary: CampaignSummary, meta: dict,
) -> dict:
    """Write the list, exclusions and summary of ``chunks`` atomically; return the summary dict.

    Two passes, both streaming: the rows go to a scratch Parquet file while the rows of offers with a
    limited redemption budget are noted; then, per offer, the lowest-priority offers beyond what its
    remaining budget covers (in expected redemptions) are withdrawn (``models.campaign.budget_keep``)
    as the rows are read back and written out. Customers who lose every offer are excluded with
    reason ``budget_exhausted``. Everything goes to temporary files next to the targets; they replace
    the targets only when all rows were written and the counts add up (the list is renamed last).
    """
    import pyarrow.parquet as pq

    from pipelines.io import atomic_path

    paths = output_paths(out)
    fmt = paths["list"].suffix
    if fmt not in (".parquet", ".csv"):
        raise ScoreError(f"--out '{out}': expected a .parquet or .csv file, got '{fmt or 'no suffix'}'")
    with ExitStack() as stack:
        # Entered first, renamed last: a list on disk always has its exclusions and summary.
        tmp = {name: stack.enter_context(atomic_path(paths[name])) for name in ("list", "exclusions", "summary")}
        scratch = stack.enter_context(_scratch_dir(paths["list"])) / "rows.parquet"  # removed however we leave
        started = time.perf_counter()
        plan = _BudgetPlan(summary.budget_remaining)
        staged = pq.ParquetWriter(scratch, ROW_SCHEMA)
        for rows in chunks:  # whole customers per chunk: one row group each, read back as it was
            table = row_table(rows)
            if table.num_rows:
                plan.note(table)
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
        if position != plan.rows or summary.customers_considered != plan.customers:
            raise ScoreError(
                f"the list's second pass read {position} rows of {summary.customers_considered} customers, but the "
                f"first wrote {plan.rows} rows of {plan.customers} customers"
            )
        result = {**meta, **summary.as_dict()}
        result["pass_seconds"] = {"score": round(scored - started, 2),
                                  "budget_and_write": round(time.perf_counter() - scored, 2)}
        result["rows_in_list"] = list_sink.rows
        result["outputs"] = {name: str(p) for name, p in paths.items()}
        if excl_sink.rows != result["customers_excluded"]:
            raise ScoreError(
                f"exclusions file has {excl_sink.rows} rows but the summary counts {result['customers_excluded']}"
            )
        tmp["summary"].write_text(json.dumps(result, indent=2, default=str) + "\n")
        for name in ("list", "exclusions", "summary"):  # temp files are private (0600); outputs are ordinary files
            tmp[name].chmod(0o644)
    return result


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


@dataclass
class ScoreRequest:
    """What one `rewards score` run was asked for."""

    as_of: pd.Timestamp
    campaign: str
    out: Path
    k: int = 1
    holdout: float = 0.05
    offer_ids: list[str] | None = None
    channel: str = "email"
    send_at: pd.Timestamp | None = None
    engine: Engine = Engine.local
    spark_master: str = "local[2]"
    data: Path | None = None
    profiles: Path | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    workers: int = 0  # scoring processes for the local engine; 0: one per core
    tracking_uri: str | None = None
    progress: bool = True
    policy: dict = field(default_factory=dict)

    def __post_init__(self):
        self.as_of = pd.Timestamp(self.as_of)
        self.send_at = pd.Timestamp(self.send_at) if self.send_at is not None else default_send_at(self.as_of)
        self.out = Path(self.out)
        self.engine = Engine(self.engine)
        problems = []
        if not self.campaign.strip():
            problems.append("--campaign must not be empty")
        if not 0.0 <= self.holdout < 1.0:
            problems.append(f"--holdout must be in [0, 1), got {self.holdout}")
        if self.chunk_size < 1:
            problems.append(f"--chunk-size must be >= 1, got {self.chunk_size}")
        if self.workers < 0:
            problems.append(f"--workers must be >= 0 (0: one per core), got {self.workers}")
        if self.channel not in OFFER_CHANNELS:
            problems.append(f"--channel must be one of {list(OFFER_CHANNELS)}, got {self.channel!r}")
        if self.send_at < self.as_of:
            problems.append(f"--send-at ({self.send_at}) must not be before --as-of ({self.as_of})")
        if self.out.suffix not in (".parquet", ".csv"):
            problems.append(f"--out '{self.out}' must end in .parquet or .csv")
        if self.profiles is not None and Path(self.profiles).suffix != ".parquet":
            problems.append(f"--profiles '{self.profiles}' must be a .parquet file written by `rewards features`")
        if problems:
            raise ScoreError("; ".join(problems))


def default_send_at(as_of: pd.Timestamp) -> pd.Timestamp:
    """Campaigns go out at 09:00 on the as_of day unless told otherwise."""
    return pd.Timestamp(as_of).normalize() + pd.Timedelta(hours=9)


def holdout_salt(campaign: str) -> str:
    """The control-group salt of a campaign: the same campaign name always holds out the same customers."""
    return f"campaign:{campaign}"


def build_scorer(
    request: ScoreRequest, tables: dict[str, pd.DataFrame], models: dict, feature_names: list[str] | None = None
) -> ChunkScorer:
    """The ChunkScorer for a request: offers and contact history indexed once, policy configured."""
    from models.policy import FrameScorer, MatrixScorer, index_history, prepare_offers
    from pipelines.compiled import compiled_predictor

    config = PolicyConfig(**{**request.policy, "holdout_fraction": request.holdout, "holdout_salt": holdout_salt(request.campaign)})
    (offer_model, offer_version), (churn_model, churn_version) = models["offer"], models["churn"]
    predict = compiled_predictor(offer_model)
    if predict is not None:
        # Our LightGBM estimator: offer rows as numbers by broadcasting, trees compiled to native code.
        offer_scorer = MatrixScorer(offer_model, predict=predict)
    else:
        offer_scorer = FrameScorer(offer_model)
    return ChunkScorer(
        catalog=prepare_offers(tables["offers"]),
        history=index_history(tables["offer_events"]),
        offer_scorer=offer_scorer,
        offer_model=offer_model if isinstance(offer_scorer, MatrixScorer) else None,
        churn_model=churn_model,
        model_versions={"offer": str(offer_version), "churn": str(churn_version)},
        context=Context(timestamp=request.send_at, channel=request.channel),
        config=config,
        campaign=request.campaign,
        as_of=request.as_of,
        k=request.k,
        offer_ids=request.offer_ids,
        feature_names=feature_names,
    )


def profile_feature_names(path: Path, as_of: pd.Timestamp) -> list[str]:
    """The features of a profiles file, from its manifest; it must have been built at ``as_of``."""
    import pyarrow.parquet as pq

    from features.manifest import check_manifest, manifest_feature_names
    from pipelines.build_features import read_manifest

    if not Path(path).exists():
        raise ScoreError(f"--profiles '{path}' does not exist; build it with `rewards features` or leave it out")
    manifest = read_manifest(Path(path))
    built_at = pd.Timestamp(manifest.get("as_of"))
    if built_at != pd.Timestamp(as_of):
        raise ScoreError(
            f"--profiles '{path}' were built as of {built_at}, but --as-of is {pd.Timestamp(as_of)}; "
            "rebuild them with `rewards features --as-of` or drop --profiles to build them here"
        )
    check_manifest(pq.read_schema(path).names, manifest)
    return manifest_feature_names(manifest)


def read_driver_tables(data_dir: Path, needs_history_tables: bool) -> dict[str, pd.DataFrame]:
    """The validated tables this process needs: all of them to build profiles here, else only
    customers, offers and offer_events (Spark workers, or ready profiles, cover the rest)."""
    from pipelines.io import read_validated

    if needs_history_tables:
        return read_validated(data_dir)
    tables = {}
    for name in ("customers", "offers", "offer_events"):
        path = Path(data_dir) / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"validated table '{name}' not found at '{path}'; run `rewards validate` first")
        tables[name] = pd.read_parquet(path)
    return tables


def load_models(tracking_uri: str | None) -> dict:
    """The champion offer-response and churn models with their registry versions."""
    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME
    from pipelines.registry import load_champion

    return {"offer": load_champion(OFFER_MODEL_NAME, tracking_uri), "churn": load_champion(CHURN_MODEL_NAME, tracking_uri)}


def run_score(request: ScoreRequest, models: dict | None = None, tables: dict | None = None, spark=None) -> dict:
    """Score every customer for ``request`` and write the outputs; the summary dict is returned.

    ``models`` ({"offer": (estimator, version), "churn": ...}) and ``tables`` default to the
    champion models and the validated tables; ``spark`` reuses an existing session (tests).
    """
    from pipelines import config as paths

    started = time.perf_counter()
    data_dir = Path(request.data) if request.data is not None else paths.validated_dir()
    if tables is None:
        tables = read_driver_tables(data_dir, needs_history_tables=request.engine is Engine.local and request.profiles is None)
    names = profile_feature_names(request.profiles, request.as_of) if request.profiles is not None else None
    models = models if models is not None else load_models(request.tracking_uri)
    scorer = build_scorer(request, tables, models, names)
    if request.offer_ids is not None:
        unknown = [o for o in request.offer_ids if o not in scorer.catalog.index]
        if unknown:
            raise ScoreError(f"--offers {unknown} are not in the offer catalogue; known offers: {list(scorer.catalog.index)}")
    summary = CampaignSummary(
        cost_per_redemption=dict(zip(scorer.catalog.index, scorer.catalog.cost.tolist(), strict=True)),
        budget_remaining=remaining_budget(scorer.catalog, scorer.history, request.send_at).to_dict(),
    )
    meta = {
        "campaign": request.campaign,
        "as_of": str(request.as_of.date()) if request.as_of == request.as_of.normalize() else str(request.as_of),
        "send_at": str(request.send_at),
        "channel": request.channel,
        "k": request.k,
        "holdout_fraction": request.holdout,
        "offers_requested": request.offer_ids,
        "engine": request.engine.value,
        "model_versions": scorer.model_versions,
    }
    if request.engine is Engine.local:
        customers = tables["customers"].set_index("customer_id")
        if request.profiles is not None:
            chunks = profile_chunks_from_file(request.profiles, request.chunk_size)
            total = _count_rows(request.profiles)
        else:
            chunks = table_chunks(tables, request.as_of, request.chunk_size)
            total = int((tables["customers"]["signup_date"] < request.as_of).sum())
        n_chunks = -(-total // request.chunk_size)
        workers = min(request.workers or default_workers(), max(n_chunks, 1))
        meta["workers"] = workers
        with _progress(total, request.progress and total > request.chunk_size) as advance:
            rows = score_customers(chunks, scorer, customers, advance, workers=workers)
            result = write_campaign(rows, request.out, summary, meta)
    else:
        meta["spark_master"] = request.spark_master
        with _spark(request, spark) as session, _scratch_dir(request.out) as scratch:
            # Filled while the rows stream in, so the summary file gets the stage times too.
            meta["spark_stage_seconds"] = timings = {}
            chunks = spark_chunks(session, request, scorer, tables, data_dir, scratch, timings)
            result = write_campaign(chunks, request.out, summary, meta)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def _count_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


class _progress:
    """A rich progress bar over customers (stderr), or a no-op when the run is short or not wanted."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("scoring customers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=Console(stderr=True),
        )
        self.bar.start()
        task = self.bar.add_task("score", total=self.total or None)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


# --------------------------------------------------------------------------------------------
# The Spark engine: the same profile and chunk code, run per customer bucket and per batch
# --------------------------------------------------------------------------------------------


@dataclass
class BucketProfiler:
    """``features.build_profiles`` for the customers of one bucket (a group of a packed frame)."""

    offers: pd.DataFrame
    as_of: pd.Timestamp

    def __call__(self, group: pd.DataFrame) -> pd.DataFrame:
        from features import build_profiles
        from pipelines.spark_engine import unpack_tables

        tables = unpack_tables(group, list(CUSTOMER_TABLES))
        tables["offers"] = self.offers
        return build_profiles(tables, self.as_of)


def _spark(request: ScoreRequest, spark):
    from contextlib import nullcontext

    from pipelines.spark_engine import spark_session

    if spark is not None:
        return nullcontext(spark)
    return spark_session(request.spark_master, app_name=f"rewards-score-{request.campaign}")


class _scratch_dir:
    """A temporary folder next to the output (Spark's Parquet parts, the rows between the two passes); removed afterwards."""

    def __init__(self, out: Path):
        self.out = Path(out)

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.scratch-", dir=self.out.parent))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def spark_chunks(
    spark,
    request: ScoreRequest,
    scorer: ChunkScorer,
    tables: dict[str, pd.DataFrame],
    data_dir: Path,
    scratch: Path,
    timings: dict | None = None,
) -> Iterator[pd.DataFrame]:
    """Profiles (groupBy bucket + applyInPandas) and scoring (mapInPandas) on Spark, rows read back in order.

    Spark writes the profiles and the sorted rows as Parquet under ``scratch``; the rows are then
    streamed back one customer-complete chunk at a time for the atomic writer and the summary.
    """
    import pyarrow.parquet as pq

    timings = timings if timings is not None else {}
    from pipelines.spark_engine import (
        BUCKET_COLUMN, apply_in_pandas, arrow_schema_of, map_in_pandas, pack_tables, pandas_dtypes_of,
        part_files, read_tables, with_bucket,
    )

    started = time.perf_counter()
    frames = read_tables(spark, data_dir, list(CUSTOMER_TABLES))
    n_customers = len(tables["customers"])
    parallelism = max(2, spark.sparkContext.defaultParallelism)
    n_buckets = max(parallelism, -(-n_customers // request.chunk_size))
    if request.profiles is not None:
        profiles = spark.read.parquet(str(request.profiles))
        profile_dtypes = pandas_dtypes_of(pq.read_schema(request.profiles).empty_table().to_pandas())
    else:
        template = profile_template()
        packed = with_bucket(pack_tables(frames), "customer_id", n_buckets)
        built = apply_in_pandas(
            packed, BUCKET_COLUMN, BucketProfiler(tables["offers"], request.as_of), arrow_schema_of(template),
            stage="profiles",
        )
        built.write.mode("overwrite").parquet(str(scratch / "profiles"))
        profiles = spark.read.parquet(str(scratch / "profiles"))
        profile_dtypes = pandas_dtypes_of(template)
    timings["profiles_s"] = round(time.perf_counter() - started, 2)
    attrs = frames["customers"].select("customer_id", *ATTRIBUTE_COLUMNS)
    joined = profiles.drop(*[c for c in ATTRIBUTE_COLUMNS if c in profiles.columns]).join(attrs, "customer_id", "left")
    # Contiguous, ordered customer ranges per partition: sorting inside each partition then gives the
    # global order without a second pass over the (expensive) scoring stage.
    joined = joined.repartitionByRange(n_buckets, "customer_id")
    in_dtypes = {**profile_dtypes, "tier": "object", "marketing_consent": "object"}
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(request.chunk_size))
    # Spark's tasks are the parallelism: one thread per scoring call.
    rows = map_in_pandas(joined, single_threaded(scorer), ROW_SCHEMA, in_dtypes, stage="score")
    rows.sortWithinPartitions("customer_id", "rank").write.mode("overwrite").parquet(str(scratch / "rows"))
    timings["score_s"] = round(time.perf_counter() - started - timings["profiles_s"], 2)

    def batches() -> Iterator[pa.Table]:
        for part in part_files(scratch / "rows"):
            for batch in pq.ParquetFile(part).iter_batches(batch_size=request.chunk_size):
                yield row_table(pa.Table.from_batches([batch]))

    yield from whole_customers(batches())


def profile_template() -> pd.DataFrame:
    """A zero-row profile frame with the catalogue's columns and dtypes (the Spark profile schema)."""
    from features.catalogue import FEATURES

    columns = {"customer_id": pd.Series(dtype="str")}
    columns.update({f.name: pd.Series(dtype=f.dtype) for f in FEATURES})
    return pd.DataFrame(columns)


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


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def summary_table(summary: dict):
    """The summary as a rich table for the terminal."""
    from rich.table import Table

    table = Table(title=f"campaign '{summary['campaign']}' as of {summary['as_of']}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("customers considered", f"{summary['customers_considered']:,}")
    table.add_row("customers with offers", f"{summary['customers_with_offers']:,}")
    for reason, n in summary["excluded_by_reason"].items():
        table.add_row(f"excluded: {reason}", f"{n:,}")
    table.add_row("offers in the list", f"{summary['offers']:,}")
    for category, n in summary["offers_per_reward_category"].items():
        table.add_row(f"offers: {category}", f"{n:,}")
    table.add_row("expected redemptions", f"{summary['expected_redemptions']:,.1f}")
    table.add_row("expected cost", f"{summary['expected_cost']:,.2f}")
    table.add_row("expected value", f"{summary['expected_value']:,.2f}")
    limited = [b for b in summary["budget"] if b["budget_remaining"] is not None]
    for b in limited:
        withdrawn = f" ({b['withdrawn_for_budget']:,} offers withdrawn)" if b["withdrawn_for_budget"] else ""
        table.add_row(
            f"budget {b['offer_id']}",
            f"{b['expected_redemptions']:,.1f} of {b['budget_remaining']:,} remaining{withdrawn}",
        )
    if summary["offers_over_budget"]:
        table.add_row("over budget (expected)", ", ".join(summary["offers_over_budget"]))
    table.add_row("model versions", ", ".join(f"{k} v{v}" for k, v in summary["model_versions"].items()))
    table.add_row("engine / seconds", f"{summary['engine']} / {summary['seconds']}")
    return table


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"rewards score: {message}", fg="red", err=True)
    raise typer.Exit(code)


def score_command(
    as_of: str = typer.Option(..., "--as-of", help="Profiles use data strictly before this date (YYYY-MM-DD)."),
    campaign: str = typer.Option(..., help="Campaign name; it also seeds the holdout group."),
    out: Path = typer.Option(..., help="The campaign list to write (.parquet or .csv)."),
    offers: str | None = typer.Option(None, "--offers", help="Comma-separated offer ids to choose from (default: all active)."),
    k: int = typer.Option(1, "--k", help="Offers per customer (at most one per reward category)."),
    holdout: float = typer.Option(0.05, help="Fraction of customers held out as control (no offer, flagged)."),
    channel: str = typer.Option("email", help=f"Channel the campaign is sent on: one of {', '.join(OFFER_CHANNELS)}."),
    send_at: str | None = typer.Option(None, "--send-at", help="Send time (context of the decision); default as_of 09:00."),
    engine: Engine = typer.Option(Engine.local, help="local: in process, in chunks; spark: on a Spark cluster."),
    spark_master: str = typer.Option("local[2]", "--spark-master", help="Spark master URL for --engine spark."),
    data: Path | None = typer.Option(None, help="Folder of validated tables (default: data/validated)."),
    profiles: Path | None = typer.Option(None, help="Ready profiles (Parquet) at as_of; built from --data when absent."),
    chunk_size: int = typer.Option(DEFAULT_CHUNK_SIZE, "--chunk-size", help="Customers scored at a time (bounds memory)."),
    workers: int = typer.Option(0, "--workers", help="Scoring processes for --engine local (0: one per core)."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default from config)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on long runs."),
) -> None:
    """Write a campaign list: every customer scored with the champion models and the offer policy."""
    from rich.console import Console

    from features.manifest import FeatureMismatchError
    from models.policy import PolicyError

    try:
        as_of_ts = pd.Timestamp(as_of)
        send_ts = pd.Timestamp(send_at) if send_at else None
    except ValueError as err:
        _fail(f"--as-of/--send-at must be dates like 2026-06-30 or 2026-06-30T09:00: {err}")
    offer_ids = [o.strip() for o in offers.split(",") if o.strip()] if offers else None
    try:
        request = ScoreRequest(
            as_of=as_of_ts, campaign=campaign, out=out, k=k, holdout=holdout, offer_ids=offer_ids, channel=channel,
            send_at=send_ts, engine=engine, spark_master=spark_master, data=data, profiles=profiles,
            chunk_size=chunk_size, workers=workers, tracking_uri=tracking_uri, progress=progress,
        )
        summary = run_score(request)
    except (ScoreError, PolicyError, FileNotFoundError, LookupError, FeatureMismatchError) as err:
        _fail(str(err).strip("'\""))
    except Exception as err:  # noqa: BLE001 - registry and Spark failures: one line, not a traceback
        name = type(err).__name__
        if name in ("MlflowException", "SparkEngineError", "AnalysisException", "Py4JJavaError"):
            _fail(f"{name}: {err}")
        raise
    Console().print(summary_table(summary))
    paths = summary["outputs"]
    typer.echo(f"list: {paths['list']} ({summary['rows_in_list']:,} rows)")
    typer.echo(f"exclusions: {paths['exclusions']}")
    typer.echo(f"summary: {paths['summary']}")
