"""`gantx translate --engine ray` and gantx.ray_engine on a real Ray, against the local engine and exact references.

One Ray instance (2 CPUs, no dashboard, its own temporary folder) serves the
whole module; the CLI runs in-process and uses it. The two-node cluster test
starts its own nodes with `ray start` and runs the CLI as a separate process.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SOURCES, assert_negative
from PIL import Image
from real_images import real_photo
from real_videos import make_clip, pan_frames

from gantx.inputs import collect_sources, plan_jobs
from gantx.settings import RunSettings

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")


def test_the_model_check_before_ray_leaves_gpu_options_and_precision_to_the_actors(negate_onnx, caplog):
    import gantx.ray_engine

    settings = RunSettings(provider="cuda", cuda_graph=True, precision="bf16")  # refused on this CPU by itself
    with caplog.at_level(logging.WARNING, logger="gantx"):
        assert gantx.ray_engine.checked_model(negate_onnx, settings) == os.path.abspath(negate_onnx)
    assert caplog.records == []  # nothing said of a precision the driver's CPU would not honour


@pytest.fixture
def driver_loads(monkeypatch) -> list[str]:
    """The models gantx.ray_engine loads in this process (the actors' own loads are in theirs)."""
    import gantx.ray_engine

    loaded: list[str] = []

    class Counted(gantx.ray_engine.Translator):
        def __init__(self, model, *args, **kwargs) -> None:
            loaded.append(os.fspath(model))
            super().__init__(model, *args, **kwargs)

    monkeypatch.setattr(gantx.ray_engine, "Translator", Counted)
    return loaded


def test_a_checked_model_is_not_loaded_again(negate_onnx, driver_loads):
    import gantx.ray_engine

    checked = gantx.ray_engine.checked_model(negate_onnx)
    assert gantx.ray_engine.checked_model(checked) == checked == os.path.abspath(negate_onnx)
    assert driver_loads == [os.fspath(negate_onnx)]


@pytest.fixture(scope="module")
def ray_instance():
    folder = tempfile.mkdtemp(prefix="gx-ray-")  # short: Ray's socket paths inside it must stay under 108 bytes
    tests = str(Path(__file__).parent)  # actors import crashing_batch from here
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=folder,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"PYTHONPATH": tests}},
    )
    yield
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"), dtype=np.int16)


def files_under(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def failed_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("failed ")]


def test_ray_engine_gives_the_local_engines_outputs_and_names_the_broken_file(
    ray_instance, mixed_folder, negate_onnx, tmp_path, run_cli, monkeypatch, driver_loads
):
    photos = tmp_path / "photos"
    shutil.copytree(mixed_folder, photos)
    whole = (photos / "nested" / "china.jpg").read_bytes()
    (photos / "nested" / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    monkeypatch.chdir(tmp_path)  # the folder given by a relative path, as the user typed it
    code, stdout, local_stderr = run_cli("translate", "photos", "-m", negate_onnx, "-o", "local", "-b", "2")
    assert code == 1 and "translated 8, skipped 0, failed 1" in stdout
    code, stdout, stderr = run_cli("translate", "photos", "-m", negate_onnx, "-o", "ray", "-b", "2", "--engine", "ray")
    assert code == 1, stderr
    assert driver_loads == [os.fspath(negate_onnx)]  # the model checked once, before Ray started
    assert "translated 8, skipped 0, failed 1" in stdout and "on Ray (node " in stdout
    assert failed_lines(stderr) == failed_lines(local_stderr), stderr  # the file as the user named it, the same words
    assert failed_lines(stderr)[0].startswith("failed photos/nested/truncated.jpg: cannot read image")
    assert "Traceback" not in stderr
    assert files_under(on_ray) == files_under(local) == sorted(SOURCES)
    for relative in SOURCES:
        difference = np.abs(pixels(on_ray / relative) - pixels(local / relative))
        assert difference.max() <= 1, relative
        if relative.endswith(".png"):  # lossless: the exact negative of what a viewer shows
            assert_negative(photos / relative, on_ray / relative)

    code, stdout, _ = run_cli("translate", "photos", "-m", negate_onnx, "-o", "ray", "--engine", "ray")
    assert code == 1 and "translated 0, skipped 8, failed 1" in stdout


def test_an_actor_killed_mid_run_loses_nothing(ray_instance, negate_onnx, tmp_path, run_cli):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    base = real_photo("astronaut.png", 500)
    count = 32
    for index in range(count):  # four actor calls of 8 PNGs: the first output appears while most are still to do
        base.rotate(index * 7.5).save(photos / f"{index:03d}.png")
    killed: list[tuple[int, int]] = []  # (actor pid, outputs present at the time)

    def kill_one_actor() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            written = len(list(out.glob("*.png"))) if out.exists() else 0
            actor_pids = processes_mentioning("MapBatches(TranslateBatch)")  # Ray titles actors after their class
            if written and actor_pids:
                os.kill(actor_pids[0], signal.SIGKILL)
                killed.append((actor_pids[0], written))
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_actor, daemon=True)
    killer.start()
    code, stdout, stderr = run_cli("translate", photos, "-m", negate_onnx, "-o", out, "-b", "2", "--engine", "ray")
    killer.join()
    assert killed, "no actor was found to kill"
    assert killed[0][1] < count, "the run was over before the actor was killed"
    assert code == 0, stderr
    assert f"translated {count}, skipped 0, failed 0" in stdout
    assert files_under(out) == sorted(f"{index:03d}.png" for index in range(count)), (
        "outputs missing or temporary files left"
    )
    for index in range(count):
        assert_negative(photos / f"{index:03d}.png", out / f"{index:03d}.png")


