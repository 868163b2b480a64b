"""Reduced-precision variants of an exported fp32 graph, and how much each one costs.

fp16: every weight and activation in float16, with casts inside the graph so
`input` and `output` stay float32 (the contract's promise to callers).

int8: static QDQ quantisation with onnxruntime.quantization, calibrated on the
user's images (prepared as the runtime prepares them), in the symmetric form
TensorRT requires (zero points of 0, per-channel weights). A convolution is
quantised on its input *and* its output: only then does ONNX Runtime fuse it
into an int8 kernel (QLinearConv); with the output left in float it runs in
fp32 between extra quantise/dequantise steps, slower than fp32 alone. Which
convolutions stay float is measured, not assumed: when every one in int8
misses the target PSNR, a layer search scores each layer's damage alone (with
calibration ranges computed once and cached) and keeps in float those that
cost most PSNR per multiply-add saved. PSNR is always reported on held-out
images that neither calibration nor the search saw.

int8 is not always faster: small or thin models can lose more to the
quantise/dequantise steps than the int8 kernels gain. Its speed is measured on
each CPU engine installed (ONNX Runtime always, OpenVINO when present), and
`Int8Result.slower_warning` says when fp32 is faster on all of them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.transformers.float16 import convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel
from torchmetrics.functional.image import peak_signal_noise_ratio

from gantx import openvino_engine
from gantx.errors import GantxError, InputError, first_line
from gantx.exporters.choices import CalibrationName
from gantx.exporters.graph import cpu_session
from gantx.images import is_image_path
from gantx.inputs import FileJob
from gantx.model import ModelInfo
from gantx.pipeline import file_failure
from gantx.settings import one_of
from gantx.timing import time_in_turn
from gantx.translator import prepare_image

QUANTISED_OPS = ["Conv"]  # ONNX Runtime's CPU provider has no int8 ConvTranspose kernel: quantising one only costs PSNR
CONVOLUTIONS = ("Conv", "ConvTranspose")
CALIBRATION_METHODS: dict[CalibrationName, CalibrationMethod] = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
MAX_CALIBRATION = 32
MAX_HELD_OUT = 8
SEARCH_IMAGES = 2  # calibration images the layer search scores each layer on
DEFAULT_TARGET_PSNR = 35.0
# Measured on a ResNet-9 trained on real photos (benchmarks/results/precision.md): at the same 21 int8 convolutions,
# Percentile kept 45.7 dB on held-out photos, Entropy 42.9, MinMax 36.8; the speed is the same.
DEFAULT_CALIBRATION_METHOD: CalibrationName = "percentile"
Say = Callable[[str], None]  # where a long export reports its steps, one line each (the CLI prints them)


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


def load_images(folder: Path, contract: ModelInfo, progress: Say = lambda message: None) -> list[np.ndarray]:
    """The images in `folder` (sorted, recursive) as the runtime prepares them for `contract`: float32 1 x C x H x W.

    A fully convolutional model sees each image at the shorter side it was
    trained at (`gantx translate --size N`), keeping the aspect, then the
    centre that every image has (at least the trained size on both sides):
    ONNX Runtime's histogram calibrators (entropy, percentile) take only one
    shape. A fixed-size model sees each at its size. An image that cannot be
    read is skipped, named through `progress`; fewer than 2 readable ones is an error.
    """
    if not folder.is_dir():
        raise GantxError(f"--calibration {folder}: not a folder")
    size = min(contract.size) if contract.size_multiple else "auto"
    images: list[np.ndarray] = []
    for path in sorted(path for path in folder.rglob("*") if is_image_path(path)):
        if len(images) == MAX_CALIBRATION + MAX_HELD_OUT:
            break
        try:
            images.append(prepare_image(path, contract, size).tensor[None])
        except InputError as error:
            progress(f"calibration: skipped {file_failure(error, FileJob(path, path))}")
    if len(images) < 2:
        raise GantxError(
            f"--calibration {folder}: needs at least 2 readable images (some calibrate, some are held out), "
            f"found {len(images)}"
        )
    height, width = (min(image.shape[axis] for image in images) for axis in (2, 3))
    return [_centre(image, height, width) for image in images]


def _centre(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (image.shape[2] - height) // 2, (image.shape[3] - width) // 2
    return np.ascontiguousarray(image[:, :, top : top + height, left : left + width])


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


# -- int8 -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineSpeed:
    """CPU latency of one held-out image on one engine, fp32 and int8 timed in turn."""

    engine: str
    fp32_ms: float
    int8_ms: float

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms


@dataclass
class Int8Result:
    model: onnx.ModelProto
    psnr: float  # against fp32, on held-out images
    target_psnr: float
    method: str  # calibration method
    speeds: list[EngineSpeed]  # on each CPU engine installed, ONNX Runtime first
    quantised: list[str]  # convolutions running in int8 kernels (input and output quantised)
    kept_float: list[str]  # convolutions left in float (ConvTranspose always: ONNX Runtime has no int8 kernel for it)
    int8_work: float  # the share of the convolutions' multiply-adds that runs in int8
    calibration_images: int
    held_out_images: int
    searched: bool

    @property
    def fp32_ms(self) -> float:
        return self.speeds[0].fp32_ms

    @property
    def int8_ms(self) -> float:
        return self.speeds[0].int8_ms

    @property
    def speedup(self) -> float:
        """int8's speed over fp32 on ONNX Runtime's CPU provider."""
        return self.speeds[0].speedup

    @property
    def slower_warning(self) -> str | None:
        """One line when int8 runs slower than fp32 on every engine timed, naming the faster choice; else None."""
        if any(speed.speedup >= 1 for speed in self.speeds):
            return None
        first, *others = self.speeds
        rates = [f"{first.speedup:.2f}x fp32 on {first.engine}"] + [
            f"{speed.speedup:.2f}x on {speed.engine}" for speed in others
        ]
        return f"int8 runs at {' and '.join(rates)} here: the fp32 export (without --int8) is faster on this machine"


def _calibration_options(count: int) -> dict[str, object]:
    # Flush collected activations every few images to bound memory. ORT raises "No data is
    # collected" when the count is an exact multiple of the flush size, so pick one that is not.
    flush = next(size for size in (4, 5, 6, 7) if count % size)
    # TensorRT reads only symmetric int8 (zero point 0), for weights and activations alike.
    return {"ActivationSymmetric": True, "WeightSymmetric": True, "CalibMaxIntermediateOutputs": flush}


@contextlib.contextmanager
def _quiet_quantisation():
    """onnxruntime.quantization's own output stays out of the user's terminal.

    It advises pre-processing on the root logger (gantx graphs are already
    slimmed) and prints its calibrators' settings (`Percentile : (0.001,99.999)`)
    to stdout; gantx reports the calibration itself.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def convolution_work(model: onnx.ModelProto, input_shape: Sequence[int]) -> dict[str, int]:
    """Multiply-adds of each Conv and ConvTranspose at `input_shape`, from ONNX shape inference."""
    concrete = onnx.ModelProto()
    concrete.CopyFrom(model)
    dims = concrete.graph.input[0].type.tensor_type.shape.dim
    for dim, size in zip(dims, input_shape):
        dim.Clear()
        dim.dim_value = size
    inferred = onnx.shape_inference.infer_shapes(concrete)
    shapes = {
        info.name: [dim.dim_value for dim in info.type.tensor_type.shape.dim] for info in inferred.graph.value_info
    }
    shapes.update(
        {info.name: [dim.dim_value for dim in info.type.tensor_type.shape.dim] for info in inferred.graph.output}
    )
    weights = {tensor.name: list(tensor.dims) for tensor in model.graph.initializer}
    work = {}
    for node in model.graph.node:
        if node.op_type in CONVOLUTIONS:
            kernel = int(
                np.prod(weights[node.input[1]])
            )  # Conv: Cout x Cin/g x kh x kw; ConvTranspose: Cin x Cout/g x kh x kw
            spatial = shapes[node.output[0]][2:] if node.op_type == "Conv" else shapes[node.input[0]][2:]
            work[node.name] = kernel * int(np.prod(spatial))
    return work


