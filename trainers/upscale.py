"""A photo upscaler in pix2pix's framework: a residual network learns crop/scale -> crop from pairs.

L1 keeps it close, a PatchGAN may sharpen it. With `adversarial_weight` 0 it is
plain L1 training (the best PSNR); above 0 a PatchGAN judges the outputs against
the true crops, which trades a little PSNR for sharper texture. The exported
model records `gantx.scale`, so the runtime hands back images `scale` times
larger.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from gantx.errors import GantxError
from gantx.model import ModelInfo
from gantx.trainers.config import UpscaleConfig
from gantx.trainers.data import photo_pairs
from gantx.trainers.loop import (
    Batch,
    Family,
    adam,
    add_moving_averages,
    adversarial_optimisers,
    evaluate,
    gan_phase,
    optimise,
    patch_discriminator,
    pick_device,
    set_requires_grad,
)
from gantx.trainers.losses import discriminator_loss, generator_loss
from gantx.trainers.networks import create_model

GRID = 6


class Upscale(Family):
    name = "upscale"

    def __init__(self, config: UpscaleConfig) -> None:
        self.config, self.device = config, pick_device(config.device)
        if config.size % config.scale:
            raise GantxError(f"upscale: size {config.size} must be a multiple of scale {config.scale}")
        low, high = photo_pairs(
            Path(config.data),
            config.size,
            config.scale,
            config.limit or config.crops,
            config.seed,
            config.jpeg,
            config.noise,
        )
        self.G = create_model(
            "upscaler",
            scale=config.scale,
            features=config.features,
            n_blocks=config.n_blocks,
            channels=config.channels,
            size=config.size // config.scale,
        ).to(self.device)  # PyTorch's default initialisation suits a residual network without norm layers
        self.networks = {"G": self.G}
        self.D = None
        if config.adversarial_weight:
            self.D = patch_discriminator(config, "batch", config.channels).to(self.device)
            self.networks["D"] = self.D
            self.optimisers = adversarial_optimisers(config, [self.G], [self.D])
        else:
            self.optimisers = {"G": adam(config, self.G.parameters())}
        self.phases = [
            gan_phase(config, [(low.images, high.images)], self.train_step, ("L1", "G_gan", "D"), self.optimisers)
        ]
        self.fixed = (low.images[:GRID].to(self.device), high.images[:GRID].to(self.device))
        self.generators = add_moving_averages(self, {"AtoB": "G"})
        self.contract = ModelInfo(
            kind="image2image",
            arch=self.G.arch,
            size=(config.size // config.scale,) * 2,
            channels_in=config.channels,
            channels_out=config.channels,
            size_multiple=self.G.size_multiple,
            domains=(low.name, high.name),
            scale=config.scale,
        )

    def train_step(self, batch: Batch) -> dict[str, float]:
        low, high = batch
        config = self.config
        fake = self.G(low)
        losses = {}
        loss = F.l1_loss(fake, high) * config.l1_weight
        losses["L1"] = loss.item()
        if self.D is not None:
            set_requires_grad([self.D], True)
            loss_d = discriminator_loss(config.gan_loss, self.D(high), self.D(fake.detach()), half=True)
            optimise(self.optimisers["D"], loss_d)
            set_requires_grad([self.D], False)
            loss_gan = generator_loss(config.gan_loss, self.D(fake)) * config.adversarial_weight
            loss = loss + loss_gan
            losses.update(G_gan=loss_gan.item(), D=loss_d.item())
        optimise(self.optimisers["G"], loss)
        return losses

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """Rows: the input (enlarged by repeating pixels), the upscaled output, the true crop."""
        low, high = self.fixed
        blocky = low.repeat_interleave(self.config.scale, -1).repeat_interleave(self.config.scale, -2)
        return torch.cat([blocky, evaluate(self.sampler("G"), low).clamp(-1, 1), high]), GRID
