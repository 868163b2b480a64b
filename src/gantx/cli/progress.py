"""What a translate run shows while it works: the tally, its progress bar, and the report that feeds both.

Both engines (the local one and Ray) and every mode report into one `Tally`,
which makes the summary line, the exit code, and what an interrupted run says.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TaskID, TextColumn
from rich.text import Text

from gantx.inputs import FileJob
from gantx.pipeline import FileReport


@dataclass
class Tally:
    """What a run has done so far: files translated, skipped and failed, and the images and frames translated.

    A failure is kept under its file (or, for a frame, its own line): a file
    that failed and is later translated (--watch tries a changed file again)
    no longer counts as failed. Rates count what was translated (not what
    failed) per second of the whole run, the same in the bar and the summary.
    """

    done: int = 0
    skipped: int = 0
    failures: dict[Path | str, str] = field(default_factory=dict)  # file (or frame's line) -> why it failed
    units: Counter = field(default_factory=Counter)  # "img" and "frames" translated
    started: float = field(default_factory=time.perf_counter)

    def fail(self, progress: Progress, reason: str, source: Path | None = None) -> None:
        self.failures[reason if source is None else source] = reason
        progress.console.print(f"[red]failed[/red] {reason}", highlight=False, soft_wrap=True)

    def finished(self, source: Path) -> None:
        """One more file translated; a failure it had before is over."""
        self.done += 1
        self.failures.pop(source, None)

    def rate(self, unit: str) -> str:
        """`unit`s translated per second so far, e.g. "12.5 img/s"; empty while none is."""
        count, elapsed = self.units[unit], time.perf_counter() - self.started
        return f"{count / elapsed:.1f} {unit}/s" if count and elapsed > 0 else ""

    def line(self, where: str) -> str:
        rates = " ".join(filter(None, map(self.rate, self.units)))
        ran = f", {rates} translated on {where}" if rates else ""
        return f"translated {self.done}, skipped {self.skipped}, failed {len(self.failures)}{ran}"


class RateColumn(ProgressColumn):
    """The tally's rate of `unit`: the figure the summary line gives."""

    def __init__(self, tally: Tally, unit: str) -> None:
        super().__init__()
        self.tally, self.unit = tally, unit

    def render(self, task) -> Text:
        return Text(self.tally.rate(self.unit), style="progress.data.speed")


class TimeLeftColumn(ProgressColumn):
    """Time left at the pace of the whole task so far; rich's own estimate follows only the
    last few items, and these finish a batch at a time, so it jumps to near zero."""

    def render(self, task) -> Text:
        if task.total is None:
            return Text("")
        if not task.completed or not task.elapsed:
            return Text("-:--:--", style="progress.remaining")
        left = (task.total - task.completed) * task.elapsed / task.completed
        return Text(str(timedelta(seconds=round(left))), style="progress.remaining")


def progress_bar(console: Console, tally: Tally, unit: str) -> Progress:
    """Items handled (translated or failed) of all, the tally's rate of `unit` and the time left."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(tally, unit),
        TimeLeftColumn(),
        console=console,
        transient=False,
    )


def item_report(progress: Progress, task: TaskID, tally: Tally, unit: str = "img") -> FileReport:
    """Advances the bar for every image file or frame and counts it in the tally; a failed one is its line.

    Called with the image file's job, or with None for a frame of a video,
    which counts as a file only once the whole video is done.
    """

    def report(job: FileJob | None, failure: str | None) -> None:
        if failure is None:
            tally.units[unit] += 1
            if job is not None:
                tally.finished(job.source)
        else:
            tally.fail(progress, failure, job.source if job is not None else None)
        progress.advance(task)

    return report


@contextlib.contextmanager
def images_report(console: Console, tally: Tally, count: int) -> Iterator[FileReport]:
    """The report for `count` image files, under a bar shown while the block runs (either engine's images mode)."""
    with progress_bar(console, tally, "img") as progress:
        yield item_report(progress, progress.add_task("translating", total=count), tally)
