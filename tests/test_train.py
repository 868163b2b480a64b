"""The trainers on real Fashion-MNIST: every family trains a few steps, writes its run, exports, and resumes exactly."""

from __future__ import annotations

import csv
import dataclasses
import math
import shlex
import signal
from typing import get_args

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from gantx.trainers.checkpoint import load_checkpoint  # noqa: E402
from gantx.trainers.config import ImageGenerator  # noqa: E402
from gantx.trainers.data import FASHION_DIRS, builtin  # noqa: E402
from gantx.trainers.networks import create_model, list_models  # noqa: E402
from test_train_cli import parsed  # noqa: E402

pytestmark = pytest.mark.skipif(not any((d / "train-images-idx3-ubyte.gz").is_file() for d in FASHION_DIRS), reason="Fashion-MNIST not installed")

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
def test_family_trains_writes_its_run_and_exports_a_model_onnx_runtime_agrees_with(family, tmp_path, run_cli, monkeypatch):
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
    return data["networks"], data["train_state"]["optimizers"], data["train_state"]["extra"], data["train_state"]["position"]


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
    """Ctrl-C after step 4 (mid-epoch 2 of 3-step epochs), then --resume, ends bit-for-bit where an uninterrupted run ends.

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
    assert whole[3] == split[3] == {"phase": 0, "epoch": 3, "step_in_epoch": 0, "phase_steps": 9, "step": 9}
    _assert_same(whole, split)
    assert _losses(tmp_path / "whole") == _losses(tmp_path / "split")
    # The schedule really decayed: lr after 3 of 9 steps constant, then linear to zero.
    assert load_checkpoint(tmp_path / "split" / "latest.pt").train_state["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_resume_keeps_the_saved_config_and_refuses_other_changes(tmp_path, run_cli):
    run_dir = tmp_path / "run"
    assert run_cli("train", "cgan", "--out", run_dir, "--data", "fashion-mnist:bag,sandal", "--limit", "16", "--batch-size", "8", "--max-steps", "1", "-q")[0] == 0
    code, _, err = run_cli("train", "cgan", "--out", run_dir, "-q")
    assert code == 2 and "--resume" in err
    code, _, err = run_cli("train", "cgan", "--out", run_dir, "--resume", "--batch-size", "4")
    assert code == 2 and "batch_size" in err
    code, _, err = run_cli("train", "cgan", "--out", run_dir, "--resume", "--max-steps", "2", "-q")
    assert code == 0, err
    checkpoint = load_checkpoint(run_dir / "latest.pt")
    assert checkpoint.train_state["position"]["step"] == 2 and checkpoint.contract.classes == ("bag", "sandal")


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
