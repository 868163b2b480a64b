"""int8: convolutions really run in ONNX Runtime's int8 kernels and the layer search keeps its PSNR target.

The work estimate is right too; speed is timed on each CPU engine installed, a
model slower in int8 everywhere is said so, and calibration prints nothing of its own.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from real_images import real_photo

torch = pytest.importorskip("torch")

from gantx import openvino_engine  # noqa: E402
from gantx.exporters import precision as precision_module  # noqa: E402
from gantx.exporters.graph import to_onnx  # noqa: E402
from gantx.exporters.precision import (  # noqa: E402
    EngineSpeed,
    convolution_work,
    engine_speeds,
    openvino_runner,
    outputs,
    psnr,
    quantise_int8,
)
from gantx.model import to_model_units  # noqa: E402
from gantx.trainers.networks import create_model  # noqa: E402

PHOTOS = (
    "chelsea.png",
    "coffee.png",
    "astronaut.png",
    "rocket.jpg",
    "china.jpg",
    "flower.jpg",
    "coins.png",
    "camera.png",
)


@pytest.fixture(scope="module")
def fp32_and_photos():
    torch.manual_seed(0)
    model = create_model("resnet", n_blocks=2, ngf=8, size=32).eval()
    graph = to_onnx(model, model.example_inputs(1), model.input_names, True)
    photos = [
        to_model_units(np.asarray(real_photo(name, 40).convert("RGB").resize((32, 32))))[None].copy() for name in PHOTOS
    ]
    return graph, photos


@pytest.fixture(scope="module")
def int8_result(fp32_and_photos):
    graph, photos = fp32_and_photos
    return quantise_int8(graph, photos, target=0.0)


def optimised_graph(model: onnx.ModelProto, tmp_path) -> onnx.ModelProto:
    """The graph ONNX Runtime actually runs on this CPU, as it saves it after its own fusions."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return onnx.load(tmp_path / "optimised.onnx")


def test_every_quantised_convolution_becomes_an_int8_kernel(fp32_and_photos, tmp_path):
    graph, photos = fp32_and_photos
    result = quantise_int8(graph, photos, target=0.0)  # any PSNR will do: no search
    convs = [node.name for node in graph.graph.node if node.op_type == "Conv"]
    transposed = [node.name for node in graph.graph.node if node.op_type == "ConvTranspose"]
    assert not result.searched and result.quantised == convs and result.kept_float == transposed
    ops = Counter(node.op_type for node in optimised_graph(result.model, tmp_path).graph.node)
    assert ops["QLinearConv"] == len(convs) and ops["Conv"] == 0, ops  # none left as DequantizeLinear -> float Conv
    assert ops["ConvTranspose"] == len(transposed)
    # TensorRT reads symmetric int8 only: every zero point is 0.
    initialisers = {tensor.name: tensor for tensor in result.model.graph.initializer}
    zero_points = [
        node.input[2]
        for node in result.model.graph.node
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2
    ]
    assert zero_points and all(not numpy_helper.to_array(initialisers[name]).any() for name in zero_points)
    assert (result.calibration_images, result.held_out_images) == (6, 2) and result.int8_work < 1


def test_layer_search_keeps_the_target_by_leaving_layers_float(fp32_and_photos):
    graph, photos = fp32_and_photos
    everything = quantise_int8(graph, photos, target=0.0)
    target = everything.psnr + 6  # out of reach with every convolution in int8
    messages = []
    result = quantise_int8(graph, photos, target=target, progress=messages.append)
    assert result.searched and set(result.kept_float) > set(everything.kept_float)
    assert result.int8_work < everything.int8_work
    search_images = photos[:2]  # the search scores on calibration images; the report uses held-out ones
    assert psnr(outputs(graph, search_images), outputs(result.model, search_images)) >= target
    assert any("measuring layer 1/" in message for message in messages)


def test_convolution_work_counts_multiply_adds(fp32_and_photos):
    graph, _ = fp32_and_photos
    work = convolution_work(graph, (1, 3, 32, 32))
    # ngf 8: stem 7x7 3->8 at 32x32; first downsampling 3x3 8->16 at 16x16; head 7x7 8->3 at 32x32.
    convs = [name for name in work if name.endswith("Conv")]
    assert work[convs[0]] == 8 * 3 * 49 * 32 * 32
    assert work[convs[1]] == 16 * 8 * 9 * 16 * 16
    assert work[convs[-1]] == 3 * 8 * 49 * 32 * 32
    transposed = [name for name in work if name.endswith("ConvTranspose")]
    assert work[transposed[0]] == 32 * 16 * 9 * 8 * 8  # Cin x Cout x k x k per input pixel (8x8 in)


