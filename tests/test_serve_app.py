"""`gantx serve`'s application in-process: routes, settings, the request log and the API page, without a socket.

FastAPI's TestClient drives the ASGI app directly (no port is opened) and runs
its lifespan, so the models load as they do under uvicorn. References: the
negate model's known output (255 - p), what the tiled Translator gives, the
settings the models were opened with, the exact log lines and the files of the
API page. The real HTTP path (uvicorn, signals, concurrency): test_serve.py.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_local_page, assert_negative
from onnx import helper
from PIL import Image
from tiny_models import contract_metadata, noise_model, save_model

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import gantx  # noqa: E402
from gantx.generator import DEFAULT_BATCH  # noqa: E402
from gantx.server import api_page, create_app  # noqa: E402
from gantx.server.config import ServeSettings  # noqa: E402
from gantx.server.models import Service  # noqa: E402
from gantx.settings import RunSettings  # noqa: E402

TILE = 16


def centred_model(path: Path) -> Path:
    """y = x - mean(x) over the image: its output depends on everything the model sees at once, so tiles show."""
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], axes=[2, 3], keepdims=1),
        helper.make_node("Sub", ["input", "mean"], ["output"]),
    ]
    shape = ["N", 3, "H", "W"]
    return save_model(path, nodes, shape, shape, contract_metadata(**{"gantx.size_multiple": "4"}))


@contextlib.contextmanager
def started(models: dict[str, Path], **settings) -> Iterator[TestClient]:
    """A client of the app over `models`, its lifespan entered (the models load) and every model ready."""
    with TestClient(create_app(Service(models, ServeSettings(**settings)))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.02)
        yield client


@pytest.fixture(scope="module")
def client(negate_onnx):
    with started({"negate": negate_onnx}, run=RunSettings(provider="cpu")) as client:
        yield client


# -- settings ---------------------------------------------------------------------------------------------


def test_a_tiled_model_gives_the_tiled_result(negate_onnx, mixed_folder, tmp_path):
    source = mixed_folder / "cat.png"
    centred = centred_model(tmp_path / "centred.onnx")
    with started({"negate": negate_onnx, "centred": centred}, run=RunSettings(provider="cpu", tile=TILE)) as client:
        negative = client.post("/v1/models/negate/translate", content=source.read_bytes())
        centred_answer = client.post("/v1/models/centred/translate", content=source.read_bytes())
    (tmp_path / "negative.png").write_bytes(negative.content)
    assert_negative(source, tmp_path / "negative.png")  # y = -x stays 255 - p in tiles
    served = np.asarray(Image.open(io.BytesIO(centred_answer.content)))
    tiled = np.asarray(gantx.Translator(centred, provider="cpu", tile=TILE).translate(source))
    whole = np.asarray(gantx.Translator(centred, provider="cpu").translate(source))
    assert np.abs(tiled.astype(int) - whole).max() > 10  # each tile subtracts its own mean: tiling shows
    np.testing.assert_array_equal(served, tiled)


def test_every_run_setting_reaches_the_models(negate_onnx, tmp_path):
    noise = noise_model(tmp_path / "noise.onnx")
    run = RunSettings(provider="cpu", tile=TILE, threads=1, size="32")  # size: each request asks its own
    with started({"negate": negate_onnx, "noise": noise}, run=run, max_batch=3) as client:
        models = client.app.state.service.models
        translator, generator = models["negate"].runner.translator, models["noise"].runner.generator
        assert translator.settings == run.replace(batch_size=3)  # --max-batch is the translator's batch
        assert generator.settings == run.replace(batch_size=DEFAULT_BATCH)
        for session in (translator.session, generator.session):
            assert session.get_providers() == ["CPUExecutionProvider"]
            assert session.get_session_options().intra_op_num_threads == 1
        assert models["negate"].batcher.max_batch == 3 and models["noise"].batcher.max_batch == 1


def test_log_level_is_one_of_four(negate_onnx, run_cli, monkeypatch):
    import gantx.server

    started_with = []
    monkeypatch.setattr(
        gantx.server, "serve", lambda models, settings, host, port: started_with.append(settings.log_level)
    )
    code, _, stderr = run_cli("serve", "-m", negate_onnx, "--log-level", "loud")
    assert code == 2 and stderr == "gantx: error: --log-level 'loud': choose one of debug, info, warning, error\n", (
        stderr
    )
    assert run_cli("serve", "-m", negate_onnx, "--log-level", "warning")[0] == 0 and started_with == ["warning"]


# -- routes -----------------------------------------------------------------------------------------------


def test_routes_answer_without_a_socket(client, mixed_folder, tmp_path):
    translated = client.post("/v1/models/negate/translate", content=(mixed_folder / "cat.png").read_bytes())
    assert translated.status_code == 200 and translated.headers["content-type"] == "image/png"
    (tmp_path / "out.png").write_bytes(translated.content)
    assert_negative(mixed_folder / "cat.png", tmp_path / "out.png")
    assert client.get("/healthz").json() == {"status": "live"}
    assert [model["name"] for model in client.get("/v1/models").json()["models"]] == ["negate"]
    missing = client.post("/v1/models/nope/translate", content=b"x")
    assert missing.status_code == 404 and missing.json() == {
        "error": "no model named 'nope' is served here (GET /v1/models lists them)"
    }


def test_a_model_still_loading_answers_503(negate_onnx, mixed_folder):
    client = TestClient(create_app(Service({"negate": negate_onnx}, ServeSettings())))  # no lifespan: nothing loads
    refused = client.post("/v1/models/negate/translate", content=(mixed_folder / "cat.png").read_bytes())
    assert (refused.status_code, refused.json(), refused.headers["retry-after"]) == (
        503,
        {"error": "model negate is still loading"},
        "1",
    )
    assert client.get("/readyz").json() == {"error": "still loading: negate"}


# -- the request log ---------------------------------------------------------------------------------------


def test_one_log_line_per_request_with_status_latency_model_and_batch(client, mixed_folder, caplog):
    with caplog.at_level(logging.INFO, logger="gantx.serve"):
        assert (
            client.post("/v1/models/negate/translate", content=(mixed_folder / "cat.png").read_bytes()).status_code
            == 200
        )
        assert client.post("/v1/models/negate/translate", content=b"not an image").status_code == 400
        assert client.post("/v1/models/nope/translate", content=b"x").status_code == 404
        assert client.get("/v2/anything").status_code == 404
    lines = [record.getMessage() for record in caplog.records if record.name == "gantx.serve"]
    patterns = [
        r"POST /v1/models/negate/translate 200 \d+\.\d ms model=negate batch=1",
        r"POST /v1/models/negate/translate 400 \d+\.\d ms model=negate batch=-",  # refused before any model call
        r"POST /v1/models/nope/translate 404 \d+\.\d ms model=nope batch=-",
        r"GET /v2/anything 404 \d+\.\d ms model=- batch=-",
    ]
    assert len(lines) == len(patterns), lines
    for line, pattern in zip(lines, patterns):
        assert re.fullmatch(pattern, line), line
    assert all(record.levelno == logging.INFO for record in caplog.records if record.name == "gantx.serve")


# -- the API page ------------------------------------------------------------------------------------------


def test_the_api_page_loads_swagger_ui_from_this_server(client):
    pytest.importorskip(api_page.ASSETS_PACKAGE.replace("-", "_"))
    bodies = assert_local_page(client)
    kinds = {url: response.headers["content-type"].split(";")[0] for url, response in bodies.items()}
    assert sorted(kinds.values()) == ["image/png", "text/css", "text/javascript"]
    script = next(response.text for url, response in bodies.items() if kinds[url] == "text/javascript")
    assert "SwaggerUIBundle" in script and len(script) > 100_000  # the real bundle, not a stub


def test_the_api_page_serves_the_files_it_finds(client, tmp_path, monkeypatch):
    # Whether or not the package is installed here: the page names exactly these files, which come back byte for byte.
    for name in api_page.ASSETS:
        (tmp_path / name).write_bytes(f"/* {name} */".encode())
    monkeypatch.setattr(api_page, "assets_folder", lambda: tmp_path)
    bodies = assert_local_page(client)
    served = {url: response.content for url, response in bodies.items()}
    assert served == {f"/docs/assets/{name}": f"/* {name} */".encode() for name in api_page.ASSETS}
    assert client.get("/docs/assets/../server.py").status_code == 404
    assert client.get("/docs/assets/swagger-ui.css.map").json() == {
        "error": "no API page file named 'swagger-ui.css.map'"
    }


def test_without_the_assets_the_api_page_is_plain_html_listing_every_endpoint(client, monkeypatch):
    monkeypatch.setattr(api_page, "assets_folder", lambda: None)
    bodies = assert_local_page(client)
    assert list(bodies) == ["/openapi.json"]
    page = client.get("/docs").text
    assert "<script" not in page and f"pip install {api_page.ASSETS_PACKAGE}" in page
    for line in (
        "POST /v1/models/{name}/translate",
        "POST /v1/models/{name}/generate",
        "GET /v1/models",
        "GET /metrics",
        "GET /healthz",
    ):
        assert f"<code>{line}</code>" in page
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 404
