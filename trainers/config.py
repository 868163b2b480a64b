"""One typed config per family; every value is saved in the run (config.json) and in each checkpoint.

Fields shared by all families live in `TrainConfig`; each family adds its own.
Every field carries its one line of help (and, for counts, the least value a
trainer can use) in its metadata, and fields with a fixed set of values are
`Literal`s: `gantx train FAMILY --help` is generated from them and `check`
validates against them, so each choice is written once. A family that only
changes a default inherits the help. This module needs no torch: the command
line reads it to describe the options.

Defaults are the source documents' values where they fit 28x28 Fashion-MNIST
on a CPU (Adam 2e-4 / beta1 0.5, CycleGAN's cycle 10 and identity 0.5,
pix2pix's L1 100, DTN's alpha = beta = 15, gamma = 0), with small widths.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints

from gantx.errors import GantxError
from gantx.records import from_dict as record_from_dict
from gantx.settings import one_of

GanLoss = Literal["vanilla", "lsgan", "focal", "hinge"]
ClassesLoss = Literal["vanilla", "lsgan", "focal"]  # the losses with a multi-way form (DTN's three-way discriminator)
Conditioning = Literal["concat", "projection"]
LrPolicy = Literal["linear", "step", "cosine", "constant"]
Device = Literal["auto", "cpu", "cuda"]
Channels = Literal[1, 3]
Norm = Literal["instance", "instance_affine", "batch", "none"]
ImageGenerator = Literal[
    "resnet_6blocks", "resnet_9blocks", "unet_32", "unet_128", "unet_256"
]  # presets of gantx.trainers.networks


def setting(default: Any, help: str, minimum: int | None = None, short: str | None = None) -> Any:
    """A config field with its `--help` line, for counts the least value `check` accepts, maybe a short option (-b)."""
    return dataclasses.field(default=default, metadata={"help": help, "minimum": minimum, "short": short})


@dataclass
class TrainConfig:
    """The options every family shares."""

    data: str = setting(
        "fashion-mnist",
        "Domain A: a folder, or built-in fashion-mnist[:classes], fashion-mnist-edges or fashion-mnist-m",
    )
    data_b: str = setting("", "Domain B, for the families that learn between two domains")
    epochs: int = setting(10, "Epochs at the full learning rate", minimum=1)
    decay_epochs: int = setting(0, "Then a linear decay to zero over this many more (lr-policy linear)", minimum=0)
    max_steps: int = setting(0, "Stop every phase after this many optimiser steps (0: no limit)", minimum=0)
    limit: int = setting(0, "At most this many samples per domain (0: all)", minimum=0)
    batch_size: int = setting(64, "Images per optimiser step", minimum=1, short="-b")
    seed: int = setting(0, "Seed of the initial weights, shuffling and noise: same seed, same run", minimum=0)
    device: Device = setting("auto", "Where to train; auto picks CUDA when there is one")
    deterministic: bool = setting(False, "Bit-exact reruns (torch.use_deterministic_algorithms)")
    lr: float = setting(2e-4, "Adam learning rate")
    lr_d: float = setting(
        0.0,
        "The discriminators' Adam learning rate (0: lr); larger than lr gives two time-scale updates (Heusel et al.)",
    )
    beta1: float = setting(0.5, "Adam beta1")
    beta2: float = setting(0.999, "Adam beta2")
    lr_policy: LrPolicy = setting(
        "linear",
        "Learning-rate schedule: linear decays to 0 over decay-epochs, step cuts 10x every lr-step-epochs, "
        "cosine anneals",
    )
    lr_step_epochs: int = setting(10, "Epochs between the 10x cuts of lr-policy step", minimum=1)
    gan_loss: GanLoss = setting(
        "vanilla", "Adversarial loss: cross-entropy on logits, least squares, focal cross-entropy (gamma 2), or hinge"
    )
    ema: float = setting(
        0.999,
        "Decay of the moving average of the generator's weights, which is what is sampled and exported "
        "(0: the raw weights)",
    )
    channels: Channels = setting(1, "Image channels: 1 grey (Fashion-MNIST), 3 colour")
    size: int = setting(28, "Training resolution; 28x28 items are padded (not resized) to 32", minimum=1)
    load_size: int = setting(0, "Image folders: resize to this before a random crop to size (0: = size)", minimum=0)
    flip: bool = setting(False, "Random horizontal flips")
    save_every: int = setting(0, "Also keep PHASE_epoch_N.pt every this many epochs (0: only latest.pt)", minimum=0)
    log_every: int = setting(10, "Steps between rows of losses.csv (the last step is always logged)", minimum=1)
    channels_last: bool = setting(False, "The channels_last memory format for the convolutions")


@dataclass
class DCGANConfig(TrainConfig):
    """DCGAN (Radford et al.): noise -> image, one real/fake logit."""

    batch_size: int = 128
    latent_dim: int = setting(100, "Length of the noise vector", minimum=1)
    ngf: int = setting(256, "Generator width (a multiple of 4)", minimum=4)
    d_half: bool = setting(
        False, "Halve the discriminator loss (the TensorFlow DCGAN tutorial sums real and fake terms)"
    )
    spectral_norm: bool = setting(False, "Spectral normalisation of the discriminator's layers (Miyato et al.)")


@dataclass
class CGANConfig(DCGANConfig):
    """Conditional GAN (Mirza and Osindero): noise + class -> image; needs labelled data."""

    ngf: int = 128
    conditioning: Conditioning = setting(
        "concat", "How D sees the label: a label plane on the image, or projection (Miyato and Koyama)"
    )
    aux_weight: float = setting(
        0.0,
        "Auxiliary classifier (AC-GAN, Odena et al.): weight of a class head on D's image features, which learns the "
        "real items' classes while G is rewarded when its items are classified as asked (0: off; needs "
        "--conditioning projection)",
    )
    twin_classifier: bool = setting(
        False,
        "Twin auxiliary classifier (TAC-GAN, Gong et al.): a second class head learns G's items' classes and G's "
        "class loss subtracts its cross-entropy, which keeps the diversity AC-GAN trades away (needs --aux-weight)",
    )


@dataclass
class TranslatorConfig(TrainConfig):
    """What pix2pix and CycleGAN share: an image-to-image generator and PatchGAN discriminators."""

    generator: ImageGenerator = setting("unet_32", "Translator network (a unet_* needs size 32)")
    ngf: int = setting(32, "Generator width", minimum=1)
    ndf: int = setting(32, "Discriminator width", minimum=1)
    n_layers: int = setting(2, "PatchGAN depth: 2 gives 16x16 patches, right for 32x32 images", minimum=1)
    norm: Norm = setting("batch", "Normalisation layers of the networks")
    d_half: bool = setting(True, "Halve the discriminator loss (pix2pix and CycleGAN do)")


@dataclass
class Pix2PixConfig(TranslatorConfig):
    """pix2pix (Isola et al.): a U-Net learns A -> B from aligned pairs, judged by a PatchGAN."""

    data: str = setting(
        "fashion-mnist-edges",
        "Aligned pairs: fashion-mnist-edges[:classes], or a folder with A/ and B/ or side-by-side images",
    )
    size: int = 32
    batch_size: int = 32
    dropout: bool = setting(True, "Dropout in the U-Net's inner decoder blocks")
    l1_weight: float = setting(100.0, "Weight of the L1 distance to the true B")


@dataclass
class CycleGANConfig(TranslatorConfig):
    """CycleGAN (Zhu et al.): two translators learn A <-> B from unpaired domains."""

    data: str = "fashion-mnist:sneaker"
    data_b: str = "fashion-mnist:ankle-boot"
    batch_size: int = 16
    gan_loss: GanLoss = "lsgan"
    generator: ImageGenerator = "resnet_6blocks"
    ngf: int = 16
    norm: Norm = "instance"
    cycle_weight: float = setting(10.0, "Weight of the cycle losses A -> B -> A and B -> A -> B")
    identity_weight: float = setting(0.5, "Identity loss weight, times cycle-weight (0: off)")
    pool_size: int = setting(50, "Image pool per discriminator (0: off)", minimum=0)


@dataclass
class DTNConfig(TrainConfig):
    """Domain Transfer Network (Taigman et al.): source S -> target T, keeping what a pretrained encoder f sees."""

    data: str = setting("fashion-mnist-m", "Source domain S (colour, labelled: f pretrains on its classes)")
    data_b: str = setting("fashion-mnist", "Target domain T")
    size: int = 32
    batch_size: int = 64
    gan_loss: ClassesLoss = "vanilla"
    conv_dim: int = setting(64, "Network width", minimum=1)
    code_dim: int = setting(128, "Length of f's code", minimum=1)
    pretrain_epochs: int = setting(3, "Epochs of f trained as a classifier on S first", minimum=0)
    pretrain_lr: float = setting(1e-3, "Learning rate of the pretraining")
    pretrain_tid: float = setting(
        0.0,
        "Weight of L_TID in the pretraining: g(f(t)) = t trains f and g beside f's classes, so f's code describes an "
        "item's look as well as its class (0: f learns the source's classes alone, as the paper)",
    )
    finetune_f: bool = setting(False, "Keep training f after pretraining (the paper freezes it)")
    alpha: float = setting(
        15.0,
        "L_CONST weight, f(g(f(s))) = f(s): how much a translated source item must keep what f sees in it (its "
        "class and content); higher keeps more of the source, lower lets the target domain's look win",
    )
    beta: float = setting(
        15.0,
        "L_TID weight, g(f(t)) = t: how exactly g must give back a target item it is handed; it anchors g's output "
        "to the target domain's appearance",
    )
    gamma: float = setting(
        0.0, "L_TV weight: total variation of g's output; higher smooths speckle, too high blurs the item"
    )
    const_features: Literal["code", "4x4"] = setting(
        "code",
        "What L_CONST compares: f's code (the paper), or f's 4x4 feature map one block before it, which keeps more "
        "of an item's layout and less of its class alone",
    )


@dataclass
class UpscaleConfig(TrainConfig):
    """A photo upscaler in pix2pix's framework: residual blocks, a sub-pixel upsampler, L1 and maybe a PatchGAN."""

    data: str = setting(
        "/usr/share/backgrounds/mate/nature",
        "A folder of photographs (default: Debian's mate-backgrounds nature photos, docs/photo-data.md)",
    )
    channels: Channels = 3
    size: int = setting(96, "Side of the target crops; inputs are size / scale", minimum=8)
    batch_size: int = 16
    scale: Literal[2, 3, 4] = setting(2, "How many times larger the output is than the input, along each side")
    crops: int = setting(4000, "Random crops cut once from the photos, each at a random scale from 1/2 to 1", minimum=1)
    features: int = setting(32, "Width of the residual body", minimum=1)
    n_blocks: int = setting(4, "Residual blocks", minimum=0)
    l1_weight: float = setting(1.0, "Weight of the L1 distance to the true crop")
    adversarial_weight: float = setting(0.0, "Weight of a PatchGAN's adversarial loss (0: L1 only, no discriminator)")
    gan_loss: GanLoss = "lsgan"
    ndf: int = setting(32, "Discriminator width", minimum=1)
    n_layers: int = setting(2, "PatchGAN depth", minimum=1)
    jpeg: int = setting(
        0, "JPEG-compress each input at a random quality from this to 95, as real photos come (0: never)", minimum=0
    )
    noise: float = setting(0.0, "Gaussian noise on each input, standard deviation in 8-bit levels")


