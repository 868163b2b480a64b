"""`gantx bench`: timing, memory and the folder path checked against references we control.

The model call is replaced by one that takes a known time on a fake clock
(or allocates a known amount), so the measured latency, rate and peak memory
have an exact expected value however busy the machine is; the CLI runs the real negate model and its JSON is checked
against docs/bench-json.md.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from tiny_models import blocky_negate_model, fixed_negate_model

import gantx.bench
import gantx.pipeline
import gantx.timing
from gantx import Translator
from gantx.bench import BenchReport, bench_folder, bench_models, model_size
from gantx.errors import GantxError

DOC = Path(__file__).parents[1] / "docs" / "bench-json.md"


def bench_model(translator: Translator, *args, **kwargs):
    """One model alone."""
    return bench_models([translator], ["model"], *args, **kwargs)[0]


class FakeClock:
    """perf_counter for gantx.bench and gantx.timing, moved only by the fake model (and tests): exact on any machine."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()  # the folder path's worker threads move it too

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    for module in (gantx.bench, gantx.timing):
        monkeypatch.setattr(module, "time", fake)
    return fake


def taking(translator: Translator, seconds_per_batch: float, clock: FakeClock) -> list[int]:
    """Make every model call take `seconds_per_batch` on `clock`; returns the batch sizes it saw."""
    seen: list[int] = []

    def run(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        clock.advance(seconds_per_batch)
        return -batch

    translator.run_batch = run
    return seen


def test_latency_and_rate_follow_the_time_each_batch_takes(negate_onnx, clock):
    translator = Translator(negate_onnx, provider="cpu", batch_size=4)
    seen = taking(translator, 0.02, clock)
    result = bench_model(translator, 4, (32, 48), warmup=2, iters=10)
    assert seen == [4] * 12
    assert (result.batch_size, result.height, result.width, result.requested) == (4, 32, 48, "cpu")
    assert result.latency_ms == pytest.approx(
        {"p50": 20, "p90": 20, "p99": 20, "mean": 20}, rel=1e-9
    )  # warm-ups untimed
    assert result.images_per_s == pytest.approx(200, rel=1e-9)  # 4 images per 20 ms


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-configuration peaks need Linux clear_refs")
def test_models_are_timed_strictly_in_turn_and_compared_with_the_first(negate_onnx, clock):
    fast, slow = Translator(negate_onnx, provider="cpu"), Translator(negate_onnx, provider="cpu")
    calls: list[str] = []
    for name, translator, seconds in (("fast", fast, 0.03), ("slow", slow, 0.09)):

        def run(batch, name=name, seconds=seconds):
            calls.append(name)
            clock.advance(seconds)
            return -batch

        translator.run_batch = run
    fast_result, slow_result = bench_models([fast, slow], ["fast", "slow"], 2, (8, 8), warmup=1, iters=6)
    assert calls == ["fast", "slow"] + ["fast", "slow"] * 6  # warm-ups alone, then one call of each in turn
    assert (fast_result.model, slow_result.model, fast_result.relative_to_first) == ("fast", "slow", 1.0)
    assert slow_result.relative_to_first == pytest.approx(1 / 3, rel=1e-9)
    assert slow_result.relative_to_first == pytest.approx(slow_result.images_per_s / fast_result.images_per_s)


def test_timing_in_turn_stops_once_its_budget_is_spent(clock):
    calls: list[str] = []

    def taking(name: str, seconds: float):
        def call() -> None:
            calls.append(name)
            clock.advance(seconds)

        return call

    times = gantx.timing.time_in_turn([taking("a", 1.0), taking("b", 2.0)], rounds=5, warmup=1, budget_s=5.0)
    assert calls == ["a", "b"] * 3  # warm-up, then rounds until over 5 s: 3 s, then 6 s
    assert times == [[1.0, 1.0], [2.0, 2.0]]


def test_cli_compares_models_side_by_side(negate_onnx, tmp_path, run_cli):
    report = tmp_path / "bench.json"
    code, stdout, stderr = run_cli(
        "bench",
        "-m",
        negate_onnx,
        "-m",
        "fashion-sneaker2boot",
        "--size",
        "32",
        "--batch-sizes",
        "1,2",
        "--iters",
        "2",
        "--warmup",
        "1",
        "-p",
        "cpu",
        "--json",
        report,
    )
    assert code == 0, stderr
    assert "timed in turn" in stdout and f"vs {negate_onnx}" in stdout and "fashion-sneaker2boot" in stdout
    data = json.loads(report.read_text())
    assert data["model"] == str(negate_onnx) and data["models"] == [str(negate_onnx), "fashion-sneaker2boot"]
    rows = [(row["model"], row["batch_size"]) for row in data["results"]]
    assert rows == [
        (str(negate_onnx), 1),
        ("fashion-sneaker2boot", 1),
        (str(negate_onnx), 2),
        ("fashion-sneaker2boot", 2),
    ]
    for first, other in zip(data["results"][::2], data["results"][1::2]):
        assert first["relative_to_first"] == 1.0
        assert other["relative_to_first"] == pytest.approx(other["images_per_s"] / first["images_per_s"])


def test_peak_memory_is_measured_per_configuration(negate_onnx):
    translator = Translator(negate_onnx, provider="cpu")
    quiet = bench_model(translator, 1, (8, 8), warmup=0, iters=2)

    def hungry(batch: np.ndarray) -> np.ndarray:
        block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
        return -batch + block[0] - 1

    translator.run_batch = hungry
    heavy = bench_model(translator, 1, (8, 8), warmup=0, iters=1)
    assert heavy.peak_rss_mb - quiet.peak_rss_mb > 280
    translator.run_batch = lambda batch: -batch
    again = bench_model(translator, 1, (8, 8), warmup=0, iters=2)
    assert again.peak_rss_mb < heavy.peak_rss_mb - 250  # the peak was reset, not carried over


def test_auto_size_is_512_for_a_fully_convolutional_model_and_its_own_for_a_fixed_one(tmp_path, run_cli):
    """photo-upscale2x lists 48x48, its training crop, which says nothing of photos: auto benches it at 512x512."""
    report = tmp_path / "bench.json"
    code, stdout, stderr = run_cli(
        "bench",
        "-m",
        "photo-upscale2x",
        "-m",
        "fashion-m2fashion",
        "--batch-sizes",
        "1",
        "--iters",
        "1",
        "--warmup",
        "0",
        "-p",
        "cpu",
        "--json",
        report,
    )
    assert code == 0, stderr
    sizes = {row["model"]: (row["height"], row["width"]) for row in json.loads(report.read_text())["results"]}
    assert sizes == {"photo-upscale2x": (512, 512), "fashion-m2fashion": (32, 32)}  # the latter takes only 32x32
    twelve = Translator(blocky_negate_model(tmp_path / "twelve.onnx", 4), provider="cpu")
    twelve.info = type(twelve.info)(**{**twelve.info.__dict__, "size_multiple": 12})
    assert model_size(twelve) == (516, 516)  # up to the model's multiple


def test_sizes_the_model_cannot_take_are_refused(tmp_path, negate_onnx):
    fixed = Translator(fixed_negate_model(tmp_path / "fixed.onnx", 48, 64), provider="cpu")
    assert bench_model(fixed, 1, "auto", 0, 1).height == 48
    with pytest.raises(GantxError, match="only takes 48x64"):
        bench_model(fixed, 1, (64, 64))
    multiple = Translator(negate_onnx, provider="cpu")
    multiple.info = type(multiple.info)(**{**multiple.info.__dict__, "size_multiple": 4})
    with pytest.raises(GantxError, match="multiples of 4"):
        bench_model(multiple, 1, (30, 32))


def test_bench_size_follows_the_one_size_grammar(tmp_path):
    wide = Translator(blocky_negate_model(tmp_path / "wide.onnx", 4), provider="cpu")
    wide.info = type(wide.info)(**{**wide.info.__dict__, "size": (64, 96)})
    assert model_size(wide, "auto") == (512, 512)  # fully convolutional: its own size is only a training crop
    assert model_size(wide, 32) == (32, 48)  # N is the shorter side, the model's aspect kept, as in translate
    assert model_size(wide, (40, 40)) == (40, 40)


def test_folder_path_is_timed_beside_the_model_alone_on_the_same_images(negate_onnx, mixed_folder, clock, monkeypatch):
    translator = Translator(negate_onnx, provider="cpu", batch_size=2)
    seen = taking(translator, 0.05, clock)
    real_open = gantx.pipeline.open_image

    def decode(path):  # the folder path's decoding takes 10 ms an image
        clock.advance(0.01)
        return real_open(path)

    monkeypatch.setattr(gantx.pipeline, "open_image", decode)
    result = bench_folder(translator, "negate", mixed_folder)
    images = result.images
    assert images == 8 and result.failed == 0
    # The mixed folder has images of different sizes, so batches are one image each: 8 calls of 50 ms, twice.
    assert seen == [1] * 2 * images
    assert result.model_images_per_s == pytest.approx(images / (0.05 * images), rel=1e-9)  # preparing is not timed
    assert result.images_per_s == pytest.approx(images / (0.06 * images), rel=1e-9)  # decoding is
    assert result.ratio == pytest.approx(result.images_per_s / result.model_images_per_s)


def _keys(value, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        found = set()
        for key, item in value.items():
            found |= {key} | _keys(item)
        return found
    if isinstance(value, list):
        return set().union(*(_keys(item) for item in value)) if value else set()
    return set()


def test_cli_prints_the_table_and_writes_the_documented_json(negate_onnx, mixed_folder, tmp_path, run_cli):
    report = tmp_path / "bench.json"
    code, stdout, stderr = run_cli(
        "bench",
        "-m",
        negate_onnx,
        "--size",
        "32x48",
        "--batch-sizes",
        "1,2",
        "--iters",
        "3",
        "--warmup",
        "1",
        "-p",
        "cpu",
        "--json",
        report,
        "--end-to-end",
        mixed_folder,
    )
    assert code == 0, stderr
    assert "p50 ms" in stdout and "path img/s" in stdout and f"wrote {report}" in stdout
    data = json.loads(report.read_text())
    assert data["schema"] == 2
    assert [(row["batch_size"], row["height"], row["width"]) for row in data["results"]] == [(1, 32, 48), (2, 32, 48)]
    assert [row["batch_size"] for row in data["end_to_end"]] == [1, 2]
    assert all(row["images"] == 8 and row["provider"] == "CPUExecutionProvider" for row in data["end_to_end"])
    documented = set(re.findall(r"`([a-z_0-9]+)`", DOC.read_text()))
    assert _keys(data) <= documented, _keys(data) - documented


@pytest.mark.parametrize("installed", [True, False])
def test_the_report_names_the_openvino_version_beside_onnx_runtimes(installed, monkeypatch):
    import onnxruntime

    if installed:
        expected = pytest.importorskip("openvino").__version__
    else:
        monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
        expected = None
    machine = BenchReport("model", ["model"]).to_dict()["machine"]
    assert (machine["onnxruntime"], machine["openvino"]) == (onnxruntime.__version__, expected)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--batch-sizes", "0,x"], "--batch-sizes"),
        (["--size", "3x"], "--size '3x'"),
        (["--end-to-end", "no-such-folder"], "not a folder"),
        (["-p", "gpu"], "--provider 'gpu': choose one of"),
    ],
)
def test_cli_bad_options_exit_2_with_one_line(negate_onnx, run_cli, options, message):
    code, _, stderr = run_cli("bench", "-m", negate_onnx, *options)
    assert code == 2 and message in stderr and stderr.count("\n") == 1, stderr


