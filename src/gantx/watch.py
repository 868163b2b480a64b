"""Watch folders: hand on each new image or video once its writer has finished, until Ctrl-C.

watchfiles (inotify, FSEvents, ReadDirectoryChangesW) says when something in
the folders changes. A file is handed on once its size and modification time
have stayed the same for `settle` seconds, as this process sees them: a
half-copied file is never read, whatever the writer's clock says. Every look
plans the jobs from the folders themselves, so a restart, even after kill -9,
finds whatever landed meanwhile, and the caller's skip-if-done rule applies as
in a normal run. Each file is handed on once as it is; one that failed is
tried again only when it changes.

Needs the serve extra (watchfiles); `import gantx` never imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import watchfiles

from gantx.errors import GantxError

SETTLE_SECONDS = 1.0  # no change for this long: the writer has finished
Signature = tuple[int, int]  # size, modification time in ns


class Job(Protocol):
    @property
    def source(self) -> Path: ...


class Jobs(Protocol):
    """What a watch needs of a plan: its jobs, and the part of the plan some of them are."""

    def __iter__(self) -> Iterator[Job]: ...

    def only(self, jobs: Collection[Job]) -> Jobs: ...


P = TypeVar("P", bound=Jobs)


def watched_folders(inputs: Sequence[str]) -> list[Path]:
    """The INPUT folders to watch; GantxError for an input that is not one."""
    for text in inputs:
        if not Path(text).is_dir():
            raise GantxError(f"--watch watches folders: {text} is not one")
    return [Path(text) for text in inputs]


def _signature(path: Path) -> Signature | None:
    try:
        stat = path.stat()
    except FileNotFoundError:  # gone since it was listed
        return None
    return stat.st_size, stat.st_mtime_ns


def watch_folders(
    folders: Sequence[Path], plan: Callable[[], P], run: Callable[[P], None], settle: float = SETTLE_SECONDS
) -> None:
    """Call `run` with the part of `plan()` whose sources have settled, whenever there is some.

    Returns only by KeyboardInterrupt.
    """
    handed: dict[Path, Signature] = {}  # each source as it was when handed on
    settling: dict[Path, tuple[Signature, float]] = {}  # unchanged since (monotonic time)
    look = True  # the first look takes in what is already there
    tick_ms = max(50, int(settle * 250))
    for changes in watchfiles.watch(*folders, yield_on_timeout=True, rust_timeout=tick_ms, debounce=tick_ms):
        if not (changes or settling or look):
            continue
        look = False
        now, ready, still = time.monotonic(), [], {}
        current = plan()
        for job in current:
            signature = _signature(job.source)
            if signature is None or handed.get(job.source) == signature:
                continue
            seen, since = settling.get(job.source, (None, now))
            if seen != signature:
                still[job.source] = (signature, now)
            elif now - since >= settle:
                handed[job.source] = signature
                ready.append(job)
            else:
                still[job.source] = (signature, since)
        settling = still
        if ready:
            run(current.only(ready))
