"""What `gantx serve`'s options set, shared by the server's rooms (runners, models, routes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gantx.settings import RunSettings, one_of

LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class ServeSettings:
    """What `gantx serve`'s options set, in their own units."""

    max_batch: int = 8
    max_wait_ms: float = 10.0
    queue: int = 64
    max_upload_mb: float = 32.0  # MB of 10^6 bytes
    api_key: str | None = None
    run: RunSettings = RunSettings()  # how the models run; a translator's batch is max_batch, a request asks its size
    log_level: LogLevel = "info"  # info: a line per request; warning: only problems

    def __post_init__(self) -> None:
        one_of(self.log_level, LogLevel, "--log-level")

    @property
    def upload_limit(self) -> int:
        return int(self.max_upload_mb * 1e6)
