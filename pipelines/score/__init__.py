"""`rewards score`: campaign lists (see ``pipelines.score.command``).

request (what was asked), chunks (one chunk decided), workers (the in-process engine), writer (the
outputs, atomically), command (the run and the CLI); the Spark engine is ``pipelines.spark_engine``.
"""

from models.policy.holdout import holdout_salt
from pipelines.score.chunks import (
    ChunkDecider,
    TableChunk,
    empty_rows,
    profile_chunks_from_file,
    table_chunks,
    with_attributes,
)
from pipelines.score.command import (
    build_chunk_decider,
    load_models,
    profile_feature_names,
    read_driver_tables,
    run_score,
    score_command,
    summary_table,
)
from pipelines.score.request import DEFAULT_CHUNK_SIZE, Engine, ScoreError, ScoreRequest, default_send_at
from pipelines.score.workers import WORKER_MALLOC_ENV, default_workers, score_customers, single_threaded
from pipelines.score.writer import (
    CSV_LIST_SEPARATOR,
    EXCLUSION_SCHEMA,
    LIST_SCHEMA,
    ROW_SCHEMA,
    ListWriteError,
    output_paths,
    row_scalars,
    row_table,
    whole_customers,
    write_campaign,
)

# The names before the split ("scorer" now means only the P(redeem) scorer of models.policy.scoring).
ChunkScorer = ChunkDecider
build_scorer = build_chunk_decider

__all__ = [name for name in dir() if not name.startswith("_")]
