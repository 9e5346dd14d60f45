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
    taxonomy columns read, cut to those customers (``CustomerRows.cut``): a worker then indexes its own
    chunk's purchases, never the whole purchase log."""

    profiles: pa.Table
    tables: dict[str, pd.DataFrame]


class CustomerRows:
    """The rows of each customer in ``tables`` (those with a customer_id column), indexed once, so a
    chunk's tables are cut by slicing (the other tables, e.g. products and offers, are kept whole)."""

    def __init__(self, tables: dict[str, pd.DataFrame]):
        import numpy as np

        self.tables = tables
        self._rows: dict[str, tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, frame in tables.items():
            if "customer_id" not in frame.columns:
                continue
            codes, uniques = pd.factorize(frame["customer_id"].astype("str"))
            order = np.argsort(codes, kind="stable")
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            self._rows[name] = (pd.Index(uniques), order, np.cumsum(counts) - counts, counts)

    def cut(self, customer_ids) -> dict[str, pd.DataFrame]:
        """``tables`` with the customer-keyed ones cut to ``customer_ids`` (rows in their original order)."""
        import numpy as np

        out = {}
        for name, frame in self.tables.items():
            if name not in self._rows:
                out[name] = frame
                continue
            index, order, starts, counts = self._rows[name]
            pos = index.get_indexer(pd.Index(customer_ids).astype("str"))
            pos = pos[pos >= 0]
            rows = np.sort(np.concatenate([order[starts[p]: starts[p] + counts[p]] for p in pos])) if len(pos) else (
                np.zeros(0, dtype=np.int64))
            out[name] = frame.iloc[rows]
        return out


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
