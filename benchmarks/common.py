"""What the runtime benchmarks share: the model under test, real inputs, machine facts, result files.

The model is the CycleGAN ResNet-9 generator at 256x256 (random weights: speed
does not depend on them), saved as a bare state_dict the way the reference
CycleGAN implementation saves `latest_net_G.pth` and turned into a gantx model
by gantx's own importer (`gantx export net_G.pth --domains ...`), so the
benchmarks time exactly what a user would run. Both files are cached in the
user cache folder.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from gantx.bench import machine
from gantx.cpu_info import cpu_flags
from gantx.engine_cache import cache_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SIZE = 256
SPEED_FLAG_PREFIXES = ("avx2", "avx512", "avx_vnni", "amx", "fma")  # the CPU flags that decide CPU inference speed


def reference_generator():
    """The PyTorch ResNet-9 generator (gantx's registry builds the reference architecture), random weights, seed 0."""
    import torch

    from gantx.trainers.networks import create_model

    torch.manual_seed(0)
    return create_model("resnet_9blocks").eval()


def resnet9_files() -> tuple[Path, Path]:
    """(net_G.pth, model.onnx) of the reference generator; exported once and cached."""
    import torch

    from gantx.exporters.export import ExportOptions, export

    folder = cache_dir() / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    pth, onnx_path = folder / "resnet9_net_G.pth", folder / "resnet9.onnx"
    if not onnx_path.exists():
        torch.save(reference_generator().state_dict(), pth)
        export(pth, onnx_path, ExportOptions(domains=("photo", "painting")))
    return pth, onnx_path


def photo_paths() -> list[Path]:
    import skimage
    import sklearn

    skimage_data = Path(os.path.dirname(skimage.__file__)) / "data"
    sklearn_images = Path(os.path.dirname(sklearn.__file__)) / "datasets" / "images"
    names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg"]
    return [skimage_data / name for name in names if (skimage_data / name).exists()] + sorted(
        sklearn_images.glob("*.jpg")
    )


NATURE = Path(
    "/usr/share/backgrounds/mate/nature"
)  # Debian's mate-backgrounds: real photographs (its copyright file: GPL-2+)
GRASS = ("Aqua", "Blinds", "Dune", "GreenMeadow", "RainDrops", "Storm", "Wood")
FLOWERS = ("FreshFlower", "Garden", "LadyBird", "TwoWings", "YellowFlower")


def nature_domains(folder: Path, tile: int = 512) -> tuple[Path, Path]:
    """folder/grass and folder/flowers: three square tiles (left, centre, right) of each nature photo at `tile` px high.

    The two domains of the photo CycleGAN that the precision benchmark measures
    (benchmarks/precision.py); its training never sees scikit-image's or
    scikit-learn's photos, which score it.
    """
    if not NATURE.is_dir():
        raise SystemExit(f"{NATURE} is missing: apt-get install mate-backgrounds")
    domains = {"grass": GRASS, "flowers": FLOWERS}
    for domain, names in domains.items():
        (folder / domain).mkdir(parents=True, exist_ok=True)
        for name in names:
            photo = Image.open(NATURE / f"{name}.jpg").convert("RGB")
            scale = tile / min(photo.size)
            photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
            for index, left in enumerate((0, (photo.width - tile) // 2, photo.width - tile)):
                photo.crop((left, 0, left + tile, tile)).save(folder / domain / f"{name}-{index}.png")
    return folder / "grass", folder / "flowers"


def real_crops(count: int, size: int, seed: int = 0) -> list[Image.Image]:
    """`count` size x size RGB crops of real photos (scikit-image, scikit-learn), at random places and scales."""
    rng = np.random.default_rng(seed)
    photos = [Image.open(path).convert("RGB") for path in photo_paths()]
    crops = []
    for index in range(count):
        photo = photos[index % len(photos)]
        side = int(rng.integers(size // 2, min(photo.size) + 1)) if min(photo.size) > size // 2 else min(photo.size)
        left = int(rng.integers(0, photo.width - side + 1))
        top = int(rng.integers(0, photo.height - side + 1))
        crops.append(photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS))
    return crops


def best_of(rounds: int, runs: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each named timing function once per round, round-robin, so load on a shared machine hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(run())
    return times


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def facts() -> dict[str, object]:
    """The machine, plus how busy it was (other work on a 2-core box moves the numbers)."""
    info = machine()
    info["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def speed_flags() -> list[str]:
    """The CPU's flags that decide how fast it runs a model, written beside every speed figure."""
    return sorted(flag for flag in cpu_flags() if flag.startswith(SPEED_FLAG_PREFIXES))


def write_results(name: str, data: dict, markdown: str) -> None:
    """benchmarks/results/NAME.json and NAME.md, stamped with the command and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join([str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]])
    data = {"command": command, "machine_end": facts(), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    machine_line = data["machine"]
    header = (
        f"Measured with `{command}` on {machine_line['cpu']} ({machine_line['cores']} cores), "
        f"onnxruntime {machine_line['onnxruntime']}, torch {machine_line.get('torch', '-')}; "
        f"load average at start {_load(machine_line)}, at end {_load(data['machine_end'])}.\n\n"
    )
    (RESULTS / f"{name}.md").write_text(header + markdown.strip() + "\n")
    print(header + markdown)


def _load(info: dict) -> str:
    load = info.get("load_average")
    return "/".join(f"{value:.1f}" for value in load) if load else "n/a"


def die_with_parent() -> None:
    """Worker initializer: a killed benchmark must not leave its trainings running, orphaned (Linux only).

    SIGKILL, not SIGTERM: a worker has nothing to save, and a handler (torch's,
    a trainer's) must not be able to keep an orphan training into the next run's folders.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != multiprocessing.parent_process().pid:  # the parent died before the line above
            os._exit(1)
