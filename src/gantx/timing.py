"""Timing engines or models against each other on a shared machine: each call in turn, round after round.

Load from elsewhere (a training job, another helper) then slows every
contender alike, so their ratios hold. One loop for `gantx bench`, `auto`'s
engine choice (gantx.engine_choice) and the exporters' int8 speed check.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence


def time_in_turn(
    calls: Sequence[Callable[[], object]], rounds: int, warmup: int = 0, budget_s: float = math.inf
) -> list[list[float]]:
    """Seconds each call took in each round, after `warmup` untimed rounds.

    Rounds stop early once `budget_s` is spent on timed ones: every call has at least one time.
    """
    for _ in range(warmup):
        for call in calls:
            call()
    times: list[list[float]] = [[] for _ in calls]
    started = time.perf_counter()
    for _ in range(rounds):
        for call, spent in zip(calls, times):
            began = time.perf_counter()
            call()
            spent.append(time.perf_counter() - began)
        if time.perf_counter() - started > budget_s:
            break
    return times