def test_the_folder_path_sizes_images_as_the_size_option_says(negate_onnx, mixed_folder):
    translator = Translator(negate_onnx, provider="cpu", size=16)
    shapes: list[tuple[int, ...]] = []
    real_run = translator.run_batch
    translator.run_batch = lambda batch: shapes.append(batch.shape) or real_run(batch)
    result = bench_folder(translator, "negate", mixed_folder)
    assert result.images == 8 and result.failed == 0
    assert sum(shape[0] for shape in shapes) == 16 and {min(shape[2:]) for shape in shapes} == {
        16
    }  # path and model alone: 8 images each, shorter side 16


def test_cli_end_to_end_uses_the_size_and_counts_failed_images(negate_onnx, mixed_folder, tmp_path, run_cli):
    photos = tmp_path / "photos"
    shutil.copytree(mixed_folder, photos)
    (photos / "broken.png").write_bytes(b"\x89PNG but not really")
    report = tmp_path / "bench.json"
    code, stdout, stderr = run_cli(
        "bench",
        "-m",
        negate_onnx,
        "--size",
        "16",
        "--batch-sizes",
        "2",
        "--iters",
        "1",
        "--warmup",
        "0",
        "-p",
        "cpu",
        "--end-to-end",
        photos,
        "--json",
        report,
    )
    assert code == 0, stderr
    [row] = json.loads(report.read_text())["end_to_end"]
    assert (row["images"], row["failed"]) == (8, 1)
    lines = stdout.splitlines()
    header = next(index for index, line in enumerate(lines) if "path img/s" in line)
    names, values = ([cell.strip() for cell in re.split("[┃│]", line)] for line in (lines[header], lines[header + 2]))
    assert dict(zip(names, values))["images"] == "8" and dict(zip(names, values))["failed"] == "1"
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(photos / "broken.png", broken)
    code, _, stderr = run_cli(
        "bench", "-m", negate_onnx, "--size", "16", "--iters", "1", "-p", "cpu", "--end-to-end", broken
    )
    assert (
        code == 2
        and (
            f"--end-to-end {broken}: none of its 1 images could be translated "
            f"({broken / 'broken.png'}: cannot read image"
        )
        in stderr
    )
    assert stderr.count("\n") == 1, stderr
    code, _, stderr = run_cli("bench", "-m", negate_onnx, "--size", "99999", "--iters", "1", "-p", "cpu")
    assert (code, stderr) == (2, "gantx: error: --size 99999x99999: over the limit of 89,478,485 pixels\n")
