"""The trainers on real Fashion-MNIST: every family trains a few steps, writes its run, exports, and resumes exactly."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
import shlex
import signal
from typing import get_args

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from helpers import parsed  # noqa: E402
from rich.console import Console  # noqa: E402

from gantx.trainers.checkpoint import load_checkpoint  # noqa: E402
from gantx.trainers.config import ImageGenerator  # noqa: E402
from gantx.trainers.data import FASHION_DIRS, builtin  # noqa: E402
from gantx.trainers.loop import Position, progress_bar, progress_fields  # noqa: E402
from gantx.trainers.networks import create_model, list_models  # noqa: E402

pytestmark = pytest.mark.skipif(
    not any((d / "train-images-idx3-ubyte.gz").is_file() for d in FASHION_DIRS), reason="Fashion-MNIST not installed"
)

COMMON = ("--limit", "32", "--batch-size", "8", "--max-steps", "3", "--quiet", "--log-every", "1")
# Tiny widths keep each family to a few seconds on two CPU cores.
FAMILIES = {
    "dcgan": ("--data", "fashion-mnist:sneaker", "--ngf", "8"),
    "cgan": ("--data", "fashion-mnist:sneaker,ankle-boot,bag", "--ngf", "8"),
    "pix2pix": ("--ngf", "8", "--ndf", "8"),
    "cyclegan": ("--ngf", "4", "--ndf", "8"),
    "dtn": ("--conv-dim", "8", "--code-dim", "16"),
}


def _losses(run_dir):
    with (run_dir / "losses.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_writes_its_run_and_exports_a_model_onnx_runtime_agrees_with(
    family, tmp_path, run_cli, monkeypatch
):
    run_dir = tmp_path / "run"
    code, out, err = run_cli("train", family, "--out", run_dir, *COMMON, *FAMILIES[family])
    assert code == 0, err
    assert "latest.pt" in out

    rows = _losses(run_dir)
    assert rows and all(math.isfinite(float(v)) for row in rows for k, v in row.items() if v and k not in ("phase",))
    assert [int(row["step"]) for row in rows if row["phase"] == "gan"][-1] == (6 if family == "dtn" else 3)
    for name in ("config.json", "losses.png", "timelapse.gif"):
        assert (run_dir / name).stat().st_size > 0
    assert list((run_dir / "samples").glob("gan_*.png"))

    checkpoint = load_checkpoint(run_dir / "latest.pt")
    assert checkpoint.family == family and checkpoint.config["limit"] == 32
    model = tmp_path / "model.onnx"
    code, out, err = run_cli("export", run_dir / "latest.pt", "-o", model)
    assert code == 0, err
    # The model says how to retrain it: its command rebuilds the checkpoint's config exactly.
    metadata = {prop.key: prop.value for prop in onnx.load(model).metadata_props}
    assert shlex.split(metadata["gantx.train_command"])[:5] == ["gantx", "train", family, "--out", "RUN"]
    assert dataclasses.asdict(parsed(run_cli, monkeypatch, metadata["gantx.train_command"])) == checkpoint.config

    # Independent check: ONNX Runtime on the exported file against the checkpoint's own generator.
    role, entry = checkpoint.generator("AtoB")
    generator = entry.build(role)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    torch.manual_seed(1)
    if checkpoint.contract.kind == "noise2image":
        inputs = {"z": torch.randn(4, checkpoint.contract.latent_dim)}
        if checkpoint.contract.classes:
            inputs["label"] = torch.arange(4) % len(checkpoint.contract.classes)
    else:
        images, paired = builtin(checkpoint.config["data"], "test", 4, 0)
        source = images.images
        if source.shape[1] != checkpoint.contract.channels_in:
            source = source.expand(-1, checkpoint.contract.channels_in, -1, -1)
        size = checkpoint.contract.size[0]
        inputs = {"input": torch.nn.functional.pad(source, [(size - 28) // 2] * 4, value=-1.0)}
        assert checkpoint.contract.fit == ("pad" if size == 32 else "resize")
    with torch.no_grad():
        expected = generator(*inputs.values()).numpy()
    actual = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
    np.testing.assert_allclose(actual, expected, atol=1e-4)


def _state(run_dir):
    data = torch.load(run_dir / "latest.pt", weights_only=True)
    return (
        data["networks"],
        data["train_state"]["optimizers"],
        data["train_state"]["extra"],
        data["train_state"]["position"],
    )


def _assert_same(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(tmp_path, run_cli, monkeypatch):
    """Ctrl-C after step 4 (mid-epoch 2 of 3-step epochs) and --resume end bit-for-bit where an uninterrupted run ends.

    CycleGAN carries the most state: two optimisers, decaying schedules, image pools, dropout-free RNG draws.
    """
    options = ("--limit", "12", "--batch-size", "4", "--epochs", "1", "--decay-epochs", "2", "--pool-size", "4",
               "--ngf", "4", "--ndf", "8", "--deterministic", "--quiet", "--log-every", "1")  # fmt: skip
    code, _, err = run_cli("train", "cyclegan", "--out", tmp_path / "whole", *options)
    assert code == 0, err

    from gantx.trainers.cyclegan import CycleGAN

    original = CycleGAN.train_step

    def interrupting(self, batch):
        losses = original(self, batch)
        if self.phases[0].schedulers["G"].last_epoch == 3:  # the fourth step: Ctrl-C arrives mid-step
            signal.raise_signal(signal.SIGINT)
        return losses

    monkeypatch.setattr(CycleGAN, "train_step", interrupting)
    code, out, _ = run_cli("train", "cyclegan", "--out", tmp_path / "split", *options)
    assert code == 130 and "step 4" in out
    assert _state(tmp_path / "split")[3]["step"] == 4
    monkeypatch.setattr(CycleGAN, "train_step", original)
    code, _, err = run_cli("train", "cyclegan", "--out", tmp_path / "split", "--resume", "--quiet")
    assert code == 0, err

    whole, split = _state(tmp_path / "whole"), _state(tmp_path / "split")
    times = whole[3].pop("seconds"), split[3].pop("seconds")  # wall clock: the same work, not the same seconds
    assert all(seconds > 0 for seconds in times)
    assert whole[3] == split[3] == {"phase": 0, "epoch": 3, "step_in_epoch": 0, "phase_steps": 9, "step": 9}
    _assert_same(whole, split)
    assert _losses(tmp_path / "whole") == _losses(tmp_path / "split")
    # The schedule really decayed: lr after 3 of 9 steps constant, then linear to zero.
    assert load_checkpoint(tmp_path / "split" / "latest.pt").train_state["optimizers"]["G"]["param_groups"][0][
        "lr"
    ] == pytest.approx(0.0, abs=1e-12)


def test_resume_keeps_the_saved_config_and_refuses_other_changes(tmp_path, run_cli):
    run_dir = tmp_path / "run"
    assert (
        run_cli(
            "train",
            "cgan",
            "--out",
            run_dir,
            "--data",
            "fashion-mnist:bag,sandal",
            "--limit",
            "16",
            "--batch-size",
            "8",
            "--max-steps",
            "1",
            "-q",
        )[0]
        == 0
    )
    code, _, err = run_cli("train", "cgan", "--out", run_dir, "-q")
    assert code == 2 and "--resume" in err
    code, _, err = run_cli("train", "cgan", "--out", run_dir, "--resume", "--batch-size", "4")
    assert code == 2 and "batch_size" in err
    code, _, err = run_cli("train", "cgan", "--out", run_dir, "--resume", "--max-steps", "2", "-q")
    assert code == 0, err
    checkpoint = load_checkpoint(run_dir / "latest.pt")
    assert checkpoint.train_state["position"]["step"] == 2 and checkpoint.contract.classes == ("bag", "sandal")


def _item_folder(folder, count=16):
    """Fashion-MNIST bags as PNG files: a folder of images to train on."""
    from PIL import Image

    folder.mkdir()
    images, _ = builtin("fashion-mnist:bag", "train", count, 0)
    for index, image in enumerate(images.images):
        pixels = ((image[0].numpy() + 1) * 127.5).round().astype(np.uint8)
        Image.fromarray(pixels, "L").save(folder / f"{index:02d}.png")


def _untouched(run_dir):
    """What a run directory holds, to the byte and the nanosecond: latest.pt, config.json, the samples."""
    paths = [run_dir / "latest.pt", run_dir / "config.json", *sorted((run_dir / "samples").iterdir())]
    return [(path.name, path.read_bytes(), path.stat().st_mtime_ns) for path in paths]


def test_the_same_command_with_resume_added_continues_and_a_changed_value_is_refused(tmp_path, run_cli, monkeypatch):
    """Up-arrow, add --resume: options that repeat the saved config (a folder however spelt) are accepted.

    A value that differs is refused in one line naming the saved and the given value, exit 2, nothing written.
    """
    monkeypatch.chdir(tmp_path)
    _item_folder(tmp_path / "photos")
    command = (
        "train",
        "dcgan",
        "--out",
        "run",
        "--data",
        "photos",
        "--limit",
        "16",
        "-b",
        "8",
        "--seed",
        "3",
        "--ngf",
        "8",
        "-q",
    )
    code, out, err = run_cli(*command, "--max-steps", "1")
    assert code == 0 and out.startswith("dcgan: 1 step, epoch 1/10 of phase gan"), err
    again = [*command[:5], f"{tmp_path}/photos/", *command[6:]]  # the same folder, spelt otherwise
    code, out, err = run_cli(*again, "--max-steps", "2", "--resume")
    assert code == 0 and out.startswith("dcgan: 2 steps, epoch 1/10 of phase gan"), err
    assert load_checkpoint(tmp_path / "run" / "latest.pt").train_state["position"]["step"] == 2
    before = _untouched(tmp_path / "run")
    for changed, message in [
        (("-b", "4"), "batch_size: saved 8, given 4"),
        (("--data", "other"), "data: saved 'photos', given 'other'"),
        (("--seed", "0", "--no-flip"), "(seed: saved 3, given 0)"),  # the default seed typed is a change; flip is not
    ]:
        code, out, err = run_cli(*command, "--max-steps", "3", "--resume", *changed)
        assert (code, out) == (2, ""), err
        refusal = "gantx: error: --resume keeps the saved config; only epochs, decay_epochs, max_steps may change ("
        assert err.startswith(refusal)
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert _untouched(tmp_path / "run") == before


def test_resuming_a_finished_run_says_how_to_extend_it_and_writes_nothing(tmp_path, run_cli):
    """A run that reached its --max-steps, and one that reached its --epochs: each names the total that stopped it."""
    common = ("--data", "fashion-mnist:bag", "--limit", "16", "-b", "8", "--ngf", "8", "-q")
    for name, stop, extend in [
        ("steps", ("--max-steps", "1"), "--max-steps above 1 (or 0: no limit)"),
        ("epochs", ("--epochs", "1"), "--epochs above 1"),
    ]:
        run_dir = tmp_path / name
        assert run_cli("train", "dcgan", "--out", run_dir, *common, *stop)[0] == 0
        before = _untouched(run_dir)
        code, out, err = run_cli("train", "dcgan", "--out", run_dir, *common, *stop, "--resume")
        where = "step 1, epoch 1/10" if name == "steps" else "step 2, epoch 1/1"
        assert (code, err) == (0, "")
        assert out == (
            f"dcgan: {run_dir} is complete at {where} of phase gan; nothing trained, latest.pt unchanged. "
            f"To train on, add --resume with {extend}; --epochs and --max-steps are totals, not amounts to add.\n"
        )
        assert _untouched(run_dir) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cgan", "--data", "fashion-mnist:socks"), "unknown Fashion-MNIST class 'socks'"),
        (("dcgan", "--epochs", "0"), "config: epochs must be >= 1"),
        (("cyclegan", "--generator", "unet_32"), "generator unet_32 cannot take 28x28 images"),
    ],
)
def test_bad_values_are_one_line_errors(args, message, tmp_path, run_cli):
    code, _, err = run_cli("train", *args, "--out", tmp_path / "run", "--max-steps", "1")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "latest.pt").exists()


def test_every_generator_choice_is_a_registered_network():
    assert set(get_args(ImageGenerator)) <= set(list_models())
    for name in get_args(ImageGenerator):
        assert create_model(name, ngf=2).arch == name


# -- what a run shows and logs -----------------------------------------------------------------------

SHORT = ("--limit", "32", "--batch-size", "8", "--quiet")  # 4 steps an epoch; log_every stays at its default, 10


def _logged(run_dir):
    """(phase, epoch, step) of each losses.csv row, after checking that every loss of the row is a finite number."""
    rows = _losses(run_dir)
    for row in rows:
        values = [v for k, v in row.items() if k not in ("phase", "epoch", "step") and v]
        assert values and all(math.isfinite(float(v)) for v in values)
    return [(row["phase"], int(row["epoch"]), int(row["step"])) for row in rows]


def test_a_run_stopped_by_max_steps_logs_the_last_step_of_each_phase(tmp_path, run_cli):
    """3 steps of 4-step epochs, log_every 10: without the last step, losses.csv would be a header alone."""
    code, _, err = run_cli(
        "train", "dtn", "--out", tmp_path / "run", *SHORT, "--max-steps", "3", "--conv-dim", "8", "--code-dim", "16"
    )
    assert code == 0, err
    assert _logged(tmp_path / "run") == [("pretrain", 1, 3), ("gan", 1, 6)]


def _dcgan_stopping_in_step(monkeypatch, step, stop):
    from gantx.trainers.dcgan import DCGAN

    original = DCGAN.train_step

    def stopping(self, batch):
        losses = original(self, batch)
        if self.phases[0].schedulers["G"].last_epoch == step - 1:
            stop()
        return losses

    monkeypatch.setattr(DCGAN, "train_step", stopping)


def test_ctrl_c_logs_the_step_it_stopped_at(tmp_path, run_cli, monkeypatch):
    _dcgan_stopping_in_step(monkeypatch, 2, lambda: signal.raise_signal(signal.SIGINT))
    code, out, _ = run_cli("train", "dcgan", "--out", tmp_path / "run", *SHORT, "--ngf", "8")
    assert code == 130 and "step 2" in out
    assert _logged(tmp_path / "run") == [("gan", 1, 2)]


def test_a_failing_step_leaves_the_last_finished_step_in_the_log(tmp_path, run_cli, monkeypatch):
    def fail():
        raise RuntimeError("out of memory")

    _dcgan_stopping_in_step(monkeypatch, 3, fail)
    with pytest.raises(RuntimeError, match="out of memory"):
        run_cli("train", "dcgan", "--out", tmp_path / "run", *SHORT, "--ngf", "8")
    assert _logged(tmp_path / "run") == [("gan", 1, 2)]


def test_progress_keeps_bar_step_count_and_rate_in_80_columns():
    """CycleGAN's eight losses do not fit: they are cut with an ellipsis, not the bar, the count or img/s."""
    console = Console(width=80, file=io.StringIO(), force_terminal=True, color_system=None)
    progress = progress_bar(console=console)
    losses = {name: 1.234567 for name in ("D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")}
    progress.add_task(
        "gan", total=1000, completed=123, **progress_fields(Position(epoch=1, step_in_epoch=3), 10, losses, 1234.4)
    )
    console.print(progress.get_renderable())
    [line] = console.file.getvalue().splitlines()
    assert len(line) <= 80
    assert "123/1000" in line and "1234 img/s" in line and "epoch 2/10" in line and "━" in line
    assert "D_A 1.235" in line and line.rstrip().endswith("…")


