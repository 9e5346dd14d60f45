"""The decision log: appended JSON lines, written 0600, rotated by size keeping N files."""

from __future__ import annotations

import json
import stat

import pytest

from serving.decision_log import DecisionLog, rotation_from_env


def test_lines_are_appended_and_the_file_is_private(tmp_path):
    path = tmp_path / "decisions.jsonl"
    path.write_text("")
    path.chmod(0o644)  # an existing world-readable file is tightened too
    log = DecisionLog(path, max_bytes=10_000, keep=2)
    log.append([{"customer_id": "C1"}, {"customer_id": "C2"}])
    assert [json.loads(x)["customer_id"] for x in path.read_text().splitlines()] == ["C1", "C2"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_log_rotates_by_size_and_keeps_n_files(tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, max_bytes=1_000, keep=2)
    for i in range(100):
        log.append([{"customer_id": f"C{i:04d}", "pad": "x" * 80}])
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert files == ["decisions.jsonl", "decisions.jsonl.1", "decisions.jsonl.2"]
    assert all(p.stat().st_size <= 1_000 + 200 for p in tmp_path.glob("decisions.jsonl*"))
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in tmp_path.glob("decisions.jsonl*"))
    newest = [json.loads(x)["customer_id"] for x in path.read_text().splitlines()]
    assert newest[-1] == "C0099"


def test_a_second_writer_follows_the_rotation(tmp_path):
    path = tmp_path / "decisions.jsonl"
    a, b = DecisionLog(path, max_bytes=500, keep=3), DecisionLog(path, max_bytes=500, keep=3)
    for i in range(20):
        (a if i % 2 else b).append([{"customer_id": f"C{i:02d}", "pad": "x" * 60}])
    lines = [json.loads(x)["customer_id"] for p in tmp_path.glob("decisions.jsonl*") for x in p.read_text().splitlines()]
    assert sorted(lines) == [f"C{i:02d}" for i in range(20)]  # nothing lost across the rotations (3 kept)


def test_rotation_settings_come_from_the_environment():
    assert rotation_from_env({"REWARDS_DECISION_LOG_MAX_MB": "1", "REWARDS_DECISION_LOG_KEEP": "3"}) == (2**20, 3)
    with pytest.raises(ValueError, match="REWARDS_DECISION_LOG_KEEP"):
        rotation_from_env({"REWARDS_DECISION_LOG_KEEP": "0"})
