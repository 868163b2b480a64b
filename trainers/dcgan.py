"""DCGAN (Radford et al.) on 28x28 items, in the TensorFlow DCGAN tutorial's form: noise -> image, one real/fake logit."""

from __future__ import annotations

import torch
from gantx.trainers.checkpoint import ExportSpec
from gantx.trainers.config import DCGANConfig
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

GRID = 64


class DCGAN(Family):
    name = "dcgan"

    def __init__(self, config: DCGANConfig) -> None:
        self.config, self.device = config, pick_device(config.device)
        images = load_images(config.data, config, config.channels)
        self.G = create_model("dcgan_generator", latent_dim=config.latent_dim, channels_out=config.channels, size=config.size).to(self.device)
        self.D = create_model("dcgan_discriminator", channels_in=config.channels, size=config.size).to(self.device)
        self.networks = {"G": self.G, "D": self.D}
        self.optimizers = {"G": adam(config, self.G.parameters()), "D": adam(config, self.D.parameters())}
        data = [(images.images,)]
        self.phases = [gan_phase(config, data, self.train_step, ("D", "G"), self.optimizers)]
        self.fixed_z = torch.randn(GRID, config.latent_dim, generator=torch.Generator().manual_seed(config.seed)).to(self.device)
        self.export = ExportSpec(
            kind="noise2image", generators={"AtoB": "G"}, size=(config.size, config.size), channels_out=config.channels, latent_dim=config.latent_dim
        )

    def train_step(self, batch: Batch) -> dict[str, float]:
        (real,) = batch
        kind = self.config.gan_loss
        fake = self.G(torch.randn(len(real), self.config.latent_dim, device=self.device))

        loss_d = discriminator_loss(kind, self.D(real), self.D(fake.detach()), self.config.d_half)
        optimise(self.optimizers["D"], loss_d)

        loss_g = adversarial(kind, self.D(fake), True)
        optimise(self.optimizers["G"], loss_g)
        return {"D": loss_d.item(), "G": loss_g.item()}

    @torch.no_grad()
    def sample_grid(self) -> tuple[torch.Tensor, int]:
        self.G.eval()
        images = self.G(self.fixed_z)
        self.G.train()
        return images, 8
