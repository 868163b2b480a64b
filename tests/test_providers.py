"""Provider choice and provider options, with ONNX Runtime's provider list mocked (no GPU here).

The fake session records what gantx asks ONNX Runtime for and runs the real
model on the CPU, so the options are checked exactly as they would reach a GPU
machine; the CPU paths (optimised-graph cache, IO binding) run for real.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from gantx import Translator
from gantx.errors import ModelError, ProviderError
from gantx.zoo import bundled_models
from gantx.session import (
    PROVIDERS,
    BoundRunner,
    batch_runner,
    open_session,
    optimized_places,
    plan_providers,
    provider_options,
)
from tiny_models import fixed_negate_model, negate_model

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
    """A GPU build (TensorRT, CUDA, CPU listed) where, by default, only the CPU starts."""
    monkeypatch.setenv("GANTX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, CUDA, CPU])
    fake = FakeMachine({CPU})
    monkeypatch.setattr(ort, "InferenceSession", fake)
    return fake


@pytest.fixture
def profiled_model(tmp_path) -> Path:
    return fixed_negate_model(tmp_path / "static.onnx", 48, 64, **{"gantx.profile": PROFILE})


def test_plan_follows_what_the_build_lists():
    assert plan_providers("auto", [CPU]) == [CPU]
    assert plan_providers("auto", [TRT, CUDA, CPU]) == [TRT, CUDA, CPU]
    assert plan_providers("cuda", [TRT, CUDA, CPU]) == [CUDA, CPU]
    with pytest.raises(ProviderError, match="not in this onnxruntime build.*install onnxruntime-gpu"):
        plan_providers("tensorrt", [CPU])
    with pytest.raises(ProviderError, match="unknown provider 'gpu'"):
        plan_providers("gpu", [CPU])


def test_auto_falls_back_to_cpu_with_exactly_one_notice(machine, negate_onnx, caplog):
    with caplog.at_level(logging.WARNING, logger="gantx"):
        translator = Translator(negate_onnx)
    notices = [record.getMessage() for record in caplog.records]
    assert notices == [f"gantx: {TRT}, {CUDA} could not start here; running on {CPU}"]
    pixels = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    assert np.array_equal(translator.translate(pixels), 255 - pixels)


def test_auto_with_fp16_says_fp16_was_ignored_in_the_same_notice(machine, negate_onnx, caplog):
    with caplog.at_level(logging.WARNING, logger="gantx"):
        open_session(negate_onnx, "auto", fp16=True)
    (notice,) = [record.getMessage() for record in caplog.records]
    assert notice.endswith(f"running on {CPU} (fp16 ignored)")


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_explicit_provider_that_cannot_start_is_an_error(machine, negate_onnx, provider):
    with pytest.raises(ProviderError, match=f"provider '{provider}' is installed but could not start here"):
        open_session(negate_onnx, provider)


def test_cli_explicit_gpu_provider_exits_2_with_one_line(negate_onnx, tmp_path, run_cli, mixed_folder):
    # Real ONNX Runtime: here CUDA is either not in the build or cannot start; both are exit 2.
    code, _, stderr = run_cli("translate", mixed_folder / "cat.png", "-m", negate_onnx, "-o", tmp_path / "o", "--provider", "cuda")
    assert code == 2
    assert stderr.startswith("gantx: error: provider 'cuda'") and stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_fp16_and_cuda_graphs_refuse_a_cpu_only_chain(negate_onnx):
    with pytest.raises(ProviderError, match="--fp16 builds TensorRT fp16 engines"):
        open_session(negate_onnx, "cpu", fp16=True)
    with pytest.raises(ProviderError, match="CUDA graphs need the CUDA or TensorRT provider"):
        open_session(negate_onnx, "cpu", cuda_graph=True)


def test_tensorrt_gets_fp16_caches_in_the_user_folder_and_the_profile_from_metadata(machine, profiled_model, tmp_path):
    machine.starts = {TRT, CUDA, CPU}
    session = open_session(profiled_model, "tensorrt", fp16=True)
    assert session.get_providers()[0] == TRT
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


def test_tensorrt_without_profile_or_fp16(machine, negate_onnx):
    machine.starts = {TRT, CUDA, CPU}
    open_session(negate_onnx, "auto")
    trt_options = dict(machine.calls[-1][0][1])
    assert trt_options["trt_fp16_enable"] == "0"
    assert not any(key.startswith("trt_profile") for key in trt_options)


def test_a_malformed_profile_is_a_model_error_naming_the_key(tmp_path):
    with pytest.raises(ModelError, match="gantx.profile.*NxCxHxW"):
        provider_options(TRT, {"gantx.profile": "1x3x48x64;8x3x48"}, False, False, "m.onnx")


def test_cuda_graphs_reach_both_gpu_providers(monkeypatch, tmp_path):
    monkeypatch.setenv("GANTX_CACHE_DIR", str(tmp_path))
    assert provider_options(CUDA, {}, False, True, "m") == {"enable_cuda_graph": "1"}
    assert provider_options(CUDA, {}, False, False, "m") == {}
    assert provider_options(TRT, {}, False, True, "m")["trt_cuda_graph_enable"] == "1"
    assert provider_options(CPU, {}, True, True, "m") == {}


def test_gpu_sessions_run_through_io_binding_cpu_sessions_do_not(machine, negate_onnx):
    machine.starts = {CUDA, CPU}
    runner = batch_runner(open_session(negate_onnx, "cuda", cuda_graph=True), cuda_graph=True)
    assert isinstance(runner, BoundRunner) and runner.device == "cuda" and runner.graphs
    assert not isinstance(batch_runner(REAL_SESSION(str(negate_onnx), providers=[CPU])), BoundRunner)


def test_io_binding_runner_matches_plain_runs_and_keeps_one_graph_per_shape(tmp_path):
    # The same code that drives CUDA, on CPU buffers: results must equal session.run exactly.
    model = negate_model(tmp_path / "negate.onnx")
    session = REAL_SESSION(str(model), providers=[CPU])
    runner = BoundRunner(session, "cpu", graphs=True)
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8), (2, 3, 8, 8)]]
    kept = [batch.copy() for batch in batches]
    results = [runner(batch) for batch in batches]
    for batch, result in zip(kept, results):
        assert np.array_equal(result, -batch)  # earlier results are not overwritten by later batches
    for batch, original in zip(batches, kept):
        assert np.array_equal(batch, original)  # the caller's arrays are never written to
    graph_ids = {shape: slot.run_options.get_run_config_entry("gpu_graph_id") for shape, slot in runner.slots.items()}
    assert graph_ids == {(2, 3, 8, 8): "1", (1, 3, 8, 8): "2"}
    assert BoundRunner(session, "cpu")._bind(kept[0]).run_options.get_run_config_entry("gpu_graph_id") == "-1"


def _opened_paths(monkeypatch) -> list[str]:
    opened: list[str] = []

    def spy(path, options=None, providers=None):
        opened.append(os.fspath(path))
        return REAL_SESSION(path, options, providers=providers)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    return opened


def test_cpu_sessions_cache_the_optimised_graph_beside_the_model(monkeypatch, tmp_path):
    monkeypatch.setenv("GANTX_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "models").mkdir()
    model = negate_model(tmp_path / "models" / "negate.onnx")
    opened = _opened_paths(monkeypatch)
    first = open_session(model, "cpu")
    beside, in_cache = optimized_places(model)
    assert beside.parent == model.parent and beside.is_file() and not in_cache.exists()
    assert [path.name for path in model.parent.iterdir() if path.suffix == ".part"] == []
    second = open_session(model, "cpu")
    assert opened == [str(model), str(beside)]
    assert second.get_modelmeta().custom_metadata_map == first.get_modelmeta().custom_metadata_map
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 5, 7)).astype(np.float32)
    assert np.array_equal(second.run(None, {"input": x})[0], -x)


def test_a_read_only_model_folder_caches_in_the_user_folder(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANTX_CACHE_DIR", str(cache))
    folder = tmp_path / "readonly"
    folder.mkdir()
    model = negate_model(folder / "negate.onnx")
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # root ignores chmod, so refuse the folder the way a read-only mount would
        if Path(dir) == folder:
            raise PermissionError(13, "Read-only file system", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    folder.chmod(0o555)
    try:
        session = open_session(model, "cpu")
        beside, in_cache = optimized_places(model)
        assert in_cache.is_file() and in_cache.parent == cache / "optimized"
        assert sorted(path.name for path in folder.iterdir()) == ["negate.onnx"]
        assert session.get_modelmeta().custom_metadata_map["gantx.arch"] == "negate"
        opened = _opened_paths(monkeypatch)
        open_session(model, "cpu")
        assert opened == [str(in_cache)]
    finally:
        folder.chmod(0o755)


def test_a_damaged_cache_is_replaced_and_a_changed_model_gets_a_new_one(monkeypatch, tmp_path):
    monkeypatch.setenv("GANTX_CACHE_DIR", str(tmp_path / "cache"))
    model = negate_model(tmp_path / "negate.onnx")
    beside = optimized_places(model)[0]
    beside.write_bytes(b"not an onnx graph")
    session = open_session(model, "cpu")
    x = np.ones((1, 3, 4, 4), np.float32)
    assert np.array_equal(session.run(None, {"input": x})[0], -x)
    assert beside.stat().st_size > len(b"not an onnx graph")
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**9))
    assert optimized_places(model)[0] != beside


def test_zoo_models_cache_in_the_user_folder_never_inside_the_package(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANTX_CACHE_DIR", str(cache))
    name = "fashion-sneaker2boot"
    model = bundled_models()[name]
    before = sorted(path.name for path in model.parent.iterdir())
    open_session(name, "cpu")
    assert optimized_places(model) == [cache / "optimized" / optimized_places(model)[0].name]
    assert optimized_places(model)[0].is_file()
    assert sorted(path.name for path in model.parent.iterdir()) == before
    # A hidden graph left in the zoo folder (as gantx 0.1.0 wrote them) is not listed as a model.
    stray = model.parent / f".{model.stem}.0123456789abcdef.ort.onnx"
    stray.write_bytes(model.read_bytes())
    try:
        assert stray.stem not in bundled_models() and name in bundled_models()
    finally:
        stray.unlink()
