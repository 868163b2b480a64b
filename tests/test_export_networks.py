"""Every registered network survives PyTorch -> ONNX -> ONNX Runtime, as a TensorRT-ready graph."""

from __future__ import annotations

import numpy as np
import pytest
from torch_helpers import registered_names, small_model

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper  # noqa: E402

from gantx.errors import GantxError  # noqa: E402
from gantx.exporters.graph import SHAPE_OPS, check_graph, cpu_session, run, to_onnx  # noqa: E402
from gantx.exporters.precision import to_fp16  # noqa: E402
from gantx.exporters.tensorrt import TENSORRT_OPS, tensorrt_problems  # noqa: E402


@pytest.mark.parametrize("name", registered_names())
def test_round_trip_at_two_batch_sizes_and_two_image_sizes(name):
    torch.manual_seed(0)
    model = small_model(name).eval()
    dynamic_hw = model.size_multiple > 0
    graph = to_onnx(model, model.example_inputs(2), model.input_names, dynamic_hw)
    check_graph(graph)
    assert tensorrt_problems(graph) == []
    assert not {node.op_type for node in graph.graph.node} & SHAPE_OPS
    assert graph.opset_import[0].version >= 17
    session = cpu_session(graph)
    multiple = model.size_multiple
    sizes = [model.size, (model.size[0] + multiple, model.size[1] + 2 * multiple)] if dynamic_hw else [None]
    for batch in (1, 3):
        for size in sizes:
            inputs = model.example_inputs(batch, size)
            with torch.no_grad():
                expected = model(*inputs).numpy()
            actual = run(session, inputs)
            assert actual.shape == expected.shape
            assert np.abs(actual - expected).max() <= 1e-4


def test_fp16_graph_keeps_float32_input_and_output():
    model = small_model("resnet").eval()
    graph = to_fp16(to_onnx(model, model.example_inputs(1), model.input_names, True))
    check_graph(graph)
    assert tensorrt_problems(graph) == []
    for value in [*graph.graph.input, *graph.graph.output]:
        assert value.type.tensor_type.elem_type == TensorProto.FLOAT
    float_weights = {
        init.data_type for init in graph.graph.initializer if init.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)
    }
    assert float_weights == {TensorProto.FLOAT16}
    casts = [node for node in graph.graph.node if node.op_type == "Cast"]
    assert len(casts) == 2  # one in, one out


def _graph(nodes, initializers=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], initializer=list(initializers)))


def test_tensorrt_rule_names_what_the_parser_would_refuse():
    weight = onnx.numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
    scale = onnx.numpy_helper.from_array(np.float32(0.1), "s")
    nonzero = onnx.numpy_helper.from_array(np.int8(3), "zp")
    problems = tensorrt_problems(
        _graph(
            [
                helper.make_node("Unique", ["x"], ["u"], name="unique"),
                helper.make_node("Conv", ["x", "x"], ["c"], name="conv_on_activation"),
                helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="asymmetric"),
                helper.make_node("MyOp", ["x"], ["y"], name="custom", domain="com.example"),
                helper.make_node("Conv", ["x", "w"], ["fine"], name="conv_on_weights"),
            ],
            [weight, scale, nonzero],
        )
    )
    assert len(problems) == 4
    assert "no Unique" in problems[0] and "'unique'" in problems[0]
    assert "input 1 must be an initializer" in problems[1]
    assert "zero point of 0" in problems[2]
    assert "custom domain" in problems[3]


def test_allow_list_covers_every_op_gantx_graphs_use():
    used = {"Conv", "ConvTranspose", "InstanceNormalization", "BatchNormalization", "Pad", "Relu", "LeakyRelu", "Tanh"}
    used |= {
        "Add",
        "Concat",
        "Gemm",
        "MatMul",
        "Gather",
        "Reshape",
        "Flatten",
        "Cast",
        "QuantizeLinear",
        "DequantizeLinear",
    }
    assert used <= TENSORRT_OPS
    assert not {"Unique", "QLinearConv", "ConvInteger", "MatMulInteger"} & TENSORRT_OPS  # rows marked N


def test_checker_refuses_leftover_shape_arithmetic():
    graph = _graph([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Identity", ["x"], ["y"])])
    with pytest.raises(GantxError, match="computes shapes at run time"):
        check_graph(graph)