FamilyName = Literal["dcgan", "cgan", "pix2pix", "cyclegan", "dtn", "upscale"]  # the keys of CONFIGS
CONFIGS: dict[str, type[TrainConfig]] = {
    "dcgan": DCGANConfig,
    "cgan": CGANConfig,
    "pix2pix": Pix2PixConfig,
    "cyclegan": CycleGANConfig,
    "dtn": DTNConfig,
    "upscale": UpscaleConfig,
}
STOP_FIELDS = ("epochs", "decay_epochs", "max_steps")  # what --resume may change
PATH_FIELDS = ("data", "data_b")  # folders, unless they name a built-in dataset
TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclass(frozen=True)
class Setting:
    """One config field as `gantx train FAMILY --help` shows it and `check` validates it."""

    name: str
    kind: Any  # the resolved annotation: int, float, str, bool or a Literal
    default: Any
    help: str
    minimum: int | None
    short: str | None

    @property
    def choices(self) -> tuple[Any, ...]:
        return get_args(self.kind) if get_origin(self.kind) is Literal else ()

    def problem(self, value: Any) -> str | None:
        """Why `value` does not fit this field, or None."""
        if self.choices:
            return (
                None
                if value in self.choices
                else f"{self.name} {value!r} is not one of {', '.join(map(str, self.choices))}"
            )
        accepted = (int, float) if self.kind is float else self.kind  # an integer is a fine learning rate
        if not isinstance(value, accepted) or (isinstance(value, bool) and self.kind is not bool):
            return f"{self.name} {value!r} is not {TYPE_NAMES[self.kind]}"
        if self.minimum is not None and value < self.minimum:
            return f"{self.name} must be >= {self.minimum}"
        return None


