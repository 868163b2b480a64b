"""Adversarial losses and CycleGAN's image pool: trainer-side only, never inside the exported networks.

vanilla  non-saturating GAN loss: binary cross-entropy on logits (Goodfellow et al.)
lsgan    least squares on the raw outputs (Mao et al.; CycleGAN's default)
focal    binary focal cross-entropy, gamma 2 (Lin et al.): down-weights samples already judged right
hinge    hinge loss (Lim and Ye; Miyato et al.): D pushes real logits over 1 and fake under -1, G raises fake logits
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gantx.trainers.config import GanLoss

FOCAL_GAMMA = 2.0


def _cross_entropy(kind: GanLoss, per_sample: torch.Tensor) -> torch.Tensor:
    """The mean of per-sample cross-entropies, focal-weighted for `focal`."""
    if kind == "focal":
        per_sample = (1 - torch.exp(-per_sample)) ** FOCAL_GAMMA * per_sample
    return per_sample.mean()


def adversarial(kind: GanLoss, logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Discriminator loss for calling `logits` real (True) or fake (False), over every logit (PatchGAN grids too)."""
    if kind == "hinge":
        return F.relu(1 - logits).mean() if real else F.relu(1 + logits).mean()
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    return _cross_entropy(kind, F.binary_cross_entropy_with_logits(logits, target, reduction="none"))


def generator_loss(kind: GanLoss, fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the discriminator's logits for its fakes (non-saturating: it wants them called real)."""
    return -fake_logits.mean() if kind == "hinge" else adversarial(kind, fake_logits, True)


def discriminator_loss(kind: GanLoss, real_logits: torch.Tensor, fake_logits: torch.Tensor, half: bool) -> torch.Tensor:
    """Real called real plus fake called fake; halved where pix2pix and CycleGAN halve it (D learns slower than G)."""
    loss = adversarial(kind, real_logits, True) + adversarial(kind, fake_logits, False)
    return 0.5 * loss if half else loss


def classes_adversarial(kind: GanLoss, logits: torch.Tensor, target: int) -> torch.Tensor:
    """Multi-way version for DTN's three-way discriminator: every row should be class `target`."""
    targets = torch.full((len(logits),), target, dtype=torch.long, device=logits.device)
    if kind == "lsgan":
        return F.mse_loss(logits, F.one_hot(targets, logits.shape[1]).to(logits.dtype))
    if kind == "hinge":
        raise ValueError("the hinge loss has no multi-way form here: use vanilla, lsgan or focal")
    return _cross_entropy(kind, F.cross_entropy(logits, targets, reduction="none"))


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (DTN's L_TV, anisotropic form)."""
    return (images[..., 1:, :] - images[..., :-1, :]).abs().mean() + (
        images[..., :, 1:] - images[..., :, :-1]
    ).abs().mean()


class ImagePool:
    """History of generated images (Shrivastava et al.), as CycleGAN uses it: the discriminator sees old fakes too.

    Until full, every image goes in and comes back; then each image is, with
    probability 1/2, swapped for a random stored one. Size 0 turns it off.
    Draws come from torch's global RNG, which checkpoints save, so resume is exact.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(len(self.images), ()))
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"images": torch.stack(self.images).cpu() if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        self.images = [image.to(device) for image in state["images"]]
