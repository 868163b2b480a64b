"""The API page at /docs, served from this machine: no CDN, so it works offline and behind firewalls.

Swagger UI's JavaScript and CSS come from the `fastapi-offline` package (which
ships swagger-ui's dist files), found without importing it and served under
/docs/assets/. Without that package, /docs is a plain HTML page listing the
endpoints, made here from the OpenAPI schema, with a line saying how to get
the interactive one.
"""

from __future__ import annotations

import functools
import html
import importlib.util
from pathlib import Path
from typing import Any

from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_PACKAGE = "fastapi-offline"  # pip name; its module fastapi_offline holds static/
ASSETS_PATH = "/docs/assets/"
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
TITLE = "gantx serve"


@functools.cache
def assets_folder() -> Path | None:
    """The folder holding swagger-ui's files, or None when the package that ships them is not installed."""
    spec = importlib.util.find_spec(ASSETS_PACKAGE.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / "static"
    return folder if all((folder / name).is_file() for name in ASSETS) else None


def docs_page(schema: dict[str, Any], openapi_url: str) -> HTMLResponse:
    """Swagger UI over the local assets, or the plain page when they are missing."""
    if assets_folder() is None:
        return plain_page(schema)
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=TITLE,
        swagger_js_url=f"{ASSETS_PATH}swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}favicon.png",
        swagger_ui_parameters={"persistAuthorization": True},  # the key typed into Authorize survives a reload
    )


def asset(name: str) -> FileResponse | None:
    """One of swagger-ui's files, or None (a 404) for any other name or without the package."""
    folder = assets_folder()
    if folder is None or name not in ASSETS:
        return None
    return FileResponse(folder / name, media_type=ASSETS[name])


def plain_page(schema: dict[str, Any]) -> HTMLResponse:
    """Every endpoint with its summary, as static HTML: what /docs shows without swagger-ui's files."""
    rows = "".join(
        f"<tr><td><code>{method.upper()} {html.escape(path)}</code></td>"
        f"<td>{html.escape(operation.get('summary', ''))}</td></tr>"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    )
    info = schema["info"]
    return HTMLResponse(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{TITLE}</title></head><body>"
        f"<h1>{html.escape(info['title'])} {html.escape(info['version'])}</h1>"
        f"<p>{html.escape(info.get('description', ''))} The schema is at <a href='/openapi.json'>/openapi.json</a>.</p>"
        f"<p>For the interactive page: <code>pip install {ASSETS_PACKAGE}</code> and restart the server.</p>"
        f"<table>{rows}</table></body></html>"
    )
