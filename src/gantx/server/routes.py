"""`gantx serve`'s routes, error handlers and request log, at module level: gantx.server.create_app wires them.

Routes reach the models through `request.app.state.service` (the `service`
dependency). Every refusal is a 4xx with `{"error": "one line"}`; the
endpoints are documented in docs/http-api.md.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from gantx.errors import GantxError, first_line
from gantx.images import OUTPUT_SUFFIX, ImageTooLarge
from gantx.server import api_page
from gantx.server.models import (
    MODELS_PATH,
    RETRY_AFTER,
    RequestError,
    ServedModel,
    Service,
    log,
)
from gantx.server.runners import GenerateRequest, TranslateOptions
from gantx.settings import SizeSpec, parse_size

OutputFormat = Literal[tuple(OUTPUT_SUFFIX)]  # type: ignore[valid-type]  # png, jpg, webp: what gantx translate writes
BEARER = HTTPBearer(auto_error=False, description="`Authorization: Bearer KEY` when the server runs with --api-key")


def service(request: Request) -> Service:
    """The app's models, thread pool and metrics (a dependency: tests hand in their own app state)."""
    return request.app.state.service


Served = Annotated[Service, Depends(service)]


# -- errors -------------------------------------------------------------------------------------------


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_line(errors: Sequence[Any]) -> str:
    """Pydantic's first complaint as one line: where, and what is wrong."""
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


async def refused(request: Request, error: RequestError) -> JSONResponse:
    return error_response(error.status, error.message, error.headers)


async def bad_input(request: Request, error: GantxError) -> JSONResponse:
    return error_response(413 if isinstance(error, ImageTooLarge) else 400, str(error))


async def invalid(request: Request, error: RequestValidationError | ValidationError) -> JSONResponse:
    return error_response(400, validation_line(error.errors()))


async def http_error(request: Request, error: HTTPException) -> JSONResponse:
    return error_response(error.status_code, str(error.detail), error.headers)


async def bug(request: Request, error: Exception) -> JSONResponse:  # uvicorn still logs the traceback
    return error_response(500, f"internal error: {type(error).__name__}: {first_line(error)}")


EXCEPTION_HANDLERS: dict[type[Exception], Callable[..., Any]] = {
    RequestError: refused,
    GantxError: bad_input,
    RequestValidationError: invalid,
    ValidationError: invalid,
    HTTPException: http_error,
    Exception: bug,
}


async def check_key(
    served: Served, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> None:
    key = served.settings.api_key
    if key is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), key.encode()):
        raise RequestError(
            401, "missing or wrong API key: send Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"}
        )


# -- reading requests -----------------------------------------------------------------------------------


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
    """The `size` query, in the CLI's grammar (gantx.settings.parse_size)."""
    try:
        return parse_size(text)
    except GantxError as error:
        raise RequestError(400, f"query {str(error).removeprefix('--')}") from None


async def answer(request: Request, served: Service, model: ServedModel, body: bytes, options: Any) -> Response:
    """The runner's four steps for one request; the batch it ran in goes to the request log."""
    item = await served.in_io(model.runner.decode, body, options)
    output, request.state.batch_size = await model.batcher.submit(item)
    content, media_type = await served.in_io(model.runner.encode, item, output, options)
    return Response(content, media_type=media_type)


# -- the OpenAPI description of bodies and answers ------------------------------------------------------

BINARY = {"type": "string", "format": "binary"}
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image file's bytes (any format gantx reads), or multipart/form-data with a field `file`.",
        "content": {
            "application/octet-stream": {"schema": BINARY},
            "image/*": {"schema": BINARY},
            "multipart/form-data": {"schema": {"type": "object", "properties": {"file": BINARY}, "required": ["file"]}},
        },
    }
}
IMAGE_RESPONSE = {200: {"content": {f"image/{kind}": {"schema": BINARY} for kind in ("png", "jpeg", "webp")}}}
ERRORS = {
    status: {"description": what, "content": {"application/json": {"example": {"error": "one line"}}}}
    for status, what in {
        400: "Bad request: not an image, truncated, a bad query or body, or the wrong endpoint for the model's kind",
        401: "Missing or wrong API key",
        404: "No model of that name is served",
        413: "Body over --max-upload-mb, or an image over the pixel limit",
        503: "The model is loading or its queue is full (see Retry-After)",
    }.items()
}
GENERATE_BODY = {"requestBody": {"content": {"application/json": {"schema": GenerateRequest.model_json_schema()}}}}


