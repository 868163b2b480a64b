"""Train photo-upscale2x, score it against Lanczos on photos no training saw, and ship it to the zoo.

    python benchmarks/upscale.py                  # both recipes, their scores over minutes, the zoo model, the picture
    # a smoke run, outside the repo:
    python benchmarks/upscale.py --epochs 4 --max-steps 20 --runs /tmp/up/runs --scratch /tmp/up

Two recipes train side by side, in two worker processes of one torch thread
each, on the same random crops of Debian's mate-backgrounds nature photos
(docs/photo-data.md): L1 alone (the best PSNR) and L1 plus a PatchGAN (sharper
texture, a little PSNR given up). Each keeps checkpoints at 1/4 and 1/2 of its
epochs, so the table shows quality against training minutes.

Every model is exported with `gantx export` and scored through the runtime
(gantx.Translator) on the photos bundled with scikit-image and scikit-learn,
each halved with Pillow's Lanczos: PSNR and SSIM (scikit-image's metrics)
against the original, beside Pillow's Lanczos 2x of the same halves, and the
detail kept (mean absolute Laplacian of the result over the original's).
Targets: PSNR >= 1.0 dB over Lanczos on average, SSIM above Lanczos on every photo.

The zoo gets the recipe that meets both targets and keeps the detail closest
to the original's (sharper without inventing texture), in fp32 unless int8 meets
the same targets and runs at least 1.3x faster. Results:
benchmarks/results/upscale.{json,md}, docs/images/upscale-side-by-side.png.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import NATURE, ROOT, die_with_parent, facts, photo_paths, write_results
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import gantx
from gantx.bench import bench_models
from gantx.zoo import PHOTO_UPSCALER

RECIPES = {"L1": {"adversarial_weight": 0.0}, "L1 + PatchGAN": {"adversarial_weight": 0.01}}
OPTIONS = {
    "crops": 8000,
    "seed": 0,
    "lr": 5e-4,
    "beta1": 0.9,
    "ndf": 16,
}  # clean Lanczos halves, as the photos are scored
SNAPSHOTS = (4, 2)  # checkpoints at 1/4 and 1/2 of the epochs, scored beside the whole run
SPEED_SIZE = (512, 512)  # input H, W for the speed figure: 1 megapixel of output
CROP = 96  # side of the side-by-side picture's crop, in input pixels


def halved(photo: Image.Image) -> tuple[Image.Image, Image.Image]:
    """(the photo cropped to even sides, its Lanczos half): the original to score against and the input."""
    original = photo.crop((0, 0, photo.width // 2 * 2, photo.height // 2 * 2))
    return original, original.resize((original.width // 2, original.height // 2), Image.Resampling.LANCZOS)


def detail(image: np.ndarray) -> float:
    """Mean absolute Laplacian of the grey image: how much fine detail there is."""
    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return float(np.abs(ndimage.laplace(grey)).mean())


def score(upscale, pairs: dict[str, tuple[Image.Image, Image.Image]]) -> dict[str, dict[str, float]]:
    """Per photo: PSNR, SSIM and detail kept of `upscale(half)` against the original."""
    scores = {}
    for name, (original, half) in pairs.items():
        truth, result = np.asarray(original), np.asarray(upscale(half))
        scores[name] = {
            "psnr": float(peak_signal_noise_ratio(truth, result, data_range=255)),
            "ssim": float(structural_similarity(truth, result, channel_axis=2, data_range=255)),
            "detail": detail(result) / detail(truth),
        }
    return scores


def lanczos(half: Image.Image) -> Image.Image:
    return half.resize((half.width * 2, half.height * 2), Image.Resampling.LANCZOS)


def summary(scores: dict[str, dict[str, float]], baseline: dict[str, dict[str, float]]) -> dict[str, float | bool]:
    psnr = np.mean([photo["psnr"] for photo in scores.values()])
    gain = psnr - np.mean([photo["psnr"] for photo in baseline.values()])
    ssim_above = all(scores[name]["ssim"] > baseline[name]["ssim"] for name in scores)
    return {
        "psnr": float(psnr),
        "psnr_gain": float(gain),
        "ssim": float(np.mean([photo["ssim"] for photo in scores.values()])),
        "ssim_above_everywhere": ssim_above,
        "detail": float(np.mean([photo["detail"] for photo in scores.values()])),
        "meets_targets": bool(gain >= 1.0 and ssim_above),
    }


def train(recipe: str, run_dir: Path, epochs: int, max_steps: int) -> dict[str, object]:
    """One recipe's training (in a worker process, one torch thread); returns its checkpoints and their minutes."""
    import torch

    from gantx.trainers.checkpoint import load_checkpoint
    from gantx.trainers.train import run

    torch.set_num_threads(1)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    options = {
        **OPTIONS,
        **RECIPES[recipe],
        "epochs": epochs // 2,
        "decay_epochs": epochs - epochs // 2,
        "save_every": epochs // SNAPSHOTS[0],
    }
    run("upscale", run_dir, {**options, **({"max_steps": max_steps} if max_steps else {})}, quiet=True)
    checkpoints = {f"1/{fraction}": run_dir / f"gan_epoch_{epochs // fraction:04d}.pt" for fraction in SNAPSHOTS}
    checkpoints["all"] = run_dir / "latest.pt"
    return {
        stage: {"checkpoint": path, "minutes": load_checkpoint(path).meta["minutes"]}
        for stage, path in checkpoints.items()
        if path.exists()
    }


