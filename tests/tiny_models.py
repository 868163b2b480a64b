"""Tiny ONNX models with outputs we can predict exactly, built with onnx.helper.

A "negate" model computes y = -x. Under the contract's pixel mapping that is
the photographic negative, so its correct output for a uint8 pixel p is
255 - p: an independent reference that needs no model at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import onnx
from onnx import TensorProto, helper


def contract_metadata(**overrides: str) -> dict[str, str]:
    meta = {
        "gantx.format": "1",
        "gantx.kind": "image2image",
        "gantx.arch": "negate",
        "gantx.size": "64,64",
        "gantx.size_multiple": "1",
        "gantx.channels_in": "3",
        "gantx.channels_out": "3",
        "gantx.domains": "photo,negative",
        "gantx.direction": "A->B",
    }
    meta.update(overrides)
    return meta


def save_model(
    path: Path,
    nodes: list[onnx.NodeProto],
    input_shape: list,
    output_shape: list,
    metadata: Mapping[str, str] | None,
    initializers: list[onnx.TensorProto] = (),
) -> Path:
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, output_shape)],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if metadata is not None:
        helper.set_model_props(model, dict(metadata))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def negate_model(path: Path, channels: int = 3, **meta: str) -> Path:
    """y = -x at any size (size_multiple 1)."""
    metadata = contract_metadata(**{"gantx.channels_in": str(channels), "gantx.channels_out": str(channels), **meta})
    shape = ["N", channels, "H", "W"]
    return save_model(path, [helper.make_node("Neg", ["input"], ["output"])], shape, shape, metadata)


def blocky_negate_model(path: Path, multiple: int = 4) -> Path:
    """y = -x, but only for H and W divisible by `multiple`: SpaceToDepth fails otherwise."""
    nodes = [
        helper.make_node("SpaceToDepth", ["input"], ["packed"], blocksize=multiple),
        helper.make_node("DepthToSpace", ["packed"], ["unpacked"], blocksize=multiple, mode="DCR"),
        helper.make_node("Neg", ["unpacked"], ["output"]),
    ]
    shape = ["N", 3, "H", "W"]
    return save_model(path, nodes, shape, shape, contract_metadata(**{"gantx.size_multiple": str(multiple)}))


def fixed_negate_model(path: Path, height: int = 48, width: int = 64, **meta: str) -> Path:
    """y = -x that only takes exactly height x width (size_multiple 0)."""
    shape = ["N", 3, height, width]
    metadata = contract_metadata(**{"gantx.size": f"{height},{width}", "gantx.size_multiple": "0", **meta})
    return save_model(path, [helper.make_node("Neg", ["input"], ["output"])], shape, shape, metadata)


def grey_to_colour_model(path: Path) -> Path:
    """One channel in, three out: (x, -x, x), so the expected RGB is (p, 255 - p, p)."""
    nodes = [
        helper.make_node("Neg", ["input"], ["negated"]),
        helper.make_node("Concat", ["input", "negated", "input"], ["output"], axis=1),
    ]
    metadata = contract_metadata(**{"gantx.channels_in": "1", "gantx.channels_out": "3"})
    return save_model(path, nodes, ["N", 1, "H", "W"], ["N", 3, "H", "W"], metadata)


def bare_model(path: Path) -> Path:
    """A valid ONNX model with no gantx metadata at all."""
    shape = ["N", 3, "H", "W"]
    return save_model(path, [helper.make_node("Neg", ["input"], ["output"])], shape, shape, None)


def noise_model(path: Path, classes: tuple[str, ...] = ()) -> Path:
    """z [N, 4] -> a 2x2 grey image whose pixels are z (plus label / 10 when conditional).

    Its correct output is known without running it: pixel = round((clip(z + label/10) + 1) * 127.5).
    """
    nodes = [
        helper.make_node(
            "Constant", [], ["shape"], value=helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 1, 2, 2])
        ),
        helper.make_node("Reshape", ["z", "shape"], ["image" if classes else "output"]),
    ]
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4])]
    if classes:
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]))
        nodes += [
            helper.make_node("Cast", ["label"], ["label_float"], to=TensorProto.FLOAT),
            helper.make_node(
                "Constant", [], ["tenth"], value=helper.make_tensor("tenth", TensorProto.FLOAT, [], [0.1])
            ),
            helper.make_node("Mul", ["label_float", "tenth"], ["offset_flat"]),
            helper.make_node(
                "Constant", [], ["offset_shape"], value=helper.make_tensor("os", TensorProto.INT64, [4], [-1, 1, 1, 1])
            ),
            helper.make_node("Reshape", ["offset_flat", "offset_shape"], ["offset"]),
            helper.make_node("Add", ["image", "offset"], ["output"]),
        ]
    graph = helper.make_graph(
        nodes, "noise", inputs, [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, 2, 2])]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    meta = {
        "gantx.format": "1",
        "gantx.kind": "noise2image",
        "gantx.arch": "reshape",
        "gantx.size": "2,2",
        "gantx.channels_out": "1",
        "gantx.latent_dim": "4",
    }
    if classes:
        meta["gantx.classes"] = ",".join(classes)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def box_blur_model(path: Path, multiple: int, **meta: str) -> Path:
    """Grey 3x3 mean filter with zero padding, fully convolutional at multiples of `multiple`.

    Its output near the image's edge depends on the pixels the runtime pads
    with, so it shows which padding a model's metadata asked for.
    """
    weight = helper.make_tensor("weight", TensorProto.FLOAT, [1, 1, 3, 3], [1 / 9] * 9)
    nodes = [helper.make_node("Conv", ["input", "weight"], ["output"], pads=[1, 1, 1, 1])]
    shape = ["N", 1, "H", "W"]
    metadata = contract_metadata(
        **{
            "gantx.channels_in": "1",
            "gantx.channels_out": "1",
            "gantx.size": "32,32",
            "gantx.size_multiple": str(multiple),
            **meta,
        }
    )
    return save_model(path, nodes, shape, shape, metadata, [weight])


def blur_model(path: Path, radius: int = 2, multiple: int = 4) -> Path:
    """RGB (2r+1)^2 mean filter per channel, zero padded: its output depends only on pixels within `radius`."""
    side = 2 * radius + 1
    weight = helper.make_tensor("weight", TensorProto.FLOAT, [3, 1, side, side], [1 / side**2] * (3 * side * side))
    nodes = [helper.make_node("Conv", ["input", "weight"], ["output"], pads=[radius] * 4, group=3)]
    shape = ["N", 3, "H", "W"]
    return save_model(path, nodes, shape, shape, contract_metadata(**{"gantx.size_multiple": str(multiple)}), [weight])


def upscale_model(path: Path, multiple: int = 4) -> Path:
    """2x nearest-neighbour upscaling, negated: output pixel (y, x) is 255 - pixel (y // 2, x // 2) of the input."""
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    nodes = [
        helper.make_node(
            "Resize",
            ["input", "", "scales"],
            ["big"],
            mode="nearest",
            nearest_mode="floor",
            coordinate_transformation_mode="asymmetric",
        ),
        helper.make_node("Neg", ["big"], ["output"]),
    ]
    metadata = contract_metadata(**{"gantx.format": "2", "gantx.scale": "2", "gantx.size_multiple": str(multiple)})
    return save_model(path, nodes, ["N", 3, "H", "W"], ["N", 3, "H2", "W2"], metadata, [scales])
