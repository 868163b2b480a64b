"""`gantx translate ... --engine ray`: the images mode of `gantx translate` on a Ray cluster (gantx.ray_engine).

Ray is the optional `ray` extra, imported only when this engine is chosen.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from rich.console import Console

from gantx.cli.progress import Tally, images_report
from gantx.errors import GantxError
from gantx.extras import import_extra
from gantx.inputs import FileJob
from gantx.settings import RunSettings, one_of

Engine = Literal["local", "ray"]


@dataclass(frozen=True)
class RayEngine:
    """Where and how wide a Ray run goes, how much of Ray it shows: --ray-address, --actors, --gpus-per-actor, -v."""

    address: str | None
    actors: int | None
    gpus_per_actor: float
    verbose: bool


def choose_engine(
    engine: str, address: str | None, actors: int | None, gpus_per_actor: float, verbose: bool
) -> RayEngine | None:
    """The Ray engine's settings, or None for the local engine; Ray's options without `--engine ray` are refused."""
    if one_of(engine, Engine, "--engine") == "local":
        ray_options = {
            "--ray-address": address,
            "--actors": actors,
            "--gpus-per-actor": gpus_per_actor,
            "--verbose": verbose,
        }
        given = [name for name, value in ray_options.items() if value]
        if given:
            raise GantxError(f"{', '.join(given)} only apply with --engine ray")
        return None
    return RayEngine(address, actors, gpus_per_actor, verbose)


def translate_images_on_ray(
    cluster: RayEngine,
    jobs: list[FileJob],
    model: Path,
    console: Console,
    tally: Tally,
    settings: RunSettings,
    workers: int | None,
) -> str:
    """Every image job on the cluster, reported like the local engine's; returns where the work ran, for the summary."""
    engine = import_extra("gantx.ray_engine", "ray")
    model_for_actors = engine.checked_model(model, settings)  # before Ray starts: a wrong model is refused at once
    shown = contextlib.nullcontext(console) if cluster.verbose else ray_lines_kept_off(console)
    files_per_node: Counter[str] = Counter()
    with shown as console, engine.connect(cluster.address, verbose=cluster.verbose):
        statuses = engine.translate_paths(
            jobs,
            model_for_actors,
            settings,
            workers=workers,
            actors=cluster.actors,
            gpus_per_actor=cluster.gpus_per_actor,
        )
        with images_report(console, tally, len(jobs)) as report:
            for status in statuses:
                report(status.job, status.error)
                files_per_node[status.node] += 1
    nodes = ", ".join(f"node {node[:8]} {count} files" for node, count in files_per_node.most_common())
    return f"Ray ({nodes})" if nodes else "Ray"


@contextlib.contextmanager
def ray_lines_kept_off(console: Console) -> Iterator[Console]:
    """`console` on a copy of the terminal, while whatever else writes to this process's stderr goes to /dev/null.

    Ray's C++ core writes its error-level lines straight to file descriptor 2,
    whatever its settings (Ray Data's actors cause one on every run,
    ray-project/ray#57733), as its Python loggers do through sys.stderr; those
    lines are in Ray's log files too. A `console` that does not write to
    descriptor 2 (a test capturing sys.stderr) is left as it is.
    """
    sys.stderr.flush()
    terminal = os.dup(2)
    nowhere = os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, 2)
    os.close(nowhere)
    try:
        if writes_to_descriptor_2(console.file):
            with open(terminal, "w", encoding=console.file.encoding, errors="backslashreplace", closefd=False) as copy:
                yield Console(file=copy)
        else:
            yield console
    finally:
        os.dup2(terminal, 2)
        os.close(terminal)


def writes_to_descriptor_2(stream: IO[str]) -> bool:
    """Whether `stream` is the process's stderr itself, which Ray's C++ core shares."""
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: a stream in memory
        return False