# -- routes ---------------------------------------------------------------------------------------------

guarded = APIRouter(dependencies=[Depends(check_key)], responses={401: ERRORS[401]})  # wants the key under --api-key
open_to_all = APIRouter()  # health checks and the API page: no key


@guarded.post(
    f"{MODELS_PATH}{{name}}/translate",
    response_class=Response,
    responses={**IMAGE_RESPONSE, **ERRORS},
    openapi_extra=IMAGE_BODY,
)
async def translate(
    name: str,
    request: Request,
    served: Served,
    output_format: Annotated[
        OutputFormat, Query(alias="format", description="Format of the translated image.")
    ] = "png",
    size: Annotated[
        str, Query(description="auto (the image's own size), N (shorter side) or HxW, as gantx translate --size.")
    ] = "auto",
) -> Response:
    """Translate one image: the body is the image; the answer is the translated image at the input's size,
    upright, with its alpha carried over."""
    model = served.model(name, "image2image")
    options = TranslateOptions(output_format, request_size(size))
    with model.hold():
        return await answer(
            request, served, model, await uploaded_image(request, served.settings.upload_limit), options
        )


@guarded.post(
    f"{MODELS_PATH}{{name}}/generate",
    response_class=Response,
    responses={200: {"content": {"image/png": {"schema": BINARY}}}, **ERRORS},
    openapi_extra=GENERATE_BODY,
)
async def generate(name: str, request: Request, served: Served) -> Response:
    """Sample a noise model: one PNG for n = 1, a grid of samples otherwise (a column per label)."""
    model = served.model(name, "noise2image")
    with model.hold():
        return await answer(request, served, model, await read_body(request, served.settings.upload_limit), None)


@guarded.get("/v1/models")
async def list_models(served: Served) -> dict[str, Any]:
    """Every served model: its name, whether it is loaded, its endpoint and its contract (docs/model-format.md)."""
    return {"models": [model.describe() for model in served.models.values()]}


@guarded.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(served: Served) -> Response:
    """Prometheus text: gantx_requests_total, gantx_request_seconds, gantx_batch_size, gantx_queue_depth."""
    return Response(generate_latest(served.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@open_to_all.get("/healthz")
async def healthz() -> dict[str, str]:
    """Live: the server answers (no API key needed)."""
    return {"status": "live"}


@open_to_all.get("/readyz", responses={503: ERRORS[503]})
async def readyz(served: Served) -> dict[str, str]:
    """Ready: every model is loaded and warmed up (no API key needed)."""
    loading = [name for name, model in served.models.items() if not model.ready]
    if loading:
        raise RequestError(503, f"still loading: {', '.join(loading)}", RETRY_AFTER)
    return {"status": "ready"}


@open_to_all.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> dict[str, Any]:
    """The schema: the same for every gantx server (it names no model), so a browser reads it without the key."""
    return request.app.openapi()


@open_to_all.get("/docs", include_in_schema=False)
async def docs(request: Request) -> Response:
    return api_page.docs_page(request.app.openapi(), "/openapi.json")


@open_to_all.get(f"{api_page.ASSETS_PATH}{{name}}", include_in_schema=False)
async def docs_asset(name: str) -> Response:
    found = api_page.asset(name)
    if found is None:
        raise RequestError(404, f"no API page file named {name!r}")
    return found


# -- the request log and metrics --------------------------------------------------------------------------


class RequestLog:
    """One log line per request (method, path, status, milliseconds, model, batch size), and the metrics of
    every request to a model's endpoints, whoever answered it (route, error handler, key check)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        served: Service = scope["app"].state.service
        path = scope["path"]
        name = path[len(MODELS_PATH) :].split("/", 1)[0] if path.startswith(MODELS_PATH) else ""
        label = name if name in served.models else ""  # names from requests must not grow the series
        state = scope.setdefault("state", {})  # request.state: the route leaves the batch size there
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
            seconds = time.perf_counter() - started
            batch = state.get("batch_size", "-")
            log.info(
                "%s %s %d %.1f ms model=%s batch=%s", scope["method"], path, status, seconds * 1000, name or "-", batch
            )
            if path.startswith(MODELS_PATH):
                served.metrics.requests.labels(label, str(status)).inc()
                served.metrics.request_seconds.labels(label).observe(seconds)
