"""What one `rewards score` run was asked for (``ScoreRequest``), checked option by option."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import pandas as pd

from models.policy.context import OBJECTIVES
from models.policy.setup import Campaign

DEFAULT_CHUNK_SIZE = 50_000
# A chunk's decision arrays are customers x active offers (P(redeem), priorities, eligibility: ~40 bytes a
# pair with their temporaries): the default chunk keeps them within this many pairs (50,000 customers up
# to 200 offers; 10,000 at 1,000 offers).
CHUNK_PAIRS = 10_000_000
MIN_CHUNK_SIZE = 2_000


# With the taxonomy columns each chunk carries (and indexes) its customers' purchase lines: at most this
# many a chunk (grocery, ~250 lines a household a year: 3,000 households). A worker's peak grows with it
# (100k households x 1,000 offers, 2 workers: ~2.3 GB a worker at 1.5M lines, ~1.6 GB at 750k, no slower).
CHUNK_PURCHASES = 750_000


def chunk_size_for(n_offers: int, purchases_per_customer: float = 0.0) -> int:
    """The default chunk size for ``n_offers`` active offers (``CHUNK_PAIRS`` customer x offer pairs a chunk)
    and, when the chunks carry their purchase lines, ``purchases_per_customer`` (``CHUNK_PURCHASES`` a chunk)."""
    size = CHUNK_PAIRS // max(n_offers, 1)
    if purchases_per_customer > 0:
        size = min(size, int(CHUNK_PURCHASES / purchases_per_customer))
    return int(min(DEFAULT_CHUNK_SIZE, max(MIN_CHUNK_SIZE, size)))


class ScoreError(ValueError):
    """The scoring run cannot start or finish: the message names the input and what to do."""


class Engine(str, Enum):
    local = "local"
    spark = "spark"



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
    chunk_size: int | None = None  # None: chunk_size_for(the active offers), set by run_score
    workers: int = 0  # scoring processes for the local engine; 0: one per core
    tracking_uri: str | None = None
    progress: bool = True
    policy: dict = field(default_factory=dict)
    # What the list is ranked by: expected_value or uplift; None: pipelines.train_uplift.default_objective
    # (uplift once an offer-uplift model is champion).
    objective: str | None = None

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
        if self.chunk_size is not None and self.chunk_size < 1:
            problems.append(f"--chunk-size must be >= 1, got {self.chunk_size}")
        if self.workers < 0:
            problems.append(f"--workers must be >= 0 (0: one per core), got {self.workers}")
        if not str(self.channel).strip():
            problems.append("--channel must not be empty")
        if self.send_at < self.as_of:
            problems.append(f"--send-at ({self.send_at}) must not be before --as-of ({self.as_of})")
        if self.objective is not None and self.objective not in OBJECTIVES:
            problems.append(f"--objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        if self.out.suffix not in (".parquet", ".csv"):
            problems.append(f"--out '{self.out}' must end in .parquet or .csv")
        if self.profiles is not None and Path(self.profiles).suffix != ".parquet":
            problems.append(f"--profiles '{self.profiles}' must be a .parquet file written by `rewards features`")
        if problems:
            raise ScoreError("; ".join(problems))


    @property
    def campaign_spec(self) -> Campaign:
        """The campaign this list is written for: the holdout and budget rules the API shares."""
        return Campaign(name=self.campaign, send_at=self.send_at, channel=self.channel, k=self.k,
                        holdout_fraction=self.holdout, offer_ids=self.offer_ids)


def default_send_at(as_of: pd.Timestamp) -> pd.Timestamp:
    """Campaigns go out at 09:00 on the as_of day unless told otherwise."""
    return pd.Timestamp(as_of).normalize() + pd.Timedelta(hours=9)
