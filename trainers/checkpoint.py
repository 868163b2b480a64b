"""Self-describing gantx checkpoints: everything `gantx export` and `--resume` need, in one file.

A checkpoint is a `torch.save`d dict that loads with
`torch.load(path, weights_only=True, map_location="cpu")`, so it holds only
tensors, dicts, lists, tuples, str, int, float, bool and None:

    {
      "format": "gantx-checkpoint",
      "version": 1,
      "family": "cyclegan",                  # the trainer family that wrote it
      "config": {...},                       # the family's config dataclass, as a dict
      "networks": {                          # every network of the run, by role
        "G_A": {"arch": "resnet_9blocks",    # registry name (trainers/networks.py)
                "options": {...},            # create_model options, defaults included
                "state_dict": {...}},
        "D_A": {...}, ...
      },
      "export": {                            # the model contract (gantx.model.ModelInfo.to_dict)
        "generators": {"AtoB": "G_A",        # direction -> network role; a one-way model
                       "BtoA": "G_B"},       # has only "AtoB", a noise2image one only "AtoB" too
        "kind": "image2image",               # the ModelInfo fields: kind, arch, size [H, W] trained at,
        "domains": ["horse", "zebra"],       # channels, size_multiple, domains, fit, latent_dim, classes, ...
        ...                                  # (direction and precision are set at export)
      },
      "meta": {"epoch": 12, "step": 4800, ...},   # free-form, becomes gantx.* info keys
      "train_state": {                        # optional, only for exact resume
        "optimizers": {...}, "schedulers": {...}, "epoch": 12, "step": 4800,
        "rng": rng_state(), ...
      }
    }

`save_checkpoint` writes it atomically (temp file, then rename) and refuses
values that `weights_only` loading would reject, so a bad checkpoint fails
when it is written, not when it is exported. `load_checkpoint` returns a
`Checkpoint`; anything else raises a one-line `GantxError`.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gantx.errors import GantxError, first_line
from gantx.images import atomic_write
from gantx.model import ModelInfo
from gantx.trainers.networks import create_model

FORMAT = "gantx-checkpoint"
VERSION = 1
NORMALISATION = "[-1,1]"  # the one pixel mapping; gantx 0.1 checkpoints spell it out
DIRECTIONS = ("AtoB", "BtoA")
ZIP_MAGIC, PICKLE_PROTOCOL = b"PK\x03\x04", b"\x80"  # how torch.save's files begin (zip archive; legacy pickle)


@dataclass
class NetworkEntry:
    arch: str
    options: dict[str, Any]
    state_dict: dict[str, torch.Tensor]

    def build(self, role: str = "network") -> nn.Module:
        """The module with its weights, in eval mode; weights that do not fit raise GantxError."""
        model = create_model(self.arch, **self.options)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as error:
            detail = " ".join(str(error).split())
            raise GantxError(
                f"{role}: weights do not fit {self.arch!r} with options {self.options}: {detail[:300]}"
            ) from None
        return model.eval()


def check_generators(generators: Mapping[str, str]) -> None:
    if not generators or set(generators) - set(DIRECTIONS):
        raise GantxError(f"generators {dict(generators)!r} must map some of {', '.join(DIRECTIONS)} to network roles")


@dataclass
class Checkpoint:
    family: str
    config: dict[str, Any]
    networks: dict[str, NetworkEntry]
    contract: ModelInfo  # what the exported model's metadata says, but for arch, direction and precision
    generators: dict[str, str]  # direction (AtoB, BtoA) -> network role
    meta: dict[str, Any] = field(default_factory=dict)
    train_state: dict[str, Any] | None = None

    def generator(self, direction: str = "AtoB") -> tuple[str, NetworkEntry]:
        """The (role, entry) of the generator that translates in `direction`."""
        if direction not in self.generators:
            raise GantxError(f"this checkpoint has no {direction} generator; it has {', '.join(self.generators)}")
        role = self.generators[direction]
        if role not in self.networks:
            raise GantxError(
                f"checkpoint names generator {role!r} for {direction} but holds only {', '.join(self.networks)}"
            )
        return role, self.networks[role]


# -- writing ------------------------------------------------------------------------------------------

SAFE_SCALARS = (str, int, float, bool, type(None))


def plain(value: Any, where: str = "checkpoint") -> Any:
    """`value` with dataclasses, Paths and numpy values made weights_only-loadable; TypeError names anything else."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, SAFE_SCALARS):
        return value
    if isinstance(value, Mapping):
        return {key: plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(item, f"{where}[{index}]") for index, item in enumerate(value))
    raise TypeError(f"{where} is a {type(value).__name__}, which torch.load(weights_only=True) cannot read back")


