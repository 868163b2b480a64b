"""Provider choice and provider options, with ONNX Runtime's provider list mocked (no GPU here).

The fake session records what gantx asks ONNX Runtime for and runs the real
model on the CPU, so the options are checked exactly as they would reach a GPU
machine; the CPU paths (IO binding, the cache folder) run for real.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tiny_models import fixed_negate_model, negate_model

import gantx.openvino_engine
import gantx.providers
from gantx import Translator
from gantx.binding import BoundRunner, batch_runner
from gantx.engine_cache import prune_cache
from gantx.errors import ModelError, ProviderError
from gantx.model import parse_profile
from gantx.providers import INSTEAD, PROVIDERS, plan_providers, provider_options, providers_that_start
from gantx.session import open_session
from gantx.settings import RunSettings
from gantx.zoo import bundled_models

TRT, CUDA, CPU = PROVIDERS["tensorrt"], PROVIDERS["cuda"], PROVIDERS["cpu"]
REAL_SESSION = ort.InferenceSession
PROFILE = "1x3x48x64;4x3x48x64;8x3x48x64"


class FakeMachine:
    """Replaces ort.InferenceSession: providers in `starts` start, the others fail over down the chain as ORT does."""

    def __init__(self, starts: set[str]) -> None:
        self.starts = starts
        self.calls: list[list] = []

    def __call__(self, path, options=None, providers=None):
        machine = self

        class Session:
            def __init__(self) -> None:
                self.real = REAL_SESSION(path, options, providers=[CPU])
                names = [entry[0] if isinstance(entry, tuple) else entry for entry in providers]
                self.active = [name for name in names if name in machine.starts]

            def get_providers(self) -> list[str]:
                return self.active

            def __getattr__(self, name):
                return getattr(self.real, name)

        self.calls.append(list(providers))
        return Session()


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A GPU build (TensorRT, CUDA, CPU listed) on a machine with an NVIDIA driver where, by default, only the CPU
    starts, without OpenVINO (gantx.session's own tests cover it); a fresh process's notices."""
    monkeypatch.setenv("GANTX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gantx.openvino_engine, "installed", lambda: False)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, CUDA, CPU])
    monkeypatch.setattr(gantx.providers, "nvidia_driver_loaded", lambda: True)
    monkeypatch.setattr(gantx.providers, "_notified", set())
    fake = FakeMachine({CPU})
    monkeypatch.setattr(ort, "InferenceSession", fake)
    providers_that_start.cache_clear()
    yield fake
    providers_that_start.cache_clear()


@pytest.fixture
def profiled_model(tmp_path) -> Path:
    return fixed_negate_model(tmp_path / "static.onnx", 48, 64, **{"gantx.profile": PROFILE})


def test_plan_follows_what_the_build_lists():
    assert plan_providers("auto", [CPU]) == [CPU]
    assert plan_providers("auto", [TRT, CUDA, CPU]) == [TRT, CUDA, CPU]
    assert plan_providers("cuda", [TRT, CUDA, CPU]) == [CUDA, CPU]
    with pytest.raises(
        ProviderError,
        match=r"not in this onnxruntime build.*pip uninstall -y onnxruntime && pip install \"gantx\[gpu\]\"",
    ):
        plan_providers("tensorrt", [CPU])
    with pytest.raises(ProviderError, match="^--provider 'gpu': choose one of auto, cpu, cuda, tensorrt, openvino$"):
        plan_providers("gpu", [CPU])


def test_auto_falls_back_to_cpu_with_one_notice_per_process(machine, negate_onnx, caplog):
    with caplog.at_level(logging.WARNING, logger="gantx"):
        translator = Translator(negate_onnx)
        Translator(negate_onnx)
        open_session("fashion-cgan", RunSettings())
    notices = [record.getMessage() for record in caplog.records]
    assert notices == [f"gantx: {TRT}, {CUDA} could not start here; running on {CPU}"]
    pixels = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    assert np.array_equal(translator.translate(pixels), 255 - pixels)


def test_auto_with_fp16_falling_back_to_the_cpu_names_fp16_as_not_honoured_once(machine, negate_onnx, caplog):
    with caplog.at_level(logging.WARNING, logger="gantx"):
        sessions = [open_session(negate_onnx, RunSettings(provider="auto", precision="fp16")) for _ in range(2)]
    assert [record.getMessage() for record in caplog.records] == [
        f"gantx: {TRT}, {CUDA} could not start here; running on {CPU}",
        f"gantx: --precision fp16 is not honoured by {CPU}; it runs fp32 ({INSTEAD})",
    ]
    assert [session.precision for session in sessions] == ["fp32", "fp32"]


def test_without_an_nvidia_driver_the_cpu_fallback_is_only_info(machine, negate_onnx, caplog, monkeypatch):
    monkeypatch.setattr(gantx.providers, "nvidia_driver_loaded", lambda: False)
    with caplog.at_level(logging.INFO, logger="gantx"):
        Translator(negate_onnx)
        Translator(negate_onnx)
        open_session(negate_onnx, RunSettings(cuda_graph=True))  # asked for explicitly: said once more, as a warning
        open_session(negate_onnx, RunSettings(cuda_graph=True))
    fallback = f"gantx: {TRT}, {CUDA} could not start here; running on {CPU}"
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.INFO, fallback),
        (logging.WARNING, f"{fallback} (CUDA graphs ignored)"),
    ]


