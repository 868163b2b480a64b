"""Engines and precisions side by side, each against ONNX Runtime fp32 (gantx's CPU path before OpenVINO), in one run.

    flock /tmp/gantx-cpu.lock python benchmarks/engines.py [--rounds 5] [--iters 2] [--models resnet9,upscale]
        [--checkpoint RUN/latest.pt]

Cases (issue 24's): the CycleGAN ResNet-9 generator at 256x256, batch 1 and 4
(benchmarks/common.py's, random but seeded weights; `--checkpoint` puts a gantx
CycleGAN run's trained A->B generator in its place); photo-upscale2x at
512x512, batch 1; fashion-sneaker2boot and fashion-edges2item, batches of 8 at
32x32. Rows: ONNX Runtime fp32 (`provider="cpu"`, the reference), OpenVINO
fp32, OpenVINO bf16 (where OpenVINO says the CPU has BF16), gantx `auto` (and
the engine it chose: its timing is remembered per machine), and for the
ResNet-9 its `gantx export --int8` file (calibrated on other crops of the real
photos, as JPEGs) on ONNX Runtime and on OpenVINO, and PyTorch eager f32 and
bf16 autocast (channels_last).
Speed: the model alone (`Translator.run_batch` on one fixed random batch),
at least `--iters` calls and 0.2 s a run, each configuration's first call left
out, configurations alternated round-robin in each round, the best round kept.
Fidelity: outputs on real inputs (photo crops; Fashion-MNIST items, as edge maps
for edges2item) as 8-bit pixels, PSNR and the largest difference against ONNX Runtime fp32.
Targets: the issue's (bf16, int8 on OpenVINO, OpenVINO fp32, auto). Results: benchmarks/results/engines.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from common import (
    SIZE,
    SPEED_FLAG_PREFIXES,
    best_of,
    facts,
    real_crops,
    reference_generator,
    resnet9_files,
    speed_flags,
    timed,
    write_results,
)
from PIL import Image
from precision import psnr_u8

from gantx import Translator, openvino_engine
from gantx.cpu_info import cpu_name
from gantx.edges import edge_map
from gantx.exporters.export import ExportOptions, export
from gantx.exporters.graph import set_metadata
from gantx.exporters.precision import (
    CONVOLUTIONS,
    MAX_CALIBRATION,
    MAX_HELD_OUT,
    _Quantiser,
    load_images,
    split_held_out,
)
from gantx.model import ModelInfo, to_pixels
from gantx.trainers.checkpoint import load_checkpoint
from gantx.zoo import PHOTO_UPSCALER, fashion_samples

REFERENCE = "ONNX Runtime fp32"
MIN_RUN_S = 0.2  # a timed run makes at least this long of calls: a small model's 2 ms batches time poorly alone
CASES = ("resnet9", "upscale", "sneaker2boot", "edges2item")
INT8_FACTS = ("quantised", "kept_float", "int8_work", "method", "calibration_images", "psnr")  # of its export
FOOTWEAR = ("sneaker-", "sandal-", "ankle-boot-")  # what sneaker2boot is for


@dataclass
class Case:
    name: str
    model: Path | str
    size: tuple[int, int]
    batch: int
    inputs: list  # real images of the kind the model takes
    int8: Path | None = None
    module: torch.nn.Module | None = None  # the PyTorch generator, where there is one
    int8_trials: dict[str, Path] = field(default_factory=dict)  # other int8 choices, run on OpenVINO

    @property
    def title(self) -> str:
        return f"{self.name}, {self.size[0]}x{self.size[1]}, batch {self.batch}"


@dataclass
class Row:
    name: str
    engine: str  # what ran it, as gantx names it
    run: Callable[[np.ndarray], np.ndarray]  # N x C x H x W float32 -> outputs


def resnet9(scratch: Path, checkpoint: Path | None) -> tuple[Path, Path, torch.nn.Module, object, str]:
    """(fp32 model, its int8 export, the PyTorch generator, the int8 report, what its weights are)."""
    calibration = scratch / "calibration"
    calibration.mkdir()
    for index, crop in enumerate(real_crops(MAX_CALIBRATION + MAX_HELD_OUT, SIZE, seed=5)):
        crop.save(calibration / f"{index:03d}.jpg", quality=95)
    if checkpoint:
        fp32, source, weights = scratch / "resnet9.onnx", checkpoint, f"trained weights: {checkpoint}"
        export(checkpoint, fp32, ExportOptions(), print)
        role, entry = load_checkpoint(checkpoint).generator("AtoB")
        module = entry.build(role)
    else:
        (source, fp32), weights = resnet9_files(), "random (seeded) weights"
        module = reference_generator()
        module.load_state_dict(torch.load(source, weights_only=True))
    domains = None if checkpoint else ("photo", "painting")  # a bare state_dict names its domains
    int8_options = ExportOptions(precision="int8", calibration=calibration, domains=domains)
    report = export(source, scratch / "resnet9-int8.onnx", int8_options, print)
    return fp32, report.path, module.eval(), report.int8, weights


def int8_trials(fp32: Path, int8: Path, report, scratch: Path) -> dict[str, Path]:
    """Issue 24's other int8 choices for OpenVINO, calibrated as the export was: the layer search's convolutions
    plus every ConvTranspose in int8 (ONNX Runtime has no int8 kernel for it; OpenVINO has), and every convolution
    of both kinds in int8, no search."""
    model = onnx.load(fp32)
    metadata = {entry.key: entry.value for entry in onnx.load(int8).metadata_props}
    contract = ModelInfo.from_metadata(metadata)
    calibration = split_held_out(load_images(scratch / "calibration", contract))[0]
    folder = scratch / "int8-trials"
    folder.mkdir()
    quantise = _Quantiser(model, calibration, report.method, folder, ops=CONVOLUTIONS)
    transposed = [node.name for node in model.graph.node if node.op_type == "ConvTranspose"]
    choices = {
        "int8 file + ConvTranspose in int8": [*report.quantised, *transposed],
        "every convolution in int8": quantise.layers,
    }
    paths = {}
    for name, chosen in choices.items():
        trial = quantise(chosen)
        set_metadata(trial, metadata)
        paths[name] = folder / f"{len(paths)}.onnx"
        onnx.save(trial, paths[name])
    return paths


def cases(
    names: Sequence[str], scratch: Path, crops: int, checkpoint: Path | None, trials: bool
) -> tuple[list[Case], dict]:
    """The cases asked for, and what the int8 export of the ResNet-9 says of itself (empty without it)."""
    found: list[Case] = []
    int8_info: dict = {}
    if "resnet9" in names:
        fp32, int8, module, report, weights = resnet9(scratch, checkpoint)
        int8_info = {"weights": weights, **{name: getattr(report, name) for name in INT8_FACTS}}
        photos = real_crops(crops, SIZE, seed=3)
        others = int8_trials(fp32, int8, report, scratch) if trials else {}
        found += [
            Case(f"ResNet-9 ({weights})", fp32, (SIZE, SIZE), batch, photos, int8, module, others) for batch in (1, 4)
        ]
    if "upscale" in names:
        found.append(Case(PHOTO_UPSCALER, PHOTO_UPSCALER, (512, 512), 1, real_crops(crops, 512, seed=3)))
    items = {path.name: np.asarray(Image.open(path).convert("L")) for path in fashion_samples()}
    if "sneaker2boot" in names:
        footwear = [pixels for name, pixels in items.items() if name.startswith(FOOTWEAR)]
        found.append(Case("fashion-sneaker2boot", "fashion-sneaker2boot", (32, 32), 8, footwear))
    if "edges2item" in names:
        edges = list(edge_map(np.stack(list(items.values()))))
        found.append(Case("fashion-edges2item", "fashion-edges2item", (32, 32), 8, edges))
    return found, int8_info


def rows(case: Case, bf16: bool) -> tuple[Translator, list[Row]]:
    """The reference translator (it prepares the inputs) and every row of `case`."""
    engines = [(REFERENCE, case.model, "cpu", "fp32"), ("OpenVINO fp32", case.model, "openvino", "fp32")]
    engines += [("OpenVINO bf16", case.model, "openvino", "bf16")] if bf16 else []
    engines += [("gantx auto", case.model, "auto", "auto")]
    if case.int8:
        engines += [("int8 file, ONNX Runtime", case.int8, "cpu", "auto")]
        engines += [("int8 file, OpenVINO fp32 elsewhere", case.int8, "openvino", "fp32")]
        engines += [("int8 file, OpenVINO bf16 elsewhere", case.int8, "openvino", "bf16")] if bf16 else []
    elsewhere = "bf16" if bf16 else "fp32"
    engines += [
        (f"{name}, OpenVINO {elsewhere} elsewhere", path, "openvino", elsewhere)
        for name, path in case.int8_trials.items()
    ]
    translators = {
        name: Translator(model, provider=provider, precision=precision, batch_size=case.batch, size=case.size)
        for name, model, provider, precision in engines
    }
    found = [Row(name, translator.engine, translator.run_batch) for name, translator in translators.items()]
    return translators[REFERENCE], found + (torch_rows(case.module, bf16) if case.module else [])


def torch_rows(module: torch.nn.Module, bf16: bool) -> list[Row]:
    """PyTorch eager f32, and its own best CPU mode where the CPU has native bf16: autocast, channels_last."""
    channels_last = copy.deepcopy(module).to(memory_format=torch.channels_last)

    def eager(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch)).numpy()

    def autocast(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return channels_last(torch.from_numpy(batch).to(memory_format=torch.channels_last)).float().numpy()

    engine = f"torch {torch.__version__}"
    return [Row("PyTorch eager f32", engine, eager)] + (
        [Row("PyTorch bf16 autocast", engine, autocast)] if bf16 else []
    )


def pixels(run: Callable[[np.ndarray], np.ndarray], tensors: list[np.ndarray], batch: int) -> list[np.ndarray]:
    """8-bit output images of `run` over `tensors`, in batches of `batch`."""
    return [
        image
        for start in range(0, len(tensors), batch)
        for image in to_pixels(run(np.stack(tensors[start : start + batch])))
    ]


def measure(case: Case, bf16: bool, rounds: int, iters: int) -> dict:
    reference, found = rows(case, bf16)
    tensors = [reference.prepare(image).tensor for image in case.inputs]
    outputs = {row.name: pixels(row.run, tensors, case.batch) for row in found}
    fixed = np.random.default_rng(0).uniform(-1, 1, (case.batch, *tensors[0].shape)).astype(np.float32)
    for row in found:  # first calls allocate and compile: left out
        row.run(fixed)
    calls = max(iters, math.ceil(MIN_RUN_S / timed(lambda: found[0].run(fixed))))
    runs = {row.name: (lambda run=row.run: timed(lambda: [run(fixed) for _ in range(calls)])) for row in found}
    times = best_of(rounds, runs)
    ms = {name: min(values) * 1000 / (calls * case.batch) for name, values in times.items()}
    truth = outputs[REFERENCE]
    return {
        "inputs": len(tensors),
        "calls_per_run": calls,
        "rows": {
            row.name: {
                "engine": row.engine,
                "ms_per_image": ms[row.name],
                "vs_ort_fp32": ms[REFERENCE] / ms[row.name],
                "psnr_vs_ort_fp32": psnr_u8(truth, outputs[row.name]),
                "max_diff_grey_levels": int(
                    max(np.abs(a.astype(int) - b).max() for a, b in zip(truth, outputs[row.name]))
                ),
                "seconds_per_round": times[row.name],
            }
            for row in found
        },
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def target_lines(results: dict[str, dict]) -> list[str]:
    """The issue's targets, each with its number and met / NOT met."""
    lines = []
    for title, result in results.items():
        row = result["rows"]
        ov, auto = row["OpenVINO fp32"], row["gantx auto"]
        ov_ratio, ov_diff, auto_ratio = ov["vs_ort_fp32"], ov["max_diff_grey_levels"], auto["vs_ort_fp32"]
        lines.append(
            f"- {title}: OpenVINO fp32 {ov_ratio:.2f}x ORT fp32 (>= 0.95x: {verdict(ov_ratio >= 0.95)}), "
            f"largest difference {ov_diff} grey level(s) (<= 1: {verdict(ov_diff <= 1)}); "
            f"auto ({auto['engine']}) {auto_ratio:.2f}x (>= 0.95x: {verdict(auto_ratio >= 0.95)})"
        )
        torch_f32, torch_bf16 = row.get("PyTorch eager f32"), row.get("PyTorch bf16 autocast")
        int8_ov = [name for name in row if name.startswith("int8 file, OpenVINO")]
        best_int8 = max(int8_ov, key=lambda name: row[name]["vs_ort_fp32"], default=None)
        for name, speed, over_torch, psnr in (("OpenVINO bf16", 2.0, 1.3, 50.0), (best_int8, 3.5, 2.5, 35.0)):
            if name not in row or not torch_f32:  # the ResNet-9's targets, the case with PyTorch beside it
                continue
            ratio, quality = row[name]["vs_ort_fp32"], row[name]["psnr_vs_ort_fp32"]
            torch_ratio = torch_bf16["ms_per_image"] / row[name]["ms_per_image"] if torch_bf16 else None
            torch_part = (
                f"{torch_ratio:.2f}x PyTorch bf16 autocast (>= {over_torch}x: {verdict(torch_ratio >= over_torch)}), "
                if torch_ratio
                else ""
            )
            lines.append(
                f"- {title}: {name} {ratio:.2f}x ORT fp32 (>= {speed}x: {verdict(ratio >= speed)}), {torch_part}"
                f"{quality:.1f} dB (>= {psnr:g}: {verdict(quality >= psnr)})"
            )
        for name in row:  # the other int8 choices: worth offering only if faster than the export's and >= 35 dB
            if best_int8 and name.endswith("elsewhere") and not name.startswith("int8 file,"):
                faster = row[best_int8]["ms_per_image"] / row[name]["ms_per_image"]
                lines.append(
                    f"- {title}: trial {name}: {faster:.2f}x the speed of {best_int8}, "
                    f"{row[name]['psnr_vs_ort_fp32']:.1f} dB (worth offering: "
                    f"{'yes' if faster > 1.05 and row[name]['psnr_vs_ort_fp32'] >= 35 else 'no'})"
                )
    return lines


