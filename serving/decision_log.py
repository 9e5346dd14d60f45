"""The decision log: one JSON line per customer decision, appended, so redemptions can be attributed.

Written 0600 (it holds member ids), rotated by size: past ``max_bytes`` the file becomes ``NAME.1``
(``NAME.1`` -> ``NAME.2`` ..., the oldest beyond ``keep`` removed). Several workers append to the
same file; the one that finds it over the cap rotates it under a lock, the others notice the new
file on their next append and reopen it.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

MAX_MB_ENV = "REWARDS_DECISION_LOG_MAX_MB"
KEEP_ENV = "REWARDS_DECISION_LOG_KEEP"
DEFAULT_MAX_MB = 100.0
DEFAULT_KEEP = 5
MODE = 0o600


def rotation_from_env(env: dict | None = None) -> tuple[int, int]:
    """(max_bytes, keep) from $REWARDS_DECISION_LOG_MAX_MB and $REWARDS_DECISION_LOG_KEEP."""
    env = env if env is not None else os.environ
    try:
        max_mb = float(env.get(MAX_MB_ENV, "") or DEFAULT_MAX_MB)
        keep = int(env.get(KEEP_ENV, "") or DEFAULT_KEEP)
    except ValueError as err:
        raise ValueError(f"${MAX_MB_ENV} must be a number of MB and ${KEEP_ENV} a whole number of files: {err}") from err
    if max_mb <= 0 or keep < 1:
        raise ValueError(f"${MAX_MB_ENV} must be > 0 and ${KEEP_ENV} >= 1, got {max_mb} and {keep}")
    return int(max_mb * 2**20), keep


class DecisionLog:
    """Append-only JSON lines. One ``os.write`` per call on an O_APPEND file: workers never interleave lines."""

    def __init__(self, path: Path, max_bytes: int | None = None, keep: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        default_max, default_keep = rotation_from_env()
        self.max_bytes = default_max if max_bytes is None else max_bytes
        self.keep = default_keep if keep is None else keep
        self._lock = threading.Lock()
        self._fd = self._open()

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, MODE)
        os.fchmod(fd, MODE)  # an existing file keeps its mode otherwise
        return fd

    def rotated(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        data = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in records).encode()
        with self._lock:
            self._follow_rotation()
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if os.fstat(self._fd).st_size > self.max_bytes:
                self._rotate()

    def _follow_rotation(self) -> None:
        """Another worker rotated (or someone removed) the file: write to the new one."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(self._fd)
        if current is None or (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
            os.close(self._fd)
            self._fd = self._open()

    def _rotate(self) -> None:
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = os.stat(self.path)
                mine = os.fstat(self._fd)
                if (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev) and current.st_size > self.max_bytes:
                    self.rotated(self.keep).unlink(missing_ok=True)
                    for n in range(self.keep - 1, 0, -1):
                        if self.rotated(n).exists():
                            os.replace(self.rotated(n), self.rotated(n + 1))
                    os.replace(self.path, self.rotated(1))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = self._open()

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
