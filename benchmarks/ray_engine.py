"""The Ray engine against the local engine on one machine, on the same folder, in one run.

    flock /tmp/gantx-cpu.lock python benchmarks/ray_engine.py [--images 64] [--batch-size 4] [--rounds 2]

A folder of real photo crops (256x256 JPEG) goes through the ResNet-9 as
`gantx translate DIR` does it, decoding, model, encoding and files written:
- local engine: `translate_files` with one `Translator` (ONNX Runtime on every core), as `--engine local`;
- Ray engine: `gantx.ray_engine.translate_paths` on a local Ray instance started once
  (its start-up is reported, not timed per run), with N actors of one thread
  each (N = cores, the default of `--engine ray`), and with one actor of one
  thread: the per-actor rate. Each Ray run includes starting its actors and
  loading the model in each, as every real run does.
Every configuration runs once per round, round-robin, into a fresh output
folder, and the best round of each counts. One thread, no model, also times
the work around the model (decode, prepare, finish, encode) per image: what a
GPU actor's CPU must do. Target: Ray >= 0.8x the local engine's images/s.
The results file projects N GPUs from these numbers, the arithmetic written
out. Results: benchmarks/results/ray_engine.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import SIZE, best_of, facts, real_crops, resnet9_files, timed, write_results

from gantx import RunSettings, Translator
from gantx.images import open_image, save_image
from gantx.inputs import FileJob, collect_sources, plan_jobs
from gantx.pipeline import translate_files
from gantx.ray_engine import connect, translate_paths

TARGET = 0.8


def work_around_the_model(translator: Translator, jobs: list[FileJob], scratch: Path) -> float:
    """CPU seconds per image of everything but the model, on one thread.

    The prepared input stands in for the output.
    """
    started = time.process_time()
    for job in jobs:
        prepared = translator.prepare(open_image(job.source))
        save_image(translator.finish(prepared, prepared.tensor), scratch / job.target.name)
    return (time.process_time() - started) / len(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--actors", type=int, default=os.cpu_count() or 1, help="actors of the Ray run (default: one per core)"
    )
    args = parser.parse_args()
    start = facts()
    _, model = resnet9_files()
    translator = Translator(model, provider="cpu", batch_size=args.batch_size)

    with tempfile.TemporaryDirectory(prefix="gantx-bench-") as scratch_name:
        scratch = Path(scratch_name)
        folder = scratch / "photos"
        folder.mkdir()
        for index, crop in enumerate(real_crops(args.images, SIZE, seed=3)):
            crop.save(folder / f"{index:04d}.jpg", quality=95)
        sources = collect_sources([str(folder)], scratch)
        runs_done = 0

        def fresh_jobs() -> list[FileJob]:
            nonlocal runs_done
            runs_done += 1
            return plan_jobs(sources, scratch / f"out-{runs_done}", "same", single_file=False)

        def local() -> None:
            failures: list[str] = []

            def report(_: FileJob, error: str | None) -> None:
                if error is not None:
                    failures.append(error)

            translate_files(translator, fresh_jobs(), report)
            assert not failures, failures

        def on_ray(actors: int) -> None:
            settings = RunSettings(provider="cpu", batch_size=args.batch_size, threads=1)
            statuses = translate_paths(fresh_jobs(), model, settings, actors=actors)
            failures = [status.error for status in statuses if status.error]
            assert not failures, failures

        around = work_around_the_model(translator, fresh_jobs(), scratch)
        started = time.perf_counter()
        with connect():
            ray_start = time.perf_counter() - started
            names = {
                "local": "local engine",
                "ray": f"ray, {args.actors} actors x 1 thread",
                "ray1": "ray, 1 actor x 1 thread",
            }
            times = best_of(
                args.rounds,
                {
                    names["local"]: lambda: timed(local),
                    names["ray"]: lambda: timed(lambda: on_ray(args.actors)),
                    names["ray1"]: lambda: timed(lambda: on_ray(1)),
                },
            )

    rate = {name: args.images / min(values) for name, values in times.items()}
    ratio = rate[names["ray"]] / rate[names["local"]]
    per_actor = rate[names["ray1"]]
    efficiency = rate[names["ray"]] / (args.actors * per_actor)
    cores = os.cpu_count() or 1
    rows = "\n".join(
        f"| {name} | {rate[name]:.3f} | {' / '.join(f'{value:.1f}' for value in times[name])} |" for name in times
    )
    markdown = (
        "\n"
        "### Ray engine against the local engine "
        f"(ResNet-9, 256x256 JPEG crops, batch {args.batch_size}, CPU, one machine)\n"
        "\n"
        f"| engine | images/s (best round) | seconds per {args.images} images, each round |\n"
        "| --- | --- | --- |\n"
        f"{rows}\n"
        "\n"
        f"- Ray / local: {ratio:.2f}x (target >= {TARGET}x: {'met' if ratio >= TARGET else 'NOT met'}). "
        "Every Ray run includes\n"
        "  starting its actors and loading the model in each; "
        f"starting the local Ray instance itself took {ray_start:.1f} s, once.\n"
        f"- Per actor: r = {per_actor:.3f} images/s (one actor, one ONNX Runtime thread). "
        f"{args.actors} actors reach\n"
        f"  {rate[names['ray']]:.3f} images/s, so the scaling efficiency here is "
        f"e = {rate[names['ray']]:.3f} / ({args.actors} x {per_actor:.3f}) = {efficiency:.2f}.\n"
        "- Around the model (decode, prepare, finish, encode) each image costs "
        f"c = {around * 1000:.1f} ms of one CPU core.\n"
        "\n"
        "#### On paper: N GPUs\n"
        "\n"
        "One actor per GPU (`--gpus-per-actor 1`), each at r_gpu images/s: "
        "the rate of one GPU actor, which this machine\n"
        "cannot measure (no GPU; on a GPU machine `gantx bench -m resnet9.onnx --provider cuda -b 8` gives it).\n"
        "\n"
        "    expected images/s  =  min( N x r_gpu x e ,  nodes x C / c )\n"
        "\n"
        f"- N x r_gpu x e: the GPUs, at the efficiency e = {efficiency:.2f} measured above. "
        "That e holds as N grows is an\n"
        "  assumption, not measured here: actors share nothing but the driver's stream of status rows, and each call\n"
        "  (4 model batches) lasts far longer than Ray's per-task overhead;\n"
        f"- nodes x C / c: what the CPUs can feed, C cores per node at c = {around:.4f} s per image, i.e.\n"
        f"  {1 / around:.0f} images/s per core, {8 / around:.0f} images/s for an 8-core node.\n"
        "\n"
        f"For example N = 8 GPUs on one 8-core node: 8 x r_gpu x {efficiency:.2f} = {8 * efficiency:.2f} x r_gpu, "
        f"capped at {8 / around:.0f} images/s\n"
        "by that node's CPUs; the GPUs stay the limit while "
        f"r_gpu < {8 / around / (8 * efficiency):.0f} images/s per GPU.\n"
        f"The same arithmetic with CPU actors (r = {per_actor:.3f} images/s each, the measured rate): N actors give\n"
        f"N x {per_actor:.3f} x {efficiency:.2f} = N x {per_actor * efficiency:.3f} images/s, "
        f"e.g. {64 * per_actor * efficiency:.1f} images/s on 64 cores.\n"
    )
    write_results(
        "ray_engine",
        {
            "machine": start,
            "images": args.images,
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "actors": args.actors,
            "cores": cores,
            "ray_start_seconds": ray_start,
            "seconds_per_round": times,
            "images_per_s": rate,
            "ray_vs_local": ratio,
            "per_actor_images_per_s": per_actor,
            "scaling_efficiency": efficiency,
            "cpu_seconds_around_model_per_image": around,
            "targets": {"ray_vs_local_min": TARGET},
        },
        markdown,
    )


if __name__ == "__main__":
    main()