class _Quantiser:
    """quantize_static of chosen convolutions, inputs and outputs quantised so ONNX Runtime runs them as QLinearConv.

    Calibration ranges are computed on the first call and cached for the rest.
    """

    def __init__(
        self,
        fp32: onnx.ModelProto,
        calibration: list[np.ndarray],
        method: str,
        workdir: Path,
        ops: Sequence[str] = QUANTISED_OPS,  # benchmarks/engines.py tries ConvTranspose in int8 for OpenVINO
    ) -> None:
        self.source = workdir / "fp32.onnx"
        onnx.save(fp32, self.source)
        self.cache = workdir / f"calibration-{method}.json"
        self.calibration, self.method = calibration, method
        self.output = workdir / "int8.onnx"
        self.work = convolution_work(fp32, calibration[0].shape)
        self.ops = list(ops)
        self.layers = [node.name for node in fp32.graph.node if node.op_type in self.ops]

    def __call__(self, quantised: Collection[str]) -> onnx.ModelProto:
        with _quiet_quantisation():
            quantize_static(
                self.source,
                self.output,
                ImageReader(self.calibration),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=self.ops,
                nodes_to_exclude=[name for name in self.layers if name not in quantised],
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CALIBRATION_METHODS[self.method],
                extra_options=_calibration_options(len(self.calibration)),
                calibration_cache_path=self.cache,
            )
        return onnx.load(self.output)

    def share(self, quantised: Collection[str]) -> float:
        return sum(self.work[name] for name in quantised) / sum(self.work.values())


