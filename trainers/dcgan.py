"""DCGAN (Radford et al.) on 28x28 items, in the TensorFlow DCGAN tutorial's form: noise -> image, one real/fake logit.

The conditional GAN (cgan.py) is this family with a class label fed to both
networks; the training step is one piece of code for both. Weights start at
N(0, 0.02) as the DCGAN paper sets them: with PyTorch's smaller default
initialisation the discriminator wins within 40 steps and the generator never
recovers (measured: D loss 0.002 after 250 cGAN steps, against ~1.0 here).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from gantx.model import ModelInfo
from gantx.trainers.config import DCGANConfig
from gantx.trainers.loop import (
    Batch,
    Family,
    add_moving_averages,
    adversarial_optimisers,
    evaluate,
    gan_phase,
    init_weights,
    load_images,
    optimise,
    pick_device,
)
from gantx.trainers.losses import discriminator_loss, generator_loss
from gantx.trainers.networks import create_model

PER_ROW = 8


class DCGAN(Family):
    name = "dcgan"
    conditional: ClassVar[bool] = False

    def __init__(self, config: DCGANConfig) -> None:
        self.config, self.device = config, pick_device(config.device)
        images = load_images(config.data, config, config.channels, labels=self.conditional)
        self.classes = images.classes if self.conditional else ()
        self.G, self.D = (init_weights(network).to(self.device) for network in self.build_networks())
        self.networks = {"G": self.G, "D": self.D}
        self.optimisers = adversarial_optimisers(config, [self.G], [self.D])
        data = [(images.images, images.labels) if self.conditional else (images.images,)]
        self.phases = [gan_phase(config, data, self.train_step, ("D", "G"), self.optimisers)]
        # The sample grid: one row per class when conditional, else 8 rows.
        rows = len(self.classes) or 8
        generator = torch.Generator().manual_seed(config.seed)
        self.fixed_z = torch.randn(rows * PER_ROW, config.latent_dim, generator=generator).to(self.device)
        self.fixed_labels = [torch.arange(rows).repeat_interleave(PER_ROW).to(self.device)] if self.conditional else []
        self.generators = add_moving_averages(self, {"AtoB": "G"})
        self.contract = ModelInfo(
            kind="noise2image",
            arch=self.G.arch,
            size=(config.size, config.size),
            channels_out=config.channels,
            latent_dim=config.latent_dim,
            classes=self.classes,
        )

    def build_networks(self) -> tuple[nn.Module, nn.Module]:
        config = self.config
        generator = create_model(
            "dcgan_generator",
            latent_dim=config.latent_dim,
            channels_out=config.channels,
            size=config.size,
            ngf=config.ngf,
        )
        return generator, create_model(
            "dcgan_discriminator", channels_in=config.channels, size=config.size, spectral_norm=config.spectral_norm
        )

    def train_step(self, batch: Batch) -> dict[str, float]:
        real, *labels = batch  # labels: [] or [the real items' classes]
        n = len(real)
        fake_labels = [torch.randint(len(self.classes), (n,), device=self.device)] if self.conditional else []
        fake = self.G(torch.randn(n, self.config.latent_dim, device=self.device), *fake_labels)

        loss_d = self.discriminator_loss(real, labels, fake.detach(), fake_labels)
        optimise(self.optimisers["D"], loss_d)

        loss_g = self.generator_loss(fake, fake_labels)
        optimise(self.optimisers["G"], loss_g)
        return {"D": loss_d.item(), "G": loss_g.item()}

    def discriminator_loss(
        self, real: torch.Tensor, labels: list[torch.Tensor], fake: torch.Tensor, fake_labels: list[torch.Tensor]
    ) -> torch.Tensor:
        kind, half = self.config.gan_loss, self.config.d_half
        return discriminator_loss(kind, self.D(real, *labels), self.D(fake, *fake_labels), half)

    def generator_loss(self, fake: torch.Tensor, fake_labels: list[torch.Tensor]) -> torch.Tensor:
        return generator_loss(self.config.gan_loss, self.D(fake, *fake_labels))

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        return evaluate(self.sampler("G"), self.fixed_z, *self.fixed_labels), PER_ROW
