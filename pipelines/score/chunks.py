"""One chunk of customers: profiles in, list rows out (``ChunkDecider``, the unit both engines run),
and the ways chunks are cut (from the tables, or from a ready profiles file)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from models.campaign import campaign_rows, sort_rows
from models.policy import ATTRIBUTE_COLUMNS, Context
from models.policy.setup import DecisionSetup
from models.sparse_ops import ragged_ranges
from pipelines.score.writer import ROW_SCHEMA


@dataclass
class ChunkDecider:
    """Score one chunk of customers with the shared decision set-up, then turn decisions into list rows.

    Input: profile rows (customer_id + features) with the ``ATTRIBUTE_COLUMNS`` of the customers
    table attached. Output: ``models.campaign.ROW_COLUMNS`` rows sorted by customer_id and rank.
    Picklable, so Spark ships it to its workers as it is.
    """

    setup: DecisionSetup  # models.policy.setup.decision_setup, without customers (added per chunk)
    model_versions: dict[str, str]
    context: Context
    campaign: str
    as_of: pd.Timestamp
    k: int = 1
    offer_ids: Sequence[str] | None = None
    checked: bool = False  # the fast scorer verified against the model's own path on real rows (once per process)

    @property
    def catalog(self):
        return self.setup.catalog

    @property
    def history(self):
        return self.setup.history

    @property
    def offer_scorer(self):
        return self.setup.scorer

    @property
    def config(self):
        return self.setup.config

    def __call__(self, chunk: pd.DataFrame, tables: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
        """List rows of ``chunk``; ``tables`` (the chunk's own, when it was cut from the tables) give the
        offer model's taxonomy columns, else the set-up's tables do."""
        if not len(chunk):
            return empty_rows()
        chunk = chunk.reset_index(drop=True)
        setup = self.setup.for_customers(chunk, chunk[["customer_id", *ATTRIBUTE_COLUMNS]], tables=tables)
        if not self.checked:
            # The fast scorer must give the model's own numbers on this data before it scores anything.
            setup.verify(chunk, tables)
            self.checked = True
        decisions = setup.decide(chunk["customer_id"].astype(str).tolist(), self.context, self.k, offer_ids=self.offer_ids)
        rows = campaign_rows(decisions, self.campaign, self.as_of, self.model_versions)
        return sort_rows(rows)


def empty_rows() -> pd.DataFrame:
    return ROW_SCHEMA.empty_table().to_pandas()


@dataclass
class TableChunk:
    """The customer-keyed tables of one chunk of customers (offers whole): profiles are built where
    the chunk is scored, so with worker processes the profile builds run in parallel too."""

    tables: dict[str, pd.DataFrame]
    as_of: pd.Timestamp
    program: object = None  # the data's program (its catalogue); None: the built-in program

    def profiles(self) -> pd.DataFrame:
        from features import build_profiles

        return build_profiles(self.tables, self.as_of, program=self.program)

    def scoring_input(self) -> pd.DataFrame:
        return with_attributes(self.profiles(), self.tables["customers"])


def table_chunks(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, chunk_size: int,
                 program=None) -> Iterator[TableChunk]:
    """The tables cut into chunks of ``chunk_size`` customers (sorted ids; ``features.profiles.customer_chunks``)."""
    from features.profiles import customer_chunks

    for part in customer_chunks(tables, chunk_size):
        yield TableChunk(part, as_of, program)


@dataclass
class ProfileChunk:
    """Ready profiles of a chunk of customers (Arrow) with the customer-keyed tables the offer model's
    taxonomy columns read, cut to those customers (``CustomerRows.cut``: Arrow, the strings as small
    dictionaries, so a chunk is cheap to send): a worker then indexes its own chunk's purchases, never
    the whole purchase log. ``frames()`` gives the tables as pandas, as ``pd.read_parquet`` reads them."""

    profiles: pa.Table
    tables: dict[str, pd.DataFrame | pa.Table]

    def frames(self) -> dict[str, pd.DataFrame]:
        return as_frames(self.tables)


class CustomerRows:
    """The rows of each customer in ``tables`` (those with a customer_id column), indexed once, so a
    chunk's tables are cut by position (the other tables, e.g. products and offers, are kept whole).

    The customer-keyed tables are held as Arrow (pandas frames are converted once): the purchase log is
    best read with ``read_log`` (strings as dictionary codes: 100k grocery households' 25M lines are
    ~0.8 GB so, 1.9 GB as Arrow strings and ~6 GB as Python strings). Each customer's rows are found
    through one integer sort of the customer codes, never a string comparison per chunk.
    """

    def __init__(self, tables: dict[str, pd.DataFrame | pa.Table]):
        import numpy as np

        self.tables: dict[str, pd.DataFrame | pa.Table] = {}
        self._rows: dict[str, tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, frame in tables.items():
            columns = frame.columns if isinstance(frame, pd.DataFrame) else frame.column_names
            if "customer_id" not in columns:
                self.tables[name] = frame
                continue
            table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
            codes, ids = _customer_codes(table.column("customer_id"))
            order = np.argsort(codes, kind="stable")  # integer sort: rows by customer, in their original order
            order = order[codes[order] >= 0]  # rows without a customer_id belong to no chunk
            order = order.astype(np.int32) if len(codes) < 2**31 else order
            counts = np.bincount(codes[codes >= 0], minlength=len(ids))
            self.tables[name] = table
            self._rows[name] = (ids, order, np.cumsum(counts) - counts, counts)

    def cut(self, customer_ids) -> dict[str, pd.DataFrame | pa.Table]:
        """``tables`` with the customer-keyed ones cut to ``customer_ids`` (Arrow, rows in their original
        order, each dictionary column holding only the values of those rows; ``as_frames`` for pandas)."""
        import numpy as np

        out = {}
        for name, table in self.tables.items():
            if name not in self._rows:
                out[name] = table
                continue
            index, order, starts, counts = self._rows[name]
            pos = index.get_indexer(pd.Index(customer_ids).astype("str"))
            pos = pos[pos >= 0]
            rows = np.sort(order[ragged_ranges(starts[pos], counts[pos])])
            out[name] = _compact(table.take(pa.array(rows, type=pa.int64())))
        return out


def read_log(path: Path, columns: Sequence[str]) -> pa.Table:
    """``columns`` of a purchase log Parquet file (those it has) as one Arrow table, its string columns as
    dictionary codes sharing one dictionary each (``CustomerRows`` cuts it; ``as_frames`` decodes a cut)."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    have = [c for c in columns if c in schema.names]
    strings = [c for c in have if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)]
    table = pq.read_table(path, columns=have, read_dictionary=strings).unify_dictionaries().combine_chunks()
    # The read's buffers (1.6 GB for 25M lines) stay in Arrow's allocator until told: give them back.
    pa.default_memory_pool().release_unused()
    return table


