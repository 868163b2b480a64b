"""`gantx serve`: a real server in a subprocess on a loopback port, checked over HTTP.

References: for the negate model (y = -x), the photographic negative of the
upload resized by Pillow to the size the query asks, computed without gantx;
for the noise model, its samples drawn and laid out by hand; the pixels
`gantx.Translator` gives for the same inputs; HTTP statuses and bodies, what
/metrics reports and the request log. Routes without a socket: test_serve_app.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
from unittest.mock import ANY

import numpy as np
import pytest
from helpers import SOURCES, assert_local_page, assert_negative, png_header_only
from PIL import Image
from real_images import upright_colour_and_alpha
from serving import Server, serving
from tiny_models import bare_model, noise_model

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

import gantx  # noqa: E402
from gantx.zoo import fashion_samples  # noqa: E402

CLASSES = ("tee", "trouser", "bag")
SERVE_MODULES = ("fastapi", "uvicorn", "watchfiles", "prometheus_client")


@pytest.fixture(scope="module")
def noise_onnx(tmp_path_factory):
    return noise_model(tmp_path_factory.mktemp("noise") / "cgan.onnx", CLASSES)


@pytest.fixture(scope="module")
def server(negate_onnx, noise_onnx, tmp_path_factory):
    """negate (a file served under its stem), noise=PATH and a zoo model by name; uploads up to 1 MB."""
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with serving(
        log,
        "-m",
        str(negate_onnx),
        "-m",
        f"noise={noise_onnx}",
        "-m",
        "fashion-sneaker2boot",
        "--max-upload-mb",
        "1",
        "--max-wait-ms",
        "5",
    ) as running:
        yield running


def decoded(response: httpx.Response) -> Image.Image:
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def assert_one_line_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and fragment in body["error"], body


async def post_all(url: str, bodies: list[bytes], headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """Every body at once, each on its own connection: concurrent clients."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=len(bodies))) as client:
        return await asyncio.gather(*(client.post(url, content=body, headers=headers) for body in bodies))


# -- what a translation returns ------------------------------------------------------------------------


@pytest.mark.parametrize("relative", SOURCES)
def test_translation_equals_the_translator_pixel_for_pixel(server, mixed_folder, negate_onnx, tmp_path, relative):
    # RGB, greyscale, RGBA, JPEG, palette, 16-bit, CMYK and an EXIF-rotated JPEG, sent as the raw body.
    source = mixed_folder / relative
    response = httpx.post(f"{server.url}/v1/models/negate/translate", content=source.read_bytes())
    assert response.status_code == 200 and response.headers["content-type"] == "image/png", response.text
    expected = gantx.Translator(negate_onnx, provider="cpu").translate(source)
    result = decoded(response)
    assert result.mode == expected.mode
    np.testing.assert_array_equal(np.asarray(result), np.asarray(expected))
    (tmp_path / "out.png").write_bytes(response.content)
    assert_negative(source, tmp_path / "out.png")  # upright, at the input's size, alpha carried over


@pytest.mark.parametrize(
    ("output_format", "pillow_format", "content_type"), [("jpg", "JPEG", "image/jpeg"), ("webp", "WEBP", "image/webp")]
)
def test_multipart_upload_and_lossy_formats(
    server, mixed_folder, negate_onnx, output_format, pillow_format, content_type
):
    source = mixed_folder / "logo.png"  # RGBA: WebP keeps the alpha, JPEG drops it
    files = {"file": ("logo.png", source.read_bytes(), "image/png")}
    response = httpx.post(f"{server.url}/v1/models/negate/translate", params={"format": output_format}, files=files)
    assert response.status_code == 200 and response.headers["content-type"] == content_type, response.text
    expected = gantx.Translator(negate_onnx, provider="cpu").translate(source)
    reference = io.BytesIO()  # what `gantx translate -f jpg|webp` writes: Pillow at quality 95
    (expected.convert("RGB") if pillow_format == "JPEG" else expected).save(reference, pillow_format, quality=95)
    result, wanted = decoded(response), Image.open(reference)
    assert result.mode == wanted.mode and result.size == expected.size
    np.testing.assert_array_equal(np.asarray(result), np.asarray(wanted))


