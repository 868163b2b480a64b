"""Translate streams of images with decoding and encoding overlapped with inference.

Worker threads load and prepare inputs, and finish and store outputs, while the
calling thread feeds the model. Every queue is bounded, so memory stays flat
however many files or frames there are, and results come back in input order.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional, TypeVar

from gantx.errors import InputError
from gantx.images import open_image, save_image

if TYPE_CHECKING:
    from gantx.translator import ImageLike, Prepared, Translator

T = TypeVar("T")
_END = object()


@dataclass(frozen=True)
class FileJob:
    source: Path
    target: Path


# Called once per job with None on success or the one-line reason it failed.
Report = Callable[[FileJob, "str | None"], None]


def default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2)))


def translate_ordered(
    translator: Translator,
    items: Iterable[T],
    load: Callable[[T], Prepared],
    store: Optional[Callable[[T, ImageLike], object]] = None,
    workers: int | None = None,
) -> Iterator[tuple[T, Future]]:
    """Yield `(item, done future)` in input order; the future holds what `store` returned
    (the translated image when there is no `store`) or the error of `load`/`store`.

    `load` and finish+`store` run in a thread pool; at most two batches wait on
    either side of the model.
    """
    window = 2 * translator.batch_size
    loads: deque[tuple[T, Future[Prepared]]] = deque()
    results: deque[tuple[T, Future]] = deque()
    iterator = iter(items)

    def finish(item: T, prepared: Prepared, output) -> object:
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
                    yield results.popleft()  # hand on what is ready; wait only when the window is full
            while results:
                yield results.popleft()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            _close(iterator)  # a source that was not read to the end (a decoder thread) stops now


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
        except BaseException as error:  # handed to the consumer
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


def translate_files(translator: Translator, jobs: Iterable[FileJob], report: Report, workers: int | None = None) -> None:
    """Translate each job's source into its target; one bad file never stops the rest."""

    def load(job: FileJob) -> Prepared:
        return translator.prepare(open_image(job.source))

    def store(job: FileJob, image) -> None:
        save_image(image, job.target)

    for job, outcome in translate_ordered(translator, jobs, load, store, workers):
        try:
            outcome.result()
            report(job, None)
        except (InputError, OSError) as error:
            report(job, _one_line(error, job))


def _one_line(error: BaseException, job: FileJob) -> str:
    if isinstance(error, InputError):
        return str(error)
    return f"{job.target}: cannot write ({error})" if isinstance(error, OSError) else f"{job.source}: {error}"
