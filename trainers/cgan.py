"""Conditional GAN (Mirza and Osindero) in the label-embedding form: noise + class -> item.

The discriminator sees the class too. With `aux_weight`, it also classifies
the image alone (AC-GAN, Odena et al.): that head learns the real items'
classes, and the generator's loss adds how far its items are from being
classified as asked, so samples must carry their class, not only pass as real.
With `twin_classifier` (TAC-GAN, Gong et al.), a second head learns the
classes of the generator's items, and the generator's loss subtracts that
head's cross-entropy: what is left is a distance between the real and the
generated class distributions, so G is no longer pulled toward the items
easiest to classify, the diversity AC-GAN costs.
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
            aux_classifier=config.aux_weight > 0, twin_classifier=config.twin_classifier,
        )  # fmt: skip
        return generator, discriminator

    def discriminator_loss(
        self, real: torch.Tensor, labels: list[torch.Tensor], fake: torch.Tensor, fake_labels: list[torch.Tensor]
    ) -> torch.Tensor:
        """The adversarial loss, plus aux_weight x the class heads' cross-entropy: the class head's on the real
        items (AC-GAN), the twin head's on the generated ones (TAC-GAN)."""
        real_verdict, fake_verdict = self.D.judge(real, *labels), self.D.judge(fake, *fake_labels)
        loss = discriminator_loss(self.config.gan_loss, real_verdict.logit, fake_verdict.logit, self.config.d_half)
        if real_verdict.classes is not None:
            loss = loss + self.config.aux_weight * F.cross_entropy(real_verdict.classes, *labels)
        if fake_verdict.twin_classes is not None:
            loss = loss + self.config.aux_weight * F.cross_entropy(fake_verdict.twin_classes, *fake_labels)
        return loss

    def generator_loss(self, fake: torch.Tensor, fake_labels: list[torch.Tensor]) -> torch.Tensor:
        """The adversarial loss, plus aux_weight x (the class head's cross-entropy on the classes asked for, minus
        the twin head's)."""
        verdict = self.D.judge(fake, *fake_labels)
        loss = generator_loss(self.config.gan_loss, verdict.logit)
        if verdict.classes is not None:
            loss = loss + self.config.aux_weight * F.cross_entropy(verdict.classes, *fake_labels)
        if verdict.twin_classes is not None:
            loss = loss - self.config.aux_weight * F.cross_entropy(verdict.twin_classes, *fake_labels)
        return loss
