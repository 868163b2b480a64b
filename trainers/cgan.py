"""Conditional GAN (Mirza and Osindero) in the label-embedding form: noise + class -> item.

The discriminator sees the class too.
"""

from __future__ import annotations

from torch import nn

from gantx.trainers.dcgan import DCGAN
from gantx.trainers.networks import create_model


class CGAN(DCGAN):
    name = "cgan"
    conditional = True

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        config, k = self.config, len(self.classes)
        generator = create_model(
            "cgan_generator",
            latent_dim=config.latent_dim,
            num_classes=k,
            channels_out=config.channels,
            size=config.size,
            ngf=config.ngf,
        )
        discriminator = create_model(
            "cgan_discriminator", num_classes=k, channels_in=config.channels, size=config.size,
            conditioning=config.conditioning, spectral_norm=config.spectral_norm,
        )  # fmt: skip
        return generator, discriminator
