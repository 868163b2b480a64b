"""int8 layer choice: what stays float, and the search that keeps a PSNR target."""

from __future__ import annotations

import numpy as np
import pytest

from real_images import real_photo

torch = pytest.importorskip("torch")

from gantx.exporters.graph import to_onnx  # noqa: E402
from gantx.exporters.precision import outputs, psnr, quantize_int8  # noqa: E402
from gantx.trainers.networks import create_model  # noqa: E402

PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "china.jpg", "flower.jpg", "coins.png", "camera.png")


@pytest.fixture(scope="module")
def fp32_and_photos():
    torch.manual_seed(0)
    model = create_model("resnet", n_blocks=2, ngf=8, size=32).eval()
    graph = to_onnx(model, model.example_inputs(1), model.input_names, True)
    photos = []
    for name in PHOTOS:
        pixels = np.asarray(real_photo(name, 40).convert("RGB").resize((32, 32)), dtype=np.float32)
        photos.append((pixels / 127.5 - 1).transpose(2, 0, 1)[None])
    return graph, photos


def test_stem_head_and_norm_inputs_stay_float(fp32_and_photos):
    graph, photos = fp32_and_photos
    result = quantize_int8(graph, photos, target=0.0)  # any PSNR will do: no search
    convs = [node.name for node in graph.graph.node if node.op_type in ("Conv", "ConvTranspose")]
    assert not result.searched and result.kept_float == [convs[0], convs[-1]]
    nodes = {node.name: node for node in result.model.graph.node}
    producers = {output: node for node in result.model.graph.node for output in node.output}
    for name in convs:
        activation = producers.get(nodes[name].input[0])
        assert (activation is not None and activation.op_type == "DequantizeLinear") == (name in result.quantised)
    # No convolution output is quantised, so instance norm reads float values.
    for node in result.model.graph.node:
        if node.op_type == "InstanceNormalization":
            assert producers[node.input[0]].op_type in ("Conv", "ConvTranspose")
    assert (result.calibration_images, result.held_out_images) == (6, 2)


def test_layer_search_keeps_the_target_by_leaving_layers_float(fp32_and_photos):
    graph, photos = fp32_and_photos
    everything = quantize_int8(graph, photos, target=0.0)
    target = everything.psnr + 6  # out of reach with every layer in int8
    result = quantize_int8(graph, photos, target=target)
    assert result.searched and len(result.kept_float) > 2
    search_images = photos[:2]  # the search scores on calibration images; the report uses held-out ones
    assert psnr(outputs(graph, search_images), outputs(result.model, search_images)) >= target
