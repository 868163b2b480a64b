"""Every network gantx trains, in one small registry.

Networks are plain `nn.Module`s that export to ONNX as they are: no losses,
pools or optimisers live here (those are the trainers'), and `forward` takes
and returns tensors only. Build one by name with keyword options:

    model = create_model("resnet_9blocks", ngf=32, norm="instance")
    model.arch, model.options   # what a checkpoint stores to build it again

The CycleGAN ResNet, pix2pix U-Net, PatchGAN and pixel discriminator keep the
module layout of the canonical PyTorch CycleGAN/pix2pix implementation (a
`model` Sequential, `conv_block` inside residual blocks, nested U-Net blocks),
so its public `state_dict`s load into them unchanged.

Besides `forward`, every network says how it is fed, for trainers, tests and
the exporter alike: `input_names`, `example_inputs(batch, size)`, `size`
(the resolution it is built for) and `size_multiple` (k > 0: H and W may be
any multiple of k; 0: only `size`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Literal, NamedTuple, get_args

import torch
from torch import nn

from gantx.errors import GantxError
from gantx.trainers.config import Norm

Activation = Literal["relu", "leaky_relu"]

_REGISTRY: dict[str, tuple[type[nn.Module], dict[str, object]]] = {}


def register(name: str, **defaults: object) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make the class buildable as `name`, with `defaults` for some options.

    Stack it to register presets of one class (`resnet_9blocks` is the ResNet
    generator with `n_blocks=9`).
    """

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is registered twice")
        _REGISTRY[name] = (cls, defaults)
        return cls

    return decorate


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **options: object) -> nn.Module:
    """Build architecture `name`; unknown names and options raise a one-line GantxError.

    The built module carries `arch` (the name) and `options` (every constructor
    option, defaults included) so that a checkpoint can rebuild it exactly.
    """
    if name not in _REGISTRY:
        raise GantxError(f"unknown architecture {name!r}; known: {', '.join(list_models())}")
    cls, defaults = _REGISTRY[name]
    signature = inspect.signature(cls)
    unknown = sorted(set(options) - set(signature.parameters))
    if unknown:
        raise GantxError(
            f"architecture {name!r} has no option {', '.join(unknown)}; it takes {', '.join(signature.parameters)}"
        )
    try:
        bound = signature.bind(**{**defaults, **options})
    except TypeError as error:
        raise GantxError(f"architecture {name!r}: {error}") from None
    bound.apply_defaults()
    try:
        model = cls(**bound.arguments)
    except ValueError as error:
        raise GantxError(f"architecture {name!r}: {error}") from None
    model.arch = name
    model.options = dict(bound.arguments)
    return model


# -- building blocks --------------------------------------------------------------------------------


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{option}={value!r} is not one of {', '.join(choices)}")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The canonical choices: instance norm without affine parameters is CycleGAN's default."""
    _check_choice("norm", norm, get_args(Norm))
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    return nn.InstanceNorm2d(channels, affine=norm == "instance_affine")


def conv_bias(norm: str) -> bool:
    """Canonical rule: convolutions before instance norm carry a bias, before batch norm (or none) they do not."""
    return norm.startswith("instance")


def activation_layer(activation: str) -> nn.Module:
    _check_choice("activation", activation, get_args(Activation))
    return nn.ReLU(True) if activation == "relu" else nn.LeakyReLU(0.2, True)


