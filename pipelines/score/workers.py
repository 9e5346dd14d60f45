"""The in-process engine: chunks scored in this process or by worker processes, rows back in chunk order."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

import pandas as pd
import pyarrow as pa

from pipelines.score.chunks import ChunkDecider, ProfileChunk, TableChunk, attributes_by_customer, with_attributes
from pipelines.score.writer import row_table


def default_workers() -> int:
    """One scoring process per usable core."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def score_customers(
    chunks: Iterable[pd.DataFrame | pa.Table | TableChunk],
    decider: ChunkDecider,
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
            rows, n_customers = _score_chunk(decider, chunk, attrs)
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
                               initializer=_init_worker, initargs=(pickle.dumps((decider, attrs)), os.getpid()))
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
    return attributes_by_customer(customers) if customers is not None else None


def _score_chunk(decider: ChunkDecider, chunk, attrs: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    if isinstance(chunk, TableChunk):
        frame = chunk.scoring_input()
        return decider(frame, tables=chunk.tables), len(frame)
    if isinstance(chunk, ProfileChunk):
        frame = with_attributes(chunk.profiles.to_pandas(), attrs)
        return decider(frame, tables=chunk.frames()), len(frame)
    frame = with_attributes(chunk.to_pandas() if isinstance(chunk, pa.Table) else chunk, attrs)
    return decider(frame), len(frame)


def _collect(future, on_chunk) -> pa.Table:
    rows, n_customers = future.result()
    if on_chunk is not None:
        on_chunk(n_customers)
    return rows


_WORKER: tuple[ChunkDecider, pd.DataFrame | None] | None = None


def _init_worker(payload: bytes, parent_pid: int) -> None:
    """A scoring worker: one thread per process (the processes are the parallelism); it ends itself
    when its parent is gone (killed with -9, the pool cannot tell it to)."""
    import gc
    import pickle
    import threading

    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="exit-with-parent").start()
    global _WORKER
    decider, attrs = pickle.loads(payload)
    _WORKER = (single_threaded(decider), attrs)
    gc.freeze()  # the models and indexes live for the whole run: keep them out of every collection


def _exit_with_parent(parent_pid: int, every_s: float = 0.5) -> None:
    import time

    while os.getppid() == parent_pid:
        time.sleep(every_s)
    os._exit(1)  # orphaned: re-parented to init, nobody reads our results any more


def single_threaded(decider: ChunkDecider) -> ChunkDecider:
    """``decider`` set to one thread per call, for processes that are themselves the parallelism."""
    if hasattr(decider.offer_scorer, "max_threads"):
        decider.offer_scorer.max_threads = 1
    predict = getattr(decider.offer_scorer, "predict", None)
    if hasattr(predict, "threads"):
        predict.threads = 1
    return decider


def _score_in_worker(chunk) -> tuple[pa.Table, int]:
    decider, attrs = _WORKER
    rows, n_customers = _score_chunk(decider, chunk, attrs)
    return row_table(rows), n_customers  # Arrow: cheap to send back and written as it is
