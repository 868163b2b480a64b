"""`gantx serve -m MODEL ...`: translate and generate over HTTP with dynamic batching (the serve extra)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from gantx.cli.options import run_options
from gantx.extras import import_extra
from gantx.settings import RunSettings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


@run_options(exclude=("batch_size", "size"))  # --max-batch is the batch; each request asks its own size
def serve(
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="A model to serve: a zoo name, a file (served under its stem: px.onnx is px) or NAME=PATH. "
            "Repeat for several.",
            show_default=False,
        ),
    ],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; any but loopback wants --api-key.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Most requests in one model call.")] = 8,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="How long a request waits for others to share its model call.")
    ] = 10.0,
    queue: Annotated[
        int, typer.Option("--queue", min=1, help="Requests a model holds at once; more get 503 with Retry-After.")
    ] = 64,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.001, help="Largest request body, in MB; larger get 413.")
    ] = 32.0,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="GANTX_API_KEY",
            help="Every endpoint but /healthz, /readyz and the API page (/docs) wants Authorization: Bearer KEY.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info (a line per request), warning or error (only problems).")
    ] = "info",
    *,
    settings: RunSettings,
) -> None:
    """Serve models over HTTP until SIGTERM or Ctrl-C (then finish the requests in flight and exit 0).

    API: docs/http-api.md.
    """
    server = import_extra("gantx.server", "serve")
    serving = server.ServeSettings(max_batch, max_wait_ms, queue, max_upload_mb, api_key, settings, log_level)
    models = server.parse_model_specs(model)
    if api_key is None and not is_loopback(host):
        typer.echo(
            f"gantx: warning: listening on {host} without --api-key: anyone who reaches this port can use the models",
            err=True,
        )
    server.serve(models, serving, host, port)
