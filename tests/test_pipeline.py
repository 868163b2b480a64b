"""gantx.pipeline: what a Ctrl-C leaves behind is what it reports."""

from __future__ import annotations

import _thread
import time
from pathlib import Path

import numpy as np
import pytest

import gantx.pipeline
from gantx.inputs import FileJob


class Identity:
    """A model that hands back what it is given, with the pipeline's interface."""

    batch_size = 2

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return image

    def infer(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        return list(batch)

    def finish(self, prepared: np.ndarray, output: np.ndarray) -> np.ndarray:
        return output


def test_a_file_written_while_ctrl_c_comes_is_still_reported(tmp_path, monkeypatch):
    """Ctrl-C while the last file is being written: the file lands, and so does its report (the summary counts it)."""
    job = FileJob(tmp_path / "in.png", tmp_path / "out.png")

    def save_then_ctrl_c(image: np.ndarray, target: Path) -> None:
        time.sleep(0.3)  # the main thread is waiting for this file by now
        target.write_bytes(image.tobytes())
        _thread.interrupt_main()  # Ctrl-C, seen by the main thread as soon as it wakes

    monkeypatch.setattr(gantx.pipeline, "open_image", lambda path: np.zeros((2, 2, 3), np.uint8))
    monkeypatch.setattr(gantx.pipeline, "save_image", save_then_ctrl_c)
    reported: list[tuple[FileJob, str | None]] = []
    with pytest.raises(KeyboardInterrupt):
        gantx.pipeline.translate_files(Identity(), [job], lambda job, error: reported.append((job, error)))
    assert job.target.read_bytes() == bytes(12)
    assert reported == [(job, None)]