def test_a_batch_that_kills_its_actor_every_time_stops_the_run_after_its_retries(
    ray_instance, mixed_folder, negate_onnx, tmp_path, monkeypatch
):
    from crashing_batch import CrashingBatch

    import gantx.ray_engine

    photos = tmp_path / "photos"
    shutil.copytree(mixed_folder, photos)
    shutil.copy(photos / "cat.png", photos / "crash.png")
    monkeypatch.setattr(gantx.ray_engine, "TranslateBatch", CrashingBatch)
    jobs = plan_jobs(collect_sources([str(photos)], tmp_path / "out"), tmp_path / "out", "png", single_file=False)
    started = time.monotonic()
    with pytest.raises(gantx.GantxError) as stopped:
        list(gantx.ray_engine.translate_paths(jobs, negate_onnx, gantx.RunSettings(batch_size=1)))
    assert str(stopped.value) == (
        f"the Ray run stopped: an actor died {gantx.ray_engine.TASK_RETRIES + 1} times on one batch "
        "(out of memory, or a file that crashes it: see Ray's logs on its node); finished outputs are kept"
    )
    assert time.monotonic() - started < 120, "the retries did not end"
    assert not list((tmp_path / "out").rglob("crash*"))


def test_without_the_ray_extra_the_engine_says_how_to_get_it(tmp_path, negate_onnx, mixed_folder):
    code = (
        "import sys; sys.modules['ray'] = None; "
        f"sys.argv = ['gantx', 'translate', {str(mixed_folder)!r}, '-m', {str(negate_onnx)!r}, "
        "'-o', 'out', '--engine', 'ray']; "
        "from gantx.cli import main; main()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == 'gantx: error: ray is not installed: pip install "gantx[ray]"'
    assert not (tmp_path / "out").exists()


def test_an_address_where_no_cluster_listens_is_one_line_in_seconds(negate_onnx, mixed_folder, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    executable = Path(sys.executable).with_name("gantx")
    command = [
        executable,
        "translate",
        mixed_folder,
        "-m",
        negate_onnx,
        "-o",
        tmp_path / "out",
        "--engine",
        "ray",
        "--ray-address",
        address,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"gantx: error: cannot reach the Ray cluster at {address}: Connection refused"
    assert not (tmp_path / "out").exists()


def test_import_gantx_leaves_ray_unloaded():
    code = "import sys, gantx, gantx.cli; assert 'ray' not in sys.modules, 'ray was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--actors", "2"], "--actors only apply with --engine ray"),
        (["-v", "--ray-address", "auto"], "--ray-address, --verbose only apply with --engine ray"),
        (["--engine", "spark"], "--engine 'spark': choose one of local, ray"),
        (["--engine", "ray", "--actors", "3"], "3 actor(s) of 1 CPU each do not fit the Ray cluster now (2 would)"),
    ],
)
def test_bad_engine_options_are_one_line_and_exit_2(
    ray_instance, mixed_folder, negate_onnx, tmp_path, run_cli, arguments, message
):
    code, _, stderr = run_cli(
        "translate", mixed_folder / "cat.png", "-m", negate_onnx, "-o", tmp_path / "out", *arguments
    )
    assert code == 2 and stderr.strip().splitlines()[-1] == f"gantx: error: {message}", stderr
    assert not (tmp_path / "out").exists()