def milliseconds(value: float) -> str:
    return f"{value:.1f}" if value >= 1 else f"{value:.3f}"


def table(title: str, result: dict) -> str:
    lines = [
        f"#### {title}",
        "",
        f"Calls per timed run: {result['calls_per_run']}.",
        "",
        f"| engine, precision | runs on | ms / img | vs ORT fp32 | PSNR vs ORT fp32 on {result['inputs']} real inputs "
        "(dB) | largest difference (grey levels) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in result["rows"].items():
        quality = "reference" if name == REFERENCE else f"{row['psnr_vs_ort_fp32']:.1f}"
        lines.append(
            f"| {name} | {row['engine']} | {milliseconds(row['ms_per_image'])} | {row['vs_ort_fp32']:.2f}x | {quality} "
            f"| {row['max_diff_grey_levels']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--iters", type=int, default=2, help="model calls per timed run, at least (small models make more)"
    )
    parser.add_argument("--models", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--crops", type=int, default=6, help="real photo crops scored for fidelity")
    parser.add_argument("--checkpoint", type=Path, help="a gantx CycleGAN run's latest.pt in place of random weights")
    parser.add_argument(
        "--int8-trials",
        action="store_true",
        help="ResNet-9: also other int8 choices (ConvTranspose in int8) on OpenVINO",
    )
    args = parser.parse_args()
    names = args.models.split(",")
    if unknown := [name for name in names if name not in CASES]:
        parser.error(f"--models: unknown {', '.join(unknown)}; known: {', '.join(CASES)}")
    start = facts()
    capabilities = openvino_engine.cpu_capabilities()
    bf16 = "BF16" in capabilities
    flags = speed_flags()
    with tempfile.TemporaryDirectory(prefix="gantx-engines-") as scratch:
        found, int8 = cases(names, Path(scratch), args.crops, args.checkpoint, args.int8_trials)
        results = {case.title: measure(case, bf16, args.rounds, args.iters) for case in found}
    int8_line = (
        f"ResNet-9 int8 file: {len(int8['quantised'])} convolutions in int8 ({int8['int8_work']:.0%} of the "
        f"multiply-adds), {len(int8['kept_float'])} kept in float; {int8['method']} calibration on "
        f"{int8['calibration_images']} other crops of the same real photos; {int8['psnr']:.1f} dB on the "
        f"export's held-out crops. The ResNet-9 has {int8['weights']}"
        + ("" if args.checkpoint else ": its PSNR says how closely the engines compute, not how a trained model looks")
        + ".\n\n"
        if int8
        else ""
    )
    openvino_version = openvino_engine.version().split("-")[0]
    markdown = (
        f"\n### Engines and precisions on {cpu_name()}\n\n"
        f"CPU flags: {', '.join(flags) or 'none of ' + ', '.join(SPEED_FLAG_PREFIXES)}; "
        f"OpenVINO {openvino_version} capabilities: {', '.join(capabilities)}.\n"
        f"Model alone, best of {args.rounds} alternated rounds "
        f"(at least {args.iters} calls and {MIN_RUN_S:g} s a run); "
        "PSNR and differences against ONNX Runtime fp32 in 8-bit pixels.\n"
        "gantx auto's engine choice is timed once per machine, model and shape, and remembered.\n"
        "The fashion models ship as fp16 files, which ONNX Runtime runs as stored.\n\n"
        f"{int8_line}"
        + "\n\n".join(table(title, result) for title, result in results.items())
        + "\n\nTargets (issue 24):\n\n"
        + "\n".join(target_lines(results))
        + "\n"
    )
    write_results(
        "engines",
        {
            "machine": start,
            "cpu_flags": flags,
            "openvino": {"version": openvino_engine.version(), "capabilities": list(capabilities)},
            "rounds": args.rounds,
            "iters": args.iters,
            "resnet9_int8": int8,
            "cases": results,
        },
        markdown,
    )


if __name__ == "__main__":
    main()
