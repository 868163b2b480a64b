"""The upscale family on real photos: its training pairs, a short run, and the 2x model the runtime hands back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from real_images import SKIMAGE_DATA  # noqa: E402

import gantx  # noqa: E402
from gantx.trainers.checkpoint import load_checkpoint  # noqa: E402
from gantx.trainers.data import photo_pairs  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Three real photos from scikit-image (the tests leave the Debian wallpapers to the benchmark)."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut.png", "coffee.png", "chelsea.png"):
        Image.open(SKIMAGE_DATA / name).convert("RGB").save(folder / name)
    return folder


def test_pairs_are_crops_and_their_lanczos_reductions(photos):
    low, high = photo_pairs(photos, 32, 2, 12, seed=0)
    assert tuple(low.images.shape) == (12, 3, 16, 16) and tuple(high.images.shape) == (12, 3, 32, 32)
    for small, big in zip(low.images, high.images):
        target = Image.fromarray(gantx.model.to_pixels(big.numpy()))
        expected = np.asarray(target.resize((16, 16), Image.Resampling.LANCZOS))
        assert np.array_equal(gantx.model.to_pixels(small.numpy()), expected)
    noisy, _ = photo_pairs(photos, 32, 2, 12, seed=0, jpeg=60, noise=3.0)
    difference = np.abs(noisy.images.numpy() - low.images.numpy()) * 127.5
    assert 1 < difference.mean() < 12  # degraded, as asked, but still the same pictures


def test_a_short_run_exports_a_model_that_doubles_images(photos, tmp_path, run_cli):
    run_dir = tmp_path / "run"
    code, _, err = run_cli("train", "upscale", "--out", run_dir, "--data", photos, "--size", "32", "--crops", "32",
                           "--batch-size", "8", "--max-steps", "4",
                           "--adversarial-weight", "0.01", "--quiet")  # fmt: skip
    assert code == 0, err
    checkpoint = load_checkpoint(run_dir / "latest.pt")
    assert set(checkpoint.networks) == {"G", "G_ema", "D"} and checkpoint.contract.scale == 2
    assert run_cli("export", run_dir / "latest.pt", "-o", tmp_path / "up.onnx")[0] == 0
    translator = gantx.Translator(tmp_path / "up.onnx", provider="cpu")
    assert (translator.info.scale, translator.info.metadata["gantx.format"]) == (2, "2")
    photo = Image.open(SKIMAGE_DATA / "rocket.jpg").convert("RGB").resize((61, 90))
    result = translator.translate(photo)
    assert result.size == (122, 180)
    with torch.no_grad():  # the runtime's answer is the averaged generator's, cropped back from the padding
        expected = checkpoint.networks["G_ema"].build("G_ema")(
            torch.from_numpy(gantx.model.to_model_units(np.asarray(photo))[None].copy())
        )
    assert np.abs(np.asarray(result, int) - gantx.model.to_pixels(expected[0].numpy()).astype(int)).max() <= 1
