"""`gantx serve`: gantx models over HTTP (FastAPI on uvicorn), with dynamic batching and Prometheus metrics.

Each model named at start gets one session, created once in a worker thread of
its own after the server is listening (`/healthz` answers at once, `/readyz`
once every model is loaded and warmed up). Requests are decoded and encoded in
a thread pool; image requests meet in the model's `DynamicBatcher`. A model
holds at most `queue` requests at once, from the moment one is accepted until
its answer is ready; more get 503 with Retry-After, so memory stays bounded
however many clients connect. Every refusal is a 4xx with `{"error": "one
line"}`; the endpoints are documented in docs/http-api.md.

This module needs the `serve` extra; `import gantx` never imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import secrets
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Literal, Optional, Sequence, TypeVar, Union

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from gantx import __version__
from gantx.batching import DynamicBatcher
from gantx.errors import GantxError, ModelError, first_line
from gantx.generator import DEFAULT_BATCH, Generator, grid
from gantx.images import IMAGE_FORMATS, OUTPUT_SUFFIX, ImageTooLarge, open_image, write_image
from gantx.model import ModelInfo
from gantx.pipeline import default_workers
from gantx.session import find_model, read_info
from gantx.settings import RunSettings, SizeSpec, parse_size
from gantx.translator import Prepared, Translator, prepare_image

log = logging.getLogger("uvicorn.error")  # uvicorn configures this one for its own start-up lines
T = TypeVar("T")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MODELS_PATH = "/v1/models/"
MAX_SAMPLES = 256  # per generate request: a grid of 256 items is already a large image
RETRY_AFTER = {"Retry-After": "1"}
OutputFormat = Literal[tuple(OUTPUT_SUFFIX)]  # type: ignore[valid-type]  # png, jpg, webp: what gantx translate writes
BEARER = HTTPBearer(auto_error=False, description="`Authorization: Bearer KEY` when the server runs with --api-key")


# -- configuration ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeSettings:
    """What `gantx serve`'s options set, in their own units."""

    max_batch: int = 8
    max_wait_ms: float = 10.0
    queue: int = 64
    max_upload_mb: float = 32.0  # MB of 10^6 bytes
    api_key: Optional[str] = None
    run: RunSettings = RunSettings()  # how the models run; a translator's batch is max_batch

    @property
    def upload_limit(self) -> int:
        return int(self.max_upload_mb * 1e6)


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


# -- errors -------------------------------------------------------------------------------------------


