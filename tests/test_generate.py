"""gantx.Generator and `gantx generate`: seeds and labels in, known pixels out."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tiny_models import negate_model, noise_model

import gantx
from gantx.generator import slerp

CLASSES = ("tee", "trouser", "bag")


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    return noise_model(tmp_path_factory.mktemp("noise") / "cgan.onnx", CLASSES)


def expected_pixels(z: np.ndarray, labels: list[int]) -> np.ndarray:
    values = z.reshape(-1, 2, 2) + np.asarray(labels, dtype=np.float32)[:, None, None] / 10
    return np.rint((np.clip(values, -1, 1) + 1) * 127.5).astype(np.uint8)


def test_samples_match_the_models_arithmetic(conditional):
    generator = gantx.Generator(conditional, batch_size=4)
    images = generator.generate(7, labels=["bag", "0"], seed=3)
    labels = [2, 0, 2, 0, 2, 0, 2]
    z = np.random.default_rng(3).standard_normal((7, 4)).astype(np.float32)
    np.testing.assert_array_equal(np.stack([np.asarray(image) for image in images]), expected_pixels(z, labels))


def test_a_generator_batches_64_samples_unless_told_otherwise(conditional):
    assert gantx.Generator(conditional).settings == gantx.RunSettings(batch_size=64)
    assert gantx.Generator(conditional, threads=1).settings == gantx.RunSettings(batch_size=64, threads=1)
    assert gantx.Generator(conditional, gantx.RunSettings(batch_size=4)).settings.batch_size == 4  # as given


def test_same_seed_same_samples_other_seed_other_samples(conditional):
    generator = gantx.Generator(conditional)
    first, again, other = (generator.generate(5, seed=seed) for seed in (1, 1, 2))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, other))


def test_truncation_bounds_the_latents(conditional):
    z = gantx.Generator(conditional).latents(500, seed=0, truncation=0.5)
    assert np.abs(z).max() <= 0.5
    assert np.abs(z).mean() > 0.2  # redrawn, not clipped to the bound


def test_slerp_ends_on_the_keyframes_and_keeps_the_norm():
    rng = np.random.default_rng(0)
    start, end = rng.standard_normal(64), rng.standard_normal(64)
    path = slerp(start, end, 9)
    np.testing.assert_allclose(path[0], start, rtol=1e-5)
    np.testing.assert_allclose(path[-1], end, rtol=1e-5)
    norms = np.linalg.norm(path, axis=1)
    assert norms.min() > 0.9 * min(np.linalg.norm(start), np.linalg.norm(end))


def test_cli_writes_samples_and_a_grid(conditional, tmp_path, run_cli):
    out, grid = tmp_path / "samples", tmp_path / "grid.png"
    code, stdout, stderr = run_cli("generate", "-m", conditional, "-n", "6", "--seed", "3", "-o", out, "--grid", grid)
    assert code == 0, stderr
    names = sorted(path.name for path in out.iterdir())
    assert names == ["0-tee.png", "1-trouser.png", "2-bag.png", "3-tee.png", "4-trouser.png", "5-bag.png"]
    z = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32)
    expected = expected_pixels(z, [0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(np.asarray(Image.open(out / "2-bag.png")), expected[2])
    with Image.open(grid) as sheet:  # 3 columns (one per class) x 2 rows of 2x2 samples, doubled
        assert sheet.size == (12, 8)
        np.testing.assert_array_equal(np.asarray(sheet)[4:8:2, 4:8:2], expected[4])


def test_cli_sample_names_are_zero_padded_so_they_sort_in_the_order_drawn(tmp_path, run_cli):
    out = tmp_path / "samples"
    model = noise_model(tmp_path / "dcgan.onnx")
    code, _, stderr = run_cli("generate", "-m", model, "-n", "12", "--seed", "5", "-o", out)
    assert code == 0, stderr
    files = sorted(out.iterdir())
    assert [path.name for path in files] == [f"{index:02d}.png" for index in range(12)]
    z = np.random.default_rng(5).standard_normal((12, 4)).astype(np.float32)
    expected = expected_pixels(z, [0] * 12)
    for index, path in enumerate(files):  # sorted by name is the order drawn: 10.png after 09.png, not after 1.png
        np.testing.assert_array_equal(np.asarray(Image.open(path)), expected[index])


def test_cli_latent_walk_frames_are_zero_padded(conditional, tmp_path, run_cli):
    walk = tmp_path / "walk"
    code, _, stderr = run_cli("generate", "-m", conditional, "-n", "3", "--interpolate", "6", "-o", walk)
    assert code == 0, stderr
    names = sorted(path.name for path in walk.iterdir())
    assert names == [f"{index:02d}.png" for index in range(11)]  # 2 steps of 6 frames, the shared end once


def test_cli_latent_walk_gif(conditional, tmp_path, run_cli):
    walk = tmp_path / "walk.gif"
    code, _, stderr = run_cli(
        "generate", "-m", conditional, "-n", "3", "--interpolate", "5", "-o", walk, "-l", "trouser"
    )
    assert code == 0, stderr
    with Image.open(walk) as gif:
        assert gif.n_frames == 9  # 3 keyframes, 5 frames a step, shared ends counted once


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-l", "sock"], "unknown label 'sock'"),
        (["-l", "7"], "unknown label '7'"),
        (["-n", "0"], "--count 0"),
        (["--truncation", "-1"], "truncation must be positive"),
        (["--interpolate", "1"], "--interpolate"),
    ],
)
def test_cli_bad_requests_exit_2(conditional, tmp_path, run_cli, extra, message):
    code, _, stderr = run_cli("generate", "-m", conditional, "-o", tmp_path / "o", *extra)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "o").exists()


def test_translator_model_is_refused_by_generate(tmp_path, run_cli):
    code, _, stderr = run_cli("generate", "-m", negate_model(tmp_path / "neg.onnx"), "-o", tmp_path / "o")
    assert code == 2 and "image2image" in stderr
