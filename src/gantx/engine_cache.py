"""The user cache folder, where engines keep what takes long to build or measure.

TensorRT keeps its engines and timing caches there; `auto` on the CPU, which
of OpenVINO and ONNX Runtime ran each model faster (gantx.engine_choice).

Each provider gets a sub-folder of its own (`engine_folder`); the whole folder
is kept under GANTX_CACHE_MAX_MB by deleting the least recently used files,
and `gantx cache` shows and clears it. Sessions keep no optimised graphs here
(gantx.session says why).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from gantx.errors import ProviderError

DEFAULT_CACHE_MAX_MB = 4096


def cache_dir() -> Path:
    """The user cache folder (TensorRT engines, benchmark models); GANTX_CACHE_DIR overrides it."""
    return Path(os.environ.get("GANTX_CACHE_DIR") or platformdirs.user_cache_dir("gantx"))


def cache_limit_bytes() -> int:
    """How large the cache folder may grow before its least recently used files go (GANTX_CACHE_MAX_MB)."""
    text = os.environ.get("GANTX_CACHE_MAX_MB", str(DEFAULT_CACHE_MAX_MB))
    try:
        return int(float(text) * 1e6)
    except ValueError:
        raise ProviderError(f"GANTX_CACHE_MAX_MB={text!r}: expected a number of megabytes") from None


def cache_files(folder: Path | None = None) -> list[Path]:
    folder = folder or cache_dir()
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []


def prune_cache(limit: int, folder: Path | None = None) -> list[Path]:
    """Delete the least recently used files until the cache folder holds at most `limit` bytes; returns what went."""
    files = sorted(cache_files(folder), key=lambda path: max(path.stat().st_atime, path.stat().st_mtime))
    total = sum(path.stat().st_size for path in files)
    removed = []
    for path in files:
        if total <= limit:
            break
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def engine_folder(engine: str) -> Path:
    """The sub-folder where `engine` keeps its builds, created; the cache is pruned first, as a build may follow."""
    folder = cache_dir() / engine
    folder.mkdir(parents=True, exist_ok=True)
    prune_cache(cache_limit_bytes())
    return folder