class RequestError(Exception):
    """A request the server will not serve: its HTTP status and one line that says why."""

    def __init__(self, status: int, message: str, headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def error_response(status: int, message: str, headers: Optional[dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_line(errors: Sequence[Any]) -> str:
    """Pydantic's first complaint as one line: where, and what is wrong."""
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


# -- metrics ------------------------------------------------------------------------------------------


class Metrics:
    """The Prometheus series of one server, in a registry of its own."""

    def __init__(self, max_batch: int) -> None:
        self.registry = CollectorRegistry()
        buckets = sorted({float(2**power) for power in range(max_batch.bit_length())} | {float(max_batch)})
        self.requests = Counter("gantx_requests", "Requests to a model's endpoints, by HTTP status.", ["model", "code"], registry=self.registry)
        self.request_seconds = Histogram("gantx_request_seconds", "Seconds from request to response.", ["model"], registry=self.registry)
        self.batch_size = Histogram("gantx_batch_size", "Images per model call.", ["model"], buckets=buckets, registry=self.registry)
        self.queue_depth = Gauge("gantx_queue_depth", "Requests a model holds: accepted and not yet answered.", ["model"], registry=self.registry)


# -- models -------------------------------------------------------------------------------------------


class ServedModel:
    """One model named at start: its contract, its model thread, and (once loaded) its session and batcher."""

    def __init__(self, name: str, path: Path, settings: ServeSettings, metrics: Metrics) -> None:
        self.name, self.path, self.settings, self.metrics = name, path, settings, metrics
        self.info: ModelInfo = read_info(path)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"gantx-model-{name}")
        self.runner: Union[Translator, Generator, None] = None
        self.batcher: Optional[DynamicBatcher] = None
        self.held = 0
        metrics.queue_depth.labels(name).set(0)

    @property
    def action(self) -> str:
        return "translate" if self.info.kind == "image2image" else "generate"

    def load(self) -> Union[Translator, Generator]:
        """Open the session and run it once, so the first request does not pay for allocation (model thread)."""
        if self.info.kind == "noise2image":
            generator = Generator(self.path, self.settings.run.replace(batch_size=DEFAULT_BATCH))
            generator.generate(1, seed=0)
            return generator
        translator = Translator(self.path, self.settings.run.replace(batch_size=self.settings.max_batch))
        blank = Image.new("L" if self.info.channels_in == 1 else "RGB", self.info.size[::-1])
        translator.infer([prepare_image(blank, self.info)])
        return translator

    def start(self, runner: Union[Translator, Generator]) -> None:
        """Take requests from now on (event loop): image requests meet in a batcher over `runner`."""
        if isinstance(runner, Translator):
            on_batch = self.metrics.batch_size.labels(self.name).observe
            max_wait = self.settings.max_wait_ms / 1000
            self.batcher = DynamicBatcher(runner.infer, self.thread, self.settings.max_batch, max_wait, on_batch)
        self.runner = runner

    async def run(self, call: Callable[[], T]) -> T:
        """`call` on the model thread, beside (never during) batched model calls."""
        return await asyncio.get_running_loop().run_in_executor(self.thread, call)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Count one request against the queue limit from acceptance to answer; 503 when loading or full."""
        if self.runner is None:
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
        return {"name": self.name, "ready": self.runner is not None, "endpoint": f"{MODELS_PATH}{self.name}/{self.action}", "contract": self.info.to_dict()}


class Service:
    """Every served model, the decode/encode thread pool and the metrics; what the app's routes work on."""

    def __init__(self, models: dict[str, Path], settings: ServeSettings) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.max_batch)
        self.models = {name: ServedModel(name, path, settings, self.metrics) for name, path in models.items()}
        self.io = ThreadPoolExecutor(max_workers=default_workers(), thread_name_prefix="gantx-io")
        self.failure: Optional[str] = None  # why loading failed: the server then stops and `serve` raises it
        self.on_failure: Callable[[], None] = lambda: None

    def model(self, name: str, kind: str) -> ServedModel:
        """The served model `name`, which must be of `kind`: 404 or 400 otherwise."""
        model = self.models.get(name)
        if model is None:
            raise RequestError(404, f"no model named {name!r} is served here (GET /v1/models lists them)")
        if model.info.kind != kind:
            raise RequestError(400, f"model {name} is {model.info.kind}, not {kind}: POST {MODELS_PATH}{name}/{model.action}")
        return model

    async def in_io(self, call: Callable[..., T], *args: Any) -> T:
        """Decoding and encoding run in the thread pool, so the event loop keeps serving."""
        return await asyncio.get_running_loop().run_in_executor(self.io, call, *args)

    async def load(self) -> None:
        """Load and warm up the models one after the other (one large allocation at a time)."""
        for model in self.models.values():
            started = time.perf_counter()
            try:
                runner = await model.run(model.load)
            except Exception as error:  # noqa: BLE001 - reported, and the server stops: see `serve`
                self.failure = f"model {model.name}: {error if isinstance(error, GantxError) else first_line(error)}"
                log.error("gantx: error: %s", self.failure)
                self.on_failure()
                return
            model.start(runner)
            log.info("gantx: model %s ready on %s (%.1f s)", model.name, model.runner.providers[0], time.perf_counter() - started)

    async def close(self) -> None:
        for model in self.models.values():
            if model.batcher is not None:
                await model.batcher.close()
            model.thread.shutdown(wait=False, cancel_futures=True)
        self.io.shutdown(wait=False, cancel_futures=True)


# -- reading requests, writing answers ----------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to be over `limit` bytes."""
    too_large = RequestError(413, f"request body is over the limit of {limit / 1e6:g} MB (--max-upload-mb)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def uploaded_image(request: Request, limit: int) -> bytes:
    """The image's bytes: the raw body, or the field `file` of a multipart body."""
    body = await read_body(request, limit)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async with Request(request.scope, replay).form(max_files=1, max_fields=16) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise RequestError(400, "the multipart body has no file field 'file'")
            body = await upload.read()
    if not body:
        raise RequestError(400, "empty body: send the image's bytes, or multipart with a file field 'file'")
    return body


def request_size(text: str) -> SizeSpec:
    """The `size` query, in the CLI's grammar (gantx.translator.parse_size)."""
    try:
        return parse_size(text)
    except GantxError as error:
        raise RequestError(400, f"query {str(error).removeprefix('--')}") from None


def encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    write_image(image, buffer, image_format)
    return buffer.getvalue()


def prepare_upload(data: bytes, info: ModelInfo, size: SizeSpec) -> Prepared:
    return prepare_image(open_image(data, "upload"), info, size)


class GenerateRequest(BaseModel):
    """The JSON body of a generate request."""

    model_config = ConfigDict(extra="forbid")

    labels: list[Union[int, str]] = Field(default_factory=list, max_length=MAX_SAMPLES, description="Class names or indices, cycled (conditional models; default: every class).")
    n: int = Field(1, ge=1, le=MAX_SAMPLES, description="How many samples: one PNG for 1, a grid otherwise.")
    seed: Optional[int] = Field(None, ge=0, description="Same seed, same samples (default: random).")
    truncation: Optional[float] = Field(None, gt=0, description="Redraw latent values beyond +-T.")


def sample_png(generator: Generator, images: list[Image.Image], asked: GenerateRequest) -> bytes:
    sheet = images[0] if len(images) == 1 else grid(images, generator.grid_columns(asked.labels, asked.n))
    return encode(sheet, "PNG")


BINARY = {"type": "string", "format": "binary"}
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image file's bytes (any format gantx reads), or multipart/form-data with a file field `file`.",
        "content": {
            "application/octet-stream": {"schema": BINARY},
            "image/*": {"schema": BINARY},
            "multipart/form-data": {"schema": {"type": "object", "properties": {"file": BINARY}, "required": ["file"]}},
        },
    }
}
IMAGE_RESPONSE = {200: {"content": {"image/png": {"schema": BINARY}, "image/jpeg": {"schema": BINARY}, "image/webp": {"schema": BINARY}}}}
ERRORS = {status: {"description": what, "content": {"application/json": {"example": {"error": "one line"}}}} for status, what in {
    400: "Bad request: not an image, truncated, a bad query or body, or the wrong endpoint for the model's kind",
    401: "Missing or wrong API key",
    404: "No model of that name is served",
    413: "Body over --max-upload-mb, or an image over the pixel limit",
    503: "The model is loading or its queue is full (see Retry-After)",
}.items()}


