"""`gantx export`: a checkpoint in, a verified contract model (docs/model-format.md) out.

Sources are gantx checkpoints (trainers/checkpoint.py), which describe
themselves, or bare generator state_dicts from the canonical CycleGAN/pix2pix
code (exporters/public.py), whose domains and size come from options. The
model is written to a temporary name, run with ONNX Runtime beside the PyTorch
module, and renamed into place only when they agree; a failed export leaves
no file behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import torch
from torch import nn

import gantx
from gantx.errors import EXIT_FAILED_FILES, GantxError
from gantx.exporters.choices import BatchNormMode, CalibrationName, Direction
from gantx.exporters.graph import OPSET, check_graph, cpu_session, run, set_metadata, to_onnx
from gantx.exporters.precision import (
    DEFAULT_CALIBRATION_METHOD,
    DEFAULT_TARGET_PSNR,
    Int8Result,
    Say,
    load_images,
    psnr,
    quantise_int8,
    split_held_out,
    to_fp16,
)
from gantx.exporters.public import batch_stats_norms, is_state_dict, recognise
from gantx.exporters.tensorrt import tensorrt_problems
from gantx.images import atomic_write
from gantx.model import ModelInfo
from gantx.trainers.checkpoint import checkpoint_from_dict, is_gantx_checkpoint, read_torch_file
from gantx.trainers.config import command_line

FP32_TOLERANCE = 1e-4  # max abs error on [-1, 1] outputs
FP16_MIN_PSNR = 40.0


class VerificationError(GantxError):
    """The exported graph does not compute what the PyTorch module computes."""

    exit_code = EXIT_FAILED_FILES


@dataclass(frozen=True)
class ExportOptions:
    direction: Direction = "AtoB"
    static: tuple[int, int] | None = None  # fixed H, W (TensorRT engines); batch stays dynamic
    max_batch: int = 8  # the largest batch of the static optimisation profile
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    calibration: Path | None = None  # image folder: int8 calibration, fp16 PSNR
    target_psnr: float = DEFAULT_TARGET_PSNR  # int8: the layer search keeps at least this against fp32
    calibration_method: CalibrationName = DEFAULT_CALIBRATION_METHOD  # int8: minmax, entropy or percentile
    domains: tuple[str, str] | None = None  # bare state_dicts only
    trained_size: int | None = None  # bare state_dicts only: the resolution it was trained at
    bn: BatchNormMode = "auto"  # auto: batch-stats for public pix2pix files, eval for gantx checkpoints


@dataclass
class Source:
    """The generator to export and what the contract metadata says about it."""

    module: nn.Module
    contract: ModelInfo  # as trained; the export sets arch, direction, precision and a static size
    public: bool
    info: dict[str, str] = field(default_factory=dict)  # free-form gantx.* keys
    notes: list[str] = field(default_factory=list)


@dataclass
class ExportReport:
    path: Path
    metadata: dict[str, str]
    max_abs_error: float
    checked_shapes: list[tuple[int, ...]]
    notes: list[str]
    fp16_psnr: float | None = None
    psnr_images: str = ""
    int8: Int8Result | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_source(path: Path, options: ExportOptions) -> Source:
    """Read `path` safely and rebuild the generator for `options.direction`."""
    data = read_torch_file(path)
    info = {
        "gantx.source": path.name,
        "gantx.source_sha256": _sha256(path),
        "gantx.exporter": f"gantx {gantx.__version__}",
    }
    if is_gantx_checkpoint(data):
        if options.domains or options.trained_size:
            raise GantxError(
                "--domains and --trained-size are for bare state_dicts; "
                "a gantx checkpoint names its own domains and size"
            )
        checkpoint = checkpoint_from_dict(data, source=str(path))
        role, entry = checkpoint.generator(options.direction)
        module = entry.build(role)
        info["gantx.family"] = checkpoint.family
        info["gantx.config"] = json.dumps(checkpoint.config, sort_keys=True, default=str)
        notes = [f"{role} ({entry.arch}) from a gantx {checkpoint.family} checkpoint"]
        try:
            info["gantx.train_command"] = command_line(checkpoint.family, checkpoint.config)
        except GantxError as error:  # a checkpoint from another gantx version still exports
            notes.append(f"no gantx.train_command: {error}")
        info.update({f"gantx.{key}": str(value) for key, value in checkpoint.meta.items()})
        return Source(module, checkpoint.contract, public=False, info=info, notes=notes)
    if is_state_dict(data):
        recognised = recognise(data, options.trained_size)
        module = recognised.module
        contract = ModelInfo(
            kind="image2image",
            arch=module.arch,
            size=module.size,
            channels_in=module.channels_in,
            channels_out=module.channels_out,
            size_multiple=module.size_multiple,
            domains=options.domains or ("A", "B"),
        )
        info["gantx.imported"] = "CycleGAN/pix2pix state_dict"
        return Source(module, contract, public=True, info=info, notes=recognised.notes)
    kind = (
        f"a dict with keys {', '.join(map(str, list(data)[:5]))}"
        if isinstance(data, dict)
        else f"a {type(data).__name__}"
    )
    raise GantxError(f"{path}: neither a gantx checkpoint nor a generator state_dict (it holds {kind})")


def _apply_batch_norm_mode(source: Source, mode: BatchNormMode) -> None:
    if not any(isinstance(layer, nn.BatchNorm2d) for layer in source.module.modules()):
        if mode != "auto":
            source.notes.append(f"--bn {mode} ignored: the generator has no batch norm")
        return
    if mode == "auto":
        mode = "batch-stats" if source.public else "eval"
    if mode == "batch-stats":
        batch_stats_norms(source.module)
        source.notes.append(
            "batch norm: per-image batch statistics, as the canonical test.py ran it at batch size 1 "
            "(dropout stays off; --bn eval uses the running statistics)"
        )
    else:
        source.notes.append("batch norm: running statistics (eval mode)")
    source.info["gantx.bn"] = mode


def _shapes(source: Source, options: ExportOptions) -> tuple[tuple[int, int] | None, bool]:
    """The image size to export and check at, and whether H and W stay dynamic."""
    trained = source.contract
    if trained.kind == "noise2image":
        if options.static:
            raise GantxError("--static is for image-to-image models; noise models already have a fixed output size")
        return None, False
    size = tuple(trained.size)
    if options.static:
        height, width = options.static
        multiple = trained.size_multiple
        if multiple and (height % multiple or width % multiple):
            raise GantxError(f"--static {height}x{width}: this generator needs H and W in multiples of {multiple}")
        if not multiple and (height, width) != size:
            raise GantxError(f"--static {height}x{width}: this generator only takes {size[0]}x{size[1]}")
        return (height, width), False
    return size, trained.size_multiple > 0


def exported_contract(
    contract: ModelInfo, arch: str, options: ExportOptions, size: tuple[int, int] | None
) -> ModelInfo:
    """The exported model's contract: the trained one, with its arch, direction, precision and static profile."""
    changes: dict = {"arch": arch, "precision": options.precision}
    if contract.kind == "image2image":
        changes["direction"] = "A->B" if options.direction == "AtoB" else "B->A"
    if options.static:
        height, width = size
        shape = (contract.channels_in, height, width)
        changes.update(
            size=size, size_multiple=0, profile=((1, *shape), (options.max_batch, *shape), (options.max_batch, *shape))
        )
    return dataclasses.replace(contract, **changes)


