"""What "TensorRT-ready" means for a gantx model, checked on the ONNX graph itself.

TENSORRT_OPS lists the ONNX operators that TensorRT's ONNX parser supports,
taken from the support matrix of onnx-tensorrt for TensorRT 8.5
(github.com/onnx/onnx-tensorrt, docs/operators.md, the rows marked "Y";
TensorRT 8.5 reads opsets up to 17, later releases keep these operators). It
is deliberately a copy, not a download, so the check runs offline; the rows
gantx graphs actually use are Conv, ConvTranspose, InstanceNormalization,
BatchNormalization, Pad, Relu, LeakyRelu, Tanh, Add, Concat, Gemm, Gather,
Reshape, Flatten, Cast and QuantizeLinear/DequantizeLinear.

Beyond the op names the same matrix states restrictions that gantx graphs could
break, and `tensorrt_problems` checks those too: convolution weights and
instance-norm scale/bias are initialisers (directly or through a
DequantizeLinear of one), and Q/DQ zero points are 0 (symmetric int8).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

TENSORRT_OPS = frozenset(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu
    Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div
    Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm
    GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSigmoid HardSwish
    Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
    LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression
    NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike
    RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
    ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign
    Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice
    Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK
    Transpose Trilu Unsqueeze Upsample Where Xor
    """.split()
)
# Inputs that the matrix requires to be initialisers: op type -> input positions.
CONSTANT_INPUTS = {"Conv": (1,), "ConvTranspose": (1,), "InstanceNormalization": (1, 2)}
ZERO_POINT_INPUT = {"QuantizeLinear": 2, "DequantizeLinear": 2}


def tensorrt_problems(model: onnx.ModelProto) -> list[str]:
    """Everything in `model` that TensorRT's ONNX parser would refuse; empty when it is TensorRT-ready."""
    graph = model.graph
    initialisers = {tensor.name: tensor for tensor in graph.initializer}
    dequantised_constants = {
        node.output[0] for node in graph.node if node.op_type == "DequantizeLinear" and node.input[0] in initialisers
    }
    problems = []
    for node in graph.node:
        label = f"{node.op_type} node {node.name or node.output[0]!r}"
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{label} is in custom domain {node.domain!r}")
        elif node.op_type not in TENSORRT_OPS:
            problems.append(f"{label}: TensorRT's ONNX parser has no {node.op_type}")
        for position in CONSTANT_INPUTS.get(node.op_type, ()):
            name = node.input[position] if position < len(node.input) else ""
            if name and name not in initialisers and name not in dequantised_constants:
                problems.append(f"{label}: input {position} must be an initializer for TensorRT")
        position = ZERO_POINT_INPUT.get(node.op_type)
        if position is not None and position < len(node.input) and node.input[position]:
            zero_point = initialisers.get(node.input[position])
            if zero_point is None or np.any(numpy_helper.to_array(zero_point) != 0):
                problems.append(f"{label}: TensorRT needs a constant zero point of 0 (symmetric int8)")
    return problems