def test_translate_on_a_machine_without_nvidia_driver_is_quiet_unless_fp16_is_not_honoured(
    machine, negate_onnx, mixed_folder, tmp_path, run_cli, monkeypatch, caplog
):
    monkeypatch.setattr(gantx.providers, "nvidia_driver_loaded", lambda: False)
    shown = []
    for args in ([], ["--precision", "fp16"]):
        caplog.clear()
        monkeypatch.setattr(gantx.providers, "_notified", set())  # each run its own process
        with caplog.at_level(logging.WARNING, logger="gantx"):  # what the CLI shows (its logging level)
            code, _, stderr = run_cli(
                "translate", mixed_folder / "cat.png", "-m", negate_onnx, "-o", tmp_path / str(len(args)), *args
            )
        assert code == 0, stderr
        shown.append([record.getMessage() for record in caplog.records])
    assert shown == [[], [f"gantx: --precision fp16 is not honoured by {CPU}; it runs fp32 ({INSTEAD})"]]


def test_the_driver_check_reads_linux_proc(monkeypatch, tmp_path):
    driver = tmp_path / "proc" / "driver" / "nvidia"
    monkeypatch.setattr(gantx.providers, "NVIDIA_DRIVER", driver)
    monkeypatch.setattr(gantx.providers.sys, "platform", "linux")
    assert gantx.providers.nvidia_driver_loaded() is False
    driver.mkdir(parents=True)
    assert gantx.providers.nvidia_driver_loaded() is True
    driver.rmdir()
    monkeypatch.setattr(gantx.providers.sys, "platform", "win32")
    assert gantx.providers.nvidia_driver_loaded() is True  # no way to tell there: keep warning


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_explicit_provider_that_cannot_start_is_an_error(machine, negate_onnx, provider):
    with pytest.raises(ProviderError, match=f"provider '{provider}' is installed but could not start here"):
        open_session(negate_onnx, RunSettings(provider=provider))


def test_info_separates_listed_providers_from_those_that_start(machine, negate_onnx, run_cli):
    machine.starts = {CUDA, CPU}
    code, stdout, _ = run_cli("info", negate_onnx)
    assert code == 0
    assert f"providers in this onnxruntime build: {TRT}, {CUDA}, {CPU}" in stdout
    assert f"providers that start on this machine: {CUDA}, {CPU}" in stdout
    probes = [call for call in machine.calls if all(isinstance(entry, str) for entry in call)]
    assert probes[-3:] == [[TRT], [CUDA], [CPU]]  # each provider alone, on the bundled one-node graph
    assert 'OpenVINO: not installed (pip install "gantx[cpu]")' in stdout
    assert "runs on: CUDAExecutionProvider fp32 (--provider auto --precision auto)" in stdout


@pytest.mark.parametrize(
    "listed, expected",
    [
        (
            [TRT, CUDA, CPU],
            "provider 'cuda' is installed but could not start here (missing CUDA/cuDNN/TensorRT libraries or no GPU)",
        ),
        (
            [CPU],
            f"provider 'cuda' is not in this onnxruntime build (it lists {CPU}); "
            'pip uninstall -y onnxruntime && pip install "gantx[gpu]"',
        ),
    ],
)
def test_cli_explicit_gpu_provider_that_cannot_run_exits_2_with_one_line(
    machine, monkeypatch, listed, expected, negate_onnx, tmp_path, run_cli, mixed_folder
):
    # The build's list and what starts are both mocked (only the CPU starts), so a GPU machine gives the same answer.
    monkeypatch.setattr(ort, "get_available_providers", lambda: listed)
    code, _, stderr = run_cli(
        "translate", mixed_folder / "cat.png", "-m", negate_onnx, "-o", tmp_path / "o", "--provider", "cuda"
    )
    assert (code, stderr) == (2, f"gantx: error: {expected}\n")
    assert not (tmp_path / "o").exists()


