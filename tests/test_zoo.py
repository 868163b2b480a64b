"""The bundled zoo: present, within the contract, loadable by name, and working on real Fashion-MNIST items and photos.

References are independent of gantx's pre/post-processing: the models are run
by a bare ONNX Runtime session on inputs padded by hand (the contract's
`fit=pad`), and quality is measured with scikit-image's SSIM.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from real_images import SKIMAGE_DATA

import gantx
from gantx.edges import edge_map
from gantx.model import ModelInfo
from gantx.zoo import bundled_models, fashion_samples, resolve_model, sample_photos

metrics = pytest.importorskip("skimage.metrics")

CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
ZOO = {
    # name: (kind, domains, direction, fit)
    "fashion-dcgan": ("noise2image", (), "", "resize"),
    "fashion-cgan": ("noise2image", (), "", "resize"),
    "fashion-edges2item": ("image2image", ("edges", "item"), "A->B", "pad"),
    "fashion-sneaker2boot": ("image2image", ("sneaker", "ankle-boot"), "A->B", "resize"),
    "fashion-boot2sneaker": ("image2image", ("sneaker", "ankle-boot"), "B->A", "resize"),
    "fashion-m2fashion": ("image2image", ("fashion-mnist-m", "fashion-mnist"), "A->B", "pad"),
}
UPSCALER = "photo-upscale2x"


def metadata(name: str) -> dict[str, str]:
    session = ort.InferenceSession(str(bundled_models()[name]), providers=["CPUExecutionProvider"])
    return session.get_modelmeta().custom_metadata_map


def bare_translate(name: str, items: np.ndarray) -> np.ndarray:
    """uint8 N x 28 x 28 (x 3) through the model with plain ONNX Runtime: pad to the model's size by hand, crop back."""
    session = ort.InferenceSession(str(bundled_models()[name]), providers=["CPUExecutionProvider"])
    info = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, name)
    x = items.astype(np.float32) / 127.5 - 1
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    if x.shape[1] != info.channels_in:
        x = np.repeat(x, info.channels_in, axis=1)
    margin = (info.size[0] - 28) // 2
    x = np.pad(x, [(0, 0), (0, 0), (margin, margin), (margin, margin)], constant_values=info.pad_value)
    (y,) = session.run(["output"], {"input": x})
    y = y[:, :, margin : margin + 28, margin : margin + 28]
    return np.round((np.clip(y, -1, 1) + 1) * 127.5).astype(np.uint8)[:, 0]


def grey_items(prefix: str = "") -> tuple[list[str], np.ndarray]:
    paths = fashion_samples(prefix)
    return [path.stem for path in paths], np.stack([np.asarray(Image.open(path)) for path in paths])


# The wheel stays small: 5 MB a model, but for the U-Net whose doubled width measured a gain (issue 26:
# SSIM 0.829 against 0.814 at half the budget; results/quality-trials.md).
SIZE_CAPS = {"fashion-edges2item": 10_000_000}


def test_the_zoo_holds_the_six_fashion_models_each_under_its_size_cap_within_the_contract():
    assert sorted(bundled_models()) == sorted([*ZOO, UPSCALER])
    for name, (kind, domains, direction, fit) in ZOO.items():
        path = bundled_models()[name]
        assert path.stat().st_size < SIZE_CAPS.get(name, 5_000_000), name
        meta = metadata(name)
        info = ModelInfo.from_metadata(meta, name)
        assert (info.kind, info.domains, info.direction, info.fit) == (kind, domains, direction, fit), name
        assert info.channels_out == 1 and info.size in ((28, 28), (32, 32))
        # Anyone can retrain it: the config and the command are in the file.
        config = json.loads(meta["gantx.config"])
        assert meta["gantx.train_command"].startswith(f"gantx train {meta['gantx.family']} ") and config["seed"] == 0
    assert ModelInfo.from_metadata(metadata("fashion-cgan"), "cgan").classes == CLASSES


def test_zoo_models_load_by_name_and_a_missing_name_is_a_path():
    assert resolve_model("fashion-cgan") == bundled_models()["fashion-cgan"]
    assert str(resolve_model("no-such-model")) == "no-such-model"
    assert gantx.Translator("fashion-sneaker2boot").info.direction == "A->B"