def expected_size(height: int, width: int, size: str) -> tuple[int, int]:
    """(H, W) the size query asks of an image of height x width, by the contract's arithmetic (not gantx's code)."""
    if size == "auto":
        return height, width
    if "x" in size:
        asked_height, asked_width = map(int, size.split("x"))
        return asked_height, asked_width
    shorter = int(size)
    return (shorter, round(width * shorter / height)) if height <= width else (round(height * shorter / width), shorter)


@pytest.mark.parametrize("relative", ["cat.png", "logo.png"])
@pytest.mark.parametrize("size", ["auto", "37", "45x61"])
def test_translation_at_each_size_query_is_the_negative_of_the_resized_image(server, mixed_folder, relative, size):
    # y = -x is 255 - p per pixel: the answer is the negative of the upload resized (Lanczos) to the size asked,
    # alpha resized beside it; every number here comes from Pillow and the query, none from gantx.
    source = mixed_folder / relative
    colour, alpha = upright_colour_and_alpha(source)
    height, width = expected_size(*colour.shape[:2], size)
    url = f"{server.url}/v1/models/negate/translate"
    response = httpx.post(url, params={"size": size}, content=source.read_bytes())
    assert response.status_code == 200, response.text
    result = decoded(response)
    assert result.size == (width, height)
    resized = np.asarray(Image.fromarray(colour).resize((width, height), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(np.asarray(result.convert("RGB")), 255 - resized)
    if alpha is not None:
        wanted_alpha = np.asarray(Image.fromarray(alpha).resize((width, height), Image.Resampling.LANCZOS))
        np.testing.assert_array_equal(np.asarray(result.getchannel("A")), wanted_alpha)


@pytest.mark.parametrize("size", ["auto", "56", "40x30"])
def test_zoo_model_by_name_answers_at_the_size_asked(server, size):
    sample = fashion_samples("sneaker-")[0]
    response = httpx.post(
        f"{server.url}/v1/models/fashion-sneaker2boot/translate", params={"size": size}, content=sample.read_bytes()
    )
    assert response.status_code == 200, response.text
    with Image.open(sample) as source:
        height, width = expected_size(source.height, source.width, size)
    assert decoded(response).size == (width, height)


def noise_samples(count: int, labels: list[int], seed: int) -> list[np.ndarray]:
    """What tiny_models.noise_model draws, by hand: z from numpy's generator,
    pixel = rint((clip(z + label/10) + 1) * 127.5), z's four values read row by row into 2x2."""
    z = np.random.default_rng(seed).standard_normal((count, 4)).astype(np.float32)
    offsets = np.float32([labels[index % len(labels)] for index in range(count)]) * np.float32(0.1)
    pixels = np.rint((np.clip(z + offsets[:, None], -1, 1) + np.float32(1)) * np.float32(127.5)).astype(np.uint8)
    return [sample.reshape(2, 2) for sample in pixels]


def test_generate_one_sample_and_a_grid_laid_out_by_hand(server):
    url = f"{server.url}/v1/models/noise/generate"
    one = httpx.post(url, json={"labels": ["bag"], "n": 1, "seed": 3})
    assert one.status_code == 200 and one.headers["content-type"] == "image/png", one.text
    np.testing.assert_array_equal(np.asarray(decoded(one)), noise_samples(1, [2], 3)[0])
    sheet = httpx.post(url, json={"labels": ["tee", 2], "n": 6, "seed": 5})
    assert sheet.status_code == 200, sheet.text
    expected = np.zeros((6, 4), np.uint8)  # a column per label (2), so 3 rows of 2x2 samples
    for index, sample in enumerate(noise_samples(6, [0, 2], 5)):
        row, column = divmod(index, 2)
        expected[2 * row : 2 * row + 2, 2 * column : 2 * column + 2] = sample
    np.testing.assert_array_equal(np.asarray(decoded(sheet)), expected)


# -- the other endpoints --------------------------------------------------------------------------------


def test_models_lists_names_and_contracts(server, negate_onnx, noise_onnx):
    listed = {model["name"]: model for model in httpx.get(f"{server.url}/v1/models").json()["models"]}
    assert list(listed) == ["negate", "noise", "fashion-sneaker2boot"]
    for name, model in (
        ("negate", negate_onnx),
        ("noise", noise_onnx),
        ("fashion-sneaker2boot", "fashion-sneaker2boot"),
    ):
        info = (
            gantx.Translator(model, provider="cpu").info
            if name != "noise"
            else gantx.Generator(model, provider="cpu").info
        )
        assert listed[name]["contract"] == json.loads(json.dumps(info.to_dict()))
        assert listed[name]["ready"] is True
    assert listed["noise"]["endpoint"] == "/v1/models/noise/generate"
    assert listed["negate"]["endpoint"] == "/v1/models/negate/translate"


def test_health_checks_and_the_openapi_page(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "live"}
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}
    with httpx.Client(base_url=server.url) as client:
        assert_local_page(client)  # Swagger UI, or the plain page without fastapi-offline: nothing from elsewhere
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {
        "/v1/models/{name}/translate",
        "/v1/models/{name}/generate",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(paths)


def test_metrics_count_requests_by_model_and_status(server, mixed_folder):
    def count(code: str) -> float:
        return server.metric("gantx_requests_total", model="negate", code=code)

    before_ok, before_bad = count("200"), count("400")
    seconds_before = server.metric("gantx_request_seconds_count", model="negate")
    url = f"{server.url}/v1/models/negate/translate"
    for body in (
        mixed_folder.joinpath("cat.png").read_bytes(),
        mixed_folder.joinpath("camera.png").read_bytes(),
        b"not an image",
    ):
        httpx.post(url, content=body)
    assert (count("200") - before_ok, count("400") - before_bad) == (2, 1)
    assert server.metric("gantx_request_seconds_count", model="negate") - seconds_before == 3
    assert server.metric("gantx_queue_depth", model="negate") == 0  # nothing held once answered
    assert server.metric("gantx_batch_size_count", model="negate") >= 2


# -- bad requests -----------------------------------------------------------------------------------------


def _truncated_jpeg(folder) -> bytes:
    whole = (folder / "nested" / "china.jpg").read_bytes()
    return whole[: len(whole) // 3]


BAD_REQUESTS = [
    # (what, method, path, keyword arguments for httpx, status, fragment of the error)
    (
        "not an image",
        "post",
        "/v1/models/negate/translate",
        lambda d: {"content": b"hello, not an image"},
        400,
        "cannot read image (not in a format gantx reads)",
    ),
    (
        "truncated",
        "post",
        "/v1/models/negate/translate",
        lambda d: {"content": _truncated_jpeg(d)},
        400,
        "upload: cannot read image",
    ),
    ("empty body", "post", "/v1/models/negate/translate", lambda d: {"content": b""}, 400, "empty body"),
    (
        "no file field",
        "post",
        "/v1/models/negate/translate",
        lambda d: {"files": {"image": ("a.png", b"x")}},
        400,
        "field 'file'",
    ),
    (
        "over the pixel limit",
        "post",
        "/v1/models/negate/translate",
        lambda d: {"content": png_header_only(30000, 30000)},
        413,
        "over the limit",
    ),
    (
        "asked size over the pixel limit",
        "post",
        "/v1/models/negate/translate?size=100000",
        lambda d: {"content": (d / "cat.png").read_bytes()},
        413,
        "over the limit",
    ),
    (
        "body over --max-upload-mb",
        "post",
        "/v1/models/negate/translate",
        lambda d: {"content": bytes(1_500_000)},
        413,
        "--max-upload-mb",
    ),
    (
        "chunked body over --max-upload-mb",
        "post",
        "/v1/models/negate/translate",
        lambda d: {"content": iter([bytes(400_000)] * 4)},
        413,
        "--max-upload-mb",
    ),
    (
        "unknown model",
        "post",
        "/v1/models/nope/translate",
        lambda d: {"content": (d / "cat.png").read_bytes()},
        404,
        "no model named 'nope'",
    ),
    (
        "translate of a noise model",
        "post",
        "/v1/models/noise/translate",
        lambda d: {"content": (d / "cat.png").read_bytes()},
        400,
        "/v1/models/noise/generate",
    ),
    (
        "generate of an image model",
        "post",
        "/v1/models/negate/generate",
        lambda d: {"json": {"n": 1}},
        400,
        "/v1/models/negate/translate",
    ),
    (
        "bad format",
        "post",
        "/v1/models/negate/translate?format=gif",
        lambda d: {"content": (d / "cat.png").read_bytes()},
        400,
        "format",
    ),
    (
        "bad size",
        "post",
        "/v1/models/negate/translate?size=big",
        lambda d: {"content": (d / "cat.png").read_bytes()},
        400,
        "size 'big'",
    ),
    (
        "unknown label",
        "post",
        "/v1/models/noise/generate",
        lambda d: {"json": {"labels": ["hat"]}},
        400,
        "unknown label 'hat'",
    ),
    ("n of 0", "post", "/v1/models/noise/generate", lambda d: {"json": {"n": 0}}, 400, "n: "),
    ("n too large", "post", "/v1/models/noise/generate", lambda d: {"json": {"n": 100000}}, 400, "n: "),
    ("unknown field", "post", "/v1/models/noise/generate", lambda d: {"json": {"count": 3}}, 400, "count"),
    ("not JSON", "post", "/v1/models/noise/generate", lambda d: {"content": b"{n: 3"}, 400, "JSON"),
    ("no such path", "get", "/v2/anything", lambda d: {}, 404, "Not Found"),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "arguments", "status", "fragment"), BAD_REQUESTS, ids=[row[0] for row in BAD_REQUESTS]
)
def test_bad_request_gets_its_status_and_one_line(
    server, mixed_folder, what, method, path, arguments, status, fragment
):
    response = getattr(httpx, method)(f"{server.url}{path}", **arguments(mixed_folder), timeout=30)
    assert_one_line_error(response, status, fragment)
    assert (
        httpx.post(
            f"{server.url}/v1/models/negate/translate", content=(mixed_folder / "cat.png").read_bytes()
        ).status_code
        == 200
    )
    assert server.process.poll() is None and "Traceback" not in server.output()


# -- batching, backpressure, shutdown ---------------------------------------------------------------------


def test_concurrent_requests_share_model_calls(negate_onnx, mixed_folder, tmp_path):
    # Eight requests, four to a call: two full batches, run as soon as each is full. --max-wait-ms is beyond
    # post_all's 60 s timeout, so answers at all show that full batches did not wait it out (no wall-clock bound).
    body = (mixed_folder / "cat.png").read_bytes()
    args = ["-m", str(negate_onnx), "--max-batch", "4", "--max-wait-ms", "120000"]
    with serving(tmp_path / "serve.log", *args) as server:
        responses = asyncio.run(post_all(f"{server.url}/v1/models/negate/translate", [body] * 8))
        assert [response.status_code for response in responses] == [200] * 8
        expected = np.asarray(gantx.Translator(negate_onnx, provider="cpu").translate(mixed_folder / "cat.png"))
        for response in responses:
            np.testing.assert_array_equal(np.asarray(decoded(response)), expected)
        assert server.metric("gantx_batch_size_count", model="negate") == 2
        assert server.metric("gantx_batch_size_sum", model="negate") == 8


def test_a_full_queue_answers_503_with_retry_after(negate_onnx, mixed_folder, tmp_path):
    body = (mixed_folder / "cat.png").read_bytes()
    args = ["-m", str(negate_onnx), "--queue", "3", "--max-batch", "64", "--max-wait-ms", "2000"]
    with serving(tmp_path / "serve.log", *args) as server:
        url = f"{server.url}/v1/models/negate/translate"

        async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
            held = asyncio.ensure_future(post_all(url, [body] * 3))  # they wait up to 2 s for company
            while await asyncio.to_thread(server.metric, "gantx_queue_depth", model="negate") < 3:
                await asyncio.sleep(0.05)
            async with httpx.AsyncClient() as client:
                refused = await client.post(url, content=body)
            return await held, refused

        held, refused = asyncio.run(scenario())
        assert_one_line_error(refused, 503, "--queue")
        assert refused.headers["retry-after"] == "1"
        assert [response.status_code for response in held] == [200] * 3
        assert httpx.post(url, content=body).status_code == 200  # room again once they are answered
        assert server.metric("gantx_requests_total", model="negate", code="503") == 1
        line = r"POST /v1/models/negate/translate (\d+) [\d.]+ ms model=negate batch=(\S+)"
        logged = re.findall(line, server.output())
        assert sorted(status for status, _ in logged) == ["200"] * 4 + ["503"]  # one line per request
        assert all(batch.isdigit() if status == "200" else batch == "-" for status, batch in logged)  # 503: no call


def test_log_level_warning_keeps_only_problems(negate_onnx, mixed_folder, tmp_path):
    with serving(tmp_path / "serve.log", "-m", str(negate_onnx), "--log-level", "warning") as server:
        url = f"{server.url}/v1/models/negate/translate"
        assert httpx.post(url, content=(mixed_folder / "cat.png").read_bytes()).status_code == 200
        assert httpx.post(url, content=b"not an image").status_code == 400
    assert "/v1/models/negate/translate" not in server.output() and "ready on" not in server.output(), server.output()


def test_sigterm_stops_accepting_and_finishes_requests_in_flight(negate_onnx, mixed_folder, tmp_path):
    source = mixed_folder / "logo.png"
    server = Server(tmp_path / "serve.log", ["-m", str(negate_onnx), "--max-batch", "64", "--max-wait-ms", "2000"])
    try:
        server.wait_ready()

        async def scenario() -> tuple[list[httpx.Response], bool]:
            in_flight = asyncio.ensure_future(
                post_all(f"{server.url}/v1/models/negate/translate", [source.read_bytes()] * 5)
            )
            while await asyncio.to_thread(server.metric, "gantx_queue_depth", model="negate") < 5:
                await asyncio.sleep(0.05)
            server.process.send_signal(signal.SIGTERM)
            refused = False
            async with httpx.AsyncClient() as client:
                for _ in range(40):  # the listening socket closes within uvicorn's 0.1 s tick
                    try:
                        await client.get(f"{server.url}/healthz", headers={"connection": "close"})
                    except httpx.ConnectError:
                        refused = True
                        break
                    await asyncio.sleep(0.05)
            return await in_flight, refused

        responses, refused_new = asyncio.run(scenario())
        assert refused_new, "new connections were still accepted after SIGTERM"
        assert [response.status_code for response in responses] == [200] * 5
        expected = np.asarray(gantx.Translator(negate_onnx, provider="cpu").translate(source))
        for response in responses:
            np.testing.assert_array_equal(np.asarray(decoded(response)), expected)
        assert server.process.wait(30) == 0, server.output()
    finally:
        server.stop()


# -- security ---------------------------------------------------------------------------------------------


def test_api_key_guards_everything_but_the_health_checks_and_the_api_page(negate_onnx, mixed_folder, tmp_path):
    with serving(tmp_path / "serve.log", "-m", str(negate_onnx), env={"GANTX_API_KEY": "s3cret"}) as server:
        good = {"authorization": "Bearer s3cret"}
        for path in ("/healthz", "/readyz", "/docs"):  # a browser opens the API page without the key...
            assert httpx.get(f"{server.url}{path}").status_code == 200
        schema = httpx.get(f"{server.url}/openapi.json").json()
        bearer = {"type": "http", "scheme": "bearer", "description": ANY}
        assert schema["components"]["securitySchemes"]["HTTPBearer"] == bearer
        translate = schema["paths"]["/v1/models/{name}/translate"]["post"]
        assert translate["security"] == [{"HTTPBearer": []}]  # ...and types it there
        for method, path in (("get", "/v1/models"), ("get", "/metrics"), ("post", "/v1/models/negate/translate")):
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic czNjcmV0"}):
                response = getattr(httpx, method)(f"{server.url}{path}", headers=headers)
                assert_one_line_error(response, 401, "API key")
                assert response.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{server.url}/v1/models", headers=good).status_code == 200
        translated = httpx.post(
            f"{server.url}/v1/models/negate/translate", content=(mixed_folder / "cat.png").read_bytes(), headers=good
        )
        assert translated.status_code == 200
        (tmp_path / "out.png").write_bytes(translated.content)
        assert_negative(mixed_folder / "cat.png", tmp_path / "out.png")


def test_listening_beyond_loopback_without_a_key_warns(negate_onnx, run_cli, monkeypatch):
    import gantx.server

    started = []
    monkeypatch.setattr(
        gantx.server,
        "serve",
        lambda models, settings, host, port: started.append((list(models), host, settings.api_key)),
    )
    code, _, stderr = run_cli("serve", "-m", negate_onnx, "--host", "0.0.0.0")
    assert code == 0 and started == [(["negate"], "0.0.0.0", None)]
    assert "warning: listening on 0.0.0.0 without --api-key" in stderr
    for host, extra in (("0.0.0.0", ["--api-key", "k"]), ("127.0.0.1", []), ("::1", []), ("localhost", [])):
        code, _, stderr = run_cli("serve", "-m", negate_onnx, "--host", host, *extra)
        assert code == 0 and "warning" not in stderr


# -- refusals at start ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (lambda t, m: ["-m", str(t / "missing.onnx")], "model not found"),
        (lambda t, m: ["-m", str(bare_model(t / "bare.onnx"))], "not a gantx model"),
        (lambda t, m: ["-m", str(m), "-m", f"negate={m}"], "a model named 'negate' is already served"),
        (lambda t, m: ["-m", f"bad/name={m}"], "model not found"),  # not NAME=PATH: a path with '=' that does not exist
        (lambda t, m: ["-m", str(shutil.copy(m, t / "my model.onnx"))], "no model name"),
    ],
)
def test_bad_models_exit_2_in_one_line_before_listening(negate_onnx, tmp_path, run_cli, models, message):
    code, _, stderr = run_cli("serve", *models(tmp_path, negate_onnx), "--port", "1")
    assert code == 2 and message in stderr and stderr.count("\n") == 1, stderr