def _check_inputs(module: nn.Module, size: tuple[int, int] | None, dynamic_hw: bool) -> list[tuple[torch.Tensor, ...]]:
    """Batches of 2 at the model size and, when H and W are dynamic, of 1 at a second size."""
    torch.manual_seed(0)
    batches = [module.example_inputs(2, size)]
    if dynamic_hw:
        batches.append(module.example_inputs(1, (size[0] + module.size_multiple, size[1])))
    return batches


def verify_fp32(module: nn.Module, model: onnx.ModelProto, batches: list[tuple[torch.Tensor, ...]]) -> float:
    """Max abs difference between ONNX Runtime and PyTorch; VerificationError beyond FP32_TOLERANCE."""
    session = cpu_session(model)
    error = 0.0
    for inputs in batches:
        with torch.no_grad():
            expected = module(*inputs).numpy()
        actual = run(session, inputs)
        if actual.shape != expected.shape:
            raise VerificationError(f"ONNX output shape {actual.shape} differs from PyTorch's {expected.shape}")
        error = max(error, float(np.abs(actual - expected).max()))
    if not error <= FP32_TOLERANCE:
        raise VerificationError(
            f"ONNX Runtime and PyTorch disagree by {error:.3g} (tolerance {FP32_TOLERANCE:g}); no model written"
        )
    return error


