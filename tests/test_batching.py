"""gantx.batching.DynamicBatcher on its own: which requests share a model call, and when it runs.

The "model" here records each call (its shapes, and the event-loop time it
started) and returns -x, so every output can be checked against its own input.
No check rests on how fast the machine is: a deadline is either far beyond any
stall (a full batch must not wait out an hour) or a lower bound that a busy
machine only makes larger.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from gantx.batching import DynamicBatcher
from gantx.translator import Prepared


def item(height: int, width: int, value: float) -> Prepared:
    return Prepared(np.full((3, height, width), value, np.float32), (0, 0, height, width), (height, width), None, False)


def shape(prepared: Prepared) -> tuple[int, ...]:
    return prepared.tensor.shape


class RecordingModel:
    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[list[tuple[int, ...]]] = []
        self.started: list[float] = []  # time.monotonic, the event loop's clock
        self.fail_on = fail_on

    def infer(self, batch):
        self.started.append(time.monotonic())
        self.calls.append([prepared.tensor.shape for prepared in batch])
        if len(self.calls) == self.fail_on:
            raise RuntimeError("the model failed")
        return [-prepared.tensor for prepared in batch]


async def run(model: RecordingModel, items: list[Prepared], max_batch: int, max_wait: float) -> tuple:
    """Submit `items` together and wait for every answer without closing the batcher (so no deadline is cut short);
    the answers, the batch sizes, and when the items were submitted (event-loop time)."""
    sizes: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as thread:
        batcher = DynamicBatcher(model.infer, shape, thread, max_batch, max_wait, sizes.append)
        submitted = asyncio.get_running_loop().time()
        answers = asyncio.gather(*(batcher.submit(prepared) for prepared in items), return_exceptions=True)
        outputs = await asyncio.wait_for(answers, NEVER)
        await batcher.close()
    return outputs, sizes, submitted


NEVER = 600.0  # seconds: a guard against a hang, far beyond any stall of a busy machine


def test_equal_shapes_share_a_call_and_other_shapes_get_their_own():
    model = RecordingModel()
    items = [item(8, 8, 0.1), item(4, 6, 0.2), item(8, 8, 0.3), item(4, 6, 0.4), item(8, 8, 0.5)]
    outputs, sizes, _ = asyncio.run(run(model, items, max_batch=8, max_wait=0.05))
    assert sorted(sorted(call) for call in model.calls) == [[(3, 4, 6)] * 2, [(3, 8, 8)] * 3]
    assert sorted(sizes) == [2, 3]
    for prepared, (output, shared) in zip(items, outputs):
        np.testing.assert_array_equal(output, -prepared.tensor)  # each request gets its own output back
        assert shared == sizes[[call[0] for call in model.calls].index(prepared.tensor.shape)]  # and its call's size


def test_a_full_group_runs_without_waiting_for_its_deadline():
    # max_wait of an hour: only a full group can run before the guard, so finishing at all proves it did not wait.
    model = RecordingModel()
    items = [item(2, 2, index / 10) for index in range(4)]
    outputs, sizes, _ = asyncio.run(run(model, items, max_batch=4, max_wait=3600))
    assert sizes == [4] and [shared for _, shared in outputs] == [4] * 4


def test_the_rest_runs_alone_once_its_oldest_request_has_waited_max_wait():
    model, max_wait = RecordingModel(), 0.3
    items = [item(2, 2, index / 10) for index in range(5)]
    outputs, sizes, submitted = asyncio.run(run(model, items, max_batch=4, max_wait=max_wait))
    assert sizes == [4, 1]  # four at once, the fifth alone: nothing else came, and no close() pushed it
    assert model.started[1] - submitted >= max_wait  # never before its deadline (a busy machine only runs it later)
    assert [shared for _, shared in outputs] == [4, 4, 4, 4, 1]


def test_a_failed_call_fails_its_requests_only():
    model = RecordingModel(fail_on=1)
    items = [item(2, 2, 0.0), item(2, 2, 0.1), item(3, 3, 0.2)]
    outputs, sizes, _ = asyncio.run(run(model, items, max_batch=2, max_wait=0.05))
    failed = [index for index, output in enumerate(outputs) if isinstance(output, RuntimeError)]
    assert len(failed) == len(model.calls[0])  # the first call's requests get its error
    assert sizes == [len(model.calls[1])]  # the batcher went on with the next call
    for index in set(range(3)) - set(failed):
        np.testing.assert_array_equal(outputs[index][0], -items[index].tensor)


def test_close_runs_what_waits_without_waiting_out_max_wait():
    model, sizes = RecordingModel(), []
    items = [item(2, 2, index / 10) for index in range(3)]

    async def scenario() -> list:
        with ThreadPoolExecutor(max_workers=1) as thread:
            batcher = DynamicBatcher(model.infer, shape, thread, 64, 3600, sizes.append)
            waiting = [asyncio.ensure_future(batcher.submit(prepared)) for prepared in items]
            await asyncio.sleep(0)  # the requests are queued
            await asyncio.wait_for(batcher.close(), NEVER)  # max_wait of an hour: only close() can have run them
            return await asyncio.gather(*waiting)

    outputs = asyncio.run(scenario())
    assert sizes == [3]
    for prepared, (output, shared) in zip(items, outputs):
        np.testing.assert_array_equal(output, -prepared.tensor)
        assert shared == 3
