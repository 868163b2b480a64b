"""`gantx translate ... --engine ray`: the images mode of `gantx translate` on a Ray cluster (gantx.ray_engine).

Ray is the optional `ray` extra, imported only when this engine is chosen.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.console import Console

from gantx.cli.options import import_extra
from gantx.cli.translate import Tally, image_report, progress_bar
from gantx.errors import GantxError
from gantx.inputs import FileJob
from gantx.settings import RunSettings

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class RayEngine:
    """Where and how wide a Ray run goes: --ray-address, --actors, --gpus-per-actor."""

    address: Optional[str]
    actors: Optional[int]
    gpus_per_actor: float


def choose_engine(engine: str, address: Optional[str], actors: Optional[int], gpus_per_actor: float) -> Optional[RayEngine]:
    """The Ray engine's settings, or None for the local engine; Ray's options without `--engine ray` are refused."""
    if engine not in ENGINES:
        raise GantxError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "local":
        given = [name for name, value in (("--ray-address", address), ("--actors", actors), ("--gpus-per-actor", gpus_per_actor)) if value]
        if given:
            raise GantxError(f"{', '.join(given)} only apply with --engine ray")
        return None
    return RayEngine(address, actors, gpus_per_actor)


def translate_images_on_ray(
    cluster: RayEngine,
    jobs: list[FileJob],
    model: Path,
    console: Console,
    tally: Tally,
    settings: RunSettings,
    workers: Optional[int],
) -> str:
    """Every image job on the cluster, reported like the local engine's; returns where the work ran, for the summary."""
    engine = import_extra("gantx.ray_engine", "ray")
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # not Ray Data's notes on every execution
    files_per_node: Counter[str] = Counter()
    with engine.connect(cluster.address):
        statuses = engine.translate_paths(
            jobs, model, settings, workers=workers, actors=cluster.actors, gpus_per_actor=cluster.gpus_per_actor
        )
        with progress_bar(console, tally, "img") as progress:
            report = image_report(progress, progress.add_task("translating", total=len(jobs)), tally)
            for status in statuses:
                report(status.job, status.error)
                files_per_node[status.node] += 1
    nodes = ", ".join(f"node {node[:8]} {count} files" for node, count in files_per_node.most_common())
    return f"Ray ({nodes})" if nodes else "Ray"
