"""Dynamic batching: concurrent requests for one model grouped into shared model calls.

Requests whose items have the same key (a translator's: the prepared tensor's
shape) form a group; a group runs
as one model call once it holds `max_batch` requests, or once its oldest
request has waited `max_wait` seconds (the rule of Triton's dynamic batcher and
LitServe's `max_batch_size`/`batch_timeout`). While the model is busy, requests
keep arriving, so a loaded server forms full batches without waiting at all.

The model runs in its own single worker thread, so the event loop never blocks
and one ONNX Runtime session serves every request. Only the event loop touches
the groups, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

Infer = Callable[[Sequence[Any]], list[Any]]


@dataclass
class _Waiting:
    item: Any
    future: asyncio.Future[tuple[Any, int]]
    arrived: float  # event-loop time


class DynamicBatcher:
    """Groups `submit`ted items by `key(item)` and runs each group through `infer` on `model_thread`.

    `on_batch(n)` is told the size of every model call (the batch-size
    histogram). `close` runs whatever still waits, without waiting for
    deadlines, and stops.
    """

    def __init__(
        self,
        infer: Infer,
        key: Callable[[Any], Hashable],
        model_thread: Executor,
        max_batch: int,
        max_wait: float,
        on_batch: Callable[[int], None],
    ) -> None:
        self.infer, self.key, self.model_thread = infer, key, model_thread
        self.max_batch, self.max_wait = max_batch, max_wait
        self.on_batch = on_batch
        self.groups: dict[Hashable, deque[_Waiting]] = {}
        self.arrival = asyncio.Event()
        self.closing = False
        self.task = asyncio.get_running_loop().create_task(self._schedule(), name="gantx-batcher")

    async def submit(self, item: Any) -> tuple[Any, int]:
        """The model's output for `item`, computed in a batch with whatever else is waiting, and that batch's size."""
        future = asyncio.get_running_loop().create_future()
        arrived = asyncio.get_running_loop().time()
        self.groups.setdefault(self.key(item), deque()).append(_Waiting(item, future, arrived))
        self.arrival.set()
        return await future

    async def close(self) -> None:
        self.closing = True
        self.arrival.set()
        await self.task

    async def _schedule(self) -> None:
        while (group := await self._next_group()) is not None:
            await self._run(group)

    async def _next_group(self) -> list[_Waiting] | None:
        """The next group due to run, the one with the oldest request first; None once closing with nothing left."""
        while True:
            self._forget_abandoned()
            if not self.groups and self.closing:
                return None
            now = asyncio.get_running_loop().time()
            by_age = sorted(self.groups, key=lambda key: self.groups[key][0].arrived)
            due = [key for key in by_age if self.closing or self._full_or_late(self.groups[key], now)]
            if due:
                return self._take(due[0])
            timeout = self.groups[by_age[0]][0].arrived + self.max_wait - now if by_age else None
            self.arrival.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrival.wait(), timeout)

    def _full_or_late(self, group: deque[_Waiting], now: float) -> bool:
        return len(group) >= self.max_batch or now - group[0].arrived >= self.max_wait

    def _forget_abandoned(self) -> None:
        """A request whose client went away (its future cancelled) needs no model call."""
        for key in list(self.groups):
            live = deque(waiting for waiting in self.groups[key] if not waiting.future.done())
            if live:
                self.groups[key] = live
            else:
                del self.groups[key]

    def _take(self, key: Hashable) -> list[_Waiting]:
        group = self.groups[key]
        taken = [group.popleft() for _ in range(min(self.max_batch, len(group)))]
        if not group:
            del self.groups[key]
        return taken

    async def _run(self, group: list[_Waiting]) -> None:
        """One model call; its outputs (or its error) go to the group's requests."""
        try:
            items = [waiting.item for waiting in group]
            outputs = await asyncio.get_running_loop().run_in_executor(self.model_thread, self.infer, items)
        except Exception as error:  # noqa: BLE001 - the model failed: every request of this call gets the error, the batcher goes on
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
            return
        self.on_batch(len(group))
        for waiting, output in zip(group, outputs):
            if not waiting.future.done():
                waiting.future.set_result((output, len(group)))
