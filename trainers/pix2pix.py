"""pix2pix (Isola et al.): a U-Net learns A -> B from aligned pairs; a PatchGAN judges (A, B); L1 keeps it near B."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gantx.model import ModelInfo
from gantx.trainers.config import Pix2PixConfig
from gantx.trainers.loop import (
    Batch,
    Family,
    add_moving_averages,
    adversarial_optimisers,
    evaluate,
    fit_name,
    gan_phase,
    image_generator,
    load_pair_images,
    optimise,
    patch_discriminator,
    pick_device,
    set_requires_grad,
)
from gantx.trainers.losses import discriminator_loss, generator_loss

GRID = 8


class Pix2Pix(Family):
    name = "pix2pix"

    def __init__(self, config: Pix2PixConfig) -> None:
        self.config, self.device = config, pick_device(config.device)
        source, target = load_pair_images(config.data, config, config.channels)
        c = config.channels
        self.G = image_generator(config.generator, config.ngf, config.norm, config.dropout, c, c, config.size).to(
            self.device
        )
        self.D = patch_discriminator(config, config.norm, 2 * c).to(self.device)
        self.networks = {"G": self.G, "D": self.D}
        self.optimisers = adversarial_optimisers(config, [self.G], [self.D])
        data = [(source.images, target.images)]
        self.phases = [gan_phase(config, data, self.train_step, ("D", "G_gan", "G_L1"), self.optimisers)]
        self.fixed = (source.images[:GRID].to(self.device), target.images[:GRID].to(self.device))
        self.generators = add_moving_averages(self, {"AtoB": "G"})
        self.contract = ModelInfo(
            kind="image2image",
            arch=self.G.arch,
            size=(config.size, config.size),
            channels_in=c,
            channels_out=c,
            size_multiple=self.G.size_multiple,
            domains=(source.name, target.name),
            fit=fit_name(config),
        )

    def train_step(self, batch: Batch) -> dict[str, float]:
        real_a, real_b = batch
        kind = self.config.gan_loss
        fake_b = self.G(real_a)

        set_requires_grad([self.D], True)
        fake_logits = self.D(torch.cat([real_a, fake_b.detach()], 1))
        loss_d = discriminator_loss(kind, self.D(torch.cat([real_a, real_b], 1)), fake_logits, self.config.d_half)
        optimise(self.optimisers["D"], loss_d)

        set_requires_grad([self.D], False)
        loss_gan = generator_loss(kind, self.D(torch.cat([real_a, fake_b], 1)))
        loss_l1 = F.l1_loss(fake_b, real_b) * self.config.l1_weight
        optimise(self.optimisers["G"], loss_gan + loss_l1)
        return {"D": loss_d.item(), "G_gan": loss_gan.item(), "G_L1": loss_l1.item()}

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """Rows: source, translation, true target."""
        source, target = self.fixed
        return torch.cat([source, evaluate(self.sampler("G"), source), target]), GRID