def as_frames(tables: dict[str, pd.DataFrame | pa.Table]) -> dict[str, pd.DataFrame]:
    """The tables as pandas frames, dictionary columns decoded (the dtypes ``pd.read_parquet`` gives)."""
    return {name: _frame(t) if isinstance(t, pa.Table) else t for name, t in tables.items()}


def _frame(table: pa.Table) -> pd.DataFrame:
    import pyarrow.compute as pc

    columns = [pc.cast(c, c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(columns, names=table.column_names, metadata=table.schema.metadata).to_pandas()


def _customer_codes(column: pa.ChunkedArray):
    """Integer codes of a customer_id column (-1: null) and the ids they stand for (pd.Index of str)."""
    import numpy as np
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()  # one dictionary for all chunks
    column = column.unify_dictionaries()
    if not column.num_chunks:
        return np.zeros(0, dtype=np.int64), pd.Index([], dtype="str")
    dictionary = column.chunk(0).dictionary
    codes = np.concatenate([pc.fill_null(c.indices, -1).to_numpy().astype(np.int64) for c in column.chunks])
    return codes, pd.Index(pc.cast(dictionary, pa.string()).to_pylist()).astype("str")


def _compact(table: pa.Table) -> pa.Table:
    """``table`` with each dictionary column re-encoded over the values it holds (a cut of a 25M-line log
    keeps the log's whole dictionaries, e.g. 4.8M transaction ids, which would go with every chunk)."""
    import pyarrow.compute as pc

    columns = [pc.cast(c, c.type.value_type).dictionary_encode() if pa.types.is_dictionary(c.type) else c
               for c in table.columns]
    return pa.table(columns, names=table.column_names, metadata=table.schema.metadata)


def profile_chunks_with_tables(chunks: Iterator[pa.Table], rows: CustomerRows) -> Iterator[ProfileChunk]:
    """Each profiles chunk with its customers' tables (``rows.cut``)."""
    for chunk in chunks:
        yield ProfileChunk(chunk, rows.cut(chunk.column("customer_id").to_pylist()))


def profile_chunks_from_file(path: Path, chunk_size: int) -> Iterator[pa.Table]:
    """Profiles read from a Parquet file ``chunk_size`` rows at a time, as Arrow tables (converted to
    pandas where they are scored, so worker processes share that work too)."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
        yield pa.Table.from_batches([batch])


def attributes_by_customer(customers: pd.DataFrame) -> pd.DataFrame:
    """The customers table's ATTRIBUTE_COLUMNS indexed by customer_id (all a chunk needs of it)."""
    attrs = customers if customers.index.name == "customer_id" else customers.set_index("customer_id")
    return attrs[list(ATTRIBUTE_COLUMNS)]


def with_attributes(profiles: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Profiles with the customers table's tier and consent attached (NA for unknown customers)."""
    attrs = attributes_by_customer(customers).reindex(profiles["customer_id"].astype(str))
    out = profiles.drop(columns=[c for c in ATTRIBUTE_COLUMNS if c in profiles.columns])
    return out.assign(**{c: attrs[c].to_numpy() for c in ATTRIBUTE_COLUMNS})
