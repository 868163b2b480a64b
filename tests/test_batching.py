"""gantx.batching.DynamicBatcher on its own: which requests share a model call, and when it runs.

The "model" here records each call and returns -x, so every output can be
checked against its own input.
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


class RecordingModel:
    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[list[tuple[int, ...]]] = []
        self.fail_on = fail_on

    def infer(self, batch):
        self.calls.append([prepared.tensor.shape for prepared in batch])
        if len(self.calls) == self.fail_on:
            raise RuntimeError("the model failed")
        return [-prepared.tensor for prepared in batch]


async def run(model: RecordingModel, items: list[Prepared], max_batch: int, max_wait: float) -> tuple[list, list[int], float]:
    sizes: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as thread:
        batcher = DynamicBatcher(model.infer, thread, max_batch, max_wait, sizes.append)
        started = time.monotonic()
        outputs = await asyncio.gather(*(batcher.submit(prepared) for prepared in items), return_exceptions=True)
        elapsed = time.monotonic() - started
        await batcher.close()
    return outputs, sizes, elapsed


def test_equal_shapes_share_a_call_and_other_shapes_get_their_own():
    model = RecordingModel()
    items = [item(8, 8, 0.1), item(4, 6, 0.2), item(8, 8, 0.3), item(4, 6, 0.4), item(8, 8, 0.5)]
    outputs, sizes, _ = asyncio.run(run(model, items, max_batch=8, max_wait=0.05))
    assert sorted(sorted(call) for call in model.calls) == [[(3, 4, 6)] * 2, [(3, 8, 8)] * 3]
    assert sorted(sizes) == [2, 3]
    for prepared, output in zip(items, outputs):
        np.testing.assert_array_equal(output, -prepared.tensor)  # each request gets its own output back


def test_a_full_group_runs_at_once_and_the_rest_waits_at_most_max_wait():
    model = RecordingModel()
    outputs, sizes, elapsed = asyncio.run(run(model, [item(2, 2, index / 10) for index in range(5)], max_batch=4, max_wait=0.3))
    assert sizes == [4, 1]  # four at once, the fifth after waiting out max_wait alone
    assert 0.25 < elapsed < 2


def test_a_failed_call_fails_its_requests_only():
    model = RecordingModel(fail_on=1)
    items = [item(2, 2, 0.0), item(2, 2, 0.1), item(3, 3, 0.2)]
    outputs, sizes, _ = asyncio.run(run(model, items, max_batch=2, max_wait=0.05))
    failed = [index for index, output in enumerate(outputs) if isinstance(output, RuntimeError)]
    assert len(failed) == len(model.calls[0])  # the first call's requests get its error
    assert sizes == [len(model.calls[1])]  # the batcher went on with the next call
    for index in set(range(3)) - set(failed):
        np.testing.assert_array_equal(outputs[index], -items[index].tensor)


def test_close_runs_what_waits_without_waiting_out_max_wait():
    model, sizes = RecordingModel(), []
    items = [item(2, 2, index / 10) for index in range(3)]

    async def scenario() -> tuple[list, float]:
        with ThreadPoolExecutor(max_workers=1) as thread:
            batcher = DynamicBatcher(model.infer, thread, 64, 30.0, sizes.append)
            waiting = [asyncio.ensure_future(batcher.submit(prepared)) for prepared in items]
            await asyncio.sleep(0.05)
            started = time.monotonic()
            await batcher.close()
            return await asyncio.gather(*waiting), time.monotonic() - started

    outputs, elapsed = asyncio.run(scenario())
    assert sizes == [3] and elapsed < 5
    for prepared, output in zip(items, outputs):
        np.testing.assert_array_equal(output, -prepared.tensor)
