"""Translate streams of images with decoding and encoding overlapped with inference.

Worker threads load and prepare inputs, and finish and store outputs, while the
calling thread feeds the model. Every queue is bounded, so memory stays flat
however many files or frames there are, and results come back in input order.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from queue import Empty, Full, Queue
from typing import Any, Protocol, TypeVar

import numpy as np

from gantx.errors import InputError, first_line
from gantx.images import open_image, save_image
from gantx.inputs import FileJob

T = TypeVar("T")
P = TypeVar("P")
_END = object()


class BatchModel(Protocol[P]):
    """What the pipeline needs of a model: prepared items in, outputs out (gantx.Translator is one)."""

    batch_size: int

    def infer(self, batch: Sequence[P]) -> list[np.ndarray]: ...

    def finish(self, prepared: P, output: np.ndarray) -> Any: ...


# Called once per file job with None on success or the one-line reason it failed.
FileReport = Callable[[FileJob, str | None], None]


def default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2)))


def translate_ordered(
    translator: BatchModel[P],
    items: Iterable[T],
    load: Callable[[T], P],
    store: Callable[[T, Any], object] | None = None,
    workers: int | None = None,
) -> Iterator[tuple[T, Future]]:
    """Yield `(item, done future)` in input order; the future holds what `store` returned
    (the translated image when there is no `store`) or the error of `load`/`store`.

    `load` and finish+`store` run in a thread pool; at most two batches wait on
    either side of the model.
    """
    window = 2 * translator.batch_size
    loads: deque[tuple[T, Future[P]]] = deque()
    results: deque[tuple[T, Future]] = deque()
    iterator = iter(items)

    def finish(item: T, prepared: P, output: np.ndarray) -> object:
        image = translator.finish(prepared, output)
        return image if store is None else store(item, image)

    with ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="gantx-io") as pool:
        try:
            exhausted = False
            while True:
                while not exhausted and len(loads) < window:
                    item = next(iterator, _END)
                    exhausted = item is _END
                    if not exhausted:
                        loads.append((item, pool.submit(load, item)))
                if not loads:
                    break
                chunk = [loads.popleft() for _ in range(min(translator.batch_size, len(loads)))]
                ready = [(item, future.result()) for item, future in chunk if future.exception() is None]
                outputs = iter(translator.infer([prepared for _, prepared in ready]) if ready else [])
                for item, future in chunk:  # failed loads keep their place in the order
                    if future.exception() is None:
                        future = pool.submit(finish, item, future.result(), next(outputs))
                    results.append((item, future))
                while results and (len(results) > window or results[0][1].done()):
                    yield _when_done(results)  # hand on what is ready; wait only when the window is full
            while results:
                yield _when_done(results)
        except GeneratorExit:  # the consumer stopped early
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        except BaseException:  # Ctrl-C or the model failed: what was already finished and written is still handed on
            pool.shutdown(wait=True, cancel_futures=True)
            yield from ((item, future) for item, future in results if not future.cancelled())
            raise
        finally:
            _close(iterator)  # a source that was not read to the end (a decoder thread) stops now


def _when_done(results: deque[tuple[T, Future]]) -> tuple[T, Future]:
    """The first result, once its future is done.

    Waiting here in the generator, not in the consumer, a Ctrl-C meanwhile
    still hands on every file already written, so the summary counts it.
    """
    wait([results[0][1]])
    return results.popleft()


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """Iterate `items` in a background thread, at most `depth` ahead of the consumer.

    Sequential sources (a video decoder) then overlap with the model; an error
    in the source is raised in the consumer, and a consumer that stops early
    stops the thread.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put((done, error))
        finally:
            _close(iterator)

    thread = threading.Thread(target=produce, name="gantx-decode", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item, error = queue.get(timeout=0.1)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    return
                continue
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _close(iterator: Iterator) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


class Preparer(BatchModel[P], Protocol[P]):
    def prepare(self, image: Any) -> P: ...


def translate_files(
    translator: Preparer[P], jobs: Iterable[FileJob], report: FileReport, workers: int | None = None
) -> None:
    """Translate each job's source into its target; one bad file never stops the rest.

    Whatever goes wrong while reading, preparing, finishing or writing one file
    is that file's one-line failure; only the model itself (`infer`) and Ctrl-C
    end the run.
    """

    def load(job: FileJob) -> P:
        return translator.prepare(open_image(job.source))

    def store(job: FileJob, image: Any) -> None:
        save_image(image, job.target)

    for job, outcome in translate_ordered(translator, jobs, load, store, workers):
        error = outcome.exception()
        report(job, None if error is None else file_failure(error, job))


def file_failure(error: BaseException, job: FileJob) -> str:
    """The one line that names what went wrong with `job`."""
    if isinstance(error, InputError):
        return str(error) if str(error).startswith(str(job.source)) else f"{job.source}: {error}"
    if isinstance(error, OSError):
        return f"{job.target}: cannot write ({first_line(error)})"
    return f"{job.source}: {type(error).__name__}: {first_line(error)}"
