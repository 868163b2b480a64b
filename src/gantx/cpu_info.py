"""What CPU this is, as /proc/cpuinfo says (elsewhere what `platform` knows): for benchmarks and engine choice."""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def _cpuinfo_lines() -> tuple[str, ...]:
    """/proc/cpuinfo's lines, read once a process (the CPU does not change under it); none where it cannot be read."""
    with contextlib.suppress(OSError):
        return tuple(CPUINFO.read_text().splitlines())
    return ()


def _cpuinfo_field(name: str) -> str | None:
    """The first `name : value` line's value in /proc/cpuinfo, or None where there is none."""
    return next((line.split(":", 1)[1] for line in _cpuinfo_lines() if line.startswith(name)), None)


def cpu_flags() -> set[str]:
    return set((_cpuinfo_field("flags") or "").split())


def cpu_name() -> str:
    return (_cpuinfo_field("model name") or "").strip() or platform.processor() or platform.machine()