def side_by_side(
    pairs: dict[str, tuple[Image.Image, Image.Image]], upscaled: dict[str, Image.Image], path: Path
) -> None:
    """Per photo, one crop: nearest (the input's pixels), Lanczos, the model, the original, captioned."""
    columns = ("input (nearest)", "Lanczos 2x", PHOTO_UPSCALER, "original")
    side, caption = CROP * 2, 24
    sheet = Image.new("RGB", (side * len(columns), (side + caption) * len(pairs)), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(size=14)
    for row, (name, (original, half)) in enumerate(pairs.items()):
        left, top = (half.width - CROP) // 2, (half.height - CROP) // 2
        box, big = (left, top, left + CROP, top + CROP), (2 * left, 2 * top, 2 * left + side, 2 * top + side)
        tiles = (
            half.crop(box).resize((side, side), Image.Resampling.NEAREST),
            lanczos(half).crop(big),
            upscaled[name].crop(big),
            original.crop(big),
        )
        y = row * (side + caption)
        for column, (label, tile) in enumerate(zip(columns, tiles)):
            sheet.paste(tile, (column * side, y + caption))
            draw.text((column * side + 4, y + 4), f"{name}: {label}" if column == 0 else label, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--epochs",
        type=int,
        default=16,
        help=(
            "epochs of each recipe, the learning rate decaying to 0 over the second half "
            "(a multiple of 4: snapshots at 1/4 and 1/2)"
        ),
    )
    parser.add_argument("--max-steps", type=int, default=0, help="stop each training early (a smoke run)")
    parser.add_argument("--runs", type=Path, default=Path("runs/upscale"), help="run folders")
    parser.add_argument(
        "--scratch", type=Path, help="write the model, results and picture here instead of the repository"
    )
    args = parser.parse_args()
    if args.epochs % SNAPSHOTS[0]:
        parser.error(f"--epochs {args.epochs} cannot be cut in quarters")
    if not NATURE.is_dir():
        raise SystemExit(f"{NATURE} is missing: apt-get install mate-backgrounds")
    started, machine = time.perf_counter(), facts()
    pairs = {path.stem: halved(Image.open(path).convert("RGB")) for path in photo_paths()}
    baseline = score(lanczos, pairs)

    with ProcessPoolExecutor(len(RECIPES), multiprocessing.get_context("spawn"), die_with_parent) as pool:
        futures = {
            recipe: pool.submit(
                train, recipe, args.runs / recipe.replace(" + ", "-").lower(), args.epochs, args.max_steps
            )
            for recipe in RECIPES
        }
        stages = {recipe: future.result() for recipe, future in futures.items()}
    print(f"trained in {(time.perf_counter() - started) / 60:.1f} min", flush=True)

    from gantx.exporters.export import ExportOptions, export

    results: dict[str, dict] = {}
    for recipe, checkpoints in stages.items():
        for stage, found in checkpoints.items():
            model = Path(found["checkpoint"]).with_suffix(".onnx")
            export(found["checkpoint"], model, ExportOptions())
            translator = gantx.Translator(model, provider="cpu", batch_size=1)
            scores = score(translator.translate, pairs)
            results.setdefault(recipe, {})[stage] = {
                "minutes": found["minutes"],
                "model": str(model),
                **summary(scores, baseline),
                "photos": scores,
            }
            print(
                recipe,
                stage,
                {key: value for key, value in results[recipe][stage].items() if key != "photos"},
                flush=True,
            )

    finals = {recipe: recipe_stages["all"] for recipe, recipe_stages in results.items()}
    meeting = [recipe for recipe, final in finals.items() if final["meets_targets"]] or list(finals)
    shipped = min(meeting, key=lambda recipe: abs(np.log(finals[recipe]["detail"])))
    checkpoint = stages[shipped]["all"]["checkpoint"]

    zoo = (args.scratch or ROOT / "src/gantx/data") / "models"
    zoo.mkdir(parents=True, exist_ok=True)
    fp32_model = zoo / f"{PHOTO_UPSCALER}.onnx"
    shutil.copy(finals[shipped]["model"], fp32_model)
    int8_model = args.runs / f"{PHOTO_UPSCALER}-int8.onnx"
    calibration = args.runs / "calibration"
    calibration.mkdir(parents=True, exist_ok=True)
    for path in sorted(NATURE.glob("*.jpg")):  # the training photos, halved as the runtime's inputs are
        halved(Image.open(path).convert("RGB"))[1].save(calibration / f"{path.stem}.png")
    int8_report = export(
        checkpoint, int8_model, ExportOptions(precision="int8", calibration=calibration, target_psnr=40.0), print
    )
    int8_scores = score(gantx.Translator(int8_model, provider="cpu", batch_size=1).translate, pairs)
    int8_summary = summary(int8_scores, baseline)

    translators = [gantx.Translator(path, provider="cpu", batch_size=1) for path in (fp32_model, int8_model)]
    speed = bench_models(translators, ["fp32", "int8"], 1, SPEED_SIZE, warmup=2, iters=10)
    megapixels = {result.model: result.images_per_s * 4 * result.height * result.width / 1e6 for result in speed}
    int8_pays = int8_summary["meets_targets"] and megapixels["int8"] >= 1.3 * megapixels["fp32"]
    if int8_pays:
        shutil.copy(int8_model, fp32_model)
    precision = "int8" if int8_pays else "fp32"

    upscaled = {
        name: image
        for name, image in zip(
            pairs,
            gantx.Translator(fp32_model, provider="cpu", batch_size=1).translate([half for _, half in pairs.values()]),
        )
    }
    picture = (args.scratch or ROOT / "docs/images") / "upscale-side-by-side.png"
    side_by_side(dict(list(pairs.items())[:4]), upscaled, picture)

    lanczos_psnr = np.mean([photo["psnr"] for photo in baseline.values()])
    lanczos_ssim = np.mean([photo["ssim"] for photo in baseline.values()])
    rows = [f"| Lanczos 2x (Pillow) | | {lanczos_psnr:.2f} | | {lanczos_ssim:.4f} | | 1.00 * |"]
    for recipe, recipe_stages in results.items():
        for stage, result in recipe_stages.items():
            rows.append(
                f"| {recipe}, {stage} | {result['minutes']:.1f} | {result['psnr']:.2f} | {result['psnr_gain']:+.2f} "
                f"| {result['ssim']:.4f} | "
                f"{'yes' if result['ssim_above_everywhere'] else 'no'} | {result['detail']:.2f} |"
            )
    rows.append(
        f"| {shipped}, int8 | | {int8_summary['psnr']:.2f} | {int8_summary['psnr_gain']:+.2f} "
        f"| {int8_summary['ssim']:.4f} | "
        f"{'yes' if int8_summary['ssim_above_everywhere'] else 'no'} | {int8_summary['detail']:.2f} |"
    )
    per_photo = "\n".join(
        f"| {name} | {half.width}x{half.height} | {baseline[name]['psnr']:.2f} / {baseline[name]['ssim']:.4f} | "
        f"{results[shipped]['all']['photos'][name]['psnr']:.2f} / "
        f"{results[shipped]['all']['photos'][name]['ssim']:.4f} |"
        for name, (_, half) in pairs.items()
    )
    detail_note = "* Lanczos keeps {:.2f} of the originals' detail".format(
        np.mean([photo["detail"] for photo in baseline.values()])
    )
    markdown = (
        "\n"
        "### photo-upscale2x: 2x upscaling of real photos no training saw (scikit-image, scikit-learn), CPU\n"
        "\n"
        f"Each recipe trained {args.epochs} epochs (Adam, lr 5e-4, beta1 0.9, decaying to 0 over the second half) "
        "of 8,000 random 96 px crops\n"
        "of Debian's mate-backgrounds nature photos, inputs halved with Lanczos "
        "(no JPEG or noise: the photos are scored clean),\n"
        "two recipes at once on one thread each;\n"
        f'"minutes" is the training time to that checkpoint. Scored on {len(pairs)} photos, each halved with Lanczos.\n'
        "\n"
        "| model | train minutes | PSNR dB | vs Lanczos | SSIM | SSIM above Lanczos on every photo | detail kept |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
        f"{chr(10).join(rows)}\n"
        "\n"
        f"{detail_note}; \"detail kept\" is the result's mean absolute Laplacian over the original's.\n"
        "\n"
        f"Shipped: **{shipped}** as `{PHOTO_UPSCALER}` ({precision}, {fp32_model.stat().st_size / 1e6:.2f} MB): it\n"
        f"{'meets both targets' if finals[shipped]['meets_targets'] else 'misses a target'} "
        f"(PSNR >= 1.0 dB over Lanczos: {finals[shipped]['psnr_gain']:+.2f} dB;\n"
        f"SSIM above Lanczos on every photo: {'yes' if finals[shipped]['ssim_above_everywhere'] else 'no'}) "
        "and its detail is the closest to the originals' of the recipes "
        f"{'that meet them' if finals[shipped]['meets_targets'] else 'trained'}.\n"
        f"int8 ({len(int8_report.int8.quantised)} convolutions, {int8_report.int8.int8_work:.0%} of the work) "
        f"runs at {megapixels['int8'] / megapixels['fp32']:.2f}x fp32\n"
        f"and {'meets' if int8_summary['meets_targets'] else 'misses'} the targets: "
        f"{'shipped' if int8_pays else 'not shipped (int8 must meet both targets and run >= 1.3x fp32)'}.\n"
        "\n"
        f"Speed (`gantx bench`, batch 1, {SPEED_SIZE[0]}x{SPEED_SIZE[1]} in, 1 megapixel out): "
        f"fp32 {megapixels['fp32']:.2f}, int8 {megapixels['int8']:.2f} megapixels of output per second.\n"
        "\n"
        f"Per photo, PSNR dB / SSIM (Lanczos, then {shipped}):\n"
        "\n"
        f"| photo | input | Lanczos | {shipped} |\n"
        "| --- | --- | --- | --- |\n"
        f"{per_photo}\n"
        "\n"
        "Side by side (centre crops): docs/images/upscale-side-by-side.png. "
        f"The whole run took {(time.perf_counter() - started) / 60:.0f} minutes.\n"
    )
    data = {
        "machine": machine,
        "epochs": args.epochs,
        "options": OPTIONS,
        "recipes": RECIPES,
        "lanczos": baseline,
        "results": results,
    }
    data.update(shipped=shipped, precision=precision, int8=int8_summary, megapixels_per_s=megapixels)
    if args.scratch:
        (args.scratch / "upscale.md").write_text(markdown)
        print(markdown)
    else:
        write_results("upscale", data, markdown)


if __name__ == "__main__":
    main()
