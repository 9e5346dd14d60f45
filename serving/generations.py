"""One serving state across workers: reload sanity checks, and a two-phase switch through files.

A reload lands in one worker (the coordinator). It proposes generation G; every worker builds a
candidate state and checks it against the state it serves (customer count, offer count, feature
manifest; thresholds from the environment, skipped with ``force``) and votes. Only when every
worker voted yes does the coordinator commit G and all of them switch; otherwise none does and
the reload answers 409 with each worker's reason. Each worker reports what it serves in its own
file, which /status reads. The files live in ``<data dir>/serving/run-<server pid>/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("rewards.serving")

MIN_CUSTOMER_RATIO_ENV = "REWARDS_RELOAD_MIN_CUSTOMER_RATIO"
MIN_OFFER_RATIO_ENV = "REWARDS_RELOAD_MIN_OFFER_RATIO"
RELOAD_TIMEOUT_ENV = "REWARDS_RELOAD_TIMEOUT_S"


class ReloadConfigError(ValueError):
    """A reload threshold in the environment is not a number in range."""


@dataclass(frozen=True)
class ReloadThresholds:
    """How far a new state may fall from the serving one before a reload is refused (without ``force``)."""

    min_customer_ratio: float = 0.5  # new profiled customers / serving ones
    min_offer_ratio: float = 0.5  # new offers / serving ones
    timeout_s: float = 120.0  # how long the coordinator waits for every worker's vote

    @classmethod
    def from_env(cls, env: dict | None = None) -> ReloadThresholds:
        env = env if env is not None else os.environ
        values = {}
        for name, key, lo, hi in (("min_customer_ratio", MIN_CUSTOMER_RATIO_ENV, 0.0, 1.0),
                                  ("min_offer_ratio", MIN_OFFER_RATIO_ENV, 0.0, 1.0),
                                  ("timeout_s", RELOAD_TIMEOUT_ENV, 1.0, 3600.0)):
            raw = env.get(key, "").strip()
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                value = float("nan")
            if not lo <= value <= hi:
                raise ReloadConfigError(f"${key} must be a number between {lo} and {hi}, got {raw!r}")
            values[name] = value
        return cls(**values)


def sanity_problems(current, candidate, thresholds: ReloadThresholds) -> list[str]:
    """Why ``candidate`` (a ServingState) should not replace ``current``; empty when it may."""
    if current is None:
        return []
    problems = []
    old_c, new_c = len(current.book.positions), len(candidate.book.positions)
    if old_c and new_c < thresholds.min_customer_ratio * old_c:
        problems.append(
            f"the new profile snapshot has {new_c:,} customers, {new_c / old_c:.1%} of the {old_c:,} serving "
            f"(at least {thresholds.min_customer_ratio:.0%} expected, ${MIN_CUSTOMER_RATIO_ENV}): everyone missing "
            "would become a cold start"
        )
    old_o, new_o = len(current.catalog), len(candidate.catalog)
    if old_o and new_o < thresholds.min_offer_ratio * old_o:
        problems.append(
            f"the new offer table has {new_o:,} offers, {new_o / old_o:.1%} of the {old_o:,} serving "
            f"(at least {thresholds.min_offer_ratio:.0%} expected, ${MIN_OFFER_RATIO_ENV})"
        )
    old_f = [c for c in current.book.profiles.columns if c != "customer_id"]
    new_f = [c for c in candidate.book.profiles.columns if c != "customer_id"]
    if set(old_f) != set(new_f):
        gone, added = sorted(set(old_f) - set(new_f)), sorted(set(new_f) - set(old_f))
        problems.append(f"the feature manifest changed: missing {gone[:10]}, new {added[:10]}")
    if problems:
        problems.append("fix the inputs, or send {\"force\": true} to switch anyway")
    return problems


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ReloadRefused(Exception):
    """The reload did not switch any worker; ``reasons`` say why, worker by worker."""

    def __init__(self, message: str):
        super().__init__(message)


class GenerationBoard:
    """The files the workers of one server coordinate through."""

    def __init__(self, root: Path, server_pid: int | None = None):
        server_pid = os.getppid() if server_pid is None else server_pid
        self.root = Path(root)
        self.dir = self.root / f"run-{server_pid}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_runs(server_pid)

    def _remove_stale_runs(self, server_pid: int) -> None:
        for other in self.root.glob("run-*"):
            try:
                pid = int(other.name.removeprefix("run-"))
            except ValueError:
                continue
            if pid != server_pid and not _alive(pid):
                shutil.rmtree(other, ignore_errors=True)

    def committed(self) -> int:
        return int((_read_json(self.dir / "committed.json") or {}).get("generation", 0))

    def next_generation(self) -> int:
        seen = [self.committed()]
        for pattern in ("proposal-*.json", "decision-*.json"):
            seen += [int(p.stem.split("-")[1]) for p in self.dir.glob(pattern)]
        return max(seen) + 1

    @contextlib.contextmanager
    def reload_lock(self):
        """Held by the coordinator of a reload; a second reload meanwhile is refused."""
        with open(self.dir / "reload.lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def load_lock(self):
        """One worker loads at a time: the others keep a core to serve on (2 workers on 2 cores)."""
        with open(self.dir / "load.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def propose(self, generation: int, force: bool) -> None:
        _write_json(self.dir / f"proposal-{generation}.json", {"generation": generation, "force": force, "at": _now()})

    def proposals(self) -> list[dict]:
        found = [_read_json(p) for p in self.dir.glob("proposal-*.json")]
        return sorted((p for p in found if p), key=lambda p: p["generation"])

    def vote(self, generation: int, worker: int, ok: bool, reason: str) -> None:
        _write_json(self.dir / f"vote-{generation}-{worker}.json", {"worker": worker, "ok": ok, "reason": reason})

    def votes(self, generation: int) -> list[dict]:
        found = [_read_json(p) for p in self.dir.glob(f"vote-{generation}-*.json")]
        return [v for v in found if v]

    def decide(self, generation: int, commit: bool, reason: str = "") -> None:
        _write_json(self.dir / f"decision-{generation}.json", {"generation": generation, "commit": commit, "reason": reason})
        if commit:
            _write_json(self.dir / "committed.json", {"generation": generation, "at": _now()})
        (self.dir / f"proposal-{generation}.json").unlink(missing_ok=True)  # late starters need not load it

    def prune(self, before: int) -> None:
        """Remove the votes and decisions of generations older than ``before`` (one set per reload otherwise)."""
        for pattern in ("vote-*.json", "decision-*.json"):
            for p in self.dir.glob(pattern):
                try:
                    if int(p.stem.split("-")[1]) < before:
                        p.unlink(missing_ok=True)
                except ValueError:
                    continue

    def decision(self, generation: int) -> dict | None:
        return _read_json(self.dir / f"decision-{generation}.json")

    def report(self, worker: int, status: dict) -> None:
        _write_json(self.dir / f"worker-{worker}.json", {"worker": worker, "pid": os.getpid(), **status, "updated_at": _now()})

    def workers(self) -> list[dict]:
        found = [_read_json(p) for p in self.dir.glob("worker-*.json")]
        return sorted((w for w in found if w), key=lambda w: w["worker"])

    def ready_workers(self) -> list[int]:
        """The workers whose file says they serve a (warmed-up) state, and whose process is alive (a worker
        restarted by the server leaves its predecessor's file until it reports itself)."""
        return sorted({int(w["worker"]) for w in self.workers()
                       if w.get("ready") and int(w.get("pid") or 0) > 0 and _alive(int(w["pid"]))})


class GenerationCoordinator:
    """This worker's side of the protocol: follow proposals in a thread, coordinate the reloads it receives.

    ``load(force)`` gives the next ServingState (or raises); ``current()`` is the state serving;
    ``install(state, generation)`` swaps it in; ``describe(state)`` is what goes into the worker file.
    """

    def __init__(self, board: GenerationBoard, worker: int, workers: int, thresholds: ReloadThresholds,
                 load: Callable, current: Callable, install: Callable, describe: Callable, poll_s: float = 0.2):
        self.board, self.worker, self.workers, self.thresholds = board, worker, workers, thresholds
        self._load, self._current, self._install, self._describe = load, current, install, describe
        self.poll_s = poll_s
        self.generation = board.committed()
        self.last_error: str | None = None
        self._handled: set[int] = set()
        self._candidates: dict[int, object] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.report()
        self._thread = threading.Thread(target=self._follow, name="reload-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def report(self) -> None:
        self.board.report(self.worker, {"generation": self.generation, **self._describe(self._current())})

    # ---- every worker ------------------------------------------------------------------------

    def _take_part(self, generation: int, force: bool) -> bool:
        """Build and check a candidate for ``generation``; vote. False when this worker already did."""
        with self._lock:
            if generation in self._handled:
                return False
            self._handled.add(generation)
        try:
            with self.board.load_lock():
                candidate = self._load(force)
            problems = [] if force else sanity_problems(self._current(), candidate, self.thresholds)
        except Exception as err:  # noqa: BLE001 - any failure is a "no" vote with its reason
            candidate, problems = None, [str(err) or type(err).__name__]
        if problems:
            self._candidates.pop(generation, None)
            self.board.vote(generation, self.worker, False, "; ".join(problems))
        else:
            self._candidates[generation] = candidate
            self.board.vote(generation, self.worker, True, "")
        return True

    def _apply(self, generation: int, decision: dict) -> None:
        candidate = self._candidates.pop(generation, None)
        if decision.get("commit") and candidate is not None:
            self._install(candidate, generation)
            self.generation = generation
            self.last_error = None
            logger.info("worker %d switched to generation %d", self.worker, generation)
        elif not decision.get("commit"):
            self.last_error = f"{_now()}: reload to generation {generation} refused: {decision.get('reason', '')}"
        self.report()

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                for proposal in self.board.proposals():
                    g = proposal["generation"]
                    if g <= self.generation or not self._take_part(g, bool(proposal.get("force"))):
                        continue
                    deadline = time.monotonic() + self.thresholds.timeout_s + 30
                    decision = None
                    while decision is None and time.monotonic() < deadline and not self._stop.is_set():
                        decision = self.board.decision(g)
                        if decision is None:
                            time.sleep(0.05)
                    self._apply(g, decision or {"commit": False, "reason": "the coordinating worker never decided"})
            except Exception as err:  # noqa: BLE001 - the follower must survive a bad file
                logger.error("worker %d: reload follower: %s: %s", self.worker, type(err).__name__, err)

    # ---- the worker that received POST /admin/reload ---------------------------------------------

    def coordinate(self, force: bool) -> int:
        """Run one reload across all workers; the generation now serving, or ReloadRefused."""
        with self.board.reload_lock() as held:
            if not held:
                raise ReloadRefused("a reload is already running; try again when it has finished")
            g = self.board.next_generation()
            self.board.propose(g, force)
            self._take_part(g, force)
            deadline = time.monotonic() + self.thresholds.timeout_s
            votes = self.board.votes(g)
            while len(votes) < self.workers and time.monotonic() < deadline:
                time.sleep(0.05)
                votes = self.board.votes(g)
            refusals = [f"worker {v['worker']}: {v['reason']}" for v in sorted(votes, key=lambda v: v["worker"]) if not v["ok"]]
            if len(votes) < self.workers:
                refusals.append(f"only {len(votes)} of {self.workers} workers answered within {self.thresholds.timeout_s:.0f} s")
            commit = not refusals
            self.board.decide(g, commit, "; ".join(refusals))
            self.board.prune(before=g - 10)
            self._apply(g, {"commit": commit, "reason": "; ".join(refusals)})
            if not commit:
                raise ReloadRefused("; ".join(refusals))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(w.get("generation") != g for w in self.board.workers()):
                time.sleep(0.05)
            return g
