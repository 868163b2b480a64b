"""gantx.Translator: the embeddable API, checked against independent references."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from real_images import real_photo
from tiny_models import (
    blocky_negate_model,
    blur_model,
    box_blur_model,
    fixed_negate_model,
    grey_to_colour_model,
    negate_model,
    upscale_model,
)

import gantx


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [real_photo("chelsea.png"), real_photo("astronaut.png", 80), real_photo("coffee.png", 61)]


def test_import_gantx_leaves_torch_unloaded():
    code = "import sys, gantx, gantx.cli; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_help_works_with_torch_blocked():
    code = "import sys; sys.modules['torch'] = None; sys.argv = ['gantx', '--help']; from gantx.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "translate" in result.stdout


def test_pil_numpy_list_and_iterator_inputs(negate_onnx, photos):
    translator = gantx.Translator(negate_onnx, batch_size=2)
    expected = [255 - np.asarray(photo) for photo in photos]
    single = translator.translate(photos[0])
    assert isinstance(single, Image.Image)
    np.testing.assert_array_equal(np.asarray(single), expected[0])
    as_array = translator(np.asarray(photos[1]))
    assert isinstance(as_array, np.ndarray)
    np.testing.assert_array_equal(as_array, expected[1])
    listed = translator.translate(photos)
    assert [np.asarray(image).shape for image in listed] == [image.shape for image in expected]
    for got, want in zip(listed, expected):
        np.testing.assert_array_equal(np.asarray(got), want)
    streamed = translator.translate(iter(photos))
    assert not isinstance(streamed, list)
    for got, want in zip(streamed, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(got), want)


def test_paths_are_opened_as_images(negate_onnx, mixed_folder):
    translator = gantx.Translator(negate_onnx, provider="cpu")
    one = translator.translate(str(mixed_folder / "cat.png"))
    assert isinstance(one, Image.Image)
    np.testing.assert_array_equal(
        np.asarray(one.convert("RGB")), 255 - np.asarray(Image.open(mixed_folder / "cat.png").convert("RGB"))
    )
    several = translator.translate([mixed_folder / "cat.png", mixed_folder / "logo.png"])
    assert isinstance(several, list) and [image.size for image in several] == [
        one.size,
        Image.open(mixed_folder / "logo.png").size,
    ]
    with pytest.raises(gantx.InputError, match="missing.png"):
        translator.translate(mixed_folder / "missing.png")


def test_greyscale_and_rgba_arrays_keep_their_layout(negate_onnx, photos):
    translator = gantx.Translator(negate_onnx)
    rgb = np.asarray(photos[0])
    rgba = np.dstack([rgb, np.arange(rgb.size // 3, dtype=np.uint8).reshape(rgb.shape[:2])])
    result = translator(rgba)
    np.testing.assert_array_equal(result[:, :, :3], 255 - rgb)
    np.testing.assert_array_equal(result[:, :, 3], rgba[:, :, 3])
    grey_model = gantx.Translator(negate_model(negate_onnx.parent / "negate-grey.onnx", channels=1))
    grey = np.asarray(photos[1].convert("L"))
    np.testing.assert_array_equal(grey_model(grey), 255 - grey)


def test_grey_to_colour_model(tmp_path, photos):
    translator = gantx.Translator(grey_to_colour_model(tmp_path / "g2c.onnx"))
    grey = np.asarray(photos[0].convert("L"))
    result = np.asarray(translator(photos[0]))
    np.testing.assert_array_equal(result, np.dstack([grey, 255 - grey, grey]))


def test_size_policies(tmp_path, negate_onnx, photos):
    photo = photos[0]  # 97 x 65
    shorter = gantx.Translator(negate_onnx, size=32).translate(photo)
    assert shorter.size == (round(97 * 32 / 65), 32)
    np.testing.assert_array_equal(
        np.asarray(shorter), 255 - np.asarray(photo.resize(shorter.size, Image.Resampling.LANCZOS))
    )
    forced = gantx.Translator(blocky_negate_model(tmp_path / "blocky.onnx"), size=(30, 50)).translate(photo)
    assert forced.size == (50, 30)
    np.testing.assert_array_equal(
        np.asarray(forced), 255 - np.asarray(photo.resize((50, 30), Image.Resampling.LANCZOS))
    )


def test_fixed_size_model_resizes_there_and_back(tmp_path, photos):
    translator = gantx.Translator(fixed_negate_model(tmp_path / "fixed.onnx", 48, 64))
    photo = photos[2]
    there = photo.resize((64, 48), Image.Resampling.LANCZOS)
    back = Image.fromarray(255 - np.asarray(there)).resize(photo.size, Image.Resampling.LANCZOS)
    result = translator.translate(photo)
    assert result.size == photo.size
    np.testing.assert_array_equal(np.asarray(result), np.asarray(back))


def test_fixed_size_model_with_fit_pad_keeps_small_items_undistorted(tmp_path):
    translator = gantx.Translator(fixed_negate_model(tmp_path / "pad.onnx", 32, 32, **{"gantx.fit": "pad"}))
    item = np.asarray(real_photo("camera.png", 28).convert("RGB"))  # 28 x 28, padded by 2 on each side
    np.testing.assert_array_equal(translator(item), 255 - item)


@pytest.mark.parametrize("fit", ["pad", "resize"])
def test_fully_convolutional_model_pads_to_its_multiple_as_its_metadata_says(tmp_path, fit):
    translator = gantx.Translator(
        box_blur_model(tmp_path / "blur.onnx", 32, **{"gantx.fit": fit, "gantx.pad_value": "-1"})
    )
    item = np.asarray(real_photo("camera.png", 28).convert("L"))  # 28 x 28: 2 px of padding on each side
    x = item.astype(np.float64) / 127.5 - 1
    # fit=pad: the black background the model was trained on; otherwise reflected borders.
    padded = np.pad(x, 2, mode="constant", constant_values=-1) if fit == "pad" else np.pad(x, 2, mode="reflect")
    framed = np.pad(padded, 1)  # the Conv's own zero padding
    blurred = sum(framed[dy : dy + 32, dx : dx + 32] for dy in range(3) for dx in range(3)) / 9
    expected = np.round((np.clip(blurred[2:30, 2:30], -1, 1) + 1) * 127.5)
    result = translator(item)
    assert result.shape == (28, 28)
    assert np.abs(result.astype(int) - expected).max() <= 1


def test_mixed_sizes_in_one_call_are_grouped_and_kept_in_order(tmp_path, photos):
    translator = gantx.Translator(blocky_negate_model(tmp_path / "blocky.onnx"), batch_size=2)
    calls = []
    real_run = translator.session.run

    def counting_run(names, feeds):
        calls.append(feeds["input"].shape)
        return real_run(names, feeds)

    translator.session.run = counting_run
    batch = [photos[0], photos[1], photos[0], photos[0], photos[1]]
    results = translator.translate(batch)
    for got, photo in zip(results, batch, strict=True):
        np.testing.assert_array_equal(np.asarray(got), 255 - np.asarray(photo))
    assert sorted(shape[0] for shape in calls) == [1, 2, 2]  # 3 of one shape -> 2 + 1, 2 of the other -> 2


def test_translator_is_safe_to_share_between_threads(negate_onnx, photos):
    translator = gantx.Translator(negate_onnx, batch_size=3)
    jobs = [photos[index % 3] for index in range(24)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(translator.translate, jobs))
    for got, photo in zip(results, jobs):
        np.testing.assert_array_equal(np.asarray(got), 255 - np.asarray(photo))


def test_noise_model_is_refused_by_translator(tmp_path):
    model = negate_model(tmp_path / "noise.onnx", **{"gantx.kind": "noise2image", "gantx.latent_dim": "8"})
    with pytest.raises(gantx.ModelError, match="noise2image"):
        gantx.Translator(model)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"gantx.format": "3"}, "format '3' is not supported"),
        ({"gantx.kind": "video"}, "gantx.kind"),
        ({"gantx.size": "256"}, "'H,W'"),
        ({"gantx.channels_in": "4"}, "must be 1 or 3"),
        ({"gantx.fit": "stretch"}, "gantx.fit"),
    ],
)
def test_contract_violations_are_named(tmp_path, meta, message):
    with pytest.raises(gantx.ModelError, match=message):
        gantx.Translator(negate_model(tmp_path / "bad.onnx", **meta))


def test_tiles_give_the_untiled_result_for_a_local_model_on_a_real_photo(tmp_path, photos):
    translator = gantx.Translator(blur_model(tmp_path / "blur.onnx", radius=2), provider="cpu")
    photo = np.asarray(
        real_photo("astronaut.png", 211).convert("RGB")
    )  # 211 x 211: padded to 212, cut into 5 x 5 tiles
    tiled = gantx.Translator(blur_model(tmp_path / "blur2.onnx", radius=2), provider="cpu", tile=64)
    seen = []
    real_run = tiled.run_batch
    tiled.run_batch = lambda batch: seen.append(batch.shape) or real_run(batch)
    whole, in_tiles = translator.translate(photo), tiled.translate(photo)
    assert in_tiles.shape == whole.shape == photo.shape
    assert (
        np.abs(in_tiles.astype(int) - whole.astype(int)).max() <= 1
    )  # the blur's reach (2 px) is within a quarter of the 8 px overlap
    assert {shape[2:] for shape in seen} == {(64, 64)} and sum(shape[0] for shape in seen) == 16


def test_an_upscaling_model_gives_twice_the_size_tiled_or_not(tmp_path, mixed_folder):
    model = upscale_model(tmp_path / "up.onnx")
    photo = Image.open(mixed_folder / "logo.png")  # RGBA: the alpha is scaled to the output too
    expected = 255 - np.asarray(photo.convert("RGB")).repeat(2, 0).repeat(2, 1)
    for tile in (None, 32):
        result = gantx.Translator(model, provider="cpu", tile=tile).translate(photo)
        assert result.size == (2 * photo.width, 2 * photo.height) and result.mode == "RGBA"
        colour = np.asarray(result.convert("RGB")).astype(int)
        assert np.abs(colour - expected).max() <= (0 if tile is None else 1)
        assert np.array_equal(
            np.asarray(result.getchannel("A")),
            np.asarray(photo.getchannel("A").resize(result.size, Image.Resampling.LANCZOS)),
        )


@pytest.mark.parametrize(
    ("make", "tile", "message"),
    [
        (lambda t: fixed_negate_model(t / "fixed.onnx", 48, 64), 32, "only takes 48x64"),
        (lambda t: blocky_negate_model(t / "blocky.onnx", 4), 30, "multiple of 4"),
        (lambda t: blocky_negate_model(t / "blocky.onnx", 4), 8, "at least 16"),
    ],
)
def test_tiles_the_model_cannot_take_are_refused(tmp_path, make, tile, message):
    with pytest.raises(gantx.GantxError, match=message):
        gantx.Translator(make(tmp_path), provider="cpu", tile=tile)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 0, 3), np.uint8), "an empty image (0x0 pixels) has nothing to translate"),
        (np.zeros((5, 0), np.uint8), "an empty image (0x5 pixels) has nothing to translate"),
        (Image.new("RGB", (0, 4)), "an empty image (0x4 pixels) has nothing to translate"),
        (np.zeros((8, 8, 3), np.float32), "numpy images must be uint8, got float32"),
        (np.zeros((8, 8, 2), np.uint8), "numpy images must be HxW, HxWx3 or HxWx4, got shape (8, 8, 2)"),
        (np.zeros((2, 8, 8, 3), np.uint8), "numpy images must be HxW, HxWx3 or HxWx4, got shape (2, 8, 8, 3)"),
        (b"GIF89a but no more", "image: cannot read image (not in a format gantx reads)"),
    ],
)
def test_bad_images_are_input_errors_with_one_line(negate_onnx, capfd, image, message):
    translator = gantx.Translator(negate_onnx, provider="cpu")
    with pytest.raises(gantx.InputError) as raised:
        translator.translate(image)
    assert str(raised.value) == message
    assert capfd.readouterr().err == ""  # nothing from ONNX Runtime's own log


@pytest.mark.parametrize("value", [123, None, 4.5])
def test_what_is_no_image_nor_iterable_is_a_type_error_at_once(negate_onnx, value):
    translator = gantx.Translator(negate_onnx, provider="cpu")
    with pytest.raises(
        TypeError, match=f"translate takes an image .* or an iterable of them, not {type(value).__name__}"
    ):
        translator.translate(value)


def test_bytes_are_an_encoded_image(negate_onnx, mixed_folder):
    translator = gantx.Translator(negate_onnx, provider="cpu")
    result = translator.translate((mixed_folder / "cat.png").read_bytes())
    assert isinstance(result, Image.Image)
    np.testing.assert_array_equal(np.asarray(result), 255 - np.asarray(Image.open(mixed_folder / "cat.png")))
    listed = translator.translate([(mixed_folder / "cat.png").read_bytes()])
    np.testing.assert_array_equal(np.asarray(listed[0]), np.asarray(result))
