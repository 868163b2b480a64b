"""`gantx translate` on folders of real photos, checked pixel for pixel."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from real_images import upright_colour_and_alpha
from tiny_models import bare_model, blocky_negate_model

SOURCES = [
    "cat.png",
    "camera.png",
    "logo.png",
    "nested/china.jpg",
    "nested/deeper/coffee-palette.png",
    "coins-16bit.png",
    "flower-cmyk.jpg",
    "rocket-rotated.jpg",
]


def assert_negative(source: Path, output: Path) -> None:
    """The output is the exact photographic negative of what a viewer shows, alpha untouched."""
    colour, alpha = upright_colour_and_alpha(source)
    with Image.open(output) as result:
        assert result.size == (colour.shape[1], colour.shape[0]), f"{output} has the wrong size"
        np.testing.assert_array_equal(np.asarray(result.convert("RGB")), 255 - colour, err_msg=str(output))
        if alpha is None:
            assert "A" not in result.getbands()
        else:
            np.testing.assert_array_equal(np.asarray(result.getchannel("A")), alpha)


def test_folder_of_mixed_real_photos_is_translated_pixel_exact(mixed_folder, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("translate", mixed_folder, "-m", negate_onnx, "-o", out, "--format", "png")
    assert code == 0, stderr
    assert "translated 8, skipped 0, failed 0" in stdout
    for relative in SOURCES:
        assert_negative(mixed_folder / relative, (out / relative).with_suffix(".png"))
    written = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert written == sorted(str(Path(relative).with_suffix(".png").as_posix()) for relative in SOURCES)


def test_size_multiple_model_gets_padded_input_and_returns_original_size(mixed_folder, tmp_path, run_cli):
    # SpaceToDepth(4) would fail on these odd sizes if the runtime did not pad to multiples of 4.
    model = blocky_negate_model(tmp_path / "blocky.onnx", multiple=4)
    out = tmp_path / "out"
    code, _, stderr = run_cli("translate", mixed_folder / "cat.png", mixed_folder / "logo.png", "-m", model, "-o", out, "-b", "2")
    assert code == 0, stderr
    assert_negative(mixed_folder / "cat.png", out / "cat.png")
    assert_negative(mixed_folder / "logo.png", out / "logo.png")


def test_format_same_keeps_each_format(mixed_folder, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "out"
    code, _, stderr = run_cli("translate", mixed_folder, "-m", negate_onnx, "-o", out)
    assert code == 0, stderr
    with Image.open(out / "nested" / "china.jpg") as result:
        assert result.format == "JPEG"
        colour, _ = upright_colour_and_alpha(mixed_folder / "nested" / "china.jpg")
        error = np.abs(np.asarray(result, dtype=np.int16) - (255 - colour.astype(np.int16)))
        assert error.mean() < 3  # JPEG at quality 95: close, not exact
    with Image.open(out / "logo.png") as result:
        assert result.format == "PNG" and result.mode == "RGBA"


def test_rerun_skips_finished_outputs_and_overwrite_redoes_them(mixed_folder, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "out"
    run_cli("translate", mixed_folder, "-m", negate_onnx, "-o", out, "--format", "png")
    target = out / "cat.png"
    target.write_bytes(b"stale")  # a later run must leave it alone unless told to overwrite
    (out / "camera.png").unlink()  # as if the first run had been killed before this one
    code, stdout, _ = run_cli("translate", mixed_folder, "-m", negate_onnx, "-o", out, "--format", "png")
    assert code == 0
    assert "translated 1, skipped 7, failed 0" in stdout
    assert target.read_bytes() == b"stale"
    assert_negative(mixed_folder / "camera.png", out / "camera.png")
    code, stdout, _ = run_cli("translate", mixed_folder, "-m", negate_onnx, "-o", out, "--format", "png", "--overwrite")
    assert "translated 8, skipped 0, failed 0" in stdout
    assert_negative(mixed_folder / "cat.png", target)


def test_broken_files_are_named_the_rest_go_on_and_exit_is_1(mixed_folder, negate_onnx, tmp_path, run_cli):
    photos = tmp_path / "photos"
    shutil.copytree(mixed_folder, photos)
    whole = (photos / "nested" / "china.jpg").read_bytes()
    (photos / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    (photos / "garbage.png").write_bytes(b"\x89PNG but not really")
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("translate", photos, "-m", negate_onnx, "-o", out, "--format", "png")
    assert code == 1
    assert "truncated.jpg" in stderr and "garbage.png" in stderr
    assert "Traceback" not in stderr
    assert "translated 8, skipped 0, failed 2" in stdout
    assert not (out / "truncated.png").exists() and not (out / "garbage.png").exists()
    assert_negative(photos / "cat.png", out / "cat.png")
    assert not list(out.rglob("*.part")), "temporary files left behind"


def test_single_file_to_named_output_file(mixed_folder, negate_onnx, tmp_path, run_cli):
    target = tmp_path / "negative.webp"
    code, _, stderr = run_cli("translate", mixed_folder / "logo.png", "-m", negate_onnx, "-o", target)
    assert code == 0, stderr
    with Image.open(target) as result:
        assert result.format == "WEBP" and result.size == (71, 71)


def test_glob_input(mixed_folder, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "out"
    code, stdout, _ = run_cli("translate", f"{mixed_folder}/*.png", "-m", negate_onnx, "-o", out)
    assert code == 0
    assert sorted(path.name for path in out.iterdir()) == ["camera.png", "cat.png", "coins-16bit.png", "logo.png"]


def test_output_inside_input_folder_is_not_walked_again(mixed_folder, negate_onnx, tmp_path, run_cli):
    photos = tmp_path / "photos"
    shutil.copytree(mixed_folder, photos)
    out = photos / "negatives"
    run_cli("translate", photos, "-m", negate_onnx, "-o", out, "--format", "png")
    code, stdout, _ = run_cli("translate", photos, "-m", negate_onnx, "-o", out, "--format", "png")
    assert code == 0 and "translated 0, skipped 8, failed 0" in stdout
    assert not (out / "negatives").exists()


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d, m, t: ["translate", d, "-m", t / "missing.onnx", "-o", t / "o"], "model not found"),
        (lambda d, m, t: ["translate", d, "-m", bare_model(t / "bare.onnx"), "-o", t / "o"], "'gantx.format' is missing"),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", t / "o", "--provider", "gpu9000"], "unknown provider"),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", t / "o", "--size", "big"], "--size"),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", t / "o", "--format", "gif"], "--format"),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", t / "o", "--batch-size", "0"], "batch-size"),
        (lambda d, m, t: ["translate", t / "nowhere", "-m", m, "-o", t / "o"], "input not found"),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", d], "would overwrite the input"),
        (lambda d, m, t: ["translate", d, "-m", m], "--output"),
        (lambda d, m, t: ["info", t / "missing.onnx"], "model not found"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(mixed_folder, negate_onnx, tmp_path, run_cli, make_args, message):
    before = sorted(mixed_folder.rglob("*"))
    code, stdout, stderr = run_cli(*make_args(mixed_folder, negate_onnx, tmp_path))
    assert code == 2
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "o").exists()
    assert sorted(mixed_folder.rglob("*")) == before


def test_info_prints_metadata_and_io(negate_onnx, run_cli):
    code, stdout, _ = run_cli("info", negate_onnx)
    assert code == 0
    assert "gantx.size_multiple" in stdout and "photo,negative" in stdout
    assert "input: input tensor(float) ['N', 3, 'H', 'W']" in stdout