def export(
    source_path: Path, output: Path, options: ExportOptions, progress: Say = lambda message: None
) -> ExportReport:
    """Export, verify and write `output`; GantxError (nothing written) when anything fails.

    `progress` hears each long step.
    """
    if options.precision == "int8" and options.calibration is None:
        raise GantxError("--int8 needs --calibration DIR: a folder of images like the ones the model will translate")
    source = load_source(source_path, options)
    _apply_batch_norm_mode(source, options.bn)
    module = source.module.eval()
    size, dynamic_hw = _shapes(source, options)
    trained = source.contract
    if options.precision == "int8" and trained.kind != "image2image":
        raise GantxError("--int8 calibrates on images, so it is for image-to-image models only")

    batches = _check_inputs(module, size, dynamic_hw)
    fp32 = to_onnx(module, batches[0], module.input_names, dynamic_hw)
    check_graph(fp32)
    error = verify_fp32(module, fp32, batches)
    report = ExportReport(output, {}, error, [tuple(inputs[0].shape) for inputs in batches], source.notes)

    model = fp32
    contract = exported_contract(trained, module.arch, options, size)
    images = load_images(options.calibration, contract, progress) if options.calibration else None
    if options.precision == "fp16":
        model = to_fp16(fp32)
        check_graph(model)
        if images:
            held_out = split_held_out(images)[1]
            report.psnr_images = f"{len(held_out)} held-out images from {options.calibration}"
            inputs = [(torch.from_numpy(image),) for image in held_out]
        else:
            report.psnr_images = "the random verification inputs"
            inputs = [batches[0]]
        fp32_session, fp16_session = cpu_session(fp32), cpu_session(model)
        report.fp16_psnr = psnr(
            [run(fp32_session, batch) for batch in inputs], [run(fp16_session, batch) for batch in inputs]
        )
        if not report.fp16_psnr >= FP16_MIN_PSNR:
            raise VerificationError(
                f"fp16 model is only {report.fp16_psnr:.1f} dB from fp32 (needs {FP16_MIN_PSNR:g}); no model written"
            )
    elif options.precision == "int8":
        report.int8 = quantise_int8(fp32, images, options.target_psnr, options.calibration_method, progress)
        model = report.int8.model
        check_graph(model)
        report.psnr_images = f"{report.int8.held_out_images} held-out images from {options.calibration}"

    problems = tensorrt_problems(model)
    if problems:
        raise GantxError(f"exported graph is not TensorRT-ready: {problems[0]}")
    info = {**source.info, "gantx.opset": str(OPSET)}
    if options.static:
        info["gantx.trained_size"] = ",".join(map(str, trained.size))
    report.metadata = {**info, **contract.to_metadata()}
    set_metadata(model, report.metadata)
    atomic_write(output, lambda tmp: onnx.save(model, tmp))
    return report