def test_a_taken_port_exits_2_in_one_line(negate_onnx, run_cli):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, _, stderr = run_cli("serve", "-m", negate_onnx, "--port", port)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in stderr and stderr.count("\n") == 1, stderr


# -- the serve extra stays optional ---------------------------------------------------------------------------


def test_import_gantx_imports_nothing_of_the_serve_extra():
    code = (
        "import sys, gantx, gantx.cli; "
        f"print(' '.join(sorted(name for name in {SERVE_MODULES} if name in sys.modules)))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert imported == ""


@pytest.mark.parametrize(
    ("missing", "module", "args"),
    [
        ("fastapi", "gantx.server", lambda m, t: ["serve", "-m", m]),
        ("watchfiles", "gantx.watch", lambda m, t: ["translate", t / "in", "-m", m, "-o", t / "out", "--watch"]),
    ],
)
def test_without_the_serve_extra_the_cli_says_how_to_get_it(
    negate_onnx, tmp_path, run_cli, monkeypatch, missing, module, args
):
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, module, raising=False)
    (tmp_path / "in").mkdir()
    code, _, stderr = run_cli(*args(negate_onnx, tmp_path))
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert f'{missing} is not installed: pip install "gantx[serve]"' in stderr
    assert not (tmp_path / "out").exists()
