"""Conditional GAN (Mirza and Osindero) in the label-embedding form: noise + class -> item; the discriminator sees the class too."""

from __future__ import annotations

import torch
from gantx.trainers.checkpoint import ExportSpec
from gantx.trainers.config import CGANConfig
from gantx.trainers.loop import (
    Batch,
    Family,
    adam,
    gan_phase,
    load_images,
    optimise,
    pick_device,
)
from gantx.trainers.losses import adversarial, discriminator_loss
from gantx.trainers.networks import create_model

PER_CLASS = 8


class CGAN(Family):
    name = "cgan"

    def __init__(self, config: CGANConfig) -> None:
        self.config, self.device = config, pick_device(config.device)
        images = load_images(config.data, config, config.channels, labels=True)
        self.classes = images.classes
        k = len(self.classes)
        self.G = create_model(
            "cgan_generator", latent_dim=config.latent_dim, num_classes=k, channels_out=config.channels, size=config.size, ngf=config.ngf
        ).to(self.device)
        self.D = create_model("cgan_discriminator", num_classes=k, channels_in=config.channels, size=config.size).to(self.device)
        self.networks = {"G": self.G, "D": self.D}
        self.optimizers = {"G": adam(config, self.G.parameters()), "D": adam(config, self.D.parameters())}
        data = [(images.images, images.labels)]
        self.phases = [gan_phase(config, data, self.train_step, ("D", "G"), self.optimizers)]
        generator = torch.Generator().manual_seed(config.seed)
        self.fixed_z = torch.randn(k * PER_CLASS, config.latent_dim, generator=generator).to(self.device)
        self.fixed_labels = torch.arange(k).repeat_interleave(PER_CLASS).to(self.device)
        self.export = ExportSpec(
            kind="noise2image",
            generators={"AtoB": "G"},
            size=(config.size, config.size),
            channels_out=config.channels,
            latent_dim=config.latent_dim,
            classes=self.classes,
        )

    def train_step(self, batch: Batch) -> dict[str, float]:
        real, labels = batch
        kind, n = self.config.gan_loss, len(real)
        fake_labels = torch.randint(len(self.classes), (n,), device=self.device)
        fake = self.G(torch.randn(n, self.config.latent_dim, device=self.device), fake_labels)

        loss_d = discriminator_loss(kind, self.D(real, labels), self.D(fake.detach(), fake_labels), self.config.d_half)
        optimise(self.optimizers["D"], loss_d)

        loss_g = adversarial(kind, self.D(fake, fake_labels), True)
        optimise(self.optimizers["G"], loss_g)
        return {"D": loss_d.item(), "G": loss_g.item()}

    @torch.no_grad()
    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """One row per class."""
        self.G.eval()
        images = self.G(self.fixed_z, self.fixed_labels)
        self.G.train()
        return images, PER_CLASS
