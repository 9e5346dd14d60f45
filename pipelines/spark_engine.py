"""The Spark engine: a session, Parquet in and out, pandas-UDF wrappers, and `rewards score` on Spark.

The wrappers take plain ``DataFrame -> DataFrame``
functions (the same ones the in-process engine calls), restore the pandas dtypes the function
expects on the way in (Spark hands back objects for strings, floats for nullable ints, arrays for
lists), and conform the result to a declared Arrow schema on the way out. ``spark_chunks`` runs a
campaign list on them: the profile build per customer bucket and ``pipelines.score.ChunkDecider`` per
batch, the same pandas code the in-process engine runs.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from data_contracts.schema import TABLES, pandas_dtype

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

PandasFn = Callable[[pd.DataFrame], pd.DataFrame]
TABLE_COLUMN = "_table"
BUCKET_COLUMN = "_bucket"
ROW_COLUMN = "_row"
_SEP = "__"


class SparkEngineError(RuntimeError):
    """Spark could not be started or a Spark stage did not produce what was declared."""


@contextmanager
def spark_session(
    master: str = "local[2]",
    app_name: str = "rewards",
    shuffle_partitions: int = 4,
    driver_memory: str = "2g",
    conf: Mapping[str, str] | None = None,
) -> Iterator[SparkSession]:
    """A Spark session whose Python workers run this interpreter; stopped when the block ends.

    On a cluster (``master`` like ``spark://host:7077``) the executors must have this project
    installed at the same interpreter path, and every path handed to Spark (validated tables,
    profiles, the output folder) must be on storage they all see.
    """
    try:
        from pyspark.sql import SparkSession
    except ModuleNotFoundError as err:  # pragma: no cover - depends on the install
        raise SparkEngineError(
            "the Spark engine needs pyspark: install the 'spark' extra (pip install -e '.[spark]')"
        ) from err
    # Workers must import pandas, pyarrow and this project: use the very interpreter we run in.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "true",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        "spark.driver.memory": driver_memory,
        # Naive timestamps stay naive: no shift through the JVM's time zone.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "20000",
        "spark.python.worker.reuse": "true",
        "spark.sql.adaptive.enabled": "false",
        # pandas writes nanosecond timestamps; read_tables turns these longs back into timestamps.
        "spark.sql.legacy.parquet.nanosAsLong": "true",
    }
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as err:  # noqa: BLE001 - the JVM gateway raises assorted errors
        raise SparkEngineError(f"could not start Spark with master '{master}': {err}") from err
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


def spark_schema(schema: pa.Schema):
    """The Spark StructType for an Arrow schema (naive timestamps become TIMESTAMP_NTZ)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema, prefer_timestamp_ntz=True)


def arrow_schema_of(frame: pd.DataFrame) -> pa.Schema:
    """The Arrow schema pandas would write for ``frame`` (strings as large strings become strings)."""
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        elif pa.types.is_timestamp(t):
            t = pa.timestamp("us")
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            t = pa.list_(pa.string()) if pa.types.is_null(t.value_type) else pa.list_(t.value_type)
        elif pa.types.is_null(t):
            t = pa.string()
        fields.append(pa.field(f.name, t, nullable=True))
    return pa.schema(fields)


def _as_list(value) -> list:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(v) for v in value]


