"""CycleGAN (Zhu et al.): two translators learn A <-> B from unpaired domains, tied by cycle and identity losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gantx.errors import GantxError
from gantx.model import ModelInfo
from gantx.trainers.config import CycleGANConfig
from gantx.trainers.loop import (
    Batch,
    Family,
    add_moving_averages,
    adversarial_optimisers,
    evaluate,
    fit_name,
    gan_phase,
    image_generator,
    load_images,
    optimise,
    patch_discriminator,
    pick_device,
    set_requires_grad,
)
from gantx.trainers.losses import ImagePool, discriminator_loss, generator_loss

GRID = 8


class CycleGAN(Family):
    name = "cyclegan"

    def __init__(self, config: CycleGANConfig) -> None:
        self.config, self.device = config, pick_device(config.device)
        if not config.data_b:
            raise GantxError("cyclegan needs two domains: --data A --data-b B")
        domain_a = load_images(config.data, config, config.channels)
        domain_b = load_images(config.data_b, config, config.channels)
        c = config.channels

        def generator():
            return image_generator(config.generator, config.ngf, config.norm, False, c, c, config.size).to(self.device)

        def discriminator():
            return patch_discriminator(config, config.norm, c).to(self.device)

        # Canonical naming: G_A translates A -> B and D_A judges its output (domain B).
        self.G_A, self.G_B, self.D_A, self.D_B = generator(), generator(), discriminator(), discriminator()
        self.networks = {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B}
        self.optimisers = adversarial_optimisers(config, [self.G_A, self.G_B], [self.D_A, self.D_B])
        self.pools = {"A": ImagePool(config.pool_size), "B": ImagePool(config.pool_size)}
        data = [(domain_a.images,), (domain_b.images,)]
        losses = ("D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")
        self.phases = [gan_phase(config, data, self.train_step, losses, self.optimisers)]
        self.fixed = (domain_a.images[:GRID].to(self.device), domain_b.images[:GRID].to(self.device))
        self.generators = add_moving_averages(self, {"AtoB": "G_A", "BtoA": "G_B"})
        self.contract = ModelInfo(
            kind="image2image",
            arch=self.G_A.arch,
            size=(config.size, config.size),
            channels_in=c,
            channels_out=c,
            size_multiple=self.G_A.size_multiple,
            domains=(domain_a.name, domain_b.name),
            fit=fit_name(config),
        )

    def train_step(self, batch: Batch) -> dict[str, float]:
        real_a, real_b = batch
        config, kind = self.config, self.config.gan_loss
        fake_b, fake_a = self.G_A(real_a), self.G_B(real_b)
        rec_a, rec_b = self.G_B(fake_b), self.G_A(fake_a)

        set_requires_grad([self.D_A, self.D_B], False)
        loss_g_a = generator_loss(kind, self.D_A(fake_b))
        loss_g_b = generator_loss(kind, self.D_B(fake_a))
        loss_cycle_a = F.l1_loss(rec_a, real_a) * config.cycle_weight
        loss_cycle_b = F.l1_loss(rec_b, real_b) * config.cycle_weight
        loss = loss_g_a + loss_g_b + loss_cycle_a + loss_cycle_b
        idt = config.identity_weight * config.cycle_weight
        loss_idt_a = loss_idt_b = torch.zeros(())
        if idt > 0:  # G_A fed a B image should leave it alone, and G_B an A image
            loss_idt_a = F.l1_loss(self.G_A(real_b), real_b) * idt
            loss_idt_b = F.l1_loss(self.G_B(real_a), real_a) * idt
            loss = loss + loss_idt_a + loss_idt_b
        optimise(self.optimisers["G"], loss)

        set_requires_grad([self.D_A, self.D_B], True)
        loss_d_a = discriminator_loss(kind, self.D_A(real_b), self.D_A(self.pools["B"].query(fake_b)), config.d_half)
        loss_d_b = discriminator_loss(kind, self.D_B(real_a), self.D_B(self.pools["A"].query(fake_a)), config.d_half)
        optimise(self.optimisers["D"], loss_d_a + loss_d_b)
        values = (loss_d_a, loss_d_b, loss_g_a, loss_g_b, loss_cycle_a, loss_cycle_b, loss_idt_a, loss_idt_b)
        return {name: value.item() for name, value in zip(self.phases[0].losses, values)}

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """Rows: A, A -> B, back to A; B, B -> A, back to B."""
        a, b = self.fixed
        g_a, g_b = self.sampler("G_A"), self.sampler("G_B")
        fake_b, fake_a = evaluate(g_a, a), evaluate(g_b, b)
        return torch.cat([a, fake_b, evaluate(g_b, fake_b), b, fake_a, evaluate(g_a, fake_a)]), GRID

    def extra_state(self) -> dict:
        return {"pools": {name: pool.state_dict() for name, pool in self.pools.items()}}

    def load_extra_state(self, state: dict) -> None:
        for name, pool in self.pools.items():
            pool.load_state_dict(state["pools"][name], self.device)