def test_translating_a_folder_of_28px_items_writes_undistorted_28px_results(tmp_path, run_cli):
    stems, items = grey_items()
    folder = tmp_path / "edges"
    folder.mkdir()
    for stem, edges in zip(stems, edge_map(items)):
        Image.fromarray(edges).save(folder / f"{stem}.png")
    code, _, err = run_cli("translate", folder, "-m", "fashion-edges2item", "-o", tmp_path / "out", "-p", "cpu")
    assert code == 0, err
    expected = bare_translate("fashion-edges2item", edge_map(items))
    for stem, reference in zip(stems, expected):
        with Image.open(tmp_path / "out" / f"{stem}.png") as result:
            assert result.size == (28, 28) and result.mode == "L"
            assert np.abs(np.asarray(result).astype(int) - reference).max() <= 1, stem


def test_edges2item_draws_the_real_item_back_from_its_edges():
    _, items = grey_items()
    drawn = bare_translate("fashion-edges2item", edge_map(items))
    scores = [metrics.structural_similarity(a, b, data_range=255) for a, b in zip(drawn, items)]
    blank = [metrics.structural_similarity(np.zeros_like(b), b, data_range=255) for b in items]
    assert np.mean(scores) > 0.6 and np.mean(scores) > np.mean(blank) + 0.3


def test_sneaker_to_boot_and_back_comes_home():
    _, sneakers = grey_items("sneaker-")
    boots = bare_translate("fashion-sneaker2boot", sneakers)
    back = bare_translate("fashion-boot2sneaker", boots)
    # The boot is a different picture; the round trip returns close to the sneaker.
    changed = [metrics.structural_similarity(b, s, data_range=255) for b, s in zip(boots, sneakers)]
    home = [metrics.structural_similarity(r, s, data_range=255) for r, s in zip(back, sneakers)]
    assert np.mean(home) > 0.6 and np.mean(home) > np.mean(changed) + 0.1


def test_m2fashion_turns_a_coloured_item_grey_and_close_to_the_original():
    stems, items = grey_items()
    originals = dict(zip(stems, items))
    coloured_paths = fashion_samples("m-")
    coloured = np.stack([np.asarray(Image.open(path)) for path in coloured_paths])
    truth = np.stack([originals[path.stem[2:]] for path in coloured_paths])
    translated = bare_translate("fashion-m2fashion", coloured)
    grey = np.stack([np.asarray(Image.fromarray(c).convert("L")) for c in coloured])
    ours = np.mean([metrics.structural_similarity(t, o, data_range=255) for t, o in zip(translated, truth)])
    baseline = np.mean([metrics.structural_similarity(g, o, data_range=255) for g, o in zip(grey, truth)])
    assert ours > baseline


