"""`gantx export CHECKPOINT -o MODEL.onnx`: a checkpoint to a verified, TensorRT-ready contract model.

Needs the torch side (`pip install "gantx[train]"`), imported only when the verb runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gantx.bench import int8_instructions
from gantx.errors import GantxError
from gantx.exporters.choices import BatchNormMode, CalibrationName, Direction
from gantx.settings import one_of, parse_size


def _parse_static(text: str) -> tuple[int, int]:
    """--static reads sizes as --size does, but takes only HxW: a static export fixes both sides."""
    try:
        size = parse_size(text, "--static")
    except GantxError:
        size = None
    if not isinstance(size, tuple):
        raise GantxError(f"--static {text!r}: expected HxW, both sides of the fixed size, e.g. 256x256")
    return size


def _parse_domains(text: str) -> tuple[str, str]:
    names = tuple(name.strip() for name in text.split(","))
    if len(names) != 2 or not all(names):
        raise GantxError(f"--domains {text!r}: expected two names, A first: e.g. horse,zebra")
    return names  # type: ignore[return-value]


def export(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="A gantx checkpoint (RUN_DIR/latest.pt) or a CycleGAN/pix2pix generator .pth.", show_default=False
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The ONNX model to write.", show_default=False)],
    direction: Annotated[
        str,
        typer.Option(
            "--direction", help="AtoB or BtoA: which generator of a two-way model; for a .pth, which way it translates."
        ),
    ] = "AtoB",
    static: Annotated[
        str | None,
        typer.Option("--static", help="HxW: fixed H and W for TensorRT engines; records an optimisation profile."),
    ] = None,
    max_batch: Annotated[
        int, typer.Option("--max-batch", min=1, help="Largest batch of the --static optimisation profile.")
    ] = 8,
    fp16: Annotated[
        bool,
        typer.Option("--fp16", help="float16 graph (float32 input and output); must keep >= 40 dB PSNR against fp32."),
    ] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Static QDQ int8, calibrated on --calibration images.")] = False,
    calibration: Annotated[
        Path | None, typer.Option("--calibration", help="Folder of images: int8 calibration, held-out PSNR.")
    ] = None,
    target_psnr: Annotated[
        float, typer.Option("--target-psnr", help="int8: keep at least this PSNR (dB) against fp32 on held-out images.")
    ] = 35.0,
    calibration_method: Annotated[
        str, typer.Option("--calibration-method", help="int8 calibration: minmax, entropy or percentile.")
    ] = "percentile",
    domains: Annotated[
        str | None, typer.Option("--domains", help="For a .pth: names of domains A and B, e.g. horse,zebra.")
    ] = None,
    trained_size: Annotated[
        int | None,
        typer.Option(
            "--trained-size",
            min=1,
            help="For a .pth: the resolution it was trained at (default 256; U-Net: its 2^depth).",
        ),
    ] = None,
    bn: Annotated[
        str,
        typer.Option(
            "--bn",
            help="Batch norm: eval (running statistics) or batch-stats (per image, as pix2pix's test.py); "
            "auto picks batch-stats for a .pth, eval for gantx checkpoints.",
        ),
    ] = "auto",
) -> None:
    """Export a generator to an ONNX model that follows the gantx model contract, verified against PyTorch."""
    if fp16 and int8:
        raise GantxError("--fp16 and --int8 exclude each other")
    if calibration is not None and not (fp16 or int8):
        raise GantxError(
            "--calibration is for --int8 (its calibration images) or --fp16 (PSNR measured on them); "
            "without either it does nothing"
        )
    if output.is_dir():
        raise GantxError(f"-o {output} is a folder: name the model file in it, e.g. -o {output / 'model.onnx'}")
    if output.suffix.lower() != ".onnx":
        raise GantxError(f"-o {output}: the model file must end in .onnx")
    settings = dict(  # every option checked before PyTorch loads
        direction=one_of(direction, Direction, "--direction"),
        static=_parse_static(static) if static else None,
        domains=_parse_domains(domains) if domains else None,
        bn=one_of(bn, BatchNormMode, "--bn"),
        calibration_method=one_of(calibration_method, CalibrationName, "--calibration-method"),
    )
    try:
        from gantx.exporters.export import ExportOptions
        from gantx.exporters.export import export as run_export
    except ImportError as error:
        raise GantxError(
            f'gantx export needs PyTorch and onnx ({error.name} is missing): pip install "gantx[train]"'
        ) from None
    options = ExportOptions(
        **settings,  # type: ignore[arg-type]
        max_batch=max_batch,
        precision="fp16" if fp16 else "int8" if int8 else "fp32",
        calibration=calibration,
        target_psnr=target_psnr,
        trained_size=trained_size,
    )
    if int8 and not int8_instructions():
        typer.echo(
            "  note: this CPU has no int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX): "
            "int8 will gain little here",
            err=True,
        )
    report = run_export(checkpoint, output, options, lambda message: typer.echo(f"  {message}", err=True))
    meta = report.metadata
    for note in report.notes:
        typer.echo(f"  {note}")
    shapes = ", ".join("x".join(map(str, shape)) for shape in report.checked_shapes)
    typer.echo(f"  ONNX Runtime vs PyTorch: max abs error {report.max_abs_error:.2g} on {shapes}")
    if report.fp16_psnr is not None:
        typer.echo(f"  fp16 vs fp32: {report.fp16_psnr:.1f} dB PSNR on {report.psnr_images}")
        typer.echo(
            "  (measured with ONNX Runtime on the CPU, which runs ops lacking fp16 kernels in fp32; "
            "a GPU may lose more)"
        )
    if report.int8 is not None:
        result = report.int8
        typer.echo(
            f"  int8 vs fp32: {result.psnr:.1f} dB PSNR on {report.psnr_images}; "
            f"{len(result.quantised)} convolutions in int8 "
            f"({result.int8_work:.0%} of the multiply-adds), {len(result.kept_float)} kept float"
            + (f" (a layer search for {result.target_psnr:g} dB)" if result.searched else "")
            + f"; {result.method} calibration on {result.calibration_images} images"
        )
        for speed in result.speeds:
            typer.echo(
                f"  CPU latency, timed in turn: fp32 {speed.fp32_ms:.3g} ms, "
                f"int8 {speed.int8_ms:.3g} ms ({speed.speedup:.2f}x) on {speed.engine}"
            )
        if result.slower_warning:
            typer.echo(f"gantx: warning: {result.slower_warning}", err=True)
        if result.psnr < result.target_psnr:
            typer.echo(
                f"  WARNING: int8 is under {result.target_psnr:g} dB against fp32: expect visible differences", err=True
            )
    where = (
        f"{meta['gantx.domains']} {meta['gantx.direction']}"
        if meta["gantx.kind"] == "image2image"
        else meta["gantx.kind"]
    )
    size_note = f", profile {meta['gantx.profile']}" if "gantx.profile" in meta else ""
    typer.echo(f"wrote {report.path} ({meta['gantx.arch']}, {where}, {meta['gantx.precision']}{size_note})")