def spectrally_normalised(module: nn.Module) -> nn.Module:
    """`module` with spectral normalisation (Miyato et al.) on every convolution, linear layer and embedding in it."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


def _images(batch: int, channels: int, size: tuple[int, int]) -> tuple[torch.Tensor]:
    return (torch.rand(batch, channels, *size) * 2 - 1,)


class ImageToImage(nn.Module):
    """Shared description of networks fed one image batch `input` in [-1, 1]."""

    input_names = ("input",)
    channels_in: int
    size: tuple[int, int]
    size_multiple: int

    def example_inputs(self, batch: int = 1, size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
        return _images(batch, self.channels_in, size or self.size)


# -- CycleGAN ResNet generator ----------------------------------------------------------------------


class ResnetBlock(nn.Module):
    """x + conv_block(x): pad-conv-norm-act(-dropout)-pad-conv-norm, canonical key layout."""

    def __init__(self, dim: int, norm: str, activation: str, dropout: bool) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=bias),
            norm_layer(norm, dim),
            activation_layer(activation),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


@register("resnet_9blocks", n_blocks=9)
@register("resnet_6blocks", n_blocks=6)
@register("resnet")
class ResnetGenerator(ImageToImage):
    """CycleGAN generator: 7x7 stem, two stride-2 downsamplings, n residual blocks, two upsamplings, 7x7 head, tanh."""

    def __init__(
        self,
        n_blocks: int = 9,
        ngf: int = 64,
        norm: Norm = "instance",
        activation: Activation = "relu",
        dropout: bool = False,
        channels_in: int = 3,
        channels_out: int = 3,
        size: int = 256,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks={n_blocks} must be >= 0")
        self.channels_in, self.channels_out = channels_in, channels_out
        self.size, self.size_multiple = (size, size), 4
        bias = conv_bias(norm)
        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels_in, ngf, 7, bias=bias),
            norm_layer(norm, ngf),
            activation_layer(activation),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                norm_layer(norm, ngf * mult * 2),
                activation_layer(activation),
            ]
        layers += [ResnetBlock(ngf * 4, norm, activation, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                norm_layer(norm, ngf * mult // 2),
                activation_layer(activation),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels_out, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.model(input)


# -- pix2pix U-Net generator ------------------------------------------------------------------------


class UnetSkipBlock(nn.Module):
    """One U-Net level: down, the inner levels, up; concatenates its input with its output except at the top.

    Keeps the canonical layout (`model` Sequential with the inner level nested
    inside), so public pix2pix keys such as `model.model.1.model.3...` load.
    """

    def __init__(
        self,
        outer: int,
        inner: int,
        norm: str,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        dropout: bool = False,
        channels_in: int | None = None,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = conv_bias(norm)
        down = nn.Conv2d(channels_in or outer, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            layers = [
                down,
                submodule,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1),
                nn.Tanh(),
            ]
        elif submodule is None:  # innermost: no norm on the 1x1 bottleneck
            up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, norm_layer(norm, outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=bias)
            layers = [
                nn.LeakyReLU(0.2, True),
                down,
                norm_layer(norm, inner),
                submodule,
                nn.ReLU(True),
                up,
                norm_layer(norm, outer),
            ]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


@register("unet_256", num_downs=8, size=256)
@register("unet_128", num_downs=7, size=128)
@register("unet_32", num_downs=5, size=32)
@register("unet")
class UnetGenerator(ImageToImage):
    """pix2pix encoder C64-C128-C256-C512-C512..., decoder mirrored with skip concatenations, tanh.

    `num_downs` halvings take a 2**num_downs image down to 1x1. As in the
    canonical implementation, the `num_downs - 5` innermost C512 decoder blocks
    after the bottleneck (three for unet_256) use dropout 0.5 when `dropout`.
    """

    def __init__(
        self,
        num_downs: int = 8,
        ngf: int = 64,
        norm: Norm = "batch",
        dropout: bool = True,
        channels_in: int = 3,
        channels_out: int = 3,
        size: int = 256,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs={num_downs} must be >= 5")
        self.channels_in, self.channels_out = channels_in, channels_out
        self.size, self.size_multiple = (size, size), 2**num_downs
        block = UnetSkipBlock(ngf * 8, ngf * 8, norm)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, norm, block, dropout=dropout)
        for mult in (4, 2, 1):
            block = UnetSkipBlock(ngf * mult, ngf * mult * 2, norm, block)
        self.model = UnetSkipBlock(channels_out, ngf, norm, block, outermost=True, channels_in=channels_in)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.model(input)


# -- image discriminators ---------------------------------------------------------------------------


@register("patchgan")
class PatchDiscriminator(ImageToImage):
    """PatchGAN: a grid of real/fake logits, each seeing a 70x70 patch at n_layers=3.

    For pix2pix (conditional use) build it with `channels_in` = source + target
    channels and feed `torch.cat([source, target], 1)`.
    """

    def __init__(
        self, n_layers: int = 3, ndf: int = 64, norm: Norm = "batch", channels_in: int = 3, size: int = 256
    ) -> None:
        super().__init__()
        self.channels_in, self.channels_out = channels_in, 1
        self.size, self.size_multiple = (size, size), 2**n_layers
        bias = conv_bias(norm)
        layers = [nn.Conv2d(channels_in, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            previous, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * previous, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.model(input)


@register("pixel")
class PixelDiscriminator(ImageToImage):
    """1x1 PatchGAN: one real/fake logit per pixel, judging colour only."""

    def __init__(self, ndf: int = 64, norm: Norm = "batch", channels_in: int = 3, size: int = 256) -> None:
        super().__init__()
        self.channels_in, self.channels_out = channels_in, 1
        self.size, self.size_multiple = (size, size), 1
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(channels_in, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            norm_layer(norm, ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.net(input)


# -- super-resolution ----------------------------------------------------------------------------------


class PlainResidualBlock(nn.Module):
    """x + conv(relu(conv(x))): no normalisation, which would shift colours between tiles and images (EDSR)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1), nn.ReLU(True), nn.Conv2d(features, features, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register("upscaler")
class Upscaler(ImageToImage):
    """x -> bilinear-upscaled x plus learned detail, clamped to [-1, 1]: residual blocks, then a sub-pixel upsampler.

    Learning only what bilinear interpolation misses makes a small network train
    fast; working at the input's resolution until the last layer keeps it cheap
    (about 130 thousand multiply-adds per input pixel at the defaults).
    """

    def __init__(
        self, scale: int = 2, features: int = 32, n_blocks: int = 4, channels: int = 3, size: int = 48
    ) -> None:
        super().__init__()
        if scale < 2:
            raise ValueError(f"scale={scale} must be 2 or more")
        self.scale, self.channels_in, self.channels_out = scale, channels, channels
        self.size, self.size_multiple = (size, size), 1
        self.head = nn.Conv2d(channels, features, 3, padding=1)
        self.body = nn.Sequential(
            *(PlainResidualBlock(features) for _ in range(n_blocks)), nn.Conv2d(features, features, 3, padding=1)
        )
        self.upsample = nn.Sequential(
            nn.Conv2d(features, channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale)
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        features = self.head(input)
        detail = self.upsample(features + self.body(features))
        upscaled = (
            nn.functional.interpolate(input, scale_factor=self.scale, mode="bilinear", align_corners=False) + detail
        )
        return upscaled.clamp(-1, 1)  # the contract's range, which the bilinear part plus detail may overshoot


# -- noise-to-image GANs (28x28 or 32x32) -----------------------------------------------------------


def _small_size(size: int) -> int:
    """DCGAN-style networks start at size/4 (7x7 for 28x28, 8x8 for 32x32)."""
    if size not in (28, 32):
        raise ValueError(f"size={size} must be 28 or 32")
    return size // 4


class NoiseToImage(nn.Module):
    """Shared description of generators fed `z` ~ N(0, 1) (and `label`, when conditional)."""

    latent_dim: int
    num_classes: int = 0
    size_multiple = 0

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("z", "label") if self.num_classes else ("z",)

    def example_inputs(self, batch: int = 1, size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
        z = torch.randn(batch, self.latent_dim)
        return (z, torch.arange(batch) % self.num_classes) if self.num_classes else (z,)


@register("dcgan_generator")
class DCGANGenerator(NoiseToImage):
    """Dense to 7x7xngf (8x8 at 32x32), then 5x5 transposed convolutions (ngf/2, ngf/4 wide) with batch norm, tanh.

    ngf 256 is the TensorFlow tutorial's network; the compute grows with its
    square, so 128 trains ~3x faster on a CPU.
    """

    def __init__(
        self, latent_dim: int = 100, channels_out: int = 1, size: int = 28, slope: float = 0.3, ngf: int = 256
    ) -> None:
        super().__init__()
        base = _small_size(size)
        if ngf < 4 or ngf % 4:
            raise ValueError(f"ngf={ngf} must be a positive multiple of 4 (the layers are ngf, ngf/2 and ngf/4 wide)")
        self.latent_dim, self.channels_out, self.size = latent_dim, channels_out, (size, size)
        self.base, self.ngf = base, ngf
        self.dense = nn.Sequential(
            nn.Linear(latent_dim, base * base * ngf, bias=False), nn.BatchNorm1d(base * base * ngf), nn.LeakyReLU(slope)
        )
        self.convs = nn.Sequential(
            nn.ConvTranspose2d(ngf, ngf // 2, 5, padding=2, bias=False),
            nn.BatchNorm2d(ngf // 2),
            nn.LeakyReLU(slope),
            nn.ConvTranspose2d(ngf // 2, ngf // 4, 5, stride=2, padding=2, output_padding=1, bias=False),
            nn.BatchNorm2d(ngf // 4),
            nn.LeakyReLU(slope),
            nn.ConvTranspose2d(ngf // 4, channels_out, 5, stride=2, padding=2, output_padding=1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.convs(self.dense(z).reshape(-1, self.ngf, self.base, self.base))


class SmallImageDiscriminator(nn.Module):
    """Shared description of 28x28/32x32 discriminators (one logit per image)."""

    num_classes: int = 0
    size_multiple = 0

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("input", "label") if self.num_classes else ("input",)

    def example_inputs(self, batch: int = 1, size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
        (images,) = _images(batch, self.channels_in, self.size)
        return (images, torch.arange(batch) % self.num_classes) if self.num_classes else (images,)


@register("dcgan_discriminator")
class DCGANDiscriminator(SmallImageDiscriminator):
    """Two 5x5 stride-2 convolutions with LeakyReLU and dropout 0.3, then a logit; optionally spectrally normalised."""

    def __init__(
        self,
        channels_in: int = 1,
        size: int = 28,
        slope: float = 0.3,
        dropout: float = 0.3,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        base = _small_size(size)
        self.channels_in, self.size = channels_in, (size, size)
        self.net = nn.Sequential(
            nn.Conv2d(channels_in, 64, 5, stride=2, padding=2),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            nn.Conv2d(64, 128, 5, stride=2, padding=2),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(128 * base * base, 1),
        )
        if spectral_norm:
            spectrally_normalised(self)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.net(input)


class LabelPlane(nn.Module):
    """Class label -> 50-d embedding -> dense -> one extra HxW channel."""

    def __init__(self, num_classes: int, side: int, embedding_dim: int = 50) -> None:
        super().__init__()
        self.side = side
        self.embed = nn.Embedding(num_classes, embedding_dim)
        self.dense = nn.Linear(embedding_dim, side * side)

    def forward(self, label: torch.Tensor) -> torch.Tensor:
        return self.dense(self.embed(label)).reshape(-1, 1, self.side, self.side)


@register("cgan_generator")
class ConditionalGenerator(NoiseToImage):
    """Noise -> dense 7x7x128 plus a label channel -> two 4x4 stride-2 transposed convolutions -> 7x7 conv, tanh.

    `ngf` is the width of the transposed convolutions (128 in the Keras tutorial
    this follows); they hold nearly all the compute, so 64 trains ~3x faster.
    """

    def __init__(
        self, latent_dim: int = 100, num_classes: int = 10, channels_out: int = 1, size: int = 28, ngf: int = 128
    ) -> None:
        super().__init__()
        base = _small_size(size)
        self.latent_dim, self.num_classes, self.channels_out, self.size = (
            latent_dim,
            num_classes,
            channels_out,
            (size, size),
        )
        self.base = base
        self.label = LabelPlane(num_classes, base)
        self.dense = nn.Sequential(nn.Linear(latent_dim, 128 * base * base), nn.LeakyReLU(0.2))
        self.convs = nn.Sequential(
            nn.ConvTranspose2d(129, ngf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(ngf, ngf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ngf, channels_out, 7, padding=3),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        features = self.dense(z).reshape(-1, 128, self.base, self.base)
        return self.convs(torch.cat([features, self.label(label)], 1))


class Verdict(NamedTuple):
    """What a conditional discriminator says of a batch."""

    logit: torch.Tensor
    classes: torch.Tensor | None = None  # the auxiliary head's class logits (AC-GAN)
    twin_classes: torch.Tensor | None = None  # the twin head's, which learns G's items' classes (TAC-GAN)


@register("cgan_discriminator")
class ConditionalDiscriminator(SmallImageDiscriminator):
    """Two 3x3 stride-2 convolutions -> dropout 0.4 -> one logit, told the label one of two ways.

    `concat` adds a label plane to the image (the Keras tutorial); `projection`
    adds the inner product of a label embedding with the flattened features to
    the logit (Miyato and Koyama, 2018), which asks "is this a good X" rather
    than "is this good, given a hint that it is X". `aux_classifier` adds a
    class head on the image's features (AC-GAN); with `concat` those features
    carry the label itself, so it needs `projection`. `twin_classifier` adds a
    second such head, for the generator's items (TAC-GAN).
    """

    def __init__(
        self,
        num_classes: int = 10,
        channels_in: int = 1,
        size: int = 28,
        conditioning: str = "concat",
        spectral_norm: bool = False,
        aux_classifier: bool = False,
        twin_classifier: bool = False,
    ) -> None:
        super().__init__()
        _check_choice("conditioning", conditioning, ("concat", "projection"))
        if aux_classifier and conditioning == "concat":
            raise ValueError("an auxiliary classifier needs projection conditioning: concat features carry the label")
        if twin_classifier and not aux_classifier:
            raise ValueError("a twin classifier pairs with the auxiliary classifier: set aux_classifier too")
        base = _small_size(size)
        self.num_classes, self.channels_in, self.size, self.conditioning = (
            num_classes,
            channels_in,
            (size, size),
            conditioning,
        )
        features = 128 * base * base
        if conditioning == "concat":
            self.label = LabelPlane(num_classes, size)
        else:
            self.embed = nn.Embedding(num_classes, features)
        self.net = nn.Sequential(
            nn.Conv2d(channels_in + (conditioning == "concat"), 128, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(128, 128, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Dropout(0.4),
        )
        self.logit = nn.Linear(features, 1)
        self.classify = nn.Linear(features, num_classes) if aux_classifier else None
        self.classify_twin = nn.Linear(features, num_classes) if twin_classifier else None
        if spectral_norm:
            spectrally_normalised(self)

    def judge(self, input: torch.Tensor, label: torch.Tensor) -> Verdict:
        """The real/fake logit, and the class logits of each class head on the image alone (None where absent)."""
        if self.conditioning == "concat":
            return Verdict(self.logit(self.net(torch.cat([input, self.label(label)], 1))))
        features = self.net(input)
        logit = self.logit(features) + (self.embed(label) * features).sum(1, keepdim=True)
        heads = (self.classify, self.classify_twin)
        return Verdict(logit, *(head(features) if head is not None else None for head in heads))

    def forward(self, input: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.judge(input, label).logit


# -- Domain Transfer Network (32x32) ----------------------------------------------------------------


def _conv_bn(cin: int, cout: int, stride: int, padding: int, last: nn.Module) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 4, stride=stride, padding=padding, bias=False), nn.BatchNorm2d(cout), last]


def _deconv_bn(cin: int, cout: int, stride: int, padding: int) -> list[nn.Module]:
    return [
        nn.ConvTranspose2d(cin, cout, 4, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    ]


class DTNImages(ImageToImage):
    size = (32, 32)
    size_multiple = 0


@register("dtn_encoder")
class DTNEncoder(DTNImages):
    """f: three 4x4 stride-2 conv-BN-ReLU, then a 4x4 conv-BN-tanh to a code_dim x 1 x 1 code."""

    def __init__(self, channels_in: int = 3, conv_dim: int = 64, code_dim: int = 128) -> None:
        super().__init__()
        self.channels_in = channels_in
        self.net = nn.Sequential(
            *_conv_bn(channels_in, conv_dim, 2, 1, nn.ReLU(True)),
            *_conv_bn(conv_dim, conv_dim * 2, 2, 1, nn.ReLU(True)),
            *_conv_bn(conv_dim * 2, conv_dim * 4, 2, 1, nn.ReLU(True)),
            *_conv_bn(conv_dim * 4, code_dim, 1, 0, nn.Tanh()),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.net(input)


@register("dtn_generator")
class DTNGenerator(nn.Module):
    """g: code -> 4x4 -> 8x8 -> 16x16 -> 32x32 with transposed conv-BN-ReLU, tanh at the end."""

    input_names = ("code",)
    size = (32, 32)
    size_multiple = 0

    def __init__(self, channels_out: int = 1, conv_dim: int = 64, code_dim: int = 128) -> None:
        super().__init__()
        self.channels_out, self.code_dim = channels_out, code_dim
        self.net = nn.Sequential(
            *_deconv_bn(code_dim, conv_dim * 4, 1, 0),
            *_deconv_bn(conv_dim * 4, conv_dim * 2, 2, 1),
            *_deconv_bn(conv_dim * 2, conv_dim, 2, 1),
            nn.ConvTranspose2d(conv_dim, channels_out, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def example_inputs(self, batch: int = 1, size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.code_dim, 1, 1) * 2 - 1,)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)


@register("dtn_discriminator")
class DTNDiscriminator(DTNImages):
    """Three-way classifier (fake from source, fake from target, real target) on 32x32 images."""

    def __init__(self, channels_in: int = 1, conv_dim: int = 64, n_outputs: int = 3) -> None:
        super().__init__()
        self.channels_in = channels_in
        self.net = nn.Sequential(
            nn.Conv2d(channels_in, conv_dim, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
            *_conv_bn(conv_dim, conv_dim * 2, 2, 1, nn.LeakyReLU(0.2, True)),
            *_conv_bn(conv_dim * 2, conv_dim * 4, 2, 1, nn.LeakyReLU(0.2, True)),
            nn.Conv2d(conv_dim * 4, n_outputs, 4),
            nn.Flatten(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.net(input)


@register("dtn_translator")
class DTNTranslator(DTNImages):
    """The exported DTN translator G = g(f(x)); its state_dict is f's under `f.` and g's under `g.`."""

    def __init__(self, channels_in: int = 3, channels_out: int = 1, conv_dim: int = 64, code_dim: int = 128) -> None:
        super().__init__()
        self.channels_in, self.channels_out = channels_in, channels_out
        self.f = DTNEncoder(channels_in, conv_dim, code_dim)
        self.g = DTNGenerator(channels_out, conv_dim, code_dim)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.g(self.f(input))
