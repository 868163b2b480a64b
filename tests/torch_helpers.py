"""Small configurations of every registered network, shared by the torch-side tests."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gantx.model import ModelInfo  # noqa: E402
from gantx.trainers.checkpoint import save_checkpoint  # noqa: E402
from gantx.trainers.networks import create_model, list_models  # noqa: E402

# Options that keep each architecture tiny; a newly registered name must get an entry here.
SMALL_OPTIONS: dict[str, dict[str, object]] = {
    "resnet": {"n_blocks": 2, "ngf": 8, "size": 32},
    "resnet_6blocks": {"ngf": 8, "size": 32, "norm": "batch"},
    "resnet_9blocks": {"ngf": 8, "size": 32, "activation": "leaky_relu", "dropout": True},
    "unet": {"num_downs": 6, "ngf": 8, "size": 64, "norm": "instance"},
    "unet_32": {"ngf": 8},
    "unet_128": {"ngf": 4},
    "unet_256": {"ngf": 2},
    "patchgan": {"ndf": 8, "size": 32, "channels_in": 6},
    "pixel": {"ndf": 8, "size": 16},
    "dcgan_generator": {"latent_dim": 16},
    "dcgan_discriminator": {"channels_in": 3, "size": 32},
    "cgan_generator": {"latent_dim": 16, "channels_out": 3, "size": 32},
    "cgan_discriminator": {},
    "dtn_encoder": {"conv_dim": 8, "code_dim": 16},
    "dtn_generator": {"conv_dim": 8, "code_dim": 16},
    "dtn_discriminator": {"conv_dim": 8},
    "dtn_translator": {"conv_dim": 8, "code_dim": 16},
    "upscaler": {"features": 8, "n_blocks": 1, "size": 16},
}


# The contract of a small horse <-> zebra ResNet, as the CycleGAN trainer writes it into checkpoints.
RESNET_CONTRACT = ModelInfo(
    kind="image2image",
    arch="resnet",
    size=(32, 32),
    channels_in=3,
    channels_out=3,
    size_multiple=4,
    domains=("horse", "zebra"),
)


def save_one_generator(path, family: str, generator, contract: ModelInfo):
    """A checkpoint holding one generator `G` (AtoB) under `contract`, as a one-way trainer writes it; its path."""
    save_checkpoint(
        path, family=family, config={}, networks={"G": generator}, contract=contract, generators={"AtoB": "G"}
    )
    return path


def small_model(name: str):
    return create_model(name, **SMALL_OPTIONS[name])


def registered_names() -> list[str]:
    return list_models()


# -- independent re-implementations of the public CycleGAN/pix2pix generator layouts ---------------------
# Written from the published architecture description (a `model` Sequential; `conv_block` in residual
# blocks; nested U-Net blocks), not from gantx's registry, so they can serve as references.

nn = torch.nn


def public_norm(kind: str):
    return {
        "instance": lambda c: nn.InstanceNorm2d(c),
        "instance_affine": lambda c: nn.InstanceNorm2d(c, affine=True),
        "batch": nn.BatchNorm2d,
    }[kind]


class PublicResnetBlock(nn.Module):
    def __init__(self, dim, norm, use_dropout, use_bias):
        super().__init__()
        block = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim), nn.ReLU(True)]
        block += [nn.Dropout(0.5)] if use_dropout else []
        block += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class PublicResnetGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=64, norm="instance", use_dropout=False, n_blocks=9):
        super().__init__()
        norm_layer, use_bias = public_norm(norm), norm != "batch"
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        model += [PublicResnetBlock(ngf * 4, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=use_bias),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class PublicUnetBlock(nn.Module):
    def __init__(
        self,
        outer_nc,
        inner_nc,
        input_nc=None,
        submodule=None,
        outermost=False,
        innermost=False,
        norm=None,
        use_dropout=False,
    ):
        super().__init__()
        self.outermost = outermost
        use_bias = norm is not nn.BatchNorm2d
        downconv = nn.Conv2d(input_nc or outer_nc, inner_nc, 4, 2, 1, bias=use_bias)
        if outermost:
            model = [downconv, submodule, nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
        elif innermost:
            model = [
                nn.LeakyReLU(0.2, True),
                downconv,
                nn.ReLU(True),
                nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=use_bias),
                norm(outer_nc),
            ]
        else:
            down = [nn.LeakyReLU(0.2, True), downconv, norm(inner_nc)]
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=use_bias), norm(outer_nc)]
            model = down + [submodule] + up + ([nn.Dropout(0.5)] if use_dropout else [])
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class PublicUnetGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", use_dropout=True):
        super().__init__()
        norm_layer = nn.BatchNorm2d if norm == "batch" else public_norm(norm)
        block = PublicUnetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm_layer)
        for _ in range(num_downs - 5):
            block = PublicUnetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm_layer, use_dropout=use_dropout)
        for mult in (4, 2, 1):
            block = PublicUnetBlock(ngf * mult, ngf * mult * 2, submodule=block, norm=norm_layer)
        self.model = PublicUnetBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm_layer
        )

    def forward(self, x):
        return self.model(x)


def randomise(module, seed: int = 0):
    """Random weights, and random running statistics for batch norm, so nothing is left at identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(
                    torch.randn(tensor.shape, generator=generator) * (0.1 if name.endswith("running_mean") else 0.2)
                )
    return module.eval()