def test_an_unknown_calibration_method_is_one_line(fp32_and_photos):
    from gantx.errors import GantxError

    graph, photos = fp32_and_photos
    with pytest.raises(GantxError, match="--calibration-method 'mean'"):
        quantise_int8(graph, photos, method="mean")


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_calibration_takes_photos_of_any_aspect(tmp_path, method):
    """Photos prepared at the trained shorter side keep their aspect; the histogram calibrators need one shape."""
    from gantx.exporters.precision import load_images
    from gantx.model import ModelInfo

    for index, name in enumerate(PHOTOS[:5]):
        photo = real_photo(name, 120)
        photo.rotate(90 * (index % 2), expand=True).save(tmp_path / f"{index}.png")  # landscape and portrait
    contract = ModelInfo(
        kind="image2image", arch="resnet", size=(32, 32), channels_in=3, channels_out=3, size_multiple=4
    )
    images = load_images(tmp_path, contract)
    assert {image.shape for image in images} == {(1, 3, 32, 32)}  # shorter side 32 everywhere, the common centre kept
    torch.manual_seed(0)
    model = create_model("resnet", n_blocks=2, ngf=8, size=32).eval()
    graph = to_onnx(model, model.example_inputs(1), model.input_names, True)
    result = quantise_int8(graph, images, target=0.0, method=method)
    assert result.method == method and result.quantised and result.psnr > 15


def test_calibration_prints_nothing_of_its_own(fp32_and_photos, capfd):
    """onnxruntime.quantization prints its calibrators' settings (`Percentile : (0.001,99.999)`); gantx does not."""
    graph, photos = fp32_and_photos
    quantise_int8(graph, photos, target=0.0, method="percentile")
    assert capfd.readouterr() == ("", "")


def test_int8_speed_is_timed_on_openvino_too_when_it_is_installed(fp32_and_photos, tmp_path):
    pytest.importorskip("openvino")
    graph, photos = fp32_and_photos
    int8 = quantise_int8(graph, photos, target=0.0).model
    speeds = engine_speeds(graph, int8, photos[0])
    assert [speed.engine for speed in speeds] == ["ONNX Runtime", "OpenVINO"]
    assert all(speed.fp32_ms > 0 and speed.int8_ms > 0 for speed in speeds)
    # What OpenVINO times is the model itself: its output is ONNX Runtime's to its precision (measured here: fp32 at
    # bf16 50 dB, int8 with its own rounding 33 dB), where the output of another photo lies 14 dB away.
    for name, model, least in (("fp32", graph, 40), ("int8", int8, 28)):
        onnx.save(model, tmp_path / f"{name}.onnx")
        computed = openvino_runner(tmp_path / f"{name}.onnx")(photos[0])
        assert psnr(outputs(model, photos[:1]), [np.asarray(computed[0])]) > least, name


def test_without_openvino_int8_speed_is_timed_on_onnx_runtime_alone(fp32_and_photos, monkeypatch):
    graph, photos = fp32_and_photos
    monkeypatch.setattr(openvino_engine, "installed", lambda: False)
    [speed] = engine_speeds(graph, graph, photos[0])
    assert speed.engine == "ONNX Runtime" and speed.fp32_ms > 0 and speed.int8_ms > 0


def test_an_openvino_that_cannot_compile_here_is_one_line_and_the_export_stands(fp32_and_photos, monkeypatch):
    graph, photos = fp32_and_photos

    def broken(path):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:112:\nno CPU plugin here")

    monkeypatch.setattr(openvino_engine, "installed", lambda: True)
    monkeypatch.setattr(precision_module, "openvino_runner", broken)
    said: list[str] = []
    [speed] = engine_speeds(graph, graph, photos[0], said.append)
    assert speed.engine == "ONNX Runtime"
    assert said == ["int8: OpenVINO not timed (Exception from src/inference/src/cpp/core.cpp:112:)"]


@pytest.mark.parametrize(
    "speeds, warning",
    [
        (
            [EngineSpeed("ONNX Runtime", 10.0, 12.2), EngineSpeed("OpenVINO", 9.0, 10.0)],
            "int8 runs at 0.82x fp32 on ONNX Runtime and 0.90x on OpenVINO here: "
            "the fp32 export (without --int8) is faster on this machine",
        ),
        (
            [EngineSpeed("ONNX Runtime", 10.0, 20.0)],
            "int8 runs at 0.50x fp32 on ONNX Runtime here: the fp32 export (without --int8) is faster on this machine",
        ),
        ([EngineSpeed("ONNX Runtime", 10.0, 12.2), EngineSpeed("OpenVINO", 9.0, 4.0)], None),  # faster on OpenVINO
        ([EngineSpeed("ONNX Runtime", 10.0, 5.0), EngineSpeed("OpenVINO", 9.0, 10.0)], None),
        ([EngineSpeed("ONNX Runtime", 10.0, 10.0)], None),  # as fast: not slower
    ],
)
def test_int8_slower_on_every_engine_is_said_naming_the_faster_choice(int8_result, speeds, warning):
    result = dataclasses.replace(int8_result, speeds=speeds)
    assert result.slower_warning == warning
