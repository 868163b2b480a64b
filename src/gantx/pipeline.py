"""Translate many files with decoding and encoding overlapped with inference.

Worker threads read and prepare images and write results while the calling
thread feeds the model. Both queues are bounded, so memory stays flat however
many files there are, and results are written in input order.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from gantx.errors import InputError
from gantx.images import open_image, save_image
from gantx.translator import Prepared, Translator


@dataclass(frozen=True)
class FileJob:
    source: Path
    target: Path


# Called once per job with None on success or the one-line reason it failed.
Report = Callable[[FileJob, "str | None"], None]


def default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2)))


def translate_files(translator: Translator, jobs: Iterable[FileJob], report: Report, workers: int | None = None) -> None:
    """Translate each job's source into its target; one bad file never stops the rest."""
    window = 2 * translator.batch_size  # decoded images waiting for the model, and results waiting for disk
    pending_reads: deque[tuple[FileJob, Future[Prepared]]] = deque()
    pending_writes: deque[tuple[FileJob, Future[None]]] = deque()
    job_iter = iter(jobs)

    def read(job: FileJob) -> Prepared:
        return translator.prepare(open_image(job.source))

    def write(job: FileJob, prepared: Prepared, output) -> None:
        save_image(translator.finish(prepared, output), job.target)

    def settle(queue: deque, keep: int) -> None:
        while len(queue) > keep:
            job, future = queue.popleft()
            try:
                future.result()
                report(job, None)
            except (InputError, OSError) as error:
                report(job, _one_line(error, job))

    with ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="gantx-io") as pool:
        try:
            exhausted = False
            while True:
                while not exhausted and len(pending_reads) < window:
                    job = next(job_iter, None)
                    if job is None:
                        exhausted = True
                    else:
                        pending_reads.append((job, pool.submit(read, job)))
                if not pending_reads:
                    break
                batch: list[tuple[FileJob, Prepared]] = []
                while pending_reads and len(batch) < translator.batch_size:
                    job, future = pending_reads.popleft()
                    try:
                        batch.append((job, future.result()))
                    except (InputError, OSError) as error:
                        report(job, _one_line(error, job))
                if batch:
                    outputs = translator.infer([prepared for _, prepared in batch])
                    for (job, prepared), output in zip(batch, outputs):
                        pending_writes.append((job, pool.submit(write, job, prepared, output)))
                settle(pending_writes, window)
            settle(pending_writes, 0)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _one_line(error: BaseException, job: FileJob) -> str:
    if isinstance(error, InputError):
        return str(error)
    return f"{job.target}: cannot write ({error})" if isinstance(error, OSError) else f"{job.source}: {error}"
