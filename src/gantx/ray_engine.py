"""Translate folders on a Ray cluster with Ray Data: many machines, one model load per actor.

Named apart from the `ray` package it builds on. Ray Data carries only the
list of (source, target) paths. Each actor of a fixed pool loads the model
once with `gantx.Translator` and hands every batch of paths to
`gantx.pipeline.translate_files`, the code the local engine runs (its
`workers` threads decode and encode), so outputs are identical and written
atomically where the actor runs; what comes back is one status row per file.
An actor whose process dies (OOM, kill -9) is restarted by Ray and its batch
retried, so a run loses nothing but time; the temporary files such an actor
was writing are removed when the run ends.

Input and output paths must mean the same file on every node: local paths on
one machine, or a shared filesystem (NFS) mounted at the same place.

    with gantx.ray_engine.connect("auto"):
        for status in gantx.ray_engine.translate_paths(jobs, "horse2zebra.onnx", gpus_per_actor=1):
            ...
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
import ray.data

from gantx.errors import GantxError, first_line
from gantx.images import remove_temporaries
from gantx.inputs import FileJob
from gantx.pipeline import translate_files
from gantx.settings import RunSettings
from gantx.translator import Translator

# A batch whose actor dies is run again on a restarted actor up to this many
# times; a file that kills its actor every time then stops the run instead of
# looping forever (finished outputs stay, a re-run resumes).
TASK_RETRIES = 3
# Model batches per actor call: enough for translate_files to overlap decoding
# and writing with the model, few enough that a lost actor costs little.
MODEL_BATCHES_PER_CALL = 4
# Every block is one object in Ray's object store and one unit of retry.
MAX_BLOCKS = 10_000
# Work is dealt out once every actor has loaded the model, so the first one up does not queue most of a
# small run; generous, since a TensorRT engine build takes minutes (the pool was checked to fit).
ACTORS_READY_WITHIN_S = 3600


class TranslateBatch:
    """Ray Data callable class: loads the model once per actor, then translates batches of paths.

    Takes and returns batches as dicts of numpy arrays: in, `source` and
    `target` (paths as strings); out, those plus `error` ("" when the file
    was translated, else its one-line reason), `node` (the Ray node id) and
    `actor_pid` (the actor's process id). `workers` are the threads that
    decode and encode files in each actor. Paths, the model's too, are best
    absolute: actors do not run in the caller's folder. Usable in any Ray
    Data pipeline:

        ds.map_batches(
            TranslateBatch,
            fn_constructor_kwargs={"model": "/models/m.onnx", "settings": gantx.RunSettings(threads=1)},
            batch_size=32, compute=ray.data.ActorPoolStrategy(size=4), num_gpus=1,
        )
    """

    def __init__(self, model: str, settings: RunSettings | None = None, workers: int | None = None) -> None:
        self.translator = Translator(model, settings)
        self.workers = workers
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        jobs = [FileJob(Path(source), Path(target)) for source, target in zip(batch["source"], batch["target"])]
        errors: list[str | None] = []  # translate_files reports in input order
        translate_files(self.translator, jobs, lambda _, error: errors.append(error), self.workers)
        return {
            "source": batch["source"],
            "target": batch["target"],
            "error": np.array([error or "" for error in errors], dtype=object),  # a column of None would become NaN
            "node": np.full(len(jobs), self.node, dtype=object),
            "actor_pid": np.full(len(jobs), os.getpid()),
        }


@dataclass(frozen=True)
class FileStatus:
    """What became of one job on the cluster, and where."""

    job: FileJob
    error: str | None  # None: translated; else the one line naming the file as `job` does
    node: str  # Ray node id
    actor_pid: int  # process id of the actor that translated it


@contextlib.contextmanager
def connect(address: str | None = None, *, verbose: bool = False) -> Iterator[None]:
    """Join the cluster at `address` (`auto`: the one this machine belongs to), or start a local Ray instance.

    A local instance gets its own temporary folder (its logs with it) and no
    dashboard, and is stopped when the block ends. Every file's outcome comes
    back as a status, so Ray's Python loggers say only errors here, and the
    actors' output stays in Ray's log files on their nodes: an actor's
    traceback repeated on the caller's terminal would bury the one line that
    says what stopped a run. `verbose` prints both here, as Ray does by
    default. A process already connected to Ray (a Ray program calling gantx)
    keeps its connection, and its logging, as they are.
    """
    if ray.is_initialized():
        yield
        return
    if address not in (None, "auto"):
        check_reachable(address)
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger("ray.data").setLevel(level)  # Ray Data's logger has its own console, apart from Ray's
    scratch = None
    try:
        if address is None:
            scratch = tempfile.mkdtemp(prefix="gantx-ray-")
            ray.init(
                address="local", include_dashboard=False, _temp_dir=scratch, logging_level=level, log_to_driver=verbose
            )
        else:
            ray.init(address=address, logging_level=level, log_to_driver=verbose)
    except (ConnectionError, ValueError, RuntimeError) as error:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise GantxError(f"cannot reach {where}: {first_line(error)}") from None
    try:
        yield
    finally:
        ray.shutdown()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def check_reachable(address: str) -> None:
    """Fail in seconds when nothing listens at HOST:PORT; ray.init would retry for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except ValueError:
        raise GantxError(f"--ray-address {address!r}: expected HOST:PORT or auto") from None
    except OSError as error:
        raise GantxError(f"cannot reach the Ray cluster at {address}: {first_line(error)}") from None


def actors_that_fit(cpus_per_actor: int, gpus_per_actor: float) -> int:
    """How many actors of this size the connected cluster holds now: one per GPU share, else per CPU share."""
    resources = ray.cluster_resources()
    if gpus_per_actor > 0:
        return int(resources.get("GPU", 0) // gpus_per_actor)
    return int(resources.get("CPU", 0) // cpus_per_actor)


class CheckedModel(str):
    """A model as every actor must name it, loaded here by `checked_model`, which then does not load it again."""


def checked_model(model: str | os.PathLike[str], settings: RunSettings = RunSettings()) -> CheckedModel:
    """`model` as every actor must name it (a file's absolute path, or a bundled model's name), once loaded here.

    Loaded on the CPU, which any machine has: an unusable model is one
    GantxError before Ray is involved, rather than one per actor. Needs no
    connection, so the CLI calls it before starting Ray, and `translate_paths`
    takes what it returns without loading the model a second time.
    """
    if isinstance(model, CheckedModel):
        return model
    # Only what the check needs: the actors' GPU options and precision are theirs to honour, not this machine's.
    Translator(model, settings.replace(provider="cpu", threads=1, precision="fp32", cuda_graph=False))
    return CheckedModel(os.path.abspath(model) if os.path.exists(model) else os.fspath(model))


def translate_paths(
    jobs: Sequence[FileJob],
    model: str | os.PathLike[str],
    settings: RunSettings = RunSettings(),
    *,
    workers: int | None = None,
    actors: int | None = None,
    gpus_per_actor: float = 0.0,
) -> Iterator[FileStatus]:
    """Translate `jobs` on the connected Ray cluster (see `connect`): one status per job, as batches finish.

    Each actor runs the model as `settings` say, reserving `settings.threads`
    CPUs (default 1) and running ONNX Runtime on that many threads, plus
    `gpus_per_actor` GPUs, with `workers` threads decoding and encoding files;
    `actors` defaults to as many as the cluster holds. The model (unless
    `checked_model` gave it) and the pool are checked in this call, before
    anything runs. Iterating runs the job: a failed file is a status with its one-line
    reason; a batch that fails (its actor died more than TASK_RETRIES times,
    or the model itself failed) stops the run with a GantxError.
    """
    if not jobs:
        return iter(())
    cpus = settings.threads or 1
    settings = settings.replace(threads=cpus)
    model_for_actors = checked_model(model, settings)
    fits = actors_that_fit(cpus, gpus_per_actor)
    pool = actors or fits
    if pool < 1 or pool > fits:
        need = f"{gpus_per_actor:g} GPU" if gpus_per_actor > 0 else f"{cpus} CPU"
        raise GantxError(f"{actors or 1} actor(s) of {need} each do not fit the Ray cluster now ({fits} would)")
    # Small runs get shorter calls, so that every actor has some; and no actor more than there are calls.
    batch_size = settings.batch_size
    rows_per_call = batch_size * max(1, min(MODEL_BATCHES_PER_CALL, math.ceil(len(jobs) / (pool * batch_size))))
    blocks = min(MAX_BLOCKS, math.ceil(len(jobs) / rows_per_call))
    # Actors do not share the caller's working folder (on a `ray start` node it is Ray's own): absolute paths.
    paths = [{"source": os.fspath(job.source.absolute()), "target": os.fspath(job.target.absolute())} for job in jobs]
    # from_items builds its blocks in this process; from_arrow computes their metadata in Ray tasks, and with
    # pyarrow 26 those abort at start here (an abseil mutex check), which Ray retries noisily.
    dataset = ray.data.from_items(paths, override_num_blocks=blocks)
    context = dataset.context
    context.enable_progress_bars = False  # the caller shows progress from the status rows
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # nor say, every run, that they are off
    context.print_on_execution_start = False
    context.max_errored_blocks = 0  # a failed batch is an error to report, never results silently missing
    context.actor_task_retry_on_errors = False  # an exception in TranslateBatch is a bug or a broken model: not retried
    context.wait_for_min_actors_s = ACTORS_READY_WITHIN_S
    with warnings.catch_warnings():
        # Ray 2.60 takes max_restarts and max_task_retries only through its catch-all keywords, which it
        # deprecates without a named replacement for these two (pyproject keeps ray below 2.64, announced to drop them).
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
        statuses = dataset.map_batches(
            TranslateBatch,
            fn_constructor_kwargs={"model": model_for_actors, "settings": settings, "workers": workers},
            batch_size=rows_per_call,
            compute=ray.data.ActorPoolStrategy(size=min(pool, blocks)),
            num_cpus=cpus,
            num_gpus=gpus_per_actor or None,
            # A killed actor comes back (and loads the model again); its unfinished batches are retried on it.
            # Ray's core then says, once per actor, that restarts and arguments in the object store may not
            # mix (ray-project/ray#57733): Ray Data passes its own there, whatever the caller does.
            max_restarts=-1,
            max_task_retries=TASK_RETRIES,
        )
    return statuses_as_they_come(statuses, jobs)


def statuses_as_they_come(statuses: ray.data.Dataset, jobs: Sequence[FileJob]) -> Iterator[FileStatus]:
    """Run the dataset of status rows and hand each job's status on once; temporaries are swept when all is done."""
    pending = {os.fspath(job.target.absolute()): job for job in jobs}
    try:
        for batch in statuses.iter_batches(batch_size=None, batch_format="numpy"):
            rows = zip(batch["target"], batch["error"], batch["node"], batch["actor_pid"])
            for target, error, node, actor_pid in rows:
                job = pending.pop(target, None)
                if job is not None:  # a retried batch may report a file again
                    yield FileStatus(job, named_as_given(error, job) if error else None, node, int(actor_pid))
    except ray.exceptions.ActorUnavailableError:  # what Ray raises once a batch has used up its retries
        died = (
            f"an actor died {TASK_RETRIES + 1} times on one batch "
            "(out of memory, or a file that crashes it: see Ray's logs on its node)"
        )
        raise GantxError(f"the Ray run stopped: {died}; finished outputs are kept") from None
    except ray.exceptions.RayError as error:
        raise GantxError(
            f"the Ray run stopped: {root_cause(error)}; finished outputs are kept, run again to resume"
        ) from None
    remove_temporaries(job.target for job in jobs)  # every batch is done: what is left was a killed actor's


def named_as_given(error: str, job: FileJob) -> str:
    """An actor's failure line with the absolute paths it was sent written as `job` gives them.

    The local engine names a failed file by the path the user gave (in gantx's
    words and in the decoder's); so, then, does this one. The longer path goes
    first, in case the other is a part of it.
    """
    for given in sorted((job.source, job.target), key=lambda path: len(os.fspath(path.absolute())), reverse=True):
        error = error.replace(os.fspath(given.absolute()), os.fspath(given))
    return error


def root_cause(error: BaseException) -> str:
    """The last line of Ray's report (the original exception, under the remote traceback)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
