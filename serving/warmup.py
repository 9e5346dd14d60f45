"""Warm a serving state up before it answers requests: real decisions on real profiled customers.

A fresh state's first decisions pay for work done once and then cached: the contact history's offer
positions and the budget index per catalogue (``models.policy.contacts``, 112k events on grocery),
the scorer's held-offer positions, the compiled trees' and numpy's first calls, the response
model's first serialisation. Measured in process on grocery with 1,000 active offers (3,000
households): the first decision 15-20 ms, the next ones 1-2 ms. ``warm_up`` makes those decisions
before the state serves (at start-up before ``/readyz`` says ready; on a reload before the worker
votes), over every offer channel and a spread of hours, for customers spread over the profile
snapshot plus one unknown customer (the cold-start path) and one small batch. Nothing is logged:
they are not decisions anyone receives.

``$REWARDS_WARMUP_DECISIONS`` sets how many one-customer decisions (default 48; 0 switches it off).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.policy import Context

WARMUP_ENV = "REWARDS_WARMUP_DECISIONS"
DEFAULT_DECISIONS = 48
# Hours of the day the warm-up asks at (morning, lunch, afternoon, evening: several dayparts of any program).
WARM_HOURS = (8.25, 12.5, 15.75, 19.25)
BATCH = 32  # customers in the one /recommend_batch-shaped decision
UNKNOWN_CUSTOMER = "__warm-up-unknown-customer__"


class WarmUpConfigError(ValueError):
    """$REWARDS_WARMUP_DECISIONS is not a whole number in range."""


class WarmUpError(RuntimeError):
    """A warm-up decision failed: the state would fail the same way on a request, so it must not serve."""


@dataclass(frozen=True)
class WarmUp:
    """What a warm-up did: decisions made, seconds in all, the first one's ms and the median of the last 8
    one-customer decisions of profiled customers (the unknown customer's cold start costs more by design)."""

    decisions: int
    seconds: float
    first_ms: float
    last_ms: float

    def describe(self) -> str:
        return (f"{self.decisions} decisions in {self.seconds:.2f} s (first {self.first_ms:.1f} ms, "
                f"median of the last 8 {self.last_ms:.1f} ms)")


def decisions_from_env(env: dict | None = None) -> int:
    raw = (env if env is not None else os.environ).get(WARMUP_ENV, "").strip()
    if not raw:
        return DEFAULT_DECISIONS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 10_000:
        raise WarmUpConfigError(f"${WARMUP_ENV} must be a whole number between 0 and 10000 (0: no warm-up), got {raw!r}")
    return value


def warm_contexts(state) -> list[Context]:
    """One context per (offer channel, hour of WARM_HOURS), on the day after the profiles' cut (when requests come)."""
    vocabulary = state.catalog.vocabulary
    as_of = pd.Timestamp(state.profiles_as_of) if state.profiles_as_of else pd.NaT
    day = (as_of.normalize() if not pd.isna(as_of) else pd.Timestamp.now().normalize()) + pd.Timedelta(days=1)
    return [Context(day + pd.Timedelta(hours=h), channel, None, vocabulary=vocabulary)
            for h in WARM_HOURS for channel in vocabulary.offer_channels]


def warm_customers(state, n: int) -> list[str]:
    """``n`` profiled customer ids spread evenly over the snapshot (every region of the stored rows)."""
    ids = list(state.book.positions)
    if not ids or n <= 0:
        return []
    picks = np.linspace(0, len(ids) - 1, num=min(n, len(ids))).round().astype(int)
    return [ids[i] for i in dict.fromkeys(picks.tolist())]


def warm_up(state, decisions: int | None = None, respond: Callable | None = None, k: int = 3) -> WarmUp:
    """Make ``decisions`` one-customer decisions (default ``$REWARDS_WARMUP_DECISIONS``) on ``state``,
    rotating over ``warm_contexts``, then one for an unknown customer and one batch of BATCH customers.
    ``respond(state, record)`` is called on each one-customer record (the service builds its response
    from it). Raises WarmUpError naming the context and customer when a decision fails."""
    n = decisions_from_env() if decisions is None else decisions
    if n <= 0:
        return WarmUp(0, 0.0, 0.0, 0.0)
    contexts = warm_contexts(state)
    if not contexts:  # a program without offer channels: no request can name one either
        return WarmUp(0, 0.0, 0.0, 0.0)
    customers = warm_customers(state, n) or [UNKNOWN_CUSTOMER]
    started = time.perf_counter()
    times: list[float] = []
    plan = [(customers[i % len(customers)], contexts[i % len(contexts)]) for i in range(n)]
    plan.append((UNKNOWN_CUSTOMER, contexts[0]))
    for customer, ctx in plan:
        t0 = time.perf_counter()
        try:
            record = state.decide([customer], ctx, k).records()[0]
            if respond is not None:
                respond(state, record)
        except Exception as err:  # noqa: BLE001 - any failure means this state cannot serve
            raise WarmUpError(f"warm-up decision for customer {customer!r} at {ctx.timestamp} on channel "
                              f"{ctx.channel!r} failed: {type(err).__name__}: {err}") from err
        times.append((time.perf_counter() - t0) * 1000)
    batch = customers[:BATCH]
    try:
        state.decide(batch, contexts[-1], k).records()
    except Exception as err:  # noqa: BLE001
        raise WarmUpError(f"warm-up batch decision of {len(batch)} customers failed: {type(err).__name__}: {err}") from err
    profiled = times[:-1] if len(times) > 1 else times
    return WarmUp(len(plan) + 1, time.perf_counter() - started, times[0], float(np.median(profiled[-8:])))
