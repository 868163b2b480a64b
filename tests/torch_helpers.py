"""Small configurations of every registered network, shared by the torch-side tests."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

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
}


def small_model(name: str):
    return create_model(name, **SMALL_OPTIONS[name])


def registered_names() -> list[str]:
    return list_models()
