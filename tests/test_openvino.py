"""The OpenVINO engine and `--precision`, on the bundled zoo models and real photos.

The reference is ONNX Runtime at fp32 on the CPU (the path gantx always had):
OpenVINO at fp32 must stay within 1 grey level of it on every pixel, bf16 at
40 dB PSNR or more on photo-upscale2x. `auto`'s choice between the engines is
checked with their timings mocked; what the CPU supports natively is mocked
where a test needs a CPU without bf16.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from real_images import real_photo

import gantx.cpu_info
import gantx.engine_choice
import gantx.openvino_engine
import gantx.providers
from gantx import Generator, ProviderError, Translator
from gantx.engine_cache import cache_dir
from gantx.openvino_engine import ENGINE, OpenVinoSession
from gantx.providers import INSTEAD, PROVIDERS
from gantx.session import find_model, open_session
from gantx.settings import RunSettings

pytest.importorskip("openvino")

CPU = PROVIDERS["cpu"]
PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png")
MISSING = 'gantx: error: openvino is not installed: pip install "gantx[cpu]"\n'


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A cache folder and the notices of a new process."""
    monkeypatch.setenv("GANTX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gantx.providers, "_notified", set())


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [np.asarray(real_photo(name, 96).convert("RGB")) for name in PHOTOS]


@pytest.fixture(scope="module")
def reference(photos) -> list[np.ndarray]:
    """photo-upscale2x on ONNX Runtime's CPU provider at fp32: gantx's path before OpenVINO."""
    return Translator("photo-upscale2x", provider="cpu", precision="fp32").translate(photos)


def psnr(expected: np.ndarray, actual: np.ndarray) -> float:
    error = np.mean((expected.astype(np.float64) - actual.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def without_openvino(monkeypatch) -> None:
    """As if the package were not installed: importing it fails the way a missing module does."""
    monkeypatch.setitem(sys.modules, "openvino", None)


# -- loading ------------------------------------------------------------------------------------------------------


def test_import_gantx_and_help_load_no_openvino():
    code = (
        "import sys, gantx\nfrom gantx.cli import main\nsys.argv = ['gantx', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint('openvino' in sys.modules, 'gantx.cli' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "False True"


def test_openvino_not_installed_is_one_line(monkeypatch, mixed_folder, tmp_path, run_cli, fresh):
    without_openvino(monkeypatch)
    code, _, stderr = run_cli("translate", mixed_folder / "cat.png", "-m", "photo-upscale2x", "-o", tmp_path / "o")
    assert code == 0, stderr  # auto: ONNX Runtime, nothing said
    code, _, stderr = run_cli(
        "translate", mixed_folder / "cat.png", "-m", "photo-upscale2x", "-o", tmp_path / "p", "-p", "openvino"
    )
    assert (code, stderr) == (2, MISSING)
    assert not (tmp_path / "p").exists()
    assert not (cache_dir() / gantx.engine_choice.FOLDER).exists()  # auto timed nothing


def test_openvino_that_cannot_compile_is_an_error_by_name_and_a_fallback_for_auto(monkeypatch, fresh, caplog):
    def refuse(*args, **kwargs):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:112:\nunsupported operation")

    class Core:
        compile_model = staticmethod(refuse)

    gantx.openvino_engine.cpu_capabilities()  # read from the real plugin first
    monkeypatch.setattr(gantx.openvino_engine, "core", Core)
    with pytest.raises(ProviderError) as raised:
        Translator("photo-upscale2x", provider="openvino")
    assert str(raised.value).endswith(
        "photo-upscale2x.onnx: Exception from src/inference/src/cpp/core.cpp:112:"
    ) and str(raised.value).startswith("provider 'openvino' could not compile ")
    with caplog.at_level(logging.WARNING, logger="gantx"):
        translators = [Translator("photo-upscale2x") for _ in range(2)]
    assert [translator.providers[0] for translator in translators] == [CPU, CPU]
    (notice,) = [record.getMessage() for record in caplog.records if "OpenVINO" in record.getMessage()]
    assert notice.startswith("gantx: OpenVINO could not start here (provider 'openvino' could not compile")


def test_a_cpu_plugin_that_cannot_load_is_said_by_info_and_one_line_by_name(monkeypatch, run_cli, tmp_path):
    class Core:
        def get_property(self, device, name):
            raise RuntimeError("Exception from src/inference/src/core.cpp:90:\nno CPU plugin")

    monkeypatch.setattr(gantx.openvino_engine, "core", Core)
    gantx.openvino_engine.cpu_capabilities.cache_clear()
    monkeypatch.setattr(gantx.openvino_engine, "cpu_capabilities", gantx.openvino_engine.cpu_capabilities)
    try:
        code, stdout, _ = run_cli("info", "fashion-edges2item")
        assert code == 0
        cannot = "provider 'openvino' could not start here: Exception from src/inference/src/core.cpp:90:"
        assert f"installed, but {cannot}" in stdout
        photo = gantx.zoo.sample_photos()[0]
        code, _, stderr = run_cli("translate", photo, "-m", "photo-upscale2x", "-o", tmp_path / "o", "-p", "openvino")
        assert (code, stderr) == (2, f"gantx: error: {cannot}\n")
    finally:
        gantx.openvino_engine.cpu_capabilities.cache_clear()  # the real plugin's answer for the tests after


def test_explicit_openvino_runs_the_latency_hint_with_the_threads_asked_and_dynamic_shapes():
    translator = Translator("photo-upscale2x", provider="openvino", precision="fp32", threads=1)
    session = translator.session
    assert isinstance(session, OpenVinoSession) and translator.engine == f"{ENGINE} fp32"
    compiled = session.compiled
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert str(compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"
    assert compiled.inputs[0].get_partial_shape().is_dynamic  # new sizes run without a new compile
    for height, width in ((32, 48), (40, 24), (32, 48)):
        batch = np.zeros((2, 3, height, width), np.float32)
        assert translator.run_batch(batch).shape == (2, 3, 2 * height, 2 * width)
    assert [node.name for node in session.get_inputs()] == ["input"]
    assert session.get_modelmeta().custom_metadata_map["gantx.arch"]


# -- precision ----------------------------------------------------------------------------------------------------


def test_openvino_fp32_is_within_one_grey_level_of_onnx_runtime_on_every_pixel(photos, reference):
    translated = Translator("photo-upscale2x", provider="openvino", precision="fp32").translate(photos)
    for expected, actual in zip(reference, translated):
        assert expected.shape == actual.shape
        assert np.abs(expected.astype(int) - actual.astype(int)).max() <= 1


def test_openvino_bf16_keeps_40_db_on_real_photos(photos, reference):
    if "BF16" not in gantx.openvino_engine.cpu_capabilities():
        pytest.skip("this CPU has no native bf16")
    translator = Translator("photo-upscale2x", provider="openvino", precision="bf16")
    assert translator.engine == f"{ENGINE} bf16"
    assert Translator("photo-upscale2x", provider="openvino").engine == f"{ENGINE} bf16"  # auto: bf16 where native
    for expected, actual in zip(reference, translator.translate(photos)):
        assert 40 <= psnr(expected, actual) < float("inf")  # close, and really computed in bf16


@pytest.mark.parametrize("asked", ["fp16", "bf16"])
def test_a_precision_the_cpu_lacks_is_named_once_on_openvino_and_runs_f32(
    asked, monkeypatch, fresh, caplog, photos, reference
):
    monkeypatch.setattr(gantx.openvino_engine, "cpu_capabilities", lambda: ("FP32", "INT8"))
    with caplog.at_level(logging.WARNING, logger="gantx"):
        translators = [Translator("photo-upscale2x", provider="openvino", precision=asked) for _ in range(2)]
        auto = Translator("photo-upscale2x", provider="openvino")
    assert [record.getMessage() for record in caplog.records] == [
        f"gantx: --precision {asked} is not native on this CPU for OpenVINO (it has FP32, INT8); it runs fp32"
    ]
    for translator in [*translators, auto]:
        assert translator.engine == f"{ENGINE} fp32"
        assert str(translator.session.compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    for expected, actual in zip(reference, translators[0].translate(photos)):
        assert np.abs(expected.astype(int) - actual.astype(int)).max() <= 1


@pytest.mark.parametrize("asked", ["fp16", "bf16"])
def test_onnx_runtime_on_the_cpu_names_fp16_and_bf16_once_and_runs_fp32_exactly(
    asked, fresh, caplog, photos, reference
):
    with caplog.at_level(logging.WARNING, logger="gantx"):
        translators = [Translator("photo-upscale2x", provider="cpu", precision=asked) for _ in range(2)]
    assert [record.getMessage() for record in caplog.records] == [
        f"gantx: --precision {asked} is not honoured by {CPU}; it runs fp32 ({INSTEAD})"
    ]
    assert translators[0].engine == f"{CPU} fp32"
    for expected, actual in zip(reference, translators[0].translate(photos)):
        np.testing.assert_array_equal(actual, expected)


def test_a_generator_on_openvino_matches_onnx_runtime():
    labels = ["sneaker", "bag", "dress", "trouser"]
    reference = Generator("fashion-cgan", provider="cpu").generate(8, labels, seed=3)
    generator = Generator("fashion-cgan", provider="openvino", precision="fp32")
    assert generator.engine == f"{ENGINE} fp32"
    for expected, actual in zip(reference, generator.generate(8, labels, seed=3)):
        # the file is fp16: ONNX Runtime runs some of it in fp16, OpenVINO all of it in f32
        assert np.abs(np.asarray(expected, int) - np.asarray(actual, int)).max() <= 2


# -- auto: OpenVINO or ONNX Runtime on the CPU, timed once ---------------------------------------------------------


class Timings:
    """Stands in for engine_choice.time_engines: fixed milliseconds per engine, and a count of the timings."""

    def __init__(self, openvino: float, onnxruntime: float) -> None:
        self.ms = {"openvino": openvino, "onnxruntime": onnxruntime}
        self.calls = 0
        self.batches: list[int] = []

    def __call__(self, sessions, feeds):
        self.calls += 1
        assert set(sessions) == set(self.ms)
        assert [session.get_providers()[0] for session in sessions.values()] == [ENGINE, CPU]
        self.batches.append(feeds["input"].shape[0])  # the settings' batch ...
        assert feeds["input"].shape[1:] == (1, 32, 32)  # ... at the model's trained size
        return dict(self.ms)


@pytest.mark.parametrize(
    "openvino_ms, onnxruntime_ms, chosen",
    [(1.0, 2.0, ENGINE), (2.0, 1.0, CPU), (0.97, 1.0, CPU)],  # within MARGIN: not worth the risk
)
def test_auto_keeps_the_faster_engine_and_times_once(monkeypatch, fresh, openvino_ms, onnxruntime_ms, chosen):
    timings = Timings(openvino_ms, onnxruntime_ms)
    monkeypatch.setattr(gantx.engine_choice, "time_engines", timings)
    settings = RunSettings(batch_size=4)
    first = Translator("fashion-edges2item", settings)
    (record,) = (cache_dir() / gantx.engine_choice.FOLDER).iterdir()
    saved = json.loads(record.read_text())
    assert saved["engine"] == ("openvino" if chosen == ENGINE else "onnxruntime")
    assert saved["ms_per_batch"] == timings.ms
    assert saved["key"]["batch_size"] == 4 and len(saved["key"]["model_sha256"]) == 64
    second = Translator("fashion-edges2item", settings)
    assert timings.calls == 1  # remembered: the second load did no timing
    assert first.providers[0] == second.providers[0] == chosen
    Translator("fashion-edges2item", settings.replace(batch_size=2))
    assert timings.batches == [4, 2]  # another batch size is another choice


class Opened:
    """Counts what loading a model does: sessions opened, model files hashed, choices and /proc/cpuinfo read."""

    def __init__(self, monkeypatch, model: Path) -> None:
        self.counts = {"onnxruntime": 0, "openvino": 0, "model hashes": 0, "choices read": 0, "cpuinfo reads": 0}
        size = model.stat().st_size
        count = self.count

        class CountedSession(ort.InferenceSession):
            def __init__(self, *args, **kwargs) -> None:
                count("onnxruntime")
                super().__init__(*args, **kwargs)

        class CountedOpenVino(OpenVinoSession):
            def __init__(self, *args, **kwargs) -> None:
                count("openvino")
                super().__init__(*args, **kwargs)

        class CountedCpuInfo:
            def read_text(self) -> str:
                count("cpuinfo reads")
                return gantx.cpu_info.Path("/proc/cpuinfo").read_text()

        sha256, remembered = hashlib.sha256, gantx.engine_choice.remembered

        def hashing(data: bytes = b"", **kwargs):
            if len(data) == size:
                count("model hashes")
            return sha256(data, **kwargs)

        def reading(file):
            count("choices read")
            return remembered(file)

        monkeypatch.setattr(ort, "InferenceSession", CountedSession)
        monkeypatch.setattr(gantx.openvino_engine, "OpenVinoSession", CountedOpenVino)
        monkeypatch.setattr(gantx.cpu_info, "CPUINFO", CountedCpuInfo())
        monkeypatch.setattr(hashlib, "sha256", hashing)
        monkeypatch.setattr(gantx.engine_choice, "remembered", reading)
        gantx.cpu_info._cpuinfo_lines.cache_clear()
        monkeypatch.setattr(gantx.cpu_info, "_cpuinfo_lines", gantx.cpu_info._cpuinfo_lines)  # cleared again after

    def count(self, what: str) -> None:
        self.counts[what] += 1

    def taken(self) -> dict[str, int]:
        """The counts since the last call."""
        taken = dict(self.counts)
        self.counts.update(dict.fromkeys(self.counts, 0))
        return taken


@pytest.mark.parametrize("openvino_ms, engine", [(1.0, "openvino"), (3.0, "onnxruntime")])
def test_a_remembered_choice_costs_one_hash_one_read_and_opens_only_its_engine(monkeypatch, fresh, openvino_ms, engine):
    model = find_model("fashion-edges2item")
    named = RunSettings(provider="cpu" if engine == "onnxruntime" else "openvino", batch_size=4)
    opened = Opened(monkeypatch, model)
    open_session(model, named)
    by_name = opened.taken()  # the reference: what naming the engine opens
    monkeypatch.setattr(gantx.engine_choice, "time_engines", Timings(openvino_ms, 2.0))
    gantx.cpu_info._cpuinfo_lines.cache_clear()
    first = open_session(model, RunSettings(batch_size=4))
    assert opened.taken() == {
        "onnxruntime": 1,  # timed, and read the contract for OpenVINO
        "openvino": 1,
        "model hashes": 1,
        "choices read": 1,
        "cpuinfo reads": 1,
    }
    remembered = open_session(model, RunSettings(batch_size=4))
    assert remembered.get_providers()[0] == first.get_providers()[0] == (ENGINE if engine == "openvino" else CPU)
    assert opened.taken() == {
        "onnxruntime": by_name["onnxruntime"],
        "openvino": by_name["openvino"],
        "model hashes": 1,
        "choices read": 1,
        "cpuinfo reads": 0,  # read once a process
    }


def test_auto_times_for_real_and_the_choice_says_so(fresh, caplog):
    with caplog.at_level(logging.INFO, logger="gantx"):
        translator = Translator("fashion-edges2item", batch_size=2)
    (line,) = [record.getMessage() for record in caplog.records if "a batch of 2" in record.getMessage()]
    ran = "OpenVINO" if translator.providers[0] == ENGINE else "ONNX Runtime"
    pattern = (
        r"gantx: fashion-edges2item.onnx: OpenVINO (bf16|fp32) [\d.]+ ms, ONNX Runtime fp16 [\d.]+ ms"
        rf" a batch of 2: running on {ran}"
    )
    assert re.fullmatch(pattern, line), line  # fp16: the zoo's file


def test_auto_with_a_gpu_that_starts_never_times_openvino(monkeypatch, fresh, negate_onnx):
    real = ort.InferenceSession

    class OnCuda(real):
        def get_providers(self):
            return [PROVIDERS["cuda"], CPU]

    monkeypatch.setattr(ort, "get_available_providers", lambda: [PROVIDERS["cuda"], CPU])
    monkeypatch.setattr(ort, "InferenceSession", OnCuda)
    monkeypatch.setattr(gantx.engine_choice, "time_engines", Timings(0.1, 100.0))
    session = open_session(negate_onnx, RunSettings())
    assert session.get_providers()[0] == PROVIDERS["cuda"]
    assert not (cache_dir() / gantx.engine_choice.FOLDER).exists()


def test_without_openvino_auto_runs_onnx_runtime_without_timing(monkeypatch, fresh):
    without_openvino(monkeypatch)
    monkeypatch.setattr(gantx.engine_choice, "time_engines", Timings(0.1, 100.0))
    assert Translator("fashion-edges2item").providers[0] == CPU
    assert not (cache_dir() / gantx.engine_choice.FOLDER).exists()


# -- sharing: threads, the server, Ray ------------------------------------------------------------------------------


def test_one_translator_on_openvino_shared_by_threads_gives_each_the_same_result(photos):
    translator = Translator("photo-upscale2x", provider="openvino", precision="fp32")
    expected = translator.translate(photos)
    results: dict[int, list[np.ndarray]] = {}

    def work(index: int) -> None:
        results[index] = [translator.translate(photo) for photo in photos]

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for outputs in results.values():
        for want, got in zip(expected, outputs):
            np.testing.assert_array_equal(got, want)


def test_the_server_runs_on_openvino(mixed_folder, photos):
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from gantx.server import create_app
    from gantx.server.config import ServeSettings
    from gantx.server.models import Service

    run = RunSettings(provider="openvino", precision="fp32")
    source = mixed_folder / "cat.png"
    expected = np.asarray(Translator("photo-upscale2x", run).translate(source))
    with TestClient(create_app(Service({"up": find_model("photo-upscale2x")}, ServeSettings(run=run)))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:  # the model loads on its own thread
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.02)
        answer = client.post("/v1/models/up/translate", content=source.read_bytes())
        model = client.app.state.service.models["up"]
        assert model.runner.translator.engine == f"{ENGINE} fp32"
    assert answer.status_code == 200, answer.text
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(answer.content))), expected)


def test_a_ray_actor_runs_on_openvino(monkeypatch, mixed_folder, tmp_path):
    ray_engine = pytest.importorskip("gantx.ray_engine")
    from PIL import Image

    class Context:
        def get_node_id(self) -> str:
            return "node-1"

    monkeypatch.setattr(ray_engine.ray, "get_runtime_context", Context)  # no Ray started: the class alone
    run = RunSettings(provider="openvino", precision="fp32", threads=1)
    actor = ray_engine.TranslateBatch("photo-upscale2x", run)
    assert actor.translator.engine == f"{ENGINE} fp32"
    assert actor.translator.session.compiled.get_property("INFERENCE_NUM_THREADS") == 1  # the actor's --threads
    source, target = mixed_folder / "cat.png", tmp_path / "cat.png"
    out = actor({"source": np.array([str(source)], dtype=object), "target": np.array([str(target)], dtype=object)})
    assert list(out["error"]) == [""]
    expected = np.asarray(Translator("photo-upscale2x", run).translate(source))
    np.testing.assert_array_equal(np.asarray(Image.open(target)), expected)


# -- the CLI ---------------------------------------------------------------------------------------------------------


def test_an_unknown_precision_is_one_line(run_cli, mixed_folder, tmp_path):
    code, _, stderr = run_cli(
        "translate", mixed_folder / "cat.png", "-m", "photo-upscale2x", "-o", tmp_path / "o", "--precision", "fp8"
    )
    assert (code, stderr) == (2, "gantx: error: --precision 'fp8': choose one of auto, fp32, fp16, bf16\n")


def test_info_names_openvino_its_cpu_precisions_and_the_engine_the_model_runs_on(monkeypatch, fresh, run_cli):
    monkeypatch.setattr(gantx.engine_choice, "time_engines", Timings(1.0, 2.0))
    code, stdout, stderr = run_cli("info", "fashion-edges2item")
    assert code == 0, stderr
    precisions = [name for name in gantx.openvino_engine.cpu_capabilities() if name in ("FP32", "BF16", "FP16", "INT8")]
    assert (
        f"OpenVINO: {gantx.openvino_engine.version().split('-')[0]}, CPU precisions: {', '.join(precisions)}\n"
        in stdout
    )
    native = "bf16" if "BF16" in precisions else "fp32"
    assert f"runs on: {ENGINE} {native} (--provider auto --precision auto)\n" in stdout


def test_bench_times_every_engine_at_every_precision_against_the_first(run_cli, tmp_path):
    report = tmp_path / "bench.json"
    args = ["-m", "photo-upscale2x", "-p", "cpu,openvino", "--precision", "fp32,bf16", "--size", "32x32"]
    code, stdout, stderr = run_cli(
        "bench", *args, "--batch-sizes", "1", "--iters", "3", "--warmup", "1", "--json", report
    )
    assert code == 0, stderr
    rows = json.loads(report.read_text())["results"]
    asked = [(row["requested"], row["provider"]) for row in rows]
    assert asked == [("cpu", CPU), ("cpu", CPU), ("openvino", ENGINE), ("openvino", ENGINE)]
    assert [row["precision"] for row in rows[2:]] == [
        "fp32",
        "bf16" if "BF16" in gantx.openvino_engine.cpu_capabilities() else "fp32",
    ]
    assert rows[0]["relative_to_first"] == 1.0
    for row in rows[1:]:  # each configuration against the first, as the table's last column says
        assert row["relative_to_first"] == pytest.approx(row["images_per_s"] / rows[0]["images_per_s"])
    assert "vs photo-upscale2x on CPU fp32" in stdout
    assert re.search(r"^\s*OpenVINO fp32\s", stdout, re.M), stdout  # each row says its engine and precision
    assert json.loads(report.read_text())["settings"]["precision"] == "fp32,bf16"  # as given


class PhotoCrops:
    """Calibration for ONNX Runtime's quantiser: crops of real photos in the model's units."""

    def __init__(self, photos: list[np.ndarray]) -> None:
        self.feeds = iter(
            [
                {"input": (photo[None, :48, :48].transpose(0, 3, 1, 2) / 127.5 - 1).astype(np.float32)}
                for photo in photos
            ]
        )

    def get_next(self):
        return next(self.feeds, None)


@pytest.mark.parametrize("asked", ["fp32", "bf16"])
def test_an_int8_file_runs_int8_on_openvino_whatever_the_precision(asked, photos, tmp_path):
    import onnx
    from onnxruntime.quantization import QuantFormat, quantize_static

    int8 = tmp_path / "upscale-int8.onnx"
    quantize_static(str(find_model("photo-upscale2x")), str(int8), PhotoCrops(photos), quant_format=QuantFormat.QDQ)
    model = onnx.load(int8)
    next(prop for prop in model.metadata_props if prop.key == "gantx.precision").value = "int8"
    onnx.save(model, int8)
    translator = Translator(int8, provider="openvino", precision=asked)
    assert translator.engine == f"{ENGINE} int8"
    translator.translate(photos[0])
    layers = [op.get_rt_info() for op in translator.session.compiled.get_runtime_model().get_ordered_ops()]
    convolutions = {
        str(info["runtimePrecision"].astype(str)) for info in layers if info["layerType"].astype(str) == "Convolution"
    }
    assert convolutions <= {"u8", "i8"} and convolutions