def test_a_video_is_refused_by_the_ray_engine(ray_instance, negate_onnx, tmp_path, run_cli):
    clip = make_clip(tmp_path / "clip.mp4", pan_frames(3), audio=None)
    code, _, stderr = run_cli("translate", clip, "-m", negate_onnx, "-o", tmp_path / "out.mp4", "--engine", "ray")
    assert code == 2 and "--engine ray translates images" in stderr
    assert not (tmp_path / "out.mp4").exists()


def processes_mentioning(text: str) -> list[int]:
    """Process ids whose command line holds `text` (a Ray node's own temporary folder names its processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def two_node_cluster():
    """A head and a second node on this machine, one CPU each, each with its own temporary folder and token.

    Each node is a `ray start --block` process: terminating it stops that node's
    processes (never `ray stop`, which would stop every Ray on the machine).
    Yields (address, environment for its clients).
    """
    scratch = Path(tempfile.mkdtemp(prefix="gx-two-"))  # short: Ray's socket paths inside it must stay under 108 bytes
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = dict(
        os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0"
    )
    ray_cli = Path(sys.executable).with_name("ray")
    nodes = []

    def start(name: str, *arguments: str) -> None:
        log = scratch / f"{name}.log"
        command = [
            ray_cli,
            "start",
            *arguments,
            "--num-cpus",
            "1",
            "--temp-dir",
            scratch / name,
            "--disable-usage-stats",
            "--block",
        ]
        with log.open("w") as output:
            nodes.append(
                subprocess.Popen(
                    command, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            assert nodes[-1].poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)

    try:
        start("head", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard", "false")
        start("node", "--node-ip-address", "127.0.0.1", "--address", f"127.0.0.1:{port}")
        yield f"127.0.0.1:{port}", environment
    finally:
        stopping = time.monotonic()
        for node in reversed(nodes):
            node.terminate()
        for node in reversed(nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        print(f"test cluster stopped in {time.monotonic() - stopping:.1f} s")
        left = processes_mentioning(str(scratch))
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(scratch, ignore_errors=True)
        assert not left, f"processes of the test cluster outlived their nodes: {left}"


def test_a_two_node_cluster_shares_a_folder(two_node_cluster, negate_onnx, tmp_path):
    address, environment = two_node_cluster
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    shutil.copy(negate_onnx, tmp_path / "negate.onnx")
    base = real_photo("astronaut.png", 300)
    count = 24
    for index in range(count):  # six actor calls of 4 (-b 1): enough for both nodes' actors to get some
        base.rotate(index * 15).save(photos / f"{index:03d}.png")
    executable = Path(sys.executable).with_name("gantx")
    # Relative paths: the nodes' actors run in Ray's folders, not in this one.
    command = [
        executable,
        "translate",
        "photos",
        "-m",
        "negate.onnx",
        "-o",
        "out",
        "-b",
        "1",
        "--engine",
        "ray",
        "--ray-address",
        address,
    ]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    print(summary)  # which node translated how many files
    per_node = {node: int(files) for node, files in re.findall(r"node (\w+) (\d+) files", summary)}
    assert len(per_node) == 2 and all(per_node.values()) and sum(per_node.values()) == count, summary
    assert files_under(out) == sorted(f"{index:03d}.png" for index in range(count))
    for index in range(count):
        assert_negative(photos / f"{index:03d}.png", out / f"{index:03d}.png")


def test_an_unusable_model_is_one_line_before_any_actor_starts(ray_instance, mixed_folder, tmp_path, run_cli):
    code, _, stderr = run_cli(
        "translate", mixed_folder, "-m", mixed_folder / "cat.png", "-o", tmp_path / "out", "--engine", "ray"
    )
    assert (
        code == 2
        and stderr.strip().splitlines()[-1]
        == f"gantx: error: {mixed_folder / 'cat.png'}: not an ONNX model (its bytes do not parse as one)"
    )
    assert not (tmp_path / "out").exists()


def test_a_misspelt_model_is_refused_as_by_the_local_engine_before_ray_starts(
    mixed_folder, tmp_path, run_cli, monkeypatch
):
    def start_ray(*_, **__):
        pytest.fail("Ray was started for a model that does not exist")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as if this process had no Ray: connect would start one
    monkeypatch.setattr(ray, "init", start_ray)
    arguments = ["translate", mixed_folder, "-m", "horse2zebar", "-o", tmp_path / "out"]
    local_code, _, local_stderr = run_cli(*arguments)
    code, stdout, stderr = run_cli(*arguments, "--engine", "ray")
    assert code == local_code == 2 and stdout == ""
    assert stderr == local_stderr
    assert stderr.startswith("gantx: error: model not found: horse2zebar (neither a file nor a bundled model")
    assert len(stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def lines_not_from_gantx(stderr: str) -> list[str]:
    """The lines of `stderr` other than gantx's own: its progress bar, failed files and error line."""
    return [line for line in stderr.splitlines() if not line.startswith(("translating ", "failed ", "gantx: error: "))]


