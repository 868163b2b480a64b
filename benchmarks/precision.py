"""fp32, fp16 and int8 side by side on a trained ResNet-9 generator: speed, PyTorch eager beside them, PSNR vs fp32.

    python benchmarks/precision.py --prepare-data DATA  # grass and flower tiles of Debian's mate-backgrounds photos
    gantx train cyclegan --out RUN --data DATA/grass --data-b DATA/flowers --channels 3 --size 256 --load-size 320 \
        --flip --generator resnet_9blocks --ngf 64 --ndf 64 --n-layers 3 --batch-size 1 --epochs 10 --decay-epochs 9
    flock /tmp/gantx-cpu.lock python benchmarks/precision.py --checkpoint RUN/latest.pt [--rounds 5] [--images 8]

The checkpoint is that CycleGAN run: a ResNet-9 generator trained on 256x256
crops of real photos (kept out of the repository: 100+ MB). Its A->B generator
is exported three times with `gantx export` (fp32; `--fp16`; `--int8
--calibration PHOTOS` with the mate-backgrounds nature photos, as a user would
calibrate on pictures like the ones the model will see). Everything is scored
on real photos that ship with scikit-image and scikit-learn, which neither
training nor calibration saw. Then, at 256x256 on crops of those:
- every precision x batch 1/4/8 through `Translator.infer` (the model alone,
  preparing not timed), beside PyTorch eager at batch 1 under `torch.no_grad()`
  (the reference test script's way), timed round-robin, best round of each kept;
- PSNR of each precision's translated images against fp32's, in 8-bit pixels;
- the int8 model's folder path (`gantx translate` of a folder of JPEG crops)
  against the int8 model alone;
- where the int8 model's time goes: ONNX Runtime's profile, per operator, and
  how much of it still runs in float;
- the int8 export calibrated with MinMax, Entropy and Percentile ranges, each
  through the same layer search, side by side.
Targets on this machine: int8 >= 2.0x fp32 and >= 2.0x PyTorch eager at batch 1,
>= 35 dB against fp32, folder path >= 0.9x the int8 model alone.
Results: benchmarks/results/precision.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from common import NATURE, SIZE, best_of, facts, nature_domains, real_crops, timed, write_results

from gantx import Translator
from gantx.bench import bench_folder, int8_instructions
from gantx.exporters.export import ExportOptions, export
from gantx.exporters.precision import DEFAULT_CALIBRATION_METHOD
from gantx.trainers.checkpoint import load_checkpoint

PRECISIONS = ("fp32", "fp16", "int8")
BATCH_SIZES = (1, 4, 8)


def psnr_u8(reference: list[np.ndarray], test: list[np.ndarray]) -> float:
    errors = [np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) for a, b in zip(reference, test)]
    return float(np.mean([10 * np.log10(255**2 / max(error, 1e-12)) for error in errors]))


def int8_profile(model: Path, batch: np.ndarray, runs: int = 3) -> dict[str, float]:
    """Milliseconds per run spent in each operator type, from ONNX Runtime's own profiler."""
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(model.with_suffix(""))
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        session.run(None, {"input": batch})
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    per_op: dict[str, float] = defaultdict(float)
    first_run_end = None
    for event in events:
        if event.get("cat") == "Session" and event["name"] == "model_run" and first_run_end is None:
            first_run_end = event["ts"] + event["dur"]  # the first run warms up: left out
        if (
            event.get("cat") == "Node"
            and event["name"].endswith("_kernel_time")
            and first_run_end
            and event["ts"] > first_run_end
        ):
            per_op[event["args"]["op_name"]] += event["dur"] / 1000 / runs
    return dict(sorted(per_op.items(), key=lambda item: -item[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", type=Path, help="a gantx CycleGAN run's latest.pt (ResNet-9, trained on photos)"
    )
    parser.add_argument("--prepare-data", type=Path, help="write the training domains here and stop")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=8, help="images per timed run (a multiple of every batch size)")
    parser.add_argument("--target-psnr", type=float, default=35.0)
    parser.add_argument(
        "--calibration-method", default=DEFAULT_CALIBRATION_METHOD, help="the int8 export measured in the main table"
    )
    parser.add_argument(
        "--compare-methods",
        default="minmax,entropy,percentile",
        help="int8 calibration methods exported and scored side by side ('' for none)",
    )
    args = parser.parse_args()
    if args.prepare_data:
        print("wrote", *nature_domains(args.prepare_data))
        return
    if not args.checkpoint:
        parser.error("--checkpoint is required (or --prepare-data)")
    start = facts()
    checkpoint = load_checkpoint(args.checkpoint)
    reports = {}
    with tempfile.TemporaryDirectory(prefix="gantx-precision-") as scratch:
        scratch = Path(scratch)
        photos = NATURE  # calibration: real photos like the training ones
        for precision in PRECISIONS:
            options = ExportOptions(
                precision=precision,
                calibration=photos if precision != "fp32" else None,
                target_psnr=args.target_psnr,
                calibration_method=args.calibration_method,
            )
            reports[precision] = export(args.checkpoint, scratch / f"{precision}.onnx", options, print)
        int8 = reports["int8"].int8
        methods = {}
        for method in filter(None, args.compare_methods.split(",")):
            options = ExportOptions(
                precision="int8", calibration=photos, target_psnr=args.target_psnr, calibration_method=method
            )
            report = (
                reports["int8"]
                if method == args.calibration_method
                else export(args.checkpoint, scratch / f"int8-{method}.onnx", options, print)
            )
            methods[method] = report.int8
        crops = [np.asarray(crop) for crop in real_crops(args.images, SIZE, seed=3)]
        translators = {
            (precision, size): Translator(scratch / f"{precision}.onnx", provider="cpu", batch_size=size)
            for precision in PRECISIONS
            for size in BATCH_SIZES
        }
        prepared = [translators["fp32", 1].prepare(crop) for crop in crops]
        role, entry = checkpoint.generator("AtoB")
        reference = entry.build(role)
        inputs = [torch.from_numpy(item.tensor)[None] for item in prepared]

        def torch_eager() -> None:
            with torch.no_grad():
                for image in inputs:
                    reference(image)

        runs = {
            f"{precision} b{size}": (lambda t=translator: timed(lambda: t.infer(prepared)))
            for (precision, size), translator in translators.items()
        }
        runs["pytorch eager b1"] = lambda: timed(torch_eager)
        best_of(1, runs)  # warm-up
        times = best_of(args.rounds, runs)
        outputs = {
            precision: [np.asarray(image) for image in translators[precision, 1].translate(crops)]
            for precision in PRECISIONS
        }

        folder = scratch / "crops"
        folder.mkdir()
        for index, crop in enumerate(real_crops(16, SIZE, seed=4)):
            crop.save(folder / f"{index:04d}.jpg", quality=95)
        folder_result = bench_folder(translators["int8", 4], "int8", folder, repeats=args.rounds)
        profile = int8_profile(scratch / "int8.onnx", prepared[0].tensor[None])

    rate = {name: args.images / min(values) for name, values in times.items()}
    psnr = {precision: psnr_u8(outputs["fp32"], outputs[precision]) for precision in PRECISIONS[1:]}
    int8_vs_fp32 = {size: rate[f"int8 b{size}"] / rate[f"fp32 b{size}"] for size in BATCH_SIZES}
    int8_vs_torch = rate["int8 b1"] / rate["pytorch eager b1"]
    float_ms = sum(ms for op, ms in profile.items() if op not in ("QLinearConv", "QuantizeLinear", "DequantizeLinear"))
    total_ms = sum(profile.values())

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = []
    for precision in PRECISIONS:
        cells = " | ".join(
            f"{rate[f'{precision} b{size}']:.2f} ({rate[f'{precision} b{size}'] / rate[f'fp32 b{size}']:.2f}x)"
            for size in BATCH_SIZES
        )
        quality = "reference" if precision == "fp32" else f"{psnr[precision]:.1f}"
        rows.append(f"| {precision} | {cells} | {quality} |")
    rows.append(f"| PyTorch eager | {rate['pytorch eager b1']:.2f} | | | {'':s} |")
    profile_rows = "\n".join(f"| {op} | {ms:.0f} | {ms / total_ms:.0%} |" for op, ms in profile.items())
    method_rows = "\n".join(
        f"| {method} | {result.psnr:.1f} | {len(result.quantised)} | {result.int8_work:.0%} | {result.speedup:.2f}x |"
        for method, result in methods.items()
    )
    method_table = (
        (
            f"Calibration methods, each exported with the same layer search for {args.target_psnr:g} dB "
            "(PSNR on the export's held-out photos;\n"
            "speed against fp32 as the export report times it, in turn on one image):\n"
            "\n"
            "| calibration | PSNR dB | convolutions in int8 | multiply-adds in int8 | speed vs fp32 |\n"
            "| --- | --- | --- | --- | --- |\n"
            f"{method_rows}\n"
            "\n"
        )
        if methods
        else ""
    )
    int8_choice = (
        "chosen by the layer search for " + format(int8.target_psnr, "g") + " dB"
        if int8.searched
        else "every convolution fits the target"
    )
    markdown = (
        "\n"
        "### Precision: ResNet-9 CycleGAN generator trained on real photos, 256x256, CPU\n"
        "\n"
        f"int8: {len(int8.quantised)} convolutions in int8 kernels ({int8.int8_work:.0%} of the multiply-adds), "
        f"{len(int8.kept_float)} kept in float\n"
        f"({', '.join(name.rsplit('/', 2)[-2] for name in int8.kept_float)}); "
        f"{int8.method} calibration on {int8.calibration_images} real photos,\n"
        f"{int8_choice}.\n"
        f"fp16 keeps {reports['fp16'].fp16_psnr:.1f} dB on the export's held-out photos.\n"
        f"The CPU's int8 instructions: {', '.join(int8_instructions()) or 'none'}.\n"
        "\n"
        "| precision | images/s (vs fp32) batch 1 | batch 4 | batch 8 "
        f"| PSNR vs fp32 on {len(crops)} held-out real crops (dB) |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"{chr(10).join(rows)}\n"
        "\n"
        f"- int8 / fp32 images/s: {', '.join(f'b{size} {ratio:.2f}x' for size, ratio in int8_vs_fp32.items())} "
        f"(target >= 2.0x at batch 1: {met(int8_vs_fp32[1] >= 2.0)})\n"
        f"- int8 / PyTorch eager, batch 1: {int8_vs_torch:.2f}x (target >= 2.0x: {met(int8_vs_torch >= 2.0)})\n"
        f"- int8 PSNR against fp32: {psnr['int8']:.1f} dB on real crops, "
        f"{int8.psnr:.1f} dB on the export's {int8.held_out_images} held-out photos "
        f"(target >= 35: {met(min(psnr['int8'], int8.psnr) >= 35)})\n"
        f"- folder path (JPEG in and out, batch 4) / int8 model alone: {folder_result.ratio:.2f} "
        f"(target >= 0.9: {met(folder_result.ratio >= 0.9)})\n"
        "\n"
        f"{method_table}Where the int8 model's {total_ms:.0f} ms per 256x256 image go "
        f"(ONNX Runtime's profiler, batch 1; {float_ms / total_ms:.0%} outside the int8 kernels "
        "and their quantise steps):\n"
        "\n"
        "| operator | ms | share |\n"
        "| --- | --- | --- |\n"
        f"{profile_rows}\n"
    )
    write_results(
        "precision",
        {
            "machine": start,
            "checkpoint": {
                "path": str(args.checkpoint),
                "train_command": reports["fp32"].metadata.get("gantx.train_command"),
                "meta": checkpoint.meta,
            },
            "images_per_run": args.images,
            "rounds": args.rounds,
            "seconds_per_run": times,
            "images_per_s": rate,
            "psnr_vs_fp32_on_crops": psnr,
            "int8": {
                "psnr_held_out": int8.psnr,
                "target_psnr": int8.target_psnr,
                "method": int8.method,
                "searched": int8.searched,
                "quantised": int8.quantised,
                "kept_float": int8.kept_float,
                "int8_work": int8.int8_work,
                "export_report_ms": {"fp32": int8.fp32_ms, "int8": int8.int8_ms},
            },
            "fp16_psnr_held_out": reports["fp16"].fp16_psnr,
            "calibration_methods": {
                method: {
                    "psnr_held_out": result.psnr,
                    "quantised": len(result.quantised),
                    "int8_work": result.int8_work,
                    "speedup": result.speedup,
                }
                for method, result in methods.items()
            },
            "int8_vs_fp32": {f"b{size}": ratio for size, ratio in int8_vs_fp32.items()},
            "int8_vs_pytorch_b1": int8_vs_torch,
            "folder_path_vs_int8_model": folder_result.ratio,
            "int8_profile_ms": profile,
            "cpu_int8_instructions": int8_instructions(),
            "cores": os.cpu_count(),
        },
        markdown,
    )


if __name__ == "__main__":
    main()
