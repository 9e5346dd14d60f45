"""The warm-up a serving state gets before it serves, and the board's view of which workers are ready."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from serving.generations import GenerationBoard
from serving.warmup import (
    BATCH,
    UNKNOWN_CUSTOMER,
    WarmUpConfigError,
    WarmUpError,
    decisions_from_env,
    warm_contexts,
    warm_up,
)


class Recorder:
    """A serving state's surface (catalogue vocabulary, book, decide) that records what it is asked."""

    def __init__(self, customers: int = 100, channels=("app", "email"), fail_on: str | None = None):
        self.catalog = SimpleNamespace(vocabulary=SimpleNamespace(offer_channels=channels))
        self.book = SimpleNamespace(positions={f"C{i:03d}": i for i in range(customers)})
        self.profiles_as_of = "2026-06-30T00:00:00"
        self.calls: list[tuple[list[str], object]] = []
        self.fail_on = fail_on

    def decide(self, customer_ids, context, k, offer_ids=None):
        self.calls.append((list(customer_ids), context))
        if self.fail_on in customer_ids:
            raise ValueError("no rows for this customer")
        return SimpleNamespace(records=lambda: [{"customer_id": c, "offers": []} for c in customer_ids])


def test_the_warm_up_covers_every_channel_and_hour_spread_customers_an_unknown_one_and_a_batch():
    state = Recorder()
    responded = []
    done = warm_up(state, decisions=16, respond=lambda s, record: responded.append(record["customer_id"]))
    singles = [(ids[0], ctx) for ids, ctx in state.calls if len(ids) == 1]
    assert done.decisions == 16 + 1 + 1 == len(state.calls)
    assert {(ctx.channel, ctx.hour) for _, ctx in singles} == {(c, h) for c in ("app", "email") for h in (8.25, 12.5, 15.75, 19.25)}
    profiled = [c for c, _ in singles if c != UNKNOWN_CUSTOMER]
    assert profiled[0] == "C000" and profiled[-1] == "C099" and len(set(profiled)) == 16  # spread over the snapshot
    assert singles[-1][0] == UNKNOWN_CUSTOMER and responded[-1] == UNKNOWN_CUSTOMER and len(responded) == 17
    assert len(state.calls[-1][0]) == min(BATCH, 16)
    # requests come after the profiles' cut: the warm-up asks on the day after it
    assert all(ctx.timestamp.normalize() == pd.Timestamp("2026-07-01") for _, ctx in singles)


def test_a_failing_warm_up_decision_names_the_customer_and_context():
    # the 40th decision: the last customer, in the last context (19:15 on the second channel)
    with pytest.raises(WarmUpError, match=r"customer 'C099' at 2026-07-01 19:15:00 on channel 'email' failed: ValueError: no rows"):
        warm_up(Recorder(fail_on="C099"), decisions=40)


def test_no_decisions_and_no_offer_channels_mean_no_warm_up():
    assert warm_up(Recorder(), decisions=0).decisions == 0
    state = Recorder(channels=())
    assert warm_contexts(state) == [] and warm_up(state, decisions=10).decisions == 0 and state.calls == []


def test_the_number_of_decisions_comes_from_the_environment():
    assert decisions_from_env({}) == 48
    assert decisions_from_env({"REWARDS_WARMUP_DECISIONS": "0"}) == 0
    with pytest.raises(WarmUpConfigError, match=r"REWARDS_WARMUP_DECISIONS must be a whole number .* got 'lots'"):
        decisions_from_env({"REWARDS_WARMUP_DECISIONS": "lots"})


def test_only_workers_that_serve_and_are_alive_count_as_ready(tmp_path):
    board = GenerationBoard(tmp_path, server_pid=os.getpid())
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(gone.stdout)
    board.report(1, {"ready": True})  # this process: alive
    (board.dir / "worker-2.json").write_text(f'{{"worker": 2, "pid": {dead_pid}, "ready": true}}')  # a restarted worker's predecessor
    (board.dir / "worker-3.json").write_text(f'{{"worker": 3, "pid": {os.getpid()}, "ready": false}}')  # still loading
    assert board.ready_workers() == [1]
    board.report(3, {"ready": True})
    assert board.ready_workers() == [1, 3]
