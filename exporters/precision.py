"""Reduced-precision variants of an exported fp32 graph, and how much each one costs.

fp16: every weight and activation in float16, with casts inside the graph so
`input` and `output` stay float32 (the contract's promise to callers).

int8: static QDQ quantisation with onnxruntime.quantization, calibrated on the
user's images, in the symmetric form TensorRT requires (zero points of 0).
Quantising every node of an instance-normalised generator loses too much, so
only convolutions are quantised and only their inputs: the stem and the head
stay float, and so does every convolution output, which is what instance and
batch norm read. If the result is still under the target PSNR, a layer search
measures each convolution's damage on its own (with calibration ranges
computed once and cached) and quantises the least harmful ones whose summed
error fits the target. PSNR is always reported on held-out images that neither
calibration nor the search saw.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import torch
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.transformers.float16 import convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel
from torchmetrics.functional.image import peak_signal_noise_ratio

from gantx.errors import GantxError
from gantx.exporters.graph import cpu_session
from gantx.images import is_image_path
from gantx.model import ModelInfo
from gantx.translator import prepare_image

QUANTISED_OPS = ["Conv", "ConvTranspose"]
MAX_CALIBRATION = 32
MAX_HELD_OUT = 8
SEARCH_IMAGES = 2  # calibration images the layer search scores each layer on
DEFAULT_TARGET_PSNR = 30.0


def psnr(reference: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> float:
    """Mean PSNR over [-1, 1] images (batches of any shapes), in dB (the 0..255 scale gives the same number)."""
    per_image = [
        peak_signal_noise_ratio(
            torch.from_numpy(actual).double().clamp(-1, 1),
            torch.from_numpy(expected).double().clamp(-1, 1),
            data_range=2.0,
            reduction="none",
            dim=(1, 2, 3),
        )
        for expected, actual in zip(reference, test)
    ]
    return float(torch.cat(per_image).mean())


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    converted = OnnxModel(convert_float_to_float16(model, keep_io_types=True))
    converted.topological_sort()  # the converter appends its input casts after their consumers
    return converted.model


# -- images ---------------------------------------------------------------------------------------------


def load_images(folder: Path, contract: ModelInfo) -> list[np.ndarray]:
    """Every image in `folder` (sorted, recursive) as the runtime prepares it for `contract`: float32 1 x C x H x W.

    A fully convolutional model sees each image at the shorter side it was
    trained at (`gantx translate --size N`), keeping the aspect; a fixed-size one at its size.
    """
    if not folder.is_dir():
        raise GantxError(f"--calibration {folder}: not a folder")
    paths = sorted(path for path in folder.rglob("*") if is_image_path(path))[: MAX_CALIBRATION + MAX_HELD_OUT]
    size = min(contract.size) if contract.size_multiple else "auto"
    images = [prepare_image(path, contract, size).tensor[None] for path in paths]
    if len(images) < 2:
        raise GantxError(f"--calibration {folder}: needs at least 2 images (some calibrate, some are held out), found {len(images)}")
    return images


def split_held_out(images: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every fourth image (at least one) is held out for measuring; the rest calibrate."""
    held = images[3::4] or images[-1:]
    held_ids = {id(image) for image in held}
    calibration = [image for image in images if id(image) not in held_ids]
    return calibration[:MAX_CALIBRATION], held[:MAX_HELD_OUT]


class ImageReader(CalibrationDataReader):
    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self.images, None)
        return None if image is None else {"input": image}


# -- measuring ------------------------------------------------------------------------------------------


def outputs(model: onnx.ModelProto, images: list[np.ndarray]) -> list[np.ndarray]:
    session = cpu_session(model)
    return [session.run(["output"], {"input": image})[0] for image in images]


def latency_ms(model: onnx.ModelProto, image: np.ndarray, repeats: int = 5) -> float:
    """Median ONNX Runtime CPU latency of one image, after a warm-up run."""
    session = cpu_session(model)
    session.run(["output"], {"input": image})
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(["output"], {"input": image})
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


# -- int8 -----------------------------------------------------------------------------------------------


@dataclass
class Int8Result:
    model: onnx.ModelProto
    psnr: float  # against fp32, on held-out images
    target_psnr: float
    fp32_ms: float
    int8_ms: float
    quantised: list[str]  # convolutions running in int8
    kept_float: list[str]  # convolutions left in float
    calibration_images: int
    held_out_images: int
    searched: bool

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms


