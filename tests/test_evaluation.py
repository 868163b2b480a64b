"""The quality metrics on known inputs.

A perfect copy scores perfectly, noise scores badly, and SSIM/PSNR agree with scikit-image.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchmetrics")

from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402
from torchmetrics.functional.image import structural_similarity_index_measure  # noqa: E402

from gantx.trainers.data import FASHION_DIRS, fashion_mnist, to_tensor  # noqa: E402
from gantx.trainers.evaluation import accuracy, judge_fid, psnr, ssim, train_judge  # noqa: E402

pytestmark = pytest.mark.skipif(
    not any((d / "t10k-images-idx3-ubyte.gz").is_file() for d in FASHION_DIRS), reason="Fashion-MNIST not installed"
)


@pytest.fixture(scope="module")
def pixels() -> tuple[np.ndarray, np.ndarray]:
    """The first 3,000 real test items (uint8) and their labels."""
    items, labels = fashion_mnist("test")
    return items[:3000], labels[:3000].astype(np.int64)


@pytest.fixture(scope="module")
def items(pixels) -> tuple[torch.Tensor, torch.Tensor]:
    """The same items in model units, [-1, 1], as the trainers and the metrics take them."""
    return to_tensor(pixels[0]), torch.from_numpy(pixels[1])


def test_ssim_and_psnr_on_known_inputs(items):
    images, _ = items
    real = images[:200]
    assert ssim(real, real) == pytest.approx(1.0)
    assert psnr(real, real) > 80
    noise = torch.rand_like(real, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert ssim(noise, real) < 0.1
    assert psnr(noise, real) < 10
    # 0.2 of uniform error everywhere is a tenth of the [-1, 1] span: exactly 20 dB
    assert psnr(real + 0.2, real) == pytest.approx(20.0, abs=0.05)


def test_ssim_and_psnr_equal_the_pixel_metrics(pixels):
    """Given model units, the numbers a paper computes on the 8-bit images: PSNR as scikit-image has it on uint8 pixels,
    SSIM as torchmetrics has it on pixels (data range 255), within the padding's difference of scikit-image's full map.
    SSIM is not shift-invariant: on [-1, 1] these pairs would score about 0.70 instead of 0.61."""
    real = pixels[0][:64]
    rng = np.random.default_rng(0)
    noisy = np.clip(real.astype(int) + rng.integers(-40, 41, real.shape), 0, 255).astype(np.uint8)
    assert psnr(to_tensor(noisy), to_tensor(real)) == pytest.approx(
        peak_signal_noise_ratio(real, noisy, data_range=255), abs=1e-3
    )

    measured = ssim(to_tensor(noisy), to_tensor(real))
    as_pixels = [torch.from_numpy(a.astype(np.float32))[:, None] for a in (noisy, real)]
    assert measured == pytest.approx(structural_similarity_index_measure(*as_pixels, data_range=255.0).item(), abs=1e-6)
    maps = [
        structural_similarity(
            a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True
        )[1]
        for a, b in zip(noisy, real)
    ]
    assert measured == pytest.approx(np.mean([m.mean() for m in maps]), abs=0.01)
    assert measured == pytest.approx(0.607, abs=0.01)


def test_judge_learns_and_fid_separates_copies_from_noise(items):
    images, labels = items
    judge = train_judge(images[:2000], labels[:2000], epochs=2)
    held_out = accuracy(judge, images[2000:], labels[2000:])
    assert held_out > 0.7  # 2,000 items, 2 epochs: far above the 0.1 of chance
    real_a, real_b = images[2000:2500], images[2500:3000]
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    same = judge_fid(judge, real_a, real_a)
    other_real = judge_fid(judge, real_a, real_b)
    random = judge_fid(judge, real_a, noise)
    assert abs(same) < 1e-3
    assert other_real < random / 10
