"""Watch folders: files written slowly, in pieces, are translated once they are whole, exactly once, across kill -9.

References: the photographic negative computed without gantx (the negate
model), the files on disk (their inode and modification time show whether an
output was written again), and the summary line.
"""

from __future__ import annotations

import _thread
import re
import shutil
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import assert_negative, ctrl_c, sigterm
from serving import gantx_process

pytest.importorskip("watchfiles")

import gantx.watch
from gantx.watch import watch_folders

PIECES = 5
PAUSE = 0.15  # between pieces: well under the 1 s a file must stay unchanged


def write_slowly(source: Path, target: Path, pieces: int = PIECES, stop_after: int | None = None) -> None:
    """Copy `source` to `target` in `pieces` writes with pauses, as a slow network copy does.

    With `stop_after`, return after writing that many pieces.
    """
    data = source.read_bytes()
    step = -(-len(data) // pieces)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("ab") as handle:
        for index in range(handle.tell() // step, pieces if stop_after is None else stop_after):
            handle.write(data[index * step : (index + 1) * step])
            handle.flush()
            time.sleep(PAUSE)


def wait_for(paths: list[Path], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        if time.monotonic() > deadline:
            raise AssertionError(f"missing {[str(p) for p in paths if not p.exists()]}:\n{log.read_text()}")
        time.sleep(0.05)


def written(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_slow_writes_a_kill_9_and_a_restart_give_every_output_once_and_right(mixed_folder, negate_onnx, tmp_path):
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    for name in ("cat.png", "logo.png"):  # there before the watcher starts
        shutil.copy(mixed_folder / name, inbox / name)
    command = ["translate", str(inbox), "-m", str(negate_onnx), "-o", str(out), "--format", "png", "--watch"]
    first = gantx_process(command, tmp_path / "first.log")
    try:
        wait_for([out / "cat.png", out / "logo.png"], tmp_path / "first.log")
        # A JPEG arrives slowly: nothing may be read before its last piece.
        china = inbox / "nested" / "china.jpg"
        for piece in range(1, PIECES + 1):
            write_slowly(mixed_folder / "nested" / "china.jpg", china, stop_after=piece)
            assert not (out / "nested" / "china.png").exists()
        wait_for([out / "nested" / "china.png"], tmp_path / "first.log")
        before_kill = {name: written(out / name) for name in ("cat.png", "logo.png", "nested/china.png")}
        # The watcher dies (kill -9) while the next file is half written.
        write_slowly(mixed_folder / "rocket-rotated.jpg", inbox / "rocket-rotated.jpg", stop_after=2)
    finally:
        first.kill()
        first.wait()
    assert "failed" not in (tmp_path / "first.log").read_text()  # no half-written file was read
    write_slowly(mixed_folder / "rocket-rotated.jpg", inbox / "rocket-rotated.jpg")  # the rest lands meanwhile
    shutil.copy(mixed_folder / "nested" / "deeper" / "coffee-palette.png", inbox / "coffee.png")
    assert not (out / "rocket-rotated.png").exists()

    second = gantx_process(command, tmp_path / "second.log")
    try:
        wait_for([out / "rocket-rotated.png", out / "coffee.png"], tmp_path / "second.log")
        write_slowly(mixed_folder / "camera.png", inbox / "camera.png")
        wait_for([out / "camera.png"], tmp_path / "second.log")
        time.sleep(1.5)  # time enough to do anything twice
        second.send_signal(signal.SIGINT)
        assert second.wait(30) == 0
    finally:
        second.kill()
    summary = (tmp_path / "second.log").read_text()
    assert "stopped watching" in summary and "translated 3, skipped 3, failed 0" in summary, summary

    sources = ["cat.png", "logo.png", "nested/china.jpg", "rocket-rotated.jpg", "coffee.png", "camera.png"]
    outputs = {Path(name).with_suffix(".png").as_posix(): name for name in sources}
    assert {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()} == set(
        outputs
    )  # no .part left either
    for output, source in outputs.items():
        assert_negative(inbox / source, out / output)
    assert {name: written(out / name) for name in before_kill} == before_kill  # not written a second time


class StopWatching(Exception):
    pass


def test_each_file_is_handed_on_once_as_it_is_and_again_when_it_changes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "there.png").write_bytes(b"old")
    handed: list[tuple[str, int]] = []  # name, size when handed on
    slow_done = threading.Event()

    class Listing(list):
        def only(self, jobs):
            return Listing(job for job in self if job in jobs)

    def plan():
        return Listing(SimpleNamespace(source=path) for path in sorted(folder.iterdir()))

    def run(jobs) -> None:
        handed.extend((job.source.name, job.source.stat().st_size) for job in jobs)
        if any(name == "slow.png" for name, _ in handed):
            slow_done.set()
        if handed.count(("there.png", 6)):
            raise StopWatching

    def writer() -> None:
        with (folder / "slow.png").open("wb") as handle:
            for _ in range(PIECES):
                handle.write(b"x" * 1000)
                handle.flush()
                time.sleep(PAUSE)
        slow_done.wait(20)
        time.sleep(1.0)  # several looks at unchanged files: none is handed on again
        with (folder / "there.png").open("ab") as handle:
            handle.write(b"new")  # a change: this one goes again (a file that failed is retried when it changes)

    guard = threading.Timer(30, _thread.interrupt_main)  # a hang fails the test instead of blocking it
    guard.start()
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with pytest.raises(StopWatching):
            watch_folders([folder], plan, run, settle=0.5)
    finally:
        guard.cancel()
        thread.join()
    assert sorted(handed) == [("slow.png", PIECES * 1000), ("there.png", 3), ("there.png", 6)]


def test_sigterm_ends_a_watch_as_ctrl_c_does(mixed_folder, negate_onnx, tmp_path):
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    shutil.copy(mixed_folder / "cat.png", inbox / "cat.png")
    watcher = gantx_process(
        ["translate", str(inbox), "-m", str(negate_onnx), "-o", str(out), "--watch"], tmp_path / "watch.log"
    )
    try:
        wait_for([out / "cat.png"], tmp_path / "watch.log")
        watcher.terminate()  # SIGTERM, as a service manager stops it
        assert watcher.wait(30) == 0
    finally:
        watcher.kill()
    log = (tmp_path / "watch.log").read_text()
    assert f"stopped watching {inbox}" in log
    assert re.search(
        r"^translated 1, skipped 0, failed 0, [\d.]+ img/s translated on (CPUExecutionProvider|OpenVINO) \w+$",
        log,
        re.M,
    ), log
    assert_negative(inbox / "cat.png", out / "cat.png")


SUMMARY = re.compile(r"^translated (\d+), skipped (\d+), failed (\d+)", re.M)


@pytest.mark.parametrize("stop", [ctrl_c, sigterm])
@pytest.mark.parametrize("fixed", [True, False])
def test_a_watch_ends_alike_on_ctrl_c_and_sigterm_and_only_failures_not_since_fixed_count(
    mixed_folder, negate_onnx, tmp_path, run_cli, monkeypatch, stop, fixed
):
    """Ctrl-C or SIGTERM is how a watch ends: exit 0, or 1 while a file's last try failed; one fixed since is none."""
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    shutil.copy(mixed_folder / "logo.png", inbox / "logo.png")
    (inbox / "cat.png").write_bytes(b"\x89PNG cut short by a failed copy")

    def looks(folders, plan, run, settle=None) -> None:
        """Two looks at the folder, a repair of cat.png between them, then the stop."""
        run(plan())
        if fixed:
            shutil.copy(mixed_folder / "cat.png", inbox / "cat.png")
        current = plan()
        run(current.only([job for job in current if job.source.name == "cat.png"]))  # what changed is handed on again
        stop()

    monkeypatch.setattr(gantx.watch, "watch_folders", looks)
    code, stdout, stderr = run_cli("translate", inbox, "-m", negate_onnx, "-o", out, "--watch")
    assert f"failed {inbox / 'cat.png'}: cannot read image" in stderr and f"stopped watching {inbox}" in stderr, stderr
    if fixed:
        assert code == 0 and SUMMARY.search(stdout).groups() == ("2", "0", "0"), stdout
        assert_negative(inbox / "cat.png", out / "cat.png")
    else:
        assert code == 1 and SUMMARY.search(stdout).groups() == ("1", "0", "1"), stdout
        assert not (out / "cat.png").exists()
    assert_negative(inbox / "logo.png", out / "logo.png")
