"""Judging generated Fashion-MNIST items the way a paper would.

The "judge" is a small classifier trained on the real training split; its
verdicts score class fidelity and its penultimate features feed a Frechet
distance ("judge-FID", computed by torchmetrics, not a hand-written matrix
square root). SSIM and PSNR come from torchmetrics too. All images here are
float tensors N x 1 x 28 x 28 in model units, [-1, 1] as `gantx.model.to_model_units`
maps pixels (what the trainers feed the networks), so no pixel mapping is written
again here. PSNR takes that span (`DATA_RANGE`); SSIM, which compares luminances
and is not shift-invariant, reads the 8-bit pixels they stand for (`to_pixels`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from torchmetrics.image.fid import FrechetInceptionDistance

from gantx.model import to_pixels

FEATURES = 128
DATA_RANGE = 2.0  # model units run from -1 to 1


class Judge(nn.Module):
    """Two conv blocks and a 128-d penultimate layer: ~91% on Fashion-MNIST after a few epochs on a CPU."""

    num_features = FEATURES  # read by torchmetrics' FID

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, FEATURES), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(FEATURES, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class _JudgeFeatures(nn.Module):
    """The judge's penultimate layer as torchmetrics' FID expects a feature extractor."""

    def __init__(self, judge: Judge) -> None:
        super().__init__()
        self.judge = judge
        self.num_features = FEATURES

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.judge.features(images.float())


def train_judge(images: torch.Tensor, labels: torch.Tensor, epochs: int = 4, seed: int = 0) -> Judge:
    """Fit a judge on real items (model units) with Adam and light shifts."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    judge = Judge()
    optimiser = torch.optim.Adam(judge.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 3e-3, total_steps=epochs * -(-len(images) // 128))
    judge.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), 128):
            batch = order[start : start + 128]
            shifted = torch.roll(
                images[batch], shifts=tuple(torch.randint(-2, 3, (2,), generator=generator).tolist()), dims=(2, 3)
            )
            loss = F.cross_entropy(judge(shifted), labels[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    return judge.eval()


@torch.no_grad()
def predict(judge: Judge, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    judge.eval()
    return torch.cat([judge(images[start : start + batch]).argmax(1) for start in range(0, len(images), batch)])


def accuracy(judge: Judge, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (predict(judge, images) == labels).float().mean().item()


@torch.no_grad()
def judge_fid(judge: Judge, real: torch.Tensor, fake: torch.Tensor, batch: int = 1000) -> float:
    """Frechet distance between real and fake items in the judge's feature space."""
    metric = FrechetInceptionDistance(
        feature=_JudgeFeatures(judge.eval())
    )  # a custom extractor takes the images as they are
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch):
            metric.update(images[start : start + batch], real=is_real)
    return metric.compute().item()


def _pixels(images: torch.Tensor) -> torch.Tensor:
    """Model units -> the uint8 values they stand for, as floats N x C x H x W."""
    return torch.from_numpy(to_pixels(images.detach().cpu().numpy())).permute(0, 3, 1, 2).float()


def ssim(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """SSIM of the 8-bit images: its luminance term assumes intensities >= 0.

    On [-1, 1] a pair that scores 0.61 would score 0.70.
    """
    return structural_similarity_index_measure(
        _pixels(predicted), _pixels(target), data_range=float(np.iinfo(np.uint8).max)
    ).item()


def psnr(predicted: torch.Tensor, target: torch.Tensor) -> float:
    return peak_signal_noise_ratio(predicted, target, data_range=DATA_RANGE).item()
