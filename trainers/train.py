"""Train a family from Python, as `gantx train` does:

from gantx.trainers.train import run
run("cyclegan", "runs/boots", {"epochs": 5, "limit": 2000})
run("cyclegan", "runs/boots", {"max_steps": 0}, resume=True)   # continue it
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantx.settings import one_of
from gantx.trainers.config import FamilyName, TrainConfig
from gantx.trainers.loop import Family, Position, prepare_run, run_complete, seed_everything, train

FAMILY_CLASSES = {
    "dcgan": "DCGAN",
    "cgan": "CGAN",
    "pix2pix": "Pix2Pix",
    "cyclegan": "CycleGAN",
    "dtn": "DTN",
    "upscale": "Upscale",
}


@dataclass
class Result:
    family: Family
    position: Position
    complete: bool = False  # resumed a run that had nothing left to train: nothing was trained or written


def build(family: str, config: TrainConfig) -> Family:
    module = importlib.import_module(f"gantx.trainers.{family}")
    return getattr(module, FAMILY_CLASSES[family])(config)


def run(
    family: str, out: str | Path, options: Mapping[str, Any] | None = None, resume: bool = False, quiet: bool = False
) -> Result:
    """Train `family` into `out` with config `options` (field names of its config dataclass).

    With `resume`, options may repeat the saved config; only the stops (STOP_FIELDS) may change it.
    """
    one_of(family, FamilyName, "family")
    config, checkpoint = prepare_run(family, Path(out), resume, dict(options or {}))
    previous = torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(config)
        trainer = build(family, config)
        if checkpoint is not None:
            saved = Position(**checkpoint.train_state["position"])
            if run_complete(trainer, saved):
                return Result(trainer, saved, complete=True)
        position = train(trainer, Path(out), checkpoint, quiet=quiet)
    finally:
        torch.use_deterministic_algorithms(previous)
    return Result(trainer, position)