def test_cuda_graphs_refuse_a_cpu_only_chain(negate_onnx):
    with pytest.raises(ProviderError, match="CUDA graphs need the CUDA or TensorRT provider"):
        open_session(negate_onnx, RunSettings(provider="cpu", cuda_graph=True))


def test_tensorrt_gets_fp16_caches_in_the_user_folder_and_the_profile_from_metadata(machine, profiled_model, tmp_path):
    machine.starts = {TRT, CUDA, CPU}
    session = open_session(profiled_model, RunSettings(provider="tensorrt", precision="fp16"))
    assert (session.get_providers()[0], session.precision) == (TRT, "fp16")
    providers = machine.calls[-1]
    assert [name for name, _ in providers] == [TRT, CUDA, CPU]
    trt_options = providers[0][1]
    engines = str(tmp_path / "cache" / "tensorrt")
    assert trt_options == {
        "trt_fp16_enable": "1",
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": engines,
        "trt_timing_cache_enable": "1",
        "trt_timing_cache_path": engines,
        "trt_profile_min_shapes": "input:1x3x48x64",
        "trt_profile_opt_shapes": "input:4x3x48x64",
        "trt_profile_max_shapes": "input:8x3x48x64",
    }
    assert Path(engines).is_dir()
    assert providers[1] == (CUDA, {}) and providers[2] == (CPU, {})


def test_tensorrt_without_profile_runs_fp32_when_asked_and_fp16_for_auto(machine, negate_onnx):
    machine.starts = {TRT, CUDA, CPU}
    exact = open_session(negate_onnx, RunSettings(provider="auto", precision="fp32"))
    trt_options = dict(machine.calls[-1][0][1])
    assert (trt_options["trt_fp16_enable"], exact.precision) == ("0", "fp32")
    assert "trt_bf16_enable" not in trt_options
    assert not any(key.startswith("trt_profile") for key in trt_options)
    assert open_session(negate_onnx, RunSettings()).precision == "fp16"
    assert dict(machine.calls[-1][0][1])["trt_fp16_enable"] == "1"
    assert open_session(negate_onnx, RunSettings(precision="bf16")).precision == "bf16"  # onnxruntime >= 1.23
    assert {key: dict(machine.calls[-1][0][1])[key] for key in ("trt_fp16_enable", "trt_bf16_enable")} == {
        "trt_fp16_enable": "0",
        "trt_bf16_enable": "1",
    }


def test_a_malformed_profile_is_a_model_error_naming_the_key(tmp_path):
    with pytest.raises(ModelError, match="gantx.profile.*NxCxHxW"):
        parse_profile("1x3x48x64;8x3x48")
    with pytest.raises(ModelError, match="bad.onnx: metadata 'gantx.profile'"):
        Translator(fixed_negate_model(tmp_path / "bad.onnx", 48, 64, **{"gantx.profile": "1x3x48x64"}), provider="cpu")


def test_cuda_graphs_reach_both_gpu_providers(monkeypatch, tmp_path):
    monkeypatch.setenv("GANTX_CACHE_DIR", str(tmp_path))
    graphs = RunSettings(cuda_graph=True)
    assert provider_options(CUDA, None, graphs) == {"enable_cuda_graph": "1"}
    assert provider_options(CUDA, None, RunSettings()) == {}
    assert provider_options(TRT, None, graphs)["trt_cuda_graph_enable"] == "1"
    assert provider_options(CPU, None, RunSettings(precision="fp16", cuda_graph=True)) == {}


def test_gpu_sessions_run_through_io_binding_cpu_sessions_do_not(machine, negate_onnx):
    machine.starts = {CUDA, CPU}
    settings = RunSettings(provider="cuda", cuda_graph=True)
    runner = batch_runner(open_session(negate_onnx, settings), settings)
    assert isinstance(runner, BoundRunner) and runner.device == "cuda" and runner.graphs
    assert not isinstance(batch_runner(REAL_SESSION(str(negate_onnx), providers=[CPU]), RunSettings()), BoundRunner)


