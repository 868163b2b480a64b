"""`gantx serve` under load: throughput and latency against the model alone, the batches it forms, and a soak.

    flock /tmp/gantx-cpu.lock python benchmarks/serve.py [--images 64] [--requests 10000] [--parts throughput soak]

A real `gantx serve -p P` subprocess (--provider P: cpu, or openvino) on a loopback port with its defaults
(--max-batch 8, --max-wait-ms 10, --queue 64), and real async HTTP clients
(httpx), each sending its next request as soon as the last is answered.

- throughput: the CycleGAN ResNet-9 generator at 256x256 on real photo crops
  sent as PNG bodies. At 1, 4 and 16 concurrent clients, --images requests are
  answered; throughput is images answered per second of wall time, latency is
  each request's as its client saw it (p50, p99), and the mean batch is the
  change in gantx_batch_size's sum over its count on /metrics. The model alone
  is `Translator(model, provider=P, batch_size=b).infer` on the same crops, already
  prepared (no decoding, no encoding, no HTTP), b = 1 and 8, in this process
  while the server idles; the better of the two, and its best of --rounds, is
  what the server is compared with (so the ratio is, if anything, low).
- soak: --requests small requests (the 28x28 zoo model fashion-sneaker2boot on
  the real Fashion-MNIST items that ship with gantx) from 16 clients, every
  tenth malformed (not an image, a truncated PNG, an empty body, a header
  claiming 30000x30000 pixels, a bad size query). Counted: 5xx responses,
  dropped connections (any transport error), answers that are not the status
  expected or whose pixels differ from `Translator`'s; the server's resident
  memory (/proc) after the first 1,000 requests and after the last.

Targets: 16 clients >= 0.85x the model alone; mean batch > 2 at 16 clients;
soak with 0 5xx, 0 dropped connections, RSS growth < 10% from the first 1,000
requests to the last. Results: benchmarks/results/serve.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from common import SIZE, best_of, facts, real_crops, resnet9_files, timed, write_results
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from gantx import RunSettings, Translator
from gantx.zoo import fashion_samples

CLI = "from gantx.cli import main; main()"
CLIENTS = (1, 4, 16)
MAX_BATCH = 8  # gantx serve's default --max-batch
SOAK_MODEL = "fashion-sneaker2boot"
SOAK_CLIENTS = 16
RSS_FIRST = 1000
MIN_RATIO, MIN_MEAN_BATCH, MAX_RSS_GROWTH = 0.85, 2, 0.10  # the targets, at 16 clients and over the soak


@dataclass
class Request:
    """One request of a load: its body, query, the status it should get and, for a 200, the pixels."""

    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    status: int = 200
    pixels: np.ndarray | None = None


@dataclass
class Load:
    """What the clients saw."""

    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    dropped: int = 0  # transport errors: refused, reset or cut-off connections
    unexpected: int = 0  # another status than expected, or other pixels than Translator's


# -- the server ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def gantx_serve(models: dict[str, str], log: Path, engine: list[str]) -> Iterator[tuple[str, int]]:
    """A ready `gantx serve` subprocess on a free loopback port: (its URL, its pid); SIGTERM at the end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    specs = [argument for name, path in models.items() for argument in ("-m", f"{name}={path}")]
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", *specs, *engine, "--port", str(port)],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        while not _ready(url):
            if process.poll() is not None:
                raise SystemExit(f"gantx serve exited with {process.returncode}:\n{log.read_text()}")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        if process.wait(120) != 0:
            raise SystemExit(f"gantx serve exited with {process.returncode} on SIGTERM:\n{log.read_text()}")


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def batches(url: str, model: str) -> tuple[float, float]:
    """(sum, count) of gantx_batch_size for `model`, from /metrics."""
    values = {"gantx_batch_size_sum": 0.0, "gantx_batch_size_count": 0.0}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name in values and sample.labels.get("model") == model:
                values[sample.name] = sample.value
    return values["gantx_batch_size_sum"], values["gantx_batch_size_count"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc: the soak's memory check needs Linux")


# -- the clients --------------------------------------------------------------------------------------


async def send(
    url: str, requests: list[Request], clients: int, on_answer: Callable[[int], None] = lambda done: None
) -> Load:
    """Every request, from `clients` concurrent clients that each send the next one as soon as theirs is answered."""
    load, pending = Load(), iter(enumerate(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300), limits=limits) as client:

        async def client_loop() -> None:
            for _, request in pending:
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=request.body, params=request.params)
                except httpx.TransportError:
                    load.dropped += 1
                    continue
                load.latencies.append(time.perf_counter() - started)
                load.statuses[response.status_code] += 1
                if response.status_code != request.status or (
                    request.pixels is not None and not _same_pixels(response.content, request.pixels)
                ):
                    load.unexpected += 1
                on_answer(len(load.latencies) + load.dropped)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(clients)))
        load.seconds = time.perf_counter() - started
    return load