def settings(cls: type[TrainConfig]) -> list[Setting]:
    """Every field of a config class with its type, default, help, minimum and short option.

    Help, minimum and short option are inherited where a family only changes the default.
    """
    hints = get_type_hints(cls)

    def inherited(name: str, key: str) -> Any:
        for klass in cls.__mro__:
            metadata = vars(klass).get("__dataclass_fields__", {}).get(name)
            if metadata is not None and key in metadata.metadata:
                return metadata.metadata[key]
        return None

    return [
        Setting(f.name, hints[f.name], f.default, *(inherited(f.name, key) for key in ("help", "minimum", "short")))
        for f in dataclasses.fields(cls)
    ]


def check(config: TrainConfig) -> TrainConfig:
    """Refuse values no trainer can use, with one line naming the field."""
    problems = [problem for item in settings(type(config)) if (problem := item.problem(getattr(config, item.name)))]
    if getattr(config, "aux_weight", 0) and getattr(config, "conditioning", "") == "concat":
        problems.append("aux-weight needs conditioning projection: with concat, D's features carry the label itself")
    if getattr(config, "twin_classifier", False) and not config.aux_weight:
        problems.append("twin-classifier needs aux-weight: the twin head pairs with the auxiliary classifier")
    if not problems and config.size not in (28, 32) and config.data.startswith("fashion-mnist"):
        problems.append(f"size {config.size}: Fashion-MNIST items train at 28 or 32 (padded)")
    if problems:
        raise GantxError(f"config: {'; '.join(problems)}")
    return config


def from_dict(family: str, values: Mapping[str, Any]) -> TrainConfig:
    """The family's config from field values (given, or saved by another gantx version); unknown keys are an error."""
    return record_from_dict(CONFIGS[family], values, f"{family} config")


def command_line(family: str, values: Mapping[str, Any]) -> str:
    """The `gantx train` command (shell-quoted) that rebuilds a config: every field that differs from its default."""
    one_of(family, FamilyName, "family")
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