def _search(
    quantise: _Quantiser, reference: list[np.ndarray], images: list[np.ndarray], target: float, progress: Say
) -> list[str]:
    """The convolutions to run in int8: as much of the work as fits within `target` dB of fp32.

    Each layer's damage alone (MSE against fp32) is measured once; quantisation
    noise of separate layers adds up roughly in power, so the layers with the
    least damage per multiply-add are taken first while the summed damage fits
    the target, then the set is checked as a whole and trimmed if needed.
    """
    budget = 4.0 / 10 ** (target / 10)  # MSE on [-1, 1] at the target PSNR
    damage = {}
    for index, name in enumerate(quantise.layers, 1):
        progress(f"int8: measuring layer {index}/{len(quantise.layers)} alone")
        damage[name] = _mse(outputs(quantise([name]), images), reference)
    cost = {name: damage[name] / quantise.work[name] for name in quantise.layers}
    chosen, spent = [], 0.0
    for name in sorted(quantise.layers, key=cost.get):
        if spent + damage[name] <= budget:
            chosen.append(name)
            spent += damage[name]
    while chosen:
        progress(f"int8: checking {len(chosen)} layers together")
        if psnr(reference, outputs(quantise(chosen), images)) >= target:
            break
        chosen.remove(max(chosen, key=cost.get))
    return chosen


def _mse(test: list[np.ndarray], reference: list[np.ndarray]) -> float:
    return float(np.mean([np.mean((actual - expected) ** 2) for actual, expected in zip(test, reference)]))


Runner = Callable[[np.ndarray], object]  # runs one model on one input


def alternate_latency_ms(runners: Sequence[Runner], image: np.ndarray, rounds: int = 7) -> list[float]:
    """Median latency of one image per runner, the runners timed in turn each round so load hits all alike."""
    times = time_in_turn([functools.partial(runner, image) for runner in runners], rounds, warmup=1)
    return [float(np.median(spent) * 1000) for spent in times]


def onnxruntime_runner(model: onnx.ModelProto) -> Runner:
    session = cpu_session(model)
    return lambda image: session.run(["output"], {"input": image})


def openvino_runner(path: Path) -> Runner:
    """The ONNX file at `path` compiled by OpenVINO for the CPU, at its default inference precision, for latency.

    That default is what OpenVINO chooses for the CPU (bf16 where it has
    native bf16), so fp32 and int8 files are compared as OpenVINO runs them.
    """
    compiled = openvino_engine.core().compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda image: request.infer({"input": image})


def engine_speeds(
    fp32: onnx.ModelProto, int8: onnx.ModelProto, image: np.ndarray, progress: Say = lambda message: None
) -> list[EngineSpeed]:
    """fp32 against int8 on each CPU engine installed: ONNX Runtime, then OpenVINO when it is installed.

    An OpenVINO that is installed but cannot compile here is said in a line and left out: the export stands.
    """
    speeds = [
        EngineSpeed("ONNX Runtime", *alternate_latency_ms([onnxruntime_runner(fp32), onnxruntime_runner(int8)], image))
    ]
    if openvino_engine.installed():
        with tempfile.TemporaryDirectory(prefix="gantx-int8-speed-") as workdir:
            paths = [Path(workdir) / "fp32.onnx", Path(workdir) / "int8.onnx"]
            for model, path in zip((fp32, int8), paths):
                onnx.save(model, path)
            try:
                runners = [openvino_runner(path) for path in paths]
            except (RuntimeError, GantxError) as error:  # the plugin's own error, or gantx's one line for it
                progress(f"int8: OpenVINO not timed ({first_line(error)})")
            else:
                speeds.append(EngineSpeed("OpenVINO", *alternate_latency_ms(runners, image)))
    return speeds


def quantise_int8(
    fp32: onnx.ModelProto,
    images: list[np.ndarray],
    target: float = DEFAULT_TARGET_PSNR,
    method: CalibrationName = DEFAULT_CALIBRATION_METHOD,
    progress: Say = lambda message: None,
) -> Int8Result:
    """A QDQ int8 model of `fp32` calibrated on `images` that keeps `target` dB PSNR against it.

    Every convolution whose inputs and outputs are quantised runs in ONNX
    Runtime's int8 kernels; with every one in int8 already within the target,
    that is the model; otherwise the layer search leaves the most harmful ones
    (per multiply-add saved) in float. PSNR is reported on held-out images that
    neither calibration nor the search saw.
    """
    one_of(method, CalibrationName, "--calibration-method")
    calibration, held_out = split_held_out(images)
    with tempfile.TemporaryDirectory(prefix="gantx-int8-") as workdir:
        quantise = _Quantiser(fp32, calibration, method, Path(workdir))
        search_images = calibration[:SEARCH_IMAGES]
        reference = outputs(fp32, search_images)
        progress(f"int8: calibrating ({method}) on {len(calibration)} images, every convolution in int8")
        chosen = list(quantise.layers)
        searched = psnr(reference, outputs(quantise(chosen), search_images)) < target
        if searched:
            chosen = _search(quantise, reference, search_images, target, progress)
        model = quantise(chosen)
    progress("int8: measuring PSNR on held-out images and latency against fp32")
    speeds = engine_speeds(fp32, model, held_out[0], progress)
    return Int8Result(
        model=model,
        psnr=psnr(outputs(fp32, held_out), outputs(model, held_out)),
        target_psnr=target,
        method=method,
        speeds=speeds,
        quantised=chosen,
        kept_float=[name for name in quantise.work if name not in chosen],
        int8_work=quantise.share(chosen),
        calibration_images=len(calibration),
        held_out_images=len(held_out),
        searched=searched,
    )