def _same_pixels(content: bytes, pixels: np.ndarray) -> bool:
    with Image.open(io.BytesIO(content)) as image:
        return np.array_equal(np.asarray(image), pixels)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else float("nan")


# -- the parts ------------------------------------------------------------------------------------------


def model_alone(model: Path, crops: list[Image.Image], rounds: int, run: RunSettings) -> dict[str, list[float]]:
    """Seconds per round of the model alone on `crops` at batch 1 and MAX_BATCH.

    Its sessions are gone once the clients start.
    """
    translators = {size: Translator(model, run, batch_size=size) for size in (1, MAX_BATCH)}
    prepared = [translators[1].prepare(crop) for crop in crops]
    return best_of(
        rounds,
        {
            f"b{size}": (lambda translator=translator: timed(lambda: translator.infer(prepared)))
            for size, translator in translators.items()
        },
    )


def throughput(url: str, model: Path, images: int, rounds: int, run: RunSettings) -> dict:
    crops = real_crops(images, SIZE, seed=5)
    bodies = [Request(png(crop)) for crop in crops]
    endpoint = f"{url}/v1/models/resnet9/translate"
    asyncio.run(
        send(endpoint, [bodies[index % images] for index in range(MAX_BATCH)], MAX_BATCH)
    )  # warm-up: a full batch's first run allocates

    times = model_alone(model, crops, rounds, run)
    alone = {name: images / min(values) for name, values in times.items()}
    best_alone = max(alone.values())

    levels = []
    for clients in CLIENTS:
        batch_sum, batch_count = batches(url, "resnet9")
        load = asyncio.run(send(endpoint, bodies, clients))
        after_sum, after_count = batches(url, "resnet9")
        answered = load.statuses[200]
        levels.append(
            {
                "clients": clients,
                "images": answered,
                "seconds": load.seconds,
                "images_per_s": answered / load.seconds,
                "vs_model_alone": answered / load.seconds / best_alone,
                "latency_ms": {"p50": percentile_ms(load.latencies, 50), "p99": percentile_ms(load.latencies, 99)},
                "mean_batch": (after_sum - batch_sum) / (after_count - batch_count)
                if after_count > batch_count
                else None,
                "statuses": dict(load.statuses),
                "dropped": load.dropped,
            }
        )
        print(
            f"{clients} clients: {levels[-1]['images_per_s']:.3f} img/s, mean batch {levels[-1]['mean_batch']}",
            flush=True,
        )
    return {
        "images_per_level": images,
        "model_alone_images_per_s": alone,
        "model_alone_seconds": times,
        "levels": levels,
    }


