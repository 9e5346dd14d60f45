"""Reload sanity checks and the all-or-none switch across workers, with two coordinators on one board."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from serving.generations import (
    GenerationBoard,
    GenerationCoordinator,
    ReloadConfigError,
    ReloadRefused,
    ReloadThresholds,
    sanity_problems,
)


def state(customers: int, offers: int = 20, features=("visits_30d", "spend_30d"), tag: str = "a"):
    profiles = pd.DataFrame(columns=["customer_id", *features])
    return SimpleNamespace(book=SimpleNamespace(positions={f"C{i}": i for i in range(customers)}, profiles=profiles),
                           catalog=list(range(offers)), tag=tag)


def test_a_snapshot_missing_most_customers_is_refused_naming_the_counts():
    problems = sanity_problems(state(3000), state(10), ReloadThresholds())
    assert "10 customers, 0.3% of the 3,000 serving" in problems[0] and "force" in problems[-1]


def test_fewer_offers_and_a_changed_manifest_are_refused():
    problems = sanity_problems(state(100, offers=20), state(100, offers=5, features=("visits_30d",)), ReloadThresholds())
    assert any("5 offers" in p for p in problems)
    assert any("missing ['spend_30d']" in p for p in problems)


def test_thresholds_are_configurable():
    assert sanity_problems(state(100), state(40), ReloadThresholds(min_customer_ratio=0.3)) == []
    assert ReloadThresholds.from_env({"REWARDS_RELOAD_MIN_CUSTOMER_RATIO": "0.9"}).min_customer_ratio == 0.9
    with pytest.raises(ReloadConfigError, match="REWARDS_RELOAD_MIN_OFFER_RATIO"):
        ReloadThresholds.from_env({"REWARDS_RELOAD_MIN_OFFER_RATIO": "2"})


class Worker:
    """A worker's serving state and its coordinator; ``next`` is what its next load returns."""

    def __init__(self, board, index, workers=2):
        self.state, self.next = state(3000, tag="old"), state(3000, tag="new")
        self.c = GenerationCoordinator(
            board, index, workers, ReloadThresholds(timeout_s=5), load=lambda force: self._load(),
            current=lambda: self.state, install=self._install,
            describe=lambda s: {"customers": len(s.book.positions), "tag": s.tag}, poll_s=0.02)

    def _load(self):
        if isinstance(self.next, Exception):
            raise self.next
        return self.next

    def _install(self, s, generation):
        self.state = s


@pytest.fixture
def workers(tmp_path):
    board = GenerationBoard(tmp_path, server_pid=12345)
    ws = [Worker(board, 1), Worker(board, 2)]
    for w in ws:
        w.c.start()
    yield board, ws
    for w in ws:
        w.c.stop()


def test_all_workers_switch_to_the_same_generation(workers):
    board, (a, b) = workers
    assert a.c.coordinate(force=False) == 1
    assert (a.state.tag, b.state.tag) == ("new", "new")
    assert [w["generation"] for w in board.workers()] == [1, 1]


def test_one_refusing_worker_means_no_worker_switches(workers):
    board, (a, b) = workers
    b.next = state(10, tag="tiny")
    with pytest.raises(ReloadRefused, match=r"worker 2: the new profile snapshot has 10 customers"):
        a.c.coordinate(force=False)
    assert (a.state.tag, b.state.tag) == ("old", "old")
    assert [w["generation"] for w in board.workers()] == [0, 0]


def test_a_load_failure_in_a_worker_refuses_and_force_overrides_only_the_checks(workers):
    board, (a, b) = workers
    a.next = b.next = state(10, tag="tiny")
    assert a.c.coordinate(force=True) == 1
    assert (a.state.tag, b.state.tag) == ("tiny", "tiny")
    b.next = RuntimeError("profile snapshot '/x' is not usable")
    with pytest.raises(ReloadRefused, match="worker 2: profile snapshot '/x' is not usable"):
        a.c.coordinate(force=True)
    assert [w["generation"] for w in board.workers()] == [1, 1]