def save_checkpoint(
    path: str | Path,
    *,
    family: str,
    config: Any,
    networks: Mapping[str, nn.Module],
    contract: ModelInfo,
    generators: Mapping[str, str],
    meta: Mapping[str, Any] | None = None,
    train_state: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically. Networks must come from `create_model` (they carry arch and options)."""
    entries = {}
    for role, module in networks.items():
        if not hasattr(module, "arch"):
            raise TypeError(f"network {role!r} was not built with create_model, so it cannot describe itself")
        entries[role] = {"arch": module.arch, "options": dict(module.options), "state_dict": module.state_dict()}
    check_generators(generators)
    for direction, role in generators.items():
        if role not in entries:
            raise ValueError(f"generators[{direction!r}] = {role!r} is not among the networks {', '.join(entries)}")
    payload = plain(
        {
            "format": FORMAT,
            "version": VERSION,
            "family": family,
            "config": config,
            "networks": entries,
            "export": {"generators": dict(generators), **contract.to_dict()},
            "meta": dict(meta or {}),
            "train_state": train_state,
        }
    )
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states in a weights_only-loadable form, for exact resume."""
    version, words, gauss = random.getstate()
    bit_generator = np.random.get_state(legacy=False)
    return {
        "python": [version, list(words), gauss],
        "numpy": {
            **bit_generator,
            "state": {
                "key": torch.from_numpy(bit_generator["state"]["key"].astype(np.int64)),
                "pos": int(bit_generator["state"]["pos"]),
            },
        },
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {
        "key": state["numpy"]["state"]["key"].numpy().astype(np.uint32),
        "pos": state["numpy"]["state"]["pos"],
    }
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])


# -- reading ------------------------------------------------------------------------------------------


def read_torch_file(path: str | Path) -> Any:
    """`torch.load` without unpickling code, onto the CPU; one-line GantxError for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise GantxError(f"checkpoint not found: {path}")
    with path.open("rb") as handle:
        head = handle.read(4)
    if not (head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_PROTOCOL)):
        raise GantxError(
            f"{path}: not a checkpoint (torch.save writes a zip archive or a pickle; this file is neither)"
        )
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        if "weights_only" in str(error) or "global" in str(error).lower():
            raise GantxError(
                f"{path}: refusing to load, the file needs arbitrary unpickling (code could run); "
                "only plain tensors and dicts are accepted"
            ) from None
        raise GantxError(f"{path}: not a PyTorch checkpoint ({first_line(error)})") from None
    except Exception as error:  # noqa: BLE001 - torch.load fails on foreign files with many exception types
        raise GantxError(
            f"{path}: not a PyTorch checkpoint ({type(error).__name__}: {first_line(error)[:120]})"
        ) from None


def is_gantx_checkpoint(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def checkpoint_from_dict(data: Mapping[str, Any], source: str = "checkpoint") -> Checkpoint:
    """Validate a loaded checkpoint dict; GantxError names the first thing that is wrong."""
    if not is_gantx_checkpoint(data):
        raise GantxError(f"{source}: not a gantx checkpoint (no 'format': '{FORMAT}' entry)")
    if data.get("version") != VERSION:
        raise GantxError(
            f"{source}: gantx checkpoint version {data.get('version')!r} is not supported (this gantx reads {VERSION})"
        )
    for key in ("family", "config", "networks", "export"):
        if key not in data:
            raise GantxError(f"{source}: gantx checkpoint lacks its {key!r} entry")
    networks = {}
    for role, entry in data["networks"].items():
        try:
            networks[role] = NetworkEntry(entry["arch"], dict(entry["options"]), entry["state_dict"])
        except (KeyError, TypeError):
            raise GantxError(f"{source}: network {role!r} lacks arch, options or state_dict") from None
    export = dict(data["export"])
    generators = dict(export.pop("generators", {}))
    check_generators(generators)
    if export.pop("normalization", NORMALISATION) != NORMALISATION:
        raise GantxError(f"{source}: its pixel mapping is not {NORMALISATION}, the only one the model contract knows")
    export.setdefault("arch", "")  # gantx 0.1 checkpoints: the exporter takes it from the network
    return Checkpoint(
        family=data["family"],
        config=dict(data["config"]),
        networks=networks,
        contract=ModelInfo.from_dict(export, source),
        generators=generators,
        meta=dict(data.get("meta") or {}),
        train_state=data.get("train_state"),
    )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a gantx checkpoint safely (no code unpickled, CPU tensors)."""
    return checkpoint_from_dict(read_torch_file(path), source=str(path))