# -- the application ----------------------------------------------------------------------------------


class RequestMetrics:
    """Counts and times every request to a model's endpoints, whoever answered it (route, error handler, auth)."""

    def __init__(self, app: Any, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(MODELS_PATH):
            await self.app(scope, receive, send)
            return
        name = scope["path"][len(MODELS_PATH) :].split("/", 1)[0]
        label = name if name in self.service.models else ""  # names from requests must not grow the series
        status = 500  # unless a response starts: an exception escaped to uvicorn
        started = time.perf_counter()

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.service.metrics.requests.labels(label, str(status)).inc()
            self.service.metrics.request_seconds.labels(label).observe(time.perf_counter() - started)


def create_app(service: Service) -> FastAPI:
    """The FastAPI application over `service`; its lifespan loads the models and closes them."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.get_running_loop().create_task(service.load())
        yield
        if not loading.done():
            loading.cancel()
        await service.close()

    app = FastAPI(
        title="gantx serve",
        version=__version__,
        description="Translate and generate images with gantx models (docs/http-api.md).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(RequestMetrics, service=service)
    settings = service.settings
    async def check_key(credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(BEARER)]) -> None:
        if settings.api_key is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(given.encode(), settings.api_key.encode()):
            raise RequestError(401, "missing or wrong API key: send Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"})

    guarded = APIRouter(dependencies=[Depends(check_key)], responses={401: ERRORS[401]})

    @guarded.post("/v1/models/{name}/translate", response_class=Response, responses={**IMAGE_RESPONSE, **ERRORS}, openapi_extra=IMAGE_BODY)
    async def translate(
        name: str,
        request: Request,
        output_format: Annotated[OutputFormat, Query(alias="format", description="Format of the translated image.")] = "png",
        size: Annotated[str, Query(description="auto (the image's own size), N (shorter side) or HxW, as gantx translate --size.")] = "auto",
    ) -> Response:
        """Translate one image: the body is the image; the answer is the translated image at the input's size,
        upright, with its alpha carried over."""
        model = service.model(name, "image2image")
        size_spec = request_size(size)
        with model.hold():
            prepared = await service.in_io(prepare_upload, await uploaded_image(request, settings.upload_limit), model.info, size_spec)
            output = await model.batcher.submit(prepared)
            image_format = IMAGE_FORMATS[OUTPUT_SUFFIX[output_format]]
            content = await service.in_io(lambda: encode(model.runner.finish(prepared, output), image_format))
        return Response(content, media_type=Image.MIME[image_format])

    @guarded.post(
        "/v1/models/{name}/generate",
        response_class=Response,
        responses={200: {"content": {"image/png": {"schema": BINARY}}}, **ERRORS},
        openapi_extra={"requestBody": {"content": {"application/json": {"schema": GenerateRequest.model_json_schema()}}}},
    )
    async def generate(name: str, request: Request) -> Response:
        """Sample a noise model: one PNG for n = 1, a grid of samples otherwise (a column per label)."""
        model = service.model(name, "noise2image")
        with model.hold():
            asked = GenerateRequest.model_validate_json(await read_body(request, settings.upload_limit) or b"{}")
            generator = model.runner
            images = await model.run(partial(generator.generate, asked.n, asked.labels, asked.seed, asked.truncation))
            content = await service.in_io(sample_png, generator, images, asked)
        return Response(content, media_type="image/png")

    @guarded.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        """Every served model: its name, whether it is loaded, its endpoint and its contract (docs/model-format.md)."""
        return {"models": [model.describe() for model in service.models.values()]}

    @guarded.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def metrics() -> Response:
        """Prometheus text: gantx_requests_total, gantx_request_seconds, gantx_batch_size, gantx_queue_depth."""
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @guarded.get("/openapi.json", include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @guarded.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="gantx serve")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Live: the server answers (no API key needed)."""
        return {"status": "live"}

    @app.get("/readyz", responses={503: ERRORS[503]})
    async def readyz() -> dict[str, str]:
        """Ready: every model is loaded and warmed up (no API key needed)."""
        loading = [name for name, model in service.models.items() if model.runner is None]
        if loading:
            raise RequestError(503, f"still loading: {', '.join(loading)}", RETRY_AFTER)
        return {"status": "ready"}

    app.include_router(guarded)

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> JSONResponse:
        return error_response(error.status, error.message, error.headers)

    @app.exception_handler(GantxError)
    async def bad_input(request: Request, error: GantxError) -> JSONResponse:
        return error_response(413 if isinstance(error, ImageTooLarge) else 400, str(error))

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def invalid(request: Request, error: Union[RequestValidationError, ValidationError]) -> JSONResponse:
        return error_response(400, validation_line(error.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), error.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:  # uvicorn still logs the traceback
        return error_response(500, f"internal error: {type(error).__name__}: {first_line(error)}")

    return app


# -- running ------------------------------------------------------------------------------------------


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
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="info", access_log=False, lifespan="on"))
    service.on_failure = lambda: setattr(server, "should_exit", True)
    # uvicorn re-raises the stop signal once it has drained; landing on its own handler again, that is a clean exit.
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        log.info("gantx: serving %s on http://%s:%d (API docs at /docs)", ", ".join(models), host, bound_port)
        server.run(sockets=[listener])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if service.failure:
        raise ModelError(service.failure)
