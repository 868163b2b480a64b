"""The quality metrics on known inputs: a perfect copy scores perfectly, noise scores badly."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from gantx.trainers.evaluation import accuracy, judge_fid, psnr, ssim, train_judge

FASHION = Path("/usr/share/datasets/fashion-mnist")


def read_idx(name: str) -> np.ndarray:
    """The idx format: big-endian magic (dtype, rank), the dims, then the data."""
    with gzip.open(FASHION / name) as handle:
        data = handle.read()
    rank = data[3]
    dims = np.frombuffer(data[4 : 4 + 4 * rank], dtype=">u4")
    return np.frombuffer(data[4 + 4 * rank :], dtype=np.uint8).reshape(dims)


@pytest.fixture(scope="module")
def items() -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(read_idx("t10k-images-idx3-ubyte.gz")[:3000].copy()).float().div(255).unsqueeze(1)
    labels = torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz")[:3000].astype(np.int64))
    return images, labels


def test_ssim_and_psnr_on_known_inputs(items):
    images, _ = items
    real = images[:200]
    assert ssim(real, real) == pytest.approx(1.0)
    assert psnr(real, real) > 80
    noise = torch.rand_like(real, generator=torch.Generator().manual_seed(0))
    assert ssim(noise, real) < 0.1
    assert psnr(noise, real) < 10
    # 0.1 of uniform error everywhere is exactly 20 dB
    assert psnr(real + 0.1, real) == pytest.approx(20.0, abs=0.05)


def test_judge_learns_and_fid_separates_copies_from_noise(items):
    images, labels = items
    judge = train_judge(images[:2000], labels[:2000], epochs=2)
    held_out = accuracy(judge, images[2000:], labels[2000:])
    assert held_out > 0.7  # 2,000 items, 2 epochs: far above the 0.1 of chance
    real_a, real_b = images[2000:2500], images[2500:3000]
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    same = judge_fid(judge, real_a, real_a)
    other_real = judge_fid(judge, real_a, real_b)
    random = judge_fid(judge, real_a, noise)
    assert abs(same) < 1e-3
    assert other_real < random / 10
