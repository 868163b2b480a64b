"""`gantx serve`: gantx models over HTTP (FastAPI on uvicorn), with dynamic batching and Prometheus metrics.

The server in rooms: gantx.server.runners (one runner per model kind: decode,
batch, run, encode), gantx.server.models (the served models, their queues,
the metrics), gantx.server.routes (routes, error handlers, request log) and
gantx.server.api_page (the API page from local files). This module holds
`create_app`, which wires those together, and `serve`, which runs it
on uvicorn. The endpoints are documented in docs/http-api.md.

This module needs the `serve` extra; `import gantx` never imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from gantx import __version__
from gantx.errors import GantxError, ModelError, first_line
from gantx.server.config import LogLevel, ServeSettings
from gantx.server.models import Service, log
from gantx.server.routes import EXCEPTION_HANDLERS, RequestLog, guarded, open_to_all
from gantx.session import find_model

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def parse_model_specs(texts: Sequence[str]) -> dict[str, Path]:
    """`-m` values -> {name: model file}: `NAME=PATH`, a zoo name, or a file served under its stem."""
    models: dict[str, Path] = {}
    for text in texts:
        name, equals, path = text.partition("=")
        if not (equals and MODEL_NAME.fullmatch(name)):  # a path that merely holds '='
            name, path = Path(text).stem, text
        if not MODEL_NAME.fullmatch(name):
            raise GantxError(f"-m {text}: {name!r} is no model name (letters, digits, '.', '_', '-'); give NAME=PATH")
        if name in models:
            raise GantxError(f"-m {text}: a model named {name!r} is already served; give this one NAME=PATH")
        models[name] = find_model(path)
    return models


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the models once the server listens (so /healthz answers at once); close them at the end."""
    service: Service = app.state.service
    loading = asyncio.get_running_loop().create_task(service.load())
    yield
    if not loading.done():
        loading.cancel()
    await service.close()


def create_app(service: Service) -> FastAPI:
    """The FastAPI application over `service` (its `state.service`); its lifespan loads the models and closes them."""
    app = FastAPI(
        title="gantx serve",
        version=__version__,
        description="Translate and generate images with gantx models (docs/http-api.md).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.service = service
    app.add_middleware(RequestLog)
    app.include_router(guarded)
    app.include_router(open_to_all)
    return app


def log_config(level: LogLevel) -> dict[str, Any]:
    """uvicorn's own logging, plus gantx's lines (start-up, models, one per request) through the same handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"][log.name] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before any model loads, so a taken port is one line at once."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as error:
        raise GantxError(f"cannot listen on {host}:{port} ({first_line(error)})") from None


def serve(models: dict[str, Path], settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until SIGTERM or Ctrl-C, then stop accepting, finish the requests in flight and return.

    ModelError when a model cannot be loaded (the server stops at once).
    """
    service = Service(models, settings)
    listener = listen(host, port)
    bound_port = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(service),
        log_config=log_config(settings.log_level),
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    service.on_failure = lambda: setattr(server, "should_exit", True)
    # uvicorn re-raises the stop signal once it has drained; landing on its own handler again, that is a clean exit.
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        log.info("gantx: serving %s on http://%s:%d (API page at /docs)", ", ".join(models), host, bound_port)
        server.run(sockets=[listener])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if service.failure:
        raise ModelError(service.failure)
