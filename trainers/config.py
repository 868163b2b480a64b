"""One typed config per family; every value is saved in the run (config.json) and in each checkpoint.

Fields shared by all families live in `TrainConfig`; each family adds its own.
Defaults are the source documents' values where they fit 28x28 Fashion-MNIST
on a CPU (Adam 2e-4 / beta1 0.5, CycleGAN's cycle 10 and identity 0.5,
pix2pix's L1 100, DTN's alpha = beta = 15, gamma = 0), with small widths.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from gantx.errors import GantxError

LrPolicy = Literal["linear", "step", "cosine", "constant"]
LR_POLICIES = ("linear", "step", "cosine", "constant")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    data: str = "fashion-mnist"  # folder or built-in selection (domain A for cyclegan and dtn)
    data_b: str = ""  # domain B (cyclegan, dtn)
    epochs: int = 10  # epochs at the full learning rate
    decay_epochs: int = 0  # then linear decay to zero over this many more (lr_policy linear)
    max_steps: int = 0  # stop every phase after this many optimiser steps (0: no limit)
    limit: int = 0  # at most this many samples per domain (0: all)
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False  # torch.use_deterministic_algorithms: bit-exact reruns
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_policy: str = "linear"  # linear (constant, then decay_epochs of decay), step, cosine, constant
    lr_step_epochs: int = 10  # step policy: multiply by 0.1 every this many epochs
    gan_loss: str = "vanilla"  # vanilla, lsgan or focal
    channels: int = 1  # image channels: 1 grey (Fashion-MNIST), 3 colour
    size: int = 28  # training resolution; 28x28 items are padded (not resized) to 32
    load_size: int = 0  # image folders: resize to this before a random crop to `size` (0: = size)
    flip: bool = False  # random horizontal flips
    save_every: int = 0  # also keep epoch_N.pt every this many epochs (0: only latest.pt)
    log_every: int = 10  # steps between loss log rows
    channels_last: bool = False  # channels_last memory format for the convolutions


@dataclass
class DCGANConfig(TrainConfig):
    batch_size: int = 128
    latent_dim: int = 100
    ngf: int = 256  # generator width
    d_half: bool = False  # the TensorFlow DCGAN tutorial sums real and fake terms


@dataclass
class CGANConfig(TrainConfig):
    batch_size: int = 128
    latent_dim: int = 100
    ngf: int = 128  # generator width
    d_half: bool = False


@dataclass
class Pix2PixConfig(TrainConfig):
    data: str = "fashion-mnist-edges"
    size: int = 32
    batch_size: int = 32
    generator: str = "unet_32"
    ngf: int = 32
    ndf: int = 32
    n_layers: int = 2  # PatchGAN depth: 2 gives 16x16 patches, right for 32x32 images
    norm: str = "batch"
    dropout: bool = True
    l1_weight: float = 100.0
    d_half: bool = True  # pix2pix halves the discriminator loss


@dataclass
class CycleGANConfig(TrainConfig):
    data: str = "fashion-mnist:sneaker"
    data_b: str = "fashion-mnist:ankle-boot"
    batch_size: int = 16
    gan_loss: str = "lsgan"
    generator: str = "resnet_6blocks"  # resnet_6blocks, resnet_9blocks or a unet_* (needs size 32)
    ngf: int = 16
    ndf: int = 32
    n_layers: int = 2
    norm: str = "instance"
    cycle_weight: float = 10.0
    identity_weight: float = 0.5  # times cycle_weight; 0 turns the identity loss off
    pool_size: int = 50  # image pool per discriminator; 0 turns it off
    d_half: bool = True


@dataclass
class DTNConfig(TrainConfig):
    data: str = "fashion-mnist-m"  # source domain S (colour)
    data_b: str = "fashion-mnist"  # target domain T (grey)
    size: int = 32
    batch_size: int = 64
    conv_dim: int = 64
    code_dim: int = 128
    pretrain_epochs: int = 3  # f trained as a classifier on S first
    pretrain_lr: float = 1e-3
    finetune_f: bool = False  # False: f stays frozen after pretraining (as in the paper)
    alpha: float = 15.0  # L_CONST weight: f(g(f(s))) = f(s)
    beta: float = 15.0  # L_TID weight: g(f(t)) = t
    gamma: float = 0.0  # L_TV weight


CONFIGS: dict[str, type[TrainConfig]] = {
    "dcgan": DCGANConfig,
    "cgan": CGANConfig,
    "pix2pix": Pix2PixConfig,
    "cyclegan": CycleGANConfig,
    "dtn": DTNConfig,
}
STOP_FIELDS = ("epochs", "decay_epochs", "max_steps")  # what --resume may change


def check(config: TrainConfig) -> TrainConfig:
    """Refuse values no trainer can use, with one line naming the field."""
    problems = []
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            problems.append(f"{name} must be >= 1")
    for name in ("decay_epochs", "max_steps", "limit", "save_every", "seed"):
        if getattr(config, name) < 0:
            problems.append(f"{name} must be >= 0")
    if config.log_every < 1:
        problems.append("log_every must be >= 1")
    if config.lr_policy not in LR_POLICIES:
        problems.append(f"lr_policy {config.lr_policy!r} is not one of {', '.join(LR_POLICIES)}")
    if config.gan_loss not in ("vanilla", "lsgan", "focal"):
        problems.append(f"gan_loss {config.gan_loss!r} is not one of vanilla, lsgan, focal")
    if config.device not in DEVICES:
        problems.append(f"device {config.device!r} is not one of {', '.join(DEVICES)}")
    if config.size not in (28, 32) and config.data.startswith("fashion-mnist"):
        problems.append(f"size {config.size}: Fashion-MNIST items train at 28 or 32 (padded)")
    if config.channels not in (1, 3):
        problems.append(f"channels {config.channels} must be 1 or 3")
    if getattr(config, "pool_size", 0) < 0:
        problems.append("pool_size must be >= 0")
    if problems:
        raise GantxError(f"config: {'; '.join(problems)}")
    return config


def from_dict(family: str, values: Mapping[str, Any]) -> TrainConfig:
    """Rebuild a saved config; unknown keys (a config from another gantx version) are an error."""
    cls = CONFIGS[family]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise GantxError(f"saved {family} config has unknown fields {', '.join(unknown)}")
    return cls(**values)


def parse_options(family: str, args: list[str]) -> dict[str, Any]:
    """`--cycle-weight 5 --no-flip --pool-size 0` -> typed field values of the family's config."""
    cls = CONFIGS[family]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    values: dict[str, Any] = {}
    items = list(args)
    while items:
        arg = items.pop(0)
        if not arg.startswith("--"):
            raise GantxError(f"unexpected argument {arg!r} (family options look like --cycle-weight 5)")
        key, _, inline = arg[2:].partition("=")
        name = key.replace("-", "_")
        negated = name.startswith("no_") and name[3:] in fields and isinstance(getattr(defaults, name[3:]), bool)
        if negated:
            values[name[3:]] = False
            continue
        if name not in fields:
            options = ", ".join("--" + n.replace("_", "-") for n in fields)
            raise GantxError(f"{family} has no option --{key}; it takes {options}")
        kind = type(getattr(defaults, name))
        if kind is bool and not inline:
            values[name] = True
            continue
        if not inline:
            if not items:
                raise GantxError(f"--{key} needs a value")
            inline = items.pop(0)
        try:
            values[name] = (inline.lower() in ("1", "true", "yes")) if kind is bool else kind(inline)
        except ValueError:
            raise GantxError(f"--{key} {inline!r}: expected a {kind.__name__}") from None
    return values


def command_line(family: str, values: Mapping[str, Any]) -> str:
    """The `gantx train` command (shell-quoted) that rebuilds a config: every field that differs from its default."""
    if family not in CONFIGS:
        raise GantxError(f"unknown family {family!r}")
    from_dict(family, values)  # unknown fields: GantxError
    defaults = CONFIGS[family]()
    words = ["gantx", "train", family, "--out", "RUN"]
    for name, value in values.items():
        if value == getattr(defaults, name):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        else:
            words += [flag, str(value)]
    return shlex.join(words)
