"""A TranslateBatch whose worker process dies on one file, as it would under the OOM killer or a decoder crash.

Its own module so that Ray's workers can import it (the tests folder is on their PYTHONPATH).
"""

from __future__ import annotations

import os

from gantx.ray_engine import TranslateBatch


class CrashingBatch(TranslateBatch):
    def __call__(self, batch):
        if any("crash" in source for source in batch["source"]):
            os._exit(1)  # no clean-up, no exception: the process is simply gone
        return super().__call__(batch)
