"""Train a family from Python, as `gantx train` does:

from gantx.trainers.train import run
run("cyclegan", "runs/boots", {"epochs": 5, "limit": 2000})
run("cyclegan", "runs/boots", {"max_steps": 0}, resume=True)   # continue it
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from gantx.trainers.config import CONFIGS, STOP_FIELDS, TrainConfig, from_dict
from gantx.trainers.loop import Family, Position, prepare_run, seed_everything, train

from gantx.errors import GantxError

FAMILY_CLASSES = {"dcgan": "DCGAN", "cgan": "CGAN", "pix2pix": "Pix2Pix", "cyclegan": "CycleGAN", "dtn": "DTN"}


@dataclass
class Result:
    family: Family
    position: Position


def build(family: str, config: TrainConfig) -> Family:
    module = importlib.import_module(f"gantx.trainers.{family}")
    return getattr(module, FAMILY_CLASSES[family])(config)


def run(family: str, out: str | Path, options: Mapping[str, Any] | None = None, resume: bool = False, quiet: bool = False) -> Result:
    """Train `family` into `out` with config `options` (field names of its config dataclass)."""
    if family not in CONFIGS:
        raise GantxError(f"unknown family {family!r}; choose one of {', '.join(CONFIGS)}")
    options = dict(options or {})
    out = Path(out)
    if resume:
        ignored = sorted(set(options) - set(STOP_FIELDS))
        if ignored:
            raise GantxError(f"--resume keeps the saved config; only {', '.join(STOP_FIELDS)} may change (got {', '.join(ignored)})")
        config, checkpoint = prepare_run(family, out, True, None, options)
    else:
        config, checkpoint = prepare_run(family, out, False, from_dict(family, options), {})
    previous = torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(config)
        trainer = build(family, config)
        position = train(trainer, out, checkpoint, quiet=quiet)
    finally:
        torch.use_deterministic_algorithms(previous)
    return Result(trainer, position)
