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
      "export": {                            # what the ONNX contract metadata needs
        "kind": "image2image",               # or "noise2image"
        "generators": {"AtoB": "G_A",        # direction -> network role; a one-way model
                       "BtoA": "G_B"},       # has only "AtoB", a noise2image one only "AtoB" too
        "domains": ["horse", "zebra"],       # image2image: names of domain A and B
        "size": [256, 256],                  # H, W the generator was trained at
        "channels_in": 3, "channels_out": 3,
        "size_multiple": 4,                  # 0: the generator takes exactly `size`
        "fit": "resize",                     # or "pad" (28x28 items padded to 32x32)
        "pad_value": -1.0,
        "latent_dim": 0,                     # noise2image: length of z
        "classes": [],                       # conditional noise2image: label names in index order
        "normalization": "[-1,1]"            # the only pixel mapping the contract knows
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import torch
from torch import nn

from gantx.errors import GantxError
from gantx.images import atomic_write
from gantx.model import FITS, KINDS
from gantx.trainers.networks import create_model

FORMAT = "gantx-checkpoint"
VERSION = 1
NORMALIZATION = "[-1,1]"
DIRECTIONS = ("AtoB", "BtoA")


@dataclass(frozen=True)
class ExportSpec:
    """What the exporter writes into the model's contract metadata (docs/model-format.md)."""

    kind: Literal["image2image", "noise2image"]
    generators: dict[str, str]  # direction ("AtoB"/"BtoA") -> network role
    size: tuple[int, int]
    channels_out: int
    channels_in: int = 0
    size_multiple: int = 0
    domains: tuple[str, ...] = ()
    fit: Literal["resize", "pad"] = "resize"
    pad_value: float = -1.0
    latent_dim: int = 0
    classes: tuple[str, ...] = ()
    normalization: str = NORMALIZATION

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.generators or set(self.generators) - set(DIRECTIONS):
            problems.append(f"generators {self.generators!r} must map some of {', '.join(DIRECTIONS)} to network roles")
        if self.fit not in FITS:
            problems.append(f"fit {self.fit!r} is not one of {', '.join(FITS)}")
        if self.normalization != NORMALIZATION:
            problems.append(f"normalization {self.normalization!r} is not {NORMALIZATION}")
        if self.kind == "image2image" and len(self.domains) != 2:
            problems.append(f"an image2image model needs two domain names, got {list(self.domains)}")
        if self.kind == "noise2image" and self.latent_dim <= 0:
            problems.append("a noise2image model needs latent_dim > 0")
        if problems:
            raise GantxError(f"export spec: {'; '.join(problems)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise GantxError(f"export spec has unknown keys {', '.join(unknown)}")
        values = dict(data)
        for key in ("size", "domains", "classes"):
            if key in values:
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except TypeError as error:
            raise GantxError(f"export spec: {error}") from None


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
            raise GantxError(f"{role}: weights do not fit {self.arch!r} with options {self.options}: {detail[:300]}") from None
        return model.eval()


@dataclass
class Checkpoint:
    family: str
    config: dict[str, Any]
    networks: dict[str, NetworkEntry]
    export: ExportSpec
    meta: dict[str, Any] = field(default_factory=dict)
    train_state: dict[str, Any] | None = None

    def generator(self, direction: str = "AtoB") -> tuple[str, NetworkEntry]:
        """The (role, entry) of the generator that translates in `direction`."""
        if direction not in self.export.generators:
            raise GantxError(f"this checkpoint has no {direction} generator; it has {', '.join(self.export.generators)}")
        role = self.export.generators[direction]
        if role not in self.networks:
            raise GantxError(f"checkpoint names generator {role!r} for {direction} but holds only {', '.join(self.networks)}")
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
    export: ExportSpec,
    meta: Mapping[str, Any] | None = None,
    train_state: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically. Networks must come from `create_model` (they carry arch and options)."""
    entries = {}
    for role, module in networks.items():
        if not hasattr(module, "arch"):
            raise TypeError(f"network {role!r} was not built with create_model, so it cannot describe itself")
        entries[role] = {"arch": module.arch, "options": dict(module.options), "state_dict": module.state_dict()}
    for direction, role in export.generators.items():
        if role not in entries:
            raise ValueError(f"export.generators[{direction!r}] = {role!r} is not among the networks {', '.join(entries)}")
    payload = plain(
        {
            "format": FORMAT,
            "version": VERSION,
            "family": family,
            "config": config,
            "networks": entries,
            "export": {**dataclasses.asdict(export), "size": list(export.size), "domains": list(export.domains), "classes": list(export.classes)},
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
        "numpy": {**bit_generator, "state": {"key": torch.from_numpy(bit_generator["state"]["key"].astype(np.int64)), "pos": int(bit_generator["state"]["pos"])}},
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {"key": state["numpy"]["state"]["key"].numpy().astype(np.uint32), "pos": state["numpy"]["state"]["pos"]}
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])


# -- reading ------------------------------------------------------------------------------------------


def read_torch_file(path: str | Path) -> Any:
    """`torch.load` without unpickling code, onto the CPU; one-line GantxError for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise GantxError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if "weights_only" in str(error) or "global" in str(error).lower():
            raise GantxError(
                f"{path}: refusing to load, the file needs arbitrary unpickling (code could run); "
                "only plain tensors and dicts are accepted"
            ) from None
        raise GantxError(f"{path}: not a PyTorch checkpoint ({first})") from None
    except Exception as error:  # torch.load fails on foreign files with many exception types
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise GantxError(f"{path}: not a PyTorch checkpoint ({type(error).__name__}: {first[:120]})") from None


def is_gantx_checkpoint(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def checkpoint_from_dict(data: Mapping[str, Any], source: str = "checkpoint") -> Checkpoint:
    """Validate a loaded checkpoint dict; GantxError names the first thing that is wrong."""
    if not is_gantx_checkpoint(data):
        raise GantxError(f"{source}: not a gantx checkpoint (no 'format': '{FORMAT}' entry)")
    if data.get("version") != VERSION:
        raise GantxError(f"{source}: gantx checkpoint version {data.get('version')!r} is not supported (this gantx reads {VERSION})")
    for key in ("family", "config", "networks", "export"):
        if key not in data:
            raise GantxError(f"{source}: gantx checkpoint lacks its {key!r} entry")
    networks = {}
    for role, entry in data["networks"].items():
        try:
            networks[role] = NetworkEntry(entry["arch"], dict(entry["options"]), entry["state_dict"])
        except (KeyError, TypeError):
            raise GantxError(f"{source}: network {role!r} lacks arch, options or state_dict") from None
    return Checkpoint(
        family=data["family"],
        config=dict(data["config"]),
        networks=networks,
        export=ExportSpec.from_dict(data["export"]),
        meta=dict(data.get("meta") or {}),
        train_state=data.get("train_state"),
    )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a gantx checkpoint safely (no code unpickled, CPU tensors)."""
    return checkpoint_from_dict(read_torch_file(path), source=str(path))