def test_io_binding_can_be_turned_off_and_cuda_graphs_then_refused(machine, negate_onnx, run_cli, tmp_path):
    machine.starts = {CUDA, CPU}
    plain = RunSettings(provider="cuda", io_binding=False)
    runner = batch_runner(open_session(negate_onnx, plain), plain)
    assert not isinstance(runner, BoundRunner)
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(runner(batch), -batch)  # the negate model, through session.run
    code, _, stderr = run_cli(
        "translate", negate_onnx, "-m", negate_onnx, "-o", tmp_path / "o", "--cuda-graph", "--no-io-binding"
    )
    assert (code, stderr) == (
        2,
        "gantx: error: --cuda-graph replays graphs over bound buffers: it needs --io-binding\n",
    )


def test_io_binding_runner_matches_plain_runs_and_keeps_one_graph_per_shape(tmp_path):
    # The same code that drives CUDA, on CPU buffers: results must equal session.run exactly.
    model = negate_model(tmp_path / "negate.onnx")
    session = REAL_SESSION(str(model), providers=[CPU])
    runner = BoundRunner(session, "cpu", graphs=True)
    rng = np.random.default_rng(0)
    batches = [
        rng.uniform(-1, 1, shape).astype(np.float32)
        for shape in [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8), (2, 3, 8, 8)]
    ]
    kept = [batch.copy() for batch in batches]
    results = [runner(batch) for batch in batches]
    for batch, result in zip(kept, results):
        assert np.array_equal(result, -batch)  # earlier results are not overwritten by later batches
    for batch, original in zip(batches, kept):
        assert np.array_equal(batch, original)  # the caller's arrays are never written to
    graph_ids = {shape: slot.run_options.get_run_config_entry("gpu_graph_id") for shape, slot in runner.slots.items()}
    assert graph_ids == {(2, 3, 8, 8): "1", (1, 3, 8, 8): "2"}
    assert BoundRunner(session, "cpu")._bind(kept[0]).run_options.get_run_config_entry("gpu_graph_id") == "-1"


def test_opening_a_model_writes_nothing_beside_it_or_in_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("GANTX_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "models").mkdir()
    model = negate_model(tmp_path / "models" / "negate.onnx")
    zoo = bundled_models()["fashion-sneaker2boot"].parent
    before = sorted(zoo.iterdir())
    Translator(model, provider="cpu").translate(np.zeros((4, 4, 3), np.uint8))
    Translator("fashion-sneaker2boot", provider="cpu").translate(np.zeros((28, 28), np.uint8))
    assert sorted(path.name for path in model.parent.iterdir()) == ["negate.onnx"]
    assert sorted(zoo.iterdir()) == before
    assert not (tmp_path / "cache").exists()


def test_the_cache_folder_keeps_its_most_recently_used_files_under_the_limit(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANTX_CACHE_DIR", str(cache))
    (cache / "tensorrt").mkdir(parents=True)
    now = time.time()
    for age, name in enumerate(["newest.engine", "middle.engine", "oldest.engine"]):
        path = cache / "tensorrt" / name
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - 100 * age, now - 100 * age))
    assert prune_cache(2500) == [cache / "tensorrt" / "oldest.engine"]
    assert sorted(path.name for path in (cache / "tensorrt").iterdir()) == ["middle.engine", "newest.engine"]
    monkeypatch.setenv("GANTX_CACHE_MAX_MB", "0.0015")  # a TensorRT session prunes before it starts
    provider_options(TRT, None, RunSettings())
    assert sorted(path.name for path in (cache / "tensorrt").iterdir()) == ["newest.engine"]


def test_cache_verb_shows_and_clears_the_folder(monkeypatch, tmp_path, run_cli):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANTX_CACHE_DIR", str(cache))
    (cache / "tensorrt").mkdir(parents=True)
    (cache / "tensorrt" / "a.engine").write_bytes(b"x" * 2_500_000)
    (cache / "tensorrt" / "a.timing").write_bytes(b"x" * 500_000)
    code, stdout, _ = run_cli("cache")
    assert code == 0 and re.search(r"tensorrt\s*│\s*2\s*│\s*3\.0", stdout), stdout
    code, stdout, stderr = run_cli("cache", "--clear")
    assert code == 0, stderr
    assert code == 0 and "cleared" in stdout and "2 files, 3.0 MB" in stdout and not cache.exists()
