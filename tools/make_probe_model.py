"""Write src/gantx/data/probe.onnx: a one-node graph (Relu on 1x1x2x2) that `gantx info` starts on each provider.

Trying a provider on this graph tells whether it can start on this machine
without building an engine for a real model. Run from the repository root:

    python tools/make_probe_model.py
"""

from pathlib import Path

import onnx
from onnx import TensorProto, helper

TARGET = Path(__file__).resolve().parent.parent / "src" / "gantx" / "data" / "probe.onnx"

if __name__ == "__main__":
    shape = [1, 1, 2, 2]
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="gantx")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, TARGET)
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes)")
