"""PyTorch module -> clean ONNX graph, and the checks every exported graph must pass.

The graph is traced with PyTorch's TorchScript-based exporter and then
simplified by onnxslim (constant folding, dead-code and shape-arithmetic
removal). The newer torch.export-based exporter gives the same operators after
slimming but took 8-13 s per small generator here against about 1 s, and the
test suite exports every architecture; everything after `to_onnx` is
indifferent to which exporter produced the graph.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import onnxslim
import torch
from torch import nn

from gantx.errors import GantxError

OPSET = 17  # the newest opset TensorRT 8.5 reads; the contract asks for 17 or newer
# Ops that only compute shapes: a clean graph has none left once shapes are folded into constants.
SHAPE_OPS = frozenset({"Shape", "Size", "ConstantOfShape", "Expand", "Range", "NonZero"})


def to_onnx(
    module: nn.Module, inputs: tuple[torch.Tensor, ...], input_names: tuple[str, ...], dynamic_hw: bool
) -> onnx.ModelProto:
    """Export `module` in eval mode with a dynamic batch (and dynamic H, W for image inputs when `dynamic_hw`)."""
    module.eval()
    with torch.no_grad():
        output = module(*inputs)
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in input_names}
    output_axes = {0: "batch"}
    if dynamic_hw:
        axes[input_names[0]].update({2: "height", 3: "width"})
        same_size = output.shape[2:] == inputs[0].shape[2:]
        output_axes.update({2: "height", 3: "width"} if same_size else {2: "out_height", 3: "out_width"})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation and tracer notices about the legacy exporter
        torch.onnx.export(
            module,
            inputs,
            buffer,
            input_names=list(input_names),
            output_names=["output"],
            dynamic_axes={**axes, "output": output_axes},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnxslim.slim(onnx.load_from_string(buffer.getvalue()))


def check_graph(model: onnx.ModelProto) -> None:
    """Full onnx.checker check, every tensor's shape inferable, no shape arithmetic left; GantxError otherwise."""
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise GantxError(f"exported graph fails onnx.checker: {str(error).splitlines()[0]}") from None
    leftovers = sorted({node.op_type for node in model.graph.node if node.op_type in SHAPE_OPS})
    if leftovers:
        raise GantxError(f"exported graph still computes shapes at run time ({', '.join(leftovers)})")
    typed = {info.name for info in inferred.graph.value_info if info.type.tensor_type.HasField("shape")}
    typed |= {info.name for info in [*inferred.graph.input, *inferred.graph.output, *inferred.graph.initializer]}
    unknown = [name for node in model.graph.node for name in node.output if name and name not in typed]
    if unknown:
        raise GantxError(f"exported graph: shape inference cannot tell the shape of {', '.join(unknown[:5])}")


def set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata)


def cpu_session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU, where the exporter checks its results."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def run(session: ort.InferenceSession, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    names = [node.name for node in session.get_inputs()]
    return session.run(["output"], {name: tensor.numpy() for name, tensor in zip(names, inputs)})[0]
