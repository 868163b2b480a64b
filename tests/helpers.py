"""Helpers shared by several test modules (torch-free: importing this needs neither torch nor the serve extra)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from real_images import upright_colour_and_alpha

from gantx.cli import train as train_cli
from gantx.trainers.config import CONFIGS

if TYPE_CHECKING:
    import httpx

SOURCES = [
    "cat.png",
    "camera.png",
    "logo.png",
    "nested/china.jpg",
    "nested/deeper/coffee-palette.png",
    "coins-16bit.png",
    "flower-cmyk.jpg",
    "rocket-rotated.jpg",
]


def assert_negative(source: Path, output: Path) -> None:
    """The output is the exact photographic negative of what a viewer shows, alpha untouched."""
    colour, alpha = upright_colour_and_alpha(source)
    with Image.open(output) as result:
        assert result.size == (colour.shape[1], colour.shape[0]), f"{output} has the wrong size"
        np.testing.assert_array_equal(np.asarray(result.convert("RGB")), 255 - colour, err_msg=str(output))
        if alpha is None:
            assert "A" not in result.getbands()
        else:
            np.testing.assert_array_equal(np.asarray(result.getchannel("A")), alpha)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but holds no pixel data: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def ctrl_c() -> None:
    raise KeyboardInterrupt


def sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs in the main thread, here


def page_urls(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)


def assert_local_page(client: httpx.Client) -> dict[str, httpx.Response]:
    """GET /docs: every script, style and link URL is a path on this server that answers 200; the answers by URL."""
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = page_urls(page.text)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "http://" not in page.text and "https://" not in page.text
    bodies = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.text)
        bodies[url] = response
    return bodies


def parsed(run_cli, monkeypatch, command: str):
    """The config a `gantx train ...` line asks for, as the CLI parses it (the training is replaced by a recorder)."""
    seen = {}
    monkeypatch.setattr(
        train_cli,
        "train_family",
        lambda family, out, options, resume, quiet: seen.update(family=family, options=options),
    )
    code, _, err = run_cli(*shlex.split(command)[1:])
    assert code == 0, err
    return CONFIGS[seen["family"]](**seen["options"])
