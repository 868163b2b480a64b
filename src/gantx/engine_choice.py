"""`auto` on the CPU: OpenVINO or ONNX Runtime, whichever runs this model faster here, timed once per machine.

Neither engine wins everywhere: OpenVINO is slower on small models
(fashion-edges2item, batch 8 of 32x32: bf16 0.77x, f32 0.69x of ONNX Runtime
fp32) and faster on large ones (photo-upscale2x at 512x512: bf16 1.86x). So
when a model loads with `provider="auto"` and the CPU is what runs it, both
engines run a few batches of the model's size (its trained size, or the fixed
size or tile asked for) at the settings' batch size, alternated, and OpenVINO
is kept only when it takes at most MARGIN of ONNX Runtime's time: noise never
makes `auto` slower than the ONNX Runtime path. The choice is remembered in
the user cache folder, keyed by all that could change it (the model file's
sha256, the CPU and its flags, both engines' versions, batch size, threads,
precision and the size or tile asked for), so each machine pays for it once.
A remembered choice costs one hash of the model file and one small read, and
opens only the engine it names.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gantx import openvino_engine
from gantx.cpu_info import cpu_flags, cpu_name
from gantx.engine_cache import engine_folder
from gantx.errors import GantxError, first_line
from gantx.extras import ort
from gantx.images import atomic_write
from gantx.model import ModelInfo
from gantx.providers import PROVIDERS, notify_once
from gantx.settings import RunSettings
from gantx.timing import time_in_turn

log = logging.getLogger("gantx")

MARGIN = 0.95  # OpenVINO is chosen when it takes at most this share of ONNX Runtime's time per batch
TIMED_RUNS = 3  # per engine, alternated, after one untimed run each; the best of each is compared
BUDGET_S = 4.0  # a large model stops timing early once each engine has one timed run and this much is spent
FOLDER = "engine-choice"  # in the cache folder: one small JSON file per model and machine


def timing_shape(info: ModelInfo, settings: RunSettings) -> tuple[int, int]:
    """The H, W to time at: a fixed-size model's own; else the tile or the fixed size asked for, else the trained."""
    if info.size_multiple == 0:
        return info.size
    asked = (settings.tile, settings.tile) if settings.tile else settings.size
    height, width = asked if isinstance(asked, tuple) else info.size
    return height + -height % info.size_multiple, width + -width % info.size_multiple


def timing_feeds(info: ModelInfo, settings: RunSettings) -> dict[str, np.ndarray]:
    """One batch of what the model takes, at the settings' batch size."""
    rng = np.random.default_rng(0)
    batch = settings.batch_size
    if info.kind == "noise2image":
        feeds = {"z": rng.standard_normal((batch, info.latent_dim)).astype(np.float32)}
        if info.conditional:
            feeds["label"] = np.arange(batch, dtype=np.int64) % len(info.classes)
        return feeds
    return {"input": rng.uniform(-1, 1, (batch, info.channels_in, *timing_shape(info, settings))).astype(np.float32)}


def time_engines(sessions: Mapping[str, Any], feeds: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The best milliseconds per batch of each session, runs alternated so a busy machine slows all alike."""
    runs = [functools.partial(session.run, ["output"], feeds) for session in sessions.values()]
    times = time_in_turn(runs, TIMED_RUNS, warmup=1, budget_s=BUDGET_S)
    return {name: min(spent) * 1000 for name, spent in zip(sessions, times)}


def choice_key(path: Path, settings: RunSettings) -> dict[str, object]:
    """Everything that could change which engine is faster (the model's own shapes are in its file's hash)."""
    return {
        "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "cpu": cpu_name(),
        "cpu_flags": sorted(cpu_flags()),
        "onnxruntime": ort.__version__,
        "openvino": openvino_engine.version(),
        "batch_size": settings.batch_size,
        "threads": settings.threads,
        "precision": settings.precision,
        "size": settings.size,
        "tile": settings.tile,
    }


def remembered(file: Path) -> str | None:
    """The engine a previous timing chose, or None when there is none (or it cannot be read)."""
    try:
        engine = json.loads(file.read_text())["engine"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return engine if engine in ("openvino", "onnxruntime") else None


def start_openvino(
    path: Path, settings: RunSettings, open_openvino: Callable[[Path, RunSettings, Any], Any], described: Any
) -> Any | None:
    """An OpenVINO session on `path`, or None (said once) when it cannot start: auto then runs ONNX Runtime."""
    try:
        return open_openvino(path, settings, described)
    except GantxError as error:  # a provider named that cannot start is an error elsewhere
        notice = f"gantx: OpenVINO could not start here ({first_line(error)}); running on {PROVIDERS['cpu']}"
        notify_once(logging.WARNING, notice)
        return None


def choose_cpu_engine(
    path: Path,
    settings: RunSettings,
    open_onnxruntime: Callable[[], Any],
    open_openvino: Callable[[Path, RunSettings, Any], Any],
) -> Any:
    """ONNX Runtime on the CPU or OpenVINO on `path`, whichever is faster here; a remembered choice opens only it."""
    key = choice_key(path, settings)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    file = engine_folder(FOLDER) / f"{digest}.json"
    engine = remembered(file)
    if engine == "openvino":
        ov_session = start_openvino(path, settings, open_openvino, None)
        if ov_session is not None:
            log.debug("gantx: %s runs on OpenVINO %s here (timed before: %s)", path.name, ov_session.precision, file)
            return ov_session
        return open_onnxruntime()
    ort_session = open_onnxruntime()
    if engine == "onnxruntime":
        log.debug("gantx: %s runs on ONNX Runtime here (timed before: %s)", path.name, file)
        return ort_session
    info = ModelInfo.from_session(ort_session, path)
    feeds = timing_feeds(info, settings)
    names = ([node.name for node in ort_session.get_inputs()], [node.name for node in ort_session.get_outputs()])
    if names[0] != list(feeds) or "output" not in names[1]:
        return ort_session  # outside the contract: Translator or Generator refuses it, in its own words
    ov_session = start_openvino(path, settings, open_openvino, ort_session)  # the contract as ONNX Runtime read it
    if ov_session is None:
        return ort_session
    log.info("gantx: timing OpenVINO against ONNX Runtime on %s (once on this machine)", path.name)
    ms = time_engines({"openvino": ov_session, "onnxruntime": ort_session}, feeds)
    engine = "openvino" if ms["openvino"] <= MARGIN * ms["onnxruntime"] else "onnxruntime"
    shapes = {name: list(value.shape) for name, value in feeds.items()}
    record = {"engine": engine, "ms_per_batch": ms, "shapes": shapes, "key": key}
    atomic_write(file, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
    log.info(
        "gantx: %s: OpenVINO %s %.2f ms, ONNX Runtime %s %.2f ms a batch of %d: running on %s",
        path.name,
        ov_session.precision,
        ms["openvino"],
        ort_session.precision,
        ms["onnxruntime"],
        settings.batch_size,
        "OpenVINO" if engine == "openvino" else "ONNX Runtime",
    )
    return ov_session if engine == "openvino" else ort_session