def _calibration_options(count: int) -> dict[str, object]:
    # Flush collected activations every few images to bound memory. ORT raises "No data is
    # collected" when the count is an exact multiple of the flush size, so pick one that is not.
    flush = next(size for size in (4, 5, 6, 7) if count % size)
    # TensorRT reads only symmetric int8 (zero point 0), for weights and activations alike.
    return {"ActivationSymmetric": True, "WeightSymmetric": True, "CalibMaxIntermediateOutputs": flush}


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime.quantization advises pre-processing on the root logger; gantx graphs are already slimmed."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _Quantiser:
    """quantize_static with calibration ranges computed on the first call and cached for the rest."""

    def __init__(self, fp32: onnx.ModelProto, calibration: list[np.ndarray], workdir: Path) -> None:
        self.source = workdir / "fp32.onnx"
        onnx.save(fp32, self.source)
        self.cache = workdir / "calibration.json"
        self.calibration = calibration
        self.output = workdir / "int8.onnx"
        convs = [node.name for node in fp32.graph.node if node.op_type in QUANTISED_OPS]
        self.stem_and_head = [convs[0], convs[-1]]
        self.candidates = convs[1:-1]

    def __call__(self, quantised: list[str]) -> onnx.ModelProto:
        with _quiet_root_logger():
            self._quantise(quantised)
        return onnx.load(self.output)

    def _quantise(self, quantised: list[str]) -> None:
        quantize_static(
            self.source,
            self.output,
            ImageReader(self.calibration),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=QUANTISED_OPS,
            nodes_to_exclude=[name for name in [*self.stem_and_head, *self.candidates] if name not in quantised],
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={**_calibration_options(len(self.calibration)), "OpTypesToExcludeOutputQuantization": QUANTISED_OPS},
            calibration_cache_path=self.cache,
        )


def _search(quantise: _Quantiser, fp32: onnx.ModelProto, images: list[np.ndarray], target: float) -> list[str]:
    """The largest set of convolutions whose measured one-at-a-time errors add up to within `target`.

    Quantisation noise of separate layers adds up roughly in power, so each
    layer's error alone (MSE against fp32) is a budget item; the cheapest are
    taken first, then the set is checked as a whole and trimmed if needed.
    """
    reference = outputs(fp32, images)
    budget = 4.0 / 10 ** (target / 10)  # MSE on [-1, 1] at the target PSNR
    damage = {name: _mse(outputs(quantise([name]), images), reference) for name in quantise.candidates}
    chosen, spent = [], 0.0
    for name in sorted(damage, key=damage.get):
        if spent + damage[name] <= budget:
            chosen.append(name)
            spent += damage[name]
    while chosen and psnr(reference, outputs(quantise(chosen), images)) < target:
        chosen.remove(max(chosen, key=damage.get))
    return chosen


def _mse(test: list[np.ndarray], reference: list[np.ndarray]) -> float:
    return float(np.mean([np.mean((actual - expected) ** 2) for actual, expected in zip(test, reference)]))


def quantize_int8(fp32: onnx.ModelProto, images: list[np.ndarray], target: float = DEFAULT_TARGET_PSNR) -> Int8Result:
    """QDQ int8 model of `fp32` calibrated on `images`; see the module docstring for what is quantised."""
    calibration, held_out = split_held_out(images)
    with tempfile.TemporaryDirectory(prefix="gantx-int8-") as workdir:
        quantise = _Quantiser(fp32, calibration, Path(workdir))
        if not quantise.candidates:
            raise GantxError("--int8: the model has no convolutions besides its stem and head to quantise")
        search_images = calibration[:SEARCH_IMAGES]
        chosen = list(quantise.candidates)
        searched = psnr(outputs(fp32, search_images), outputs(quantise(chosen), search_images)) < target
        if searched:
            chosen = _search(quantise, fp32, search_images, target)
        model = quantise(chosen)
    return Int8Result(
        model=model,
        psnr=psnr(outputs(fp32, held_out), outputs(model, held_out)),
        target_psnr=target,
        fp32_ms=latency_ms(fp32, held_out[0]),
        int8_ms=latency_ms(model, held_out[0]),
        quantised=chosen,
        kept_float=[name for name in [*quantise.stem_and_head, *quantise.candidates] if name not in chosen],
        calibration_images=len(calibration),
        held_out_images=len(held_out),
        searched=searched,
    )
