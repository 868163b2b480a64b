"""Conditional GAN (Mirza and Osindero) in the label-embedding form: noise + class -> item.

The discriminator sees the class too. With `aux_weight`, it also classifies
the image alone (AC-GAN, Odena et al.): that head learns the real items'
classes, and the generator's loss adds how far its items are from being
classified as asked, so samples must carry their class, not only pass as real.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantx.trainers.dcgan import DCGAN
from gantx.trainers.losses import discriminator_loss, generator_loss
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
            aux_classifier=config.aux_weight > 0,
        )  # fmt: skip
        return generator, discriminator

    def discriminator_loss(
        self, real: torch.Tensor, labels: list[torch.Tensor], fake: torch.Tensor, fake_labels: list[torch.Tensor]
    ) -> torch.Tensor:
        """The adversarial loss, plus aux_weight x the class head's cross-entropy on the real items (AC-GAN)."""
        real_logit, real_classes = self.D.judge(real, *labels)
        fake_logit, _ = self.D.judge(fake, *fake_labels)
        loss = discriminator_loss(self.config.gan_loss, real_logit, fake_logit, self.config.d_half)
        return loss if real_classes is None else loss + self.config.aux_weight * F.cross_entropy(real_classes, *labels)

    def generator_loss(self, fake: torch.Tensor, fake_labels: list[torch.Tensor]) -> torch.Tensor:
        """The adversarial loss, plus aux_weight x the class head's cross-entropy on the classes asked for."""
        logit, classes = self.D.judge(fake, *fake_labels)
        loss = generator_loss(self.config.gan_loss, logit)
        return loss if classes is None else loss + self.config.aux_weight * F.cross_entropy(classes, *fake_labels)
