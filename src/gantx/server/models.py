"""What `gantx serve`'s routes work on: the served models, their batchers and queues, and the metrics.

Each model named at start gets one runner (gantx.server.runners), loaded once
in a worker thread of its own after the server is listening. A model holds at
most `queue` requests at once, from the moment one is accepted until its
answer is ready; more get 503 with Retry-After, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gantx.batching import DynamicBatcher
from gantx.errors import GantxError, first_line
from gantx.model import ModelInfo
from gantx.pipeline import default_workers
from gantx.server.config import ServeSettings
from gantx.server.runners import RUNNERS, Runner
from gantx.session import read_info

log = logging.getLogger("gantx.serve")
T = TypeVar("T")
MODELS_PATH = "/v1/models/"
RETRY_AFTER = {"Retry-After": "1"}


class RequestError(Exception):
    """A request the server will not serve: its HTTP status and one line that says why."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class Metrics:
    """The Prometheus series of one server, in a registry of its own."""

    def __init__(self, max_batch: int) -> None:
        self.registry = registry = CollectorRegistry()
        buckets = sorted({float(2**power) for power in range(max_batch.bit_length())} | {float(max_batch)})
        self.requests = Counter(
            "gantx_requests", "Requests to a model's endpoints, by HTTP status.", ["model", "code"], registry=registry
        )
        self.request_seconds = Histogram(
            "gantx_request_seconds", "Seconds from request to response.", ["model"], registry=registry
        )
        self.batch_size = Histogram(
            "gantx_batch_size", "Requests per model call.", ["model"], buckets=buckets, registry=registry
        )
        self.queue_depth = Gauge(
            "gantx_queue_depth", "Requests a model holds: accepted and not yet answered.", ["model"], registry=registry
        )


class ServedModel:
    """One model named at start: its contract, its runner and model thread, and (once loaded) its batcher."""

    def __init__(self, name: str, path: Path, settings: ServeSettings, metrics: Metrics) -> None:
        self.name, self.settings, self.metrics = name, settings, metrics
        self.info: ModelInfo = read_info(path)
        self.runner: Runner = RUNNERS[self.info.kind](path, self.info, settings)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"gantx-model-{name}")
        self.batcher: DynamicBatcher | None = None  # set once loaded: the model takes requests from then on
        self.held = 0
        metrics.queue_depth.labels(name).set(0)

    @property
    def ready(self) -> bool:
        return self.batcher is not None

    @property
    def endpoint(self) -> str:
        return f"{MODELS_PATH}{self.name}/{self.runner.action}"

    async def load(self) -> str:
        """Load and warm up the runner on the model thread, then take requests; the provider it runs on."""
        provider = await asyncio.get_running_loop().run_in_executor(self.thread, self.runner.load)
        on_batch = self.metrics.batch_size.labels(self.name).observe
        max_wait = self.settings.max_wait_ms / 1000
        self.batcher = DynamicBatcher(
            self.runner.run, self.runner.batch_key, self.thread, self.runner.max_batch, max_wait, on_batch
        )
        return provider

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Count one request against the queue limit from acceptance to answer; 503 when loading or full."""
        if not self.ready:
            raise RequestError(503, f"model {self.name} is still loading", RETRY_AFTER)
        if self.held >= self.settings.queue:
            raise RequestError(503, f"model {self.name} holds {self.held} requests (--queue); retry later", RETRY_AFTER)
        depth = self.metrics.queue_depth.labels(self.name)
        self.held += 1
        depth.set(self.held)
        try:
            yield
        finally:
            self.held -= 1
            depth.set(self.held)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "ready": self.ready, "endpoint": self.endpoint, "contract": self.info.to_dict()}


class Service:
    """Every served model, the decode/encode thread pool and the metrics: the app's `state.service`."""

    def __init__(self, models: dict[str, Path], settings: ServeSettings) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.max_batch)
        self.models = {name: ServedModel(name, path, settings, self.metrics) for name, path in models.items()}
        self.io = ThreadPoolExecutor(max_workers=default_workers(), thread_name_prefix="gantx-io")
        self.failure: str | None = None  # why loading failed: the server then stops and `serve` raises it
        self.on_failure: Callable[[], None] = lambda: None

    def model(self, name: str, kind: str) -> ServedModel:
        """The served model `name`, which must be of `kind`: 404 or 400 otherwise."""
        model = self.models.get(name)
        if model is None:
            raise RequestError(404, f"no model named {name!r} is served here (GET /v1/models lists them)")
        if model.info.kind != kind:
            raise RequestError(400, f"model {name} is {model.info.kind}, not {kind}: POST {model.endpoint}")
        return model

    async def in_io(self, call: Callable[..., T], *args: Any) -> T:
        """Decoding and encoding run in the thread pool, so the event loop keeps serving."""
        return await asyncio.get_running_loop().run_in_executor(self.io, call, *args)

    async def load(self) -> None:
        """Load and warm up the models one after the other (one large allocation at a time)."""
        for model in self.models.values():
            started = time.perf_counter()
            try:
                provider = await model.load()
            except Exception as error:  # noqa: BLE001 - reported, and the server stops: see `serve`
                self.failure = f"model {model.name}: {error if isinstance(error, GantxError) else first_line(error)}"
                log.error("gantx: error: %s", self.failure)
                self.on_failure()
                return
            log.info("gantx: model %s ready on %s (%.1f s)", model.name, provider, time.perf_counter() - started)

    async def close(self) -> None:
        for model in self.models.values():
            if model.batcher is not None:
                await model.batcher.close()
            model.thread.shutdown(wait=False, cancel_futures=True)
        self.io.shutdown(wait=False, cancel_futures=True)