def restore_dtypes(frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """Give the columns of a frame coming out of Spark the pandas dtypes the project code expects."""
    out = {}
    for name, dtype in dtypes.items():
        col = frame[name]
        if dtype == "list":
            out[name] = pd.Series([_as_list(v) for v in col], index=frame.index, dtype=object)
        elif str(col.dtype) == str(dtype):
            out[name] = col
        elif str(dtype).startswith("datetime64"):
            out[name] = pd.to_datetime(col).astype(dtype)
        elif str(dtype) in ("Int64", "boolean"):
            out[name] = pd.array(col.astype(object).where(col.notna(), None), dtype=dtype)
        else:
            out[name] = col.astype(dtype)
    return pd.DataFrame(out, index=frame.index)


def pandas_dtypes_of(frame: pd.DataFrame) -> dict[str, str]:
    """The dtypes of a frame in the form ``restore_dtypes`` takes (object columns of lists -> 'list')."""
    dtypes = {}
    for name, dtype in frame.dtypes.items():
        present = frame[name].dropna()
        is_list = dtype == object and len(present) and isinstance(present.iloc[0], (list, np.ndarray))
        dtypes[name] = "list" if is_list else str(dtype)
    return dtypes


def conform(frame: pd.DataFrame, schema: pa.Schema, stage: str) -> pd.DataFrame:
    """``frame`` with exactly the columns of ``schema``, in order; a clear error naming what differs."""
    names = schema.names
    missing = [n for n in names if n not in frame.columns]
    extra = [n for n in frame.columns if n not in names]
    if missing or extra:
        raise SparkEngineError(
            f"stage '{stage}' returned columns that differ from its declared schema: "
            f"missing {missing}, unexpected {extra}"
        )
    return frame[names]


def map_in_pandas(
    df: SparkFrame,
    fn: PandasFn,
    out_schema: pa.Schema,
    in_dtypes: Mapping[str, str] | None = None,
    stage: str = "map",
) -> SparkFrame:
    """``df.mapInPandas`` running ``fn`` on each Arrow batch, dtypes restored, output conformed."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if in_dtypes is not None:
                batch = restore_dtypes(batch, in_dtypes)
            yield conform(fn(batch.reset_index(drop=True)), out_schema, stage)

    return df.mapInPandas(run, spark_schema(out_schema))


def apply_in_pandas(
    df: SparkFrame,
    by: str | list[str],
    fn: PandasFn,
    out_schema: pa.Schema,
    stage: str = "apply",
) -> SparkFrame:
    """``df.groupBy(by).applyInPandas`` running ``fn`` once per group, output conformed."""

    def run(group: pd.DataFrame) -> pd.DataFrame:
        return conform(fn(group.reset_index(drop=True)), out_schema, stage)

    keys = [by] if isinstance(by, str) else list(by)
    return df.groupBy(*keys).applyInPandas(run, spark_schema(out_schema))


def with_bucket(df: SparkFrame, key: str, n_buckets: int) -> SparkFrame:
    """Add ``_bucket`` = a stable hash of ``key`` modulo ``n_buckets`` (the unit of per-group work)."""
    from pyspark.sql import functions as F

    return df.withColumn(BUCKET_COLUMN, F.pmod(F.xxhash64(F.col(key)), F.lit(n_buckets)).cast("int"))


def pack_tables(tables: Mapping[str, SparkFrame], key: str = "customer_id") -> SparkFrame:
    """One long frame holding several tables that share ``key``, so one groupBy sees all of them.

    Each row keeps ``key``, a ``_table`` tag, its position in its table (``_row``) and its own
    columns prefixed with ``<table>__``; the other tables' columns are null. ``unpack_tables`` turns
    one group back into frames, rows in their original order.
    """
    from pyspark.sql import functions as F

    packed = None
    for name, df in tables.items():
        # The row's place in its file: a shuffle scrambles rows, and float sums depend on their order,
        # so unpack_tables restores the file order for results identical to the in-process engine.
        cols = [F.col(key), F.lit(name).alias(TABLE_COLUMN), F.monotonically_increasing_id().alias(ROW_COLUMN)]
        cols += [F.col(c).alias(f"{name}{_SEP}{c}") for c in df.columns if c != key]
        part = df.select(*cols)
        packed = part if packed is None else packed.unionByName(part, allowMissingColumns=True)
    if packed is None:
        raise SparkEngineError("pack_tables needs at least one table")
    return packed


def unpack_tables(packed: pd.DataFrame, names: list[str], key: str = "customer_id") -> dict[str, pd.DataFrame]:
    """The tables of one packed group, with the columns and validated dtypes of data_contracts.schema."""
    tag = packed[TABLE_COLUMN].to_numpy()
    tables = {}
    for name in names:
        declared = TABLES[name]
        rows = packed.loc[tag == name].sort_values(ROW_COLUMN, kind="stable")
        frame = pd.DataFrame(
            {c.name: (rows[key] if c.name == key else rows[f"{name}{_SEP}{c.name}"]) for c in declared.columns}
        ).reset_index(drop=True)
        dtypes = {c.name: ("list" if c.type == "string_list" else pandas_dtype(c)) for c in declared.columns}
        tables[name] = restore_dtypes(frame, dtypes)
    return tables


def read_tables(spark: SparkSession, directory: Path, names: list[str]) -> dict[str, SparkFrame]:
    """Read ``<directory>/<name>.parquet`` for each table into Spark, timestamps as TIMESTAMP_NTZ.

    pandas writes nanosecond timestamps, which Spark cannot read as timestamps; the session reads
    them as longs (``spark.sql.legacy.parquet.nanosAsLong``) and they are turned back into
    microsecond timestamps here, for the columns the schema declares as timestamps.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    frames = {}
    for name in names:
        path = Path(directory) / f"{name}.parquet"
        if not path.exists():
            from pipelines.io import MissingValidatedTableError

            raise MissingValidatedTableError(name, f"not found at '{path}' (Spark engine); run `rewards validate` first")
        df = spark.read.parquet(str(path))
        declared = {c.name: c for c in TABLES[name].columns} if name in TABLES else {}
        for field in df.schema.fields:
            column = declared.get(field.name)
            if column is not None and column.type == "timestamp" and isinstance(field.dataType, LongType):
                micros = F.timestamp_micros(F.floor(F.col(field.name) / 1000).cast("long"))
                df = df.withColumn(field.name, micros.cast("timestamp_ntz"))
        frames[name] = df
    return frames


def part_files(directory: Path) -> list[Path]:
    """The Parquet part files Spark wrote into ``directory``, in partition order."""
    return sorted(p for p in Path(directory).glob("part-*.parquet"))


# --------------------------------------------------------------------------------------------
# `rewards score` on Spark: the same profile and chunk code, run per customer bucket and per batch
# --------------------------------------------------------------------------------------------


@dataclass
class BucketProfiler:
    """``features.build_profiles`` for the customers of one bucket (a group of a packed frame)."""

    offers: pd.DataFrame
    as_of: pd.Timestamp
    program: object = None  # data_contracts.program.Program; None: the built-in default program

    def __call__(self, group: pd.DataFrame) -> pd.DataFrame:
        from features import build_profiles
        from features.profiles import CUSTOMER_TABLES

        tables = unpack_tables(group, list(CUSTOMER_TABLES))
        tables["offers"] = self.offers
        return build_profiles(tables, self.as_of, program=self.program)



def spark_for(request, spark):
    """The session for a scoring ``request``: the one given (tests), or a new one on its master."""
    from contextlib import nullcontext

    if spark is not None:
        return nullcontext(spark)
    return spark_session(request.spark_master, app_name=f"rewards-score-{request.campaign}")



def spark_chunks(
    spark,
    request,
    decider,
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

    from features.profiles import CUSTOMER_TABLES
    from models.policy import ATTRIBUTE_COLUMNS
    from pipelines.score.workers import single_threaded
    from pipelines.score.writer import ROW_SCHEMA, row_table, whole_customers

    timings = timings if timings is not None else {}

    started = time.perf_counter()
    frames = read_tables(spark, data_dir, list(CUSTOMER_TABLES))
    n_customers = len(tables["customers"])
    parallelism = max(2, spark.sparkContext.defaultParallelism)
    n_buckets = max(parallelism, -(-n_customers // request.chunk_size))
    if request.profiles is not None:
        profiles = spark.read.parquet(str(request.profiles))
        profile_dtypes = pandas_dtypes_of(pq.read_schema(request.profiles).empty_table().to_pandas())
    else:
        from pipelines.io import read_validated_program

        program, _ = read_validated_program(data_dir)  # the profiles follow the data's program file
        template = profile_template(program)
        packed = with_bucket(pack_tables(frames), "customer_id", n_buckets)
        built = apply_in_pandas(
            packed, BUCKET_COLUMN, BucketProfiler(tables["offers"], request.as_of, program), arrow_schema_of(template),
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
    rows = map_in_pandas(joined, single_threaded(decider), ROW_SCHEMA, in_dtypes, stage="score")
    rows.sortWithinPartitions("customer_id", "rank").write.mode("overwrite").parquet(str(scratch / "rows"))
    timings["score_s"] = round(time.perf_counter() - started - timings["profiles_s"], 2)

    def batches() -> Iterator[pa.Table]:
        for part in part_files(scratch / "rows"):
            for batch in pq.ParquetFile(part).iter_batches(batch_size=request.chunk_size):
                yield row_table(pa.Table.from_batches([batch]))

    yield from whole_customers(batches())


def profile_template(program=None) -> pd.DataFrame:
    """A zero-row profile frame with ``program``'s catalogue columns and dtypes (the Spark profile schema)."""
    from features.catalogue import catalogue

    columns = {"customer_id": pd.Series(dtype="str")}
    columns.update({f.name: pd.Series(dtype=f.dtype) for f in catalogue(program).features})
    return pd.DataFrame(columns)