def halved(name: str) -> tuple[np.ndarray, Image.Image]:
    """A real photo no training saw, cropped to even sides, and its Lanczos half: what the upscaler must undo."""
    photo = Image.open(SKIMAGE_DATA / name).convert("RGB")
    photo = photo.crop((0, 0, photo.width // 2 * 2, photo.height // 2 * 2))
    return np.asarray(photo), photo.resize((photo.width // 2, photo.height // 2), Image.Resampling.LANCZOS)


def test_the_upscaler_restores_real_photos_better_than_lanczos_and_records_how_it_was_made():
    path = bundled_models()[UPSCALER]
    meta = metadata(UPSCALER)
    info = ModelInfo.from_metadata(meta, UPSCALER)
    assert path.stat().st_size < 10_000_000 and info.scale == 2 and info.channels_in == info.channels_out == 3
    assert meta["gantx.train_command"].startswith("gantx train upscale ")
    translator = gantx.Translator(UPSCALER, provider="cpu")
    for name in ("coffee.png", "motorcycle_left.png"):
        original, half = halved(name)
        upscaled = np.asarray(translator.translate(half))
        lanczos = np.asarray(half.resize((half.width * 2, half.height * 2), Image.Resampling.LANCZOS))
        assert upscaled.shape == original.shape
        ours, theirs = (
            metrics.peak_signal_noise_ratio(original, result, data_range=255) for result in (upscaled, lanczos)
        )
        assert ours > theirs + 0.5, name


def test_the_upscaler_in_tiles_matches_it_whole_away_from_the_borders():
    _, half = halved("astronaut.png")
    whole = np.asarray(gantx.Translator(UPSCALER, provider="cpu").translate(half), int)
    tiled = np.asarray(gantx.Translator(UPSCALER, provider="cpu", tile=96).translate(half), int)
    assert tiled.shape == whole.shape == (512, 512, 3)
    assert np.abs(tiled - whole)[8:-8, 8:-8].max() <= 1


def test_cgan_and_dcgan_samples_are_reproducible_and_look_like_the_real_items():
    _, real = grey_items()
    generator = gantx.Generator("fashion-cgan")
    first = np.stack([np.asarray(image) for image in generator.generate(10, seed=7)])
    again = np.stack([np.asarray(image) for image in generator.generate(10, seed=7)])
    np.testing.assert_array_equal(first, again)
    unconditional = np.stack([np.asarray(image) for image in gantx.Generator("fashion-dcgan").generate(10, seed=7)])
    for samples in (first, unconditional):
        assert samples.shape == (10, 28, 28)
        # Items on a black background, as the real ones: dark borders, a brighter middle, brightness in the real range.
        borders = np.concatenate([samples[:, 0], samples[:, -1], samples[:, :, 0], samples[:, :, -1]])
        assert np.median(borders) < 30 and samples[:, 8:20, 8:20].mean() > 2 * samples.mean() / 3
        assert real.mean() / 2 < samples.mean() < real.mean() * 2


def test_models_lists_the_zoo_with_kinds_domains_and_classes(run_cli):
    code, out, _ = run_cli("models")
    assert code == 0
    for name in ZOO:
        assert name in out
    assert "sneaker -> ankle-boot" in out and "ankle-boot -> sneaker" in out and "t-shirt" in out


def test_models_in_an_80_column_terminal_names_every_model_in_full(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERM", "dumb")  # a terminal without styles: plain text to read back
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = run_cli("models")
    assert code == 0 and max(map(len, out.splitlines())) == 80
    for name in ZOO:
        assert re.search(rf"^│ {name} +│", out, re.M), out  # whole, in its own cell: the other columns wrap instead


@pytest.mark.parametrize("args", [("models",), ("info", "fashion-cgan"), ("cache",)])
def test_piped_tables_keep_no_trailing_blanks(run_cli, args, monkeypatch, tmp_path):
    monkeypatch.setenv("GANTX_CACHE_DIR", str(tmp_path))
    code, out, _ = run_cli(*args)
    assert code == 0 and "│" in out
    assert [line for line in out.splitlines() if line != line.rstrip()] == []


def test_demo_runs_the_zoo_on_the_bundled_items_and_writes_an_overview(tmp_path, run_cli):
    out = tmp_path / "demo"
    code, stdout, err = run_cli("demo", "-o", out, "-p", "cpu")
    assert code == 0, err
    stems, items = grey_items()
    for name in ("edges", "fashion-edges2item"):
        assert sorted(path.stem for path in (out / name).iterdir()) == sorted(stems)
    # The demo's items are the models' real outputs on the bundled items, as a bare session computes them.
    expected = bare_translate("fashion-edges2item", edge_map(items))
    for stem, reference in zip(stems, expected):
        np.testing.assert_allclose(
            np.asarray(Image.open(out / "fashion-edges2item" / f"{stem}.png")), reference, atol=1
        )
    for name, prefix in (
        ("fashion-sneaker2boot", "sneaker-"),
        ("fashion-boot2sneaker", "ankle-boot-"),
        ("fashion-m2fashion", "m-"),
    ):
        assert sorted(path.stem for path in (out / name).iterdir()) == sorted(
            path.stem for path in fashion_samples(prefix)
        )
    with Image.open(out / "fashion-cgan" / "grid.png") as cgan_grid, Image.open(out / "overview.png") as overview:
        assert cgan_grid.size == (8 * 84, 10 * 84)
        # 7 rows of translations, 10 cGAN classes, 2 DCGAN rows, 84 px each.
        assert overview.height == (7 + 10 + 2) * 84
    assert f"wrote {out / 'overview.png'}" in stdout
    timed = [line for line in stdout.splitlines() if re.search(r" ms on (CPUExecutionProvider|OpenVINO) \w+$", line)]
    assert sorted(line.split(":")[0] for line in timed) == sorted([*ZOO, UPSCALER])
    assert sorted(path.name for path in (out / UPSCALER).iterdir()) == sorted(
        f"{path.stem}.png" for path in sample_photos()
    )


def test_demo_into_a_folder_it_cannot_make_is_one_line_and_exit_2(tmp_path, run_cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, stderr = run_cli("demo", "-o", blocker / "demo", "-p", "cpu")
    assert code == 2 and "a-file" in stderr and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