def test_a_ray_run_shows_only_gantxs_own_lines_unless_verbose(mixed_folder, negate_onnx, tmp_path):
    shutil.copytree(mixed_folder, tmp_path / "photos")
    (tmp_path / "photos" / "broken.png").write_bytes(b"not a PNG")
    executable = Path(sys.executable).with_name("gantx")

    def run_on_ray(*options: str) -> subprocess.CompletedProcess:  # its own process: Ray writes to file descriptor 2
        command = [executable, "translate", "photos", "-m", negate_onnx, "-o", "out", "--engine", "ray", *options]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    quiet = run_on_ray()
    assert quiet.returncode == 1, quiet.stderr
    summary, *more = quiet.stdout.splitlines()
    assert summary.startswith("translated 8, skipped 0, failed 1,") and more == []
    assert lines_not_from_gantx(quiet.stderr) == [], quiet.stderr
    assert any(line.startswith("translating ") for line in quiet.stderr.splitlines()), quiet.stderr  # gantx's bar
    broken = "photos/broken.png"
    assert failed_lines(quiet.stderr) == [f"failed {broken}: cannot read image (cannot identify image file '{broken}')"]

    verbose = run_on_ray("-v", "--overwrite")
    assert verbose.returncode == 1, verbose.stderr
    assert lines_not_from_gantx(verbose.stderr), "-v shows none of Ray's lines"
    assert failed_lines(verbose.stderr) == failed_lines(quiet.stderr)


def test_actors_that_cannot_start_the_model_stop_the_run_in_one_line(
    ray_instance, mixed_folder, negate_onnx, tmp_path, run_cli
):
    from gantx.providers import providers_that_start

    if "CUDAExecutionProvider" in providers_that_start():
        pytest.skip("CUDA starts here: the actors would not fail")
    code, _, stderr = run_cli(
        "translate", mixed_folder, "-m", negate_onnx, "-o", tmp_path / "out", "--engine", "ray", "--provider", "cuda"
    )
    assert code == 2
    last = stderr.strip().splitlines()[-1]
    # With onnxruntime-gpu the provider is listed but cannot start; with the CPU build it is not listed at all.
    assert last.startswith("gantx: error: the Ray run stopped: ") and "provider 'cuda'" in last, last
    assert "is installed but could not start here" in last or "is not in this onnxruntime build" in last, last
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["input", "output"])
def test_object_store_uris_are_refused_not_taken_for_folders(
    mixed_folder, negate_onnx, tmp_path, run_cli, monkeypatch, where
):
    monkeypatch.chdir(tmp_path)
    source, output = ("s3://bucket/frames", "out") if where == "input" else (str(mixed_folder), "gs://bucket/out")
    code, _, stderr = run_cli("translate", source, "-m", negate_onnx, "-o", output, "--engine", "ray")
    scheme = "s3" if where == "input" else "gs"
    assert code == 2 and f"gantx: error: {scheme}:// is not read or written yet: mount the storage" in stderr
    assert list(tmp_path.iterdir()) == []


def test_translate_batch_in_a_users_own_ray_data_pipeline(ray_instance, mixed_folder, negate_onnx, tmp_path):
    import gantx.ray_engine

    rows = [
        {"source": str(mixed_folder / relative), "target": str(tmp_path / "out" / relative)} for relative in SOURCES
    ]
    rows.append({"source": str(mixed_folder / "notes.txt"), "target": str(tmp_path / "out" / "notes.png")})
    statuses = ray.data.from_items(rows, override_num_blocks=3).map_batches(
        gantx.ray_engine.TranslateBatch,
        fn_constructor_kwargs={"model": str(negate_onnx), "settings": gantx.RunSettings(batch_size=2)},
        batch_size=4,
        compute=ray.data.ActorPoolStrategy(size=2),
    )
    rows_out = statuses.take_all()
    assert {key for row in rows_out for key in row} == {"source", "target", "error", "node", "actor_pid"}
    errors = {row["source"]: row["error"] for row in rows_out}
    assert sorted(errors) == sorted(row["source"] for row in rows)
    assert errors.pop(str(mixed_folder / "notes.txt")).startswith(f"{mixed_folder / 'notes.txt'}: cannot read image")
    assert set(errors.values()) == {""}
    for relative in SOURCES:
        if relative.endswith(".png"):
            assert_negative(mixed_folder / relative, tmp_path / "out" / relative)
    assert not (tmp_path / "out" / "notes.png").exists()