def test_bar_and_summary_count_epochs_alike(tmp_path, run_cli, monkeypatch):
    """3 steps into the first of 10 epochs: the bar says epoch 1/10, and so does the summary (it said epoch 0)."""
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(
        "train",
        "dcgan",
        "--out",
        tmp_path / "run",
        "--limit",
        "32",
        "--batch-size",
        "8",
        "--max-steps",
        "3",
        "--ngf",
        "8",
    )
    assert code == 0, err
    bar = [line for line in out.splitlines() if "3/3" in line]
    summary = [line for line in out.splitlines() if line.startswith("dcgan: 3 steps")]
    assert bar and "epoch 1/10" in bar[-1], out
    assert summary and "epoch 1/10 of phase gan" in summary[0], out
    # The sample grid is named for epoch 1 too, and the rate keeps its digits below 1 img/s.
    assert [path.name for path in (tmp_path / "run" / "samples").iterdir()] == ["gan_epoch_0001_step_000003.png"]
    rate = float(re.search(r"([\d.e+-]+) img/s;", summary[0])[1])
    assert rate > 0


def test_an_unknown_family_from_python_is_the_one_choose_one_of_line(tmp_path):
    from gantx.errors import GantxError
    from gantx.trainers.train import run

    with pytest.raises(GantxError) as refused:
        run("stylegan", tmp_path / "run")
    assert str(refused.value) == "family 'stylegan': choose one of dcgan, cgan, pix2pix, cyclegan, dtn, upscale"
    assert not (tmp_path / "run").exists()
