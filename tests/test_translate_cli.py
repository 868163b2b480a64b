"""`gantx translate` on folders of real photos, checked pixel for pixel."""

from __future__ import annotations

import re
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SOURCES, assert_negative, ctrl_c, png_header_only, sigterm
from PIL import Image
from real_images import upright_colour_and_alpha
from tiny_models import bare_model, blocky_negate_model


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
    code, _, stderr = run_cli(
        "translate", mixed_folder / "cat.png", mixed_folder / "logo.png", "-m", model, "-o", out, "-b", "2"
    )
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


def test_a_decompression_bomb_is_one_failed_file_and_the_rest_are_translated(
    mixed_folder, negate_onnx, tmp_path, run_cli
):
    photos = tmp_path / "photos"
    shutil.copytree(mixed_folder, photos)
    (photos / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (photos / "nested" / "big.png").write_bytes(
        png_header_only(10000, 9000)
    )  # over the limit, under Pillow's own error
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("translate", photos, "-m", negate_onnx, "-o", out, "--format", "png")
    assert code == 1 and "Traceback" not in stderr
    assert "bomb.png" in stderr and "big.png" in stderr and "over the limit" in stderr
    assert "translated 8, skipped 0, failed 2" in stdout
    for relative in SOURCES:
        assert_negative(photos / relative, (out / relative).with_suffix(".png"))


def test_an_unexpected_error_in_one_file_fails_that_file_only(
    mixed_folder, negate_onnx, tmp_path, run_cli, monkeypatch
):
    import gantx.translator

    real_prepare = gantx.translator.prepare_image

    def prepare(image, info, size):
        if image.size == Image.open(mixed_folder / "logo.png").size:
            raise RuntimeError("something nobody expected\nsecond line")
        return real_prepare(image, info, size)

    monkeypatch.setattr(gantx.translator, "prepare_image", prepare)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli("translate", mixed_folder, "-m", negate_onnx, "-o", out, "--format", "png")
    assert code == 1 and "Traceback" not in stderr
    assert (
        f"{mixed_folder / 'logo.png'}: RuntimeError: something nobody expected" in stderr
        and "second line" not in stderr
    )
    assert "translated 7, skipped 0, failed 1" in stdout
    assert_negative(mixed_folder / "cat.png", out / "cat.png")


def interrupt_third_batch(monkeypatch, interrupt) -> None:
    """Make the third model call be interrupted by `interrupt()`, in the main thread, which is feeding the model."""
    import gantx.translator

    real_infer, calls = gantx.translator.Translator.infer, []

    def infer(self, batch):
        calls.append(len(batch))
        if len(calls) == 3:
            interrupt()
        return real_infer(self, batch)

    monkeypatch.setattr(gantx.translator.Translator, "infer", infer)


@pytest.mark.parametrize("interrupt", [ctrl_c, sigterm])
def test_ctrl_c_or_sigterm_says_what_was_done_and_a_rerun_resumes(
    mixed_folder, negate_onnx, tmp_path, run_cli, monkeypatch, interrupt
):
    import gantx.translator

    real_infer = gantx.translator.Translator.infer
    interrupt_third_batch(monkeypatch, interrupt)
    out = tmp_path / "out"
    before = signal.getsignal(signal.SIGTERM)  # the default, or Ray's where an earlier test started a Ray driver
    code, stdout, stderr = run_cli(
        "translate", mixed_folder, "-m", negate_onnx, "-o", out, "--format", "png", "-b", "1"
    )
    assert (
        code == 130 and "run the same command again to resume" in stderr and stderr.endswith("\ngantx: interrupted\n")
    )
    assert signal.getsignal(signal.SIGTERM) is before  # the handler was only for the run
    # Two batches were through the model; their outputs may still have been finishing when Ctrl-C came.
    done = int(re.search(r"stopped: translated (\d+), skipped 0, failed 0", stderr)[1])
    written = [path for path in out.rglob("*") if path.is_file()]
    assert 1 <= done <= 2 and len(written) == done and not list(out.rglob("*.part"))  # what it says is what is on disk
    monkeypatch.setattr(gantx.translator.Translator, "infer", real_infer)
    code, stdout, _ = run_cli("translate", mixed_folder, "-m", negate_onnx, "-o", out, "--format", "png")
    assert code == 0 and f"translated {8 - done}, skipped {done}, failed 0" in stdout


def test_progress_and_summary_both_rate_what_was_translated(mixed_folder, negate_onnx, tmp_path, run_cli, monkeypatch):
    import gantx.translator

    photos = tmp_path / "photos"
    shutil.copytree(mixed_folder, photos)
    for index in range(8):
        (photos / f"broken-{index}.png").write_bytes(b"\x89PNG but not really")
    real_infer = gantx.translator.Translator.infer
    monkeypatch.setattr(
        gantx.translator.Translator,
        "infer",
        lambda self, batch: time.sleep(0.05 * len(batch)) or real_infer(self, batch),
    )
    code, stdout, stderr = run_cli("translate", photos, "-m", negate_onnx, "-o", tmp_path / "out", "--format", "png")
    assert code == 1 and "translated 8, skipped 0, failed 8, " in stdout and " img/s translated on " in stdout
    bar = [line for line in stderr.splitlines() if "16/16" in line]
    progress_rate = float(re.search(r"([\d.]+) img/s", bar[-1])[1])
    summary_rate = float(re.search(r"([\d.]+) img/s", stdout)[1])
    assert progress_rate == pytest.approx(summary_rate, rel=0.1), (bar, stdout)  # 8 images in about 0.4 s, not 16
    # A run that translates nothing shows no rate anywhere: all failed, or all refused by --size.
    for args in ([], ["--overwrite", "--size", "99999"]):
        code, stdout, stderr = run_cli(
            "translate",
            *[photos / f"broken-{index}.png" for index in range(2)],
            "-m",
            negate_onnx,
            "-o",
            tmp_path / "out",
            *args,
        )
        assert code == 1 and "translated 0, skipped 0, failed 2\n" == stdout and "/s" not in stderr, stderr
    code, stdout, stderr = run_cli(
        "translate", photos / "cat.png", "-m", negate_onnx, "-o", tmp_path / "big", "--size", "99999"
    )
    assert (
        code == 1
        and stdout == "translated 0, skipped 0, failed 1\n"
        and "over the limit" in stderr
        and "/s" not in stderr
    )


def test_time_left_follows_the_whole_runs_pace():
    from rich.progress import Progress

    from gantx.cli.progress import TimeLeftColumn

    now = [0.0]
    progress = Progress(get_time=lambda: now[0])
    task = progress.add_task("translating", total=12)
    column = TimeLeftColumn()
    assert column.render(progress.tasks[0]).plain == "-:--:--"
    now[0] = 9.9
    progress.advance(task, 1)
    now[0] = 10.0
    progress.advance(task, 1)  # a batch lands all at once: rich's own estimate would say under a second is left
    assert column.render(progress.tasks[0]).plain == "0:00:50"  # 2 items in 10 s: 10 left take 50 s
    progress.advance(task, 10)
    assert column.render(progress.tasks[0]).plain == "0:00:00"


def test_tile_option_reaches_the_translator(mixed_folder, tmp_path, run_cli):
    model = blocky_negate_model(tmp_path / "blocky.onnx", multiple=4)
    code, _, stderr = run_cli(
        "translate", mixed_folder / "cat.png", "-m", model, "-o", tmp_path / "out", "--tile", "32"
    )
    assert code == 0, stderr
    assert_negative(mixed_folder / "cat.png", tmp_path / "out" / "cat.png")  # a pointwise model: tiles change nothing
    code, _, stderr = run_cli("translate", mixed_folder / "cat.png", "-m", model, "-o", tmp_path / "o2", "--tile", "30")
    assert code == 2 and "--tile 30: tiles must be a multiple of 4" in stderr and not (tmp_path / "o2").exists()


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


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d, m, t: ["translate", d, "-m", t / "missing.onnx", "-o", t / "o"], "model not found"),
        (
            lambda d, m, t: ["translate", d, "-m", bare_model(t / "bare.onnx"), "-o", t / "o"],
            "'gantx.format' is missing",
        ),
        (
            lambda d, m, t: ["translate", d, "-m", m, "-o", t / "o", "--provider", "gpu9000"],
            "--provider 'gpu9000': choose one of",
        ),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", t / "o", "--size", "big"], "--size"),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", t / "o", "--format", "gif"], "--format"),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", t / "o", "--batch-size", "0"], "batch-size"),
        (lambda d, m, t: ["translate", t / "nowhere", "-m", m, "-o", t / "o"], "input not found"),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", d], "is inside the input folder"),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", d / "out"], "is inside the input folder"),
        (lambda d, m, t: ["translate", d / "cat.png", "-m", m, "-o", d / "cat.png"], "would overwrite the input"),
        (lambda d, m, t: ["translate", f"{d}/*.gif", "-m", m, "-o", t / "o"], "no file to translate matches"),
        (
            lambda d, m, t: ["translate", d / "cat.png", d / "logo.png", "-m", m, "-o", t / "o" / "two.png"],
            "names a file, but 2 inputs",
        ),
        (lambda d, m, t: ["translate", d, "-m", m, "-o", t / "o" / "one.png"], "names a file"),
        (lambda d, m, t: ["translate", d, "-m", m], "--output"),
        (
            lambda d, m, t: ["translate", d / "cat.png", "-m", m, "-o", t / "o" / "cat.gif"],
            (
                "cat.gif: gantx writes .png, .jpg, .jpeg, .webp, .bmp, .tif, .tiff, .mp4, .mov, .mkv, .webm, .avi "
                "files; name one of those, or an existing folder"
            ),
        ),
        (
            lambda d, m, t: ["translate", d / "cat.png", "-m", m, "-o", t / "o" / "fresh.png", "--format", "webp"],
            "names a .png file but --format is webp",
        ),
        (
            lambda d, m, t: [
                "translate",
                d / "nested" / "china.jpg",
                "-m",
                m,
                "-o",
                t / "o" / "china.jpeg",
                "--format",
                "png",
            ],
            "names a .jpeg file but --format is png",
        ),
        (
            lambda d, m, t: ["translate", t / "notes.txt", "-m", m, "-o", t / "o" / "notes.png"],
            "notes.txt: not an image or video gantx reads (.png, .jpg",
        ),
        (lambda d, m, t: ["info", t / "missing.onnx"], "model not found"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(mixed_folder, negate_onnx, tmp_path, run_cli, make_args, message):
    (tmp_path / "notes.txt").write_text("not a picture")
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


def test_an_existing_file_as_the_output_folder_is_refused_before_the_model_runs(
    mixed_folder, negate_onnx, tmp_path, run_cli, monkeypatch
):
    import gantx.translator

    monkeypatch.setattr(gantx.translator.Translator, "infer", lambda self, batch: pytest.fail("the model ran"))
    existing = tmp_path / "results.png"
    existing.write_bytes(b"someone's file")
    for inputs in ([mixed_folder], [mixed_folder / "cat.png", mixed_folder / "logo.png"]):
        code, stdout, stderr = run_cli("translate", *inputs, "-m", negate_onnx, "-o", existing)
        assert (code, stdout) == (2, "") and stderr.count("\n") == 1, stderr
    assert stderr == f"gantx: error: -o {existing} is a file, not a folder: give an output folder\n"
    notes = tmp_path / "notes"  # no extension: it could only have been meant as a folder
    notes.write_text("a file")
    code, _, stderr = run_cli("translate", mixed_folder / "cat.png", "-m", negate_onnx, "-o", notes)
    assert (code, stderr) == (2, f"gantx: error: -o {notes} is a file, not a folder: give an output folder\n")
    assert existing.read_bytes() == b"someone's file" and notes.read_text() == "a file"


def test_a_video_to_an_output_of_no_format_gantx_writes_is_refused(tmp_path, negate_onnx, run_cli):
    from real_videos import make_clip, pan_frames

    clip = make_clip(tmp_path / "clip.mp4", pan_frames(2), audio=None)
    code, _, stderr = run_cli("translate", clip, "-m", negate_onnx, "-o", tmp_path / "out.gif")
    assert code == 2 and f"-o {tmp_path / 'out.gif'}: gantx writes .png" in stderr and stderr.count("\n") == 1
    assert not (tmp_path / "out.gif").exists()


def test_a_folder_named_with_a_dot_still_takes_several_inputs(mixed_folder, negate_onnx, tmp_path, run_cli):
    out = tmp_path / "results.v2"
    code, stdout, stderr = run_cli(
        "translate", mixed_folder / "cat.png", mixed_folder / "logo.png", "-m", negate_onnx, "-o", out
    )
    assert code == 0, stderr
    assert sorted(path.name for path in out.iterdir()) == ["cat.png", "logo.png"]
    code, stdout, stderr = run_cli(
        "translate", mixed_folder / "camera.png", "-m", negate_onnx, "-o", out
    )  # an existing folder
    assert code == 0 and (out / "camera.png").is_file(), stderr


def test_an_input_named_twice_is_translated_once(mixed_folder, negate_onnx, tmp_path, run_cli):
    cat = mixed_folder / "cat.png"
    code, stdout, stderr = run_cli("translate", cat, cat, "-m", negate_onnx, "-o", tmp_path / "a")
    assert code == 0 and "translated 1, skipped 0, failed 0" in stdout, stderr
    assert_negative(cat, tmp_path / "a" / "cat.png")
    code, stdout, stderr = run_cli(
        "translate", f"{mixed_folder}/*.png", mixed_folder, "-m", negate_onnx, "-o", tmp_path / "b", "-f", "png"
    )
    assert code == 0 and "translated 8, skipped 0, failed 0" in stdout, stderr
    for relative in SOURCES:
        assert_negative(mixed_folder / relative, (tmp_path / "b" / relative).with_suffix(".png"))