def soak_requests(count: int) -> list[Request]:
    """Real Fashion-MNIST items with Translator's answers, and every tenth request malformed, in turn."""
    translator = Translator(SOAK_MODEL, provider="cpu")
    items = [path.read_bytes() for path in fashion_samples()]
    good = [Request(item, pixels=np.asarray(translator.translate(Image.open(io.BytesIO(item))))) for item in items]
    header = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", (30000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0]))
        + _chunk(b"IEND", b"")
    )
    malformed = [
        Request(b"this is not an image", status=400),
        Request(items[0][: len(items[0]) // 2], status=400),  # truncated PNG
        Request(b"", status=400),
        Request(header, status=413),  # a decompression bomb's calling card
        Request(items[1], params={"size": "0"}, status=400),
    ]
    return [
        malformed[(index // 10) % len(malformed)] if index % 10 == 9 else good[index % len(good)]
        for index in range(count)
    ]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def soak(url: str, pid: int, count: int) -> dict:
    requests = soak_requests(count)
    rss: dict[str, float] = {"start": rss_mb(pid)}

    def on_answer(done: int) -> None:
        if done == min(RSS_FIRST, count):
            rss["after_first"] = rss_mb(pid)

    load = asyncio.run(send(f"{url}/v1/models/{SOAK_MODEL}/translate", requests, SOAK_CLIENTS, on_answer))
    rss["after_last"] = rss_mb(pid)
    server_errors = sum(number for status, number in load.statuses.items() if status >= 500)
    return {
        "requests": count,
        "clients": SOAK_CLIENTS,
        "malformed": sum(request.status != 200 for request in requests),
        "seconds": load.seconds,
        "requests_per_s": count / load.seconds,
        "statuses": dict(load.statuses),
        "server_errors": server_errors,
        "dropped": load.dropped,
        "unexpected": load.unexpected,
        "rss_mb": rss,
        "rss_growth": rss["after_last"] / rss["after_first"] - 1,
        "latency_ms": {"p50": percentile_ms(load.latencies, 50), "p99": percentile_ms(load.latencies, 99)},
    }


# -- the report -----------------------------------------------------------------------------------------


def met(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def report(results: dict) -> str:
    lines = []
    if "throughput" in results:
        part = results["throughput"]
        alone = part["model_alone_images_per_s"]
        lines += [
            "### Throughput: ResNet-9 generator, 256x256 real photo crops (PNG), "
            f"{part['images_per_level']} images per level, CPU, {part['engine']}",
            "",
            "Model alone (`Translator.infer`, prepared inputs): "
            f"{', '.join(f'{name} {value:.3f} img/s' for name, value in alone.items())}.",
            "",
            "| clients | images/s | vs model alone | p50 ms | p99 ms | mean batch |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for level in part["levels"]:
            mean_batch = f"{level['mean_batch']:.2f}" if level["mean_batch"] is not None else "-"
            lines.append(
                f"| {level['clients']} | {level['images_per_s']:.3f} | {level['vs_model_alone']:.2f}x "
                f"| {level['latency_ms']['p50']:.0f} | {level['latency_ms']['p99']:.0f} | {mean_batch} |"
            )
        top = part["levels"][-1]
        lines += [
            "",
            f"- {top['clients']} clients / model alone: {top['vs_model_alone']:.2f}x "
            f"(target >= {MIN_RATIO}: {met(top['vs_model_alone'] >= MIN_RATIO)})",
            f"- mean batch at {top['clients']} clients: {top['mean_batch'] or 0:.2f} "
            f"(target > {MIN_MEAN_BATCH}: {met((top['mean_batch'] or 0) > MIN_MEAN_BATCH)})",
            "",
        ]
    if "soak" in results:
        part = results["soak"]
        rss = part["rss_mb"]
        lines += [
            f"### Soak: {part['requests']:,} requests to {SOAK_MODEL} (28x28) from {part['clients']} clients, "
            f"{part['malformed']:,} malformed",
            "",
            f"- {part['requests_per_s']:.0f} requests/s; statuses "
            f"{', '.join(f'{status}: {number:,}' for status, number in sorted(part['statuses'].items()))}; "
            f"answers other than expected: {part['unexpected']}",
            f"- 5xx responses: {part['server_errors']} (target 0: {met(part['server_errors'] == 0)}); "
            f"dropped connections: {part['dropped']} (target 0: {met(part['dropped'] == 0)})",
            f"- server RSS {rss['after_first']:.0f} MB after the first {min(RSS_FIRST, part['requests']):,} requests, "
            f"{rss['after_last']:.0f} MB after the last: "
            f"{part['rss_growth'] * 100:+.1f}% "
            f"(target < {MAX_RSS_GROWTH:.0%}: {met(part['rss_growth'] < MAX_RSS_GROWTH)})",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="requests answered per concurrency level (throughput)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds of the model alone; the best counts")
    parser.add_argument("--requests", type=int, default=10000, help="requests of the soak")
    parser.add_argument("--parts", nargs="+", choices=("throughput", "soak"), default=["throughput", "soak"])
    parser.add_argument("--provider", default="cpu", help="the engine of the server and of the model alone")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    run = RunSettings(provider=args.provider, precision=args.precision)
    engine = ["-p", args.provider, "--precision", args.precision]
    start = facts()
    _, model = resnet9_files()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="gantx-serve-") as scratch:
        log = Path(scratch) / "serve.log"
        with gantx_serve({"resnet9": str(model), SOAK_MODEL: SOAK_MODEL}, log, engine) as (url, pid):
            if "throughput" in args.parts:
                results["throughput"] = throughput(url, model, args.images, args.rounds, run)
                results["throughput"]["engine"] = " ".join(engine)
            if "soak" in args.parts:
                results["soak"] = soak(url, pid, args.requests)
    write_results(
        "serve" + ("" if args.provider == "cpu" else f"-{args.provider}"),
        {
            "machine": start,
            "model": {"arch": "resnet_9blocks", "size": [SIZE, SIZE], "file": str(model)},
            "server": {
                "max_batch": MAX_BATCH,
                "max_wait_ms": 10,
                "queue": 64,
                "provider": args.provider,
                "precision": args.precision,
            },
            **results,
            "targets": {
                "vs_model_alone_at_16_min": MIN_RATIO,
                "mean_batch_at_16_over": MIN_MEAN_BATCH,
                "soak_5xx": 0,
                "soak_dropped": 0,
                "soak_rss_growth_under": MAX_RSS_GROWTH,
            },
        },
        report(results),
    )


if __name__ == "__main__":
    main()
