"""What CPU this is, as /proc/cpuinfo says (elsewhere what `platform` knows): for benchmarks and engine choice."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str) -> str | None:
    """The first `name : value` line's value in /proc/cpuinfo, or None where there is none."""
    with contextlib.suppress(OSError, StopIteration):
        return next(line for line in CPUINFO.read_text().splitlines() if line.startswith(name)).split(":", 1)[1]
    return None


def cpu_flags() -> set[str]:
    return set((_cpuinfo_field("flags") or "").split())


def cpu_name() -> str:
    return (_cpuinfo_field("model name") or "").strip() or platform.processor() or platform.machine()
