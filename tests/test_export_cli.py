"""`gantx export` on gantx checkpoints: no flags to repeat, verified output, and clean failures."""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from PIL import Image
from real_images import real_photo
from torch_helpers import RESNET_CONTRACT, save_one_generator

torch = pytest.importorskip("torch")

from gantx.exporters import export as export_module  # noqa: E402
from gantx.exporters import precision as precision_module  # noqa: E402
from gantx.exporters.graph import cpu_session  # noqa: E402
from gantx.exporters.precision import EngineSpeed, split_held_out  # noqa: E402
from gantx.exporters.tensorrt import tensorrt_problems  # noqa: E402
from gantx.model import ModelInfo  # noqa: E402
from gantx.trainers.checkpoint import save_checkpoint  # noqa: E402
from gantx.trainers.networks import create_model  # noqa: E402


def _meta(path):
    return {prop.key: prop.value for prop in onnx.load(path).metadata_props}


@pytest.fixture(scope="module")
def two_way(tmp_path_factory):
    """A CycleGAN-style checkpoint with two different generators, as a trainer writes it."""
    torch.manual_seed(0)
    networks = {
        "G_A": create_model("resnet", n_blocks=2, ngf=8, size=32),
        "G_B": create_model("resnet", n_blocks=1, ngf=8, size=32, norm="batch", activation="leaky_relu"),
        "D_A": create_model("patchgan", ndf=8, size=32),
    }
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        networks["G_B"].train()(torch.rand(4, 3, 32, 32) * 2 - 1)
    path = tmp_path_factory.mktemp("run") / "latest.pt"
    save_checkpoint(
        path,
        family="cyclegan",
        config={"lr": 2e-4, "epochs": 5},
        networks=networks,
        contract=RESNET_CONTRACT,
        generators={"AtoB": "G_A", "BtoA": "G_B"},
        meta={"epoch": 5},
    )
    return path, {role: module.eval() for role, module in networks.items()}


def _matches(model_path, module, *inputs):
    with torch.no_grad():
        expected = module(*inputs).numpy()
    session = cpu_session(onnx.load(model_path))
    names = [node.name for node in session.get_inputs()]
    actual = session.run(["output"], {name: tensor.numpy() for name, tensor in zip(names, inputs)})[0]
    return float(np.abs(actual - expected).max())


def test_a_checkpoint_exports_without_flags(two_way, tmp_path, run_cli):
    checkpoint, networks = two_way
    code, out, err = run_cli("export", checkpoint, "-o", tmp_path / "h2z.onnx")
    assert code == 0, err
    assert "max abs error" in out and "wrote" in out
    meta = _meta(tmp_path / "h2z.onnx")
    info = ModelInfo.from_metadata(meta)
    assert (info.arch, info.size, info.size_multiple, info.domains, info.direction) == (
        "resnet",
        (32, 32),
        4,
        ("horse", "zebra"),
        "A->B",
    )
    assert meta["gantx.family"] == "cyclegan" and meta["gantx.epoch"] == "5" and '"lr": 0.0002' in meta["gantx.config"]
    graph = onnx.load(tmp_path / "h2z.onnx")
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"] and graph.opset_import[0].version >= 17
    x = torch.rand(2, 3, 40, 36) * 2 - 1
    assert _matches(tmp_path / "h2z.onnx", networks["G_A"], x) <= 1e-4


def test_direction_picks_the_other_generator(two_way, tmp_path, run_cli):
    checkpoint, networks = two_way
    code, out, err = run_cli("export", checkpoint, "-o", tmp_path / "z2h.onnx", "--direction", "BtoA")
    assert code == 0, err
    assert "running statistics" in out  # a gantx checkpoint's batch norm exports in eval mode
    assert _meta(tmp_path / "z2h.onnx")["gantx.direction"] == "B->A"
    assert _matches(tmp_path / "z2h.onnx", networks["G_B"], torch.rand(3, 3, 32, 32) * 2 - 1) <= 1e-4


def test_static_export_fixes_h_and_w_and_records_a_profile(two_way, tmp_path, run_cli):
    checkpoint, networks = two_way
    code, _, err = run_cli(
        "export", checkpoint, "-o", tmp_path / "static.onnx", "--static", "48x64", "--max-batch", "4"
    )
    assert code == 0, err
    graph = onnx.load(tmp_path / "static.onnx")
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 48, 64]
    meta = _meta(tmp_path / "static.onnx")
    assert meta["gantx.profile"] == "1x3x48x64;4x3x48x64;4x3x48x64"
    assert (
        meta["gantx.size"] == "48,64" and meta["gantx.size_multiple"] == "0" and meta["gantx.trained_size"] == "32,32"
    )
    assert _matches(tmp_path / "static.onnx", networks["G_A"], torch.rand(4, 3, 48, 64) * 2 - 1) <= 1e-4


def test_fp16_reports_psnr_and_keeps_float32_io(two_way, tmp_path, run_cli):
    checkpoint, networks = two_way
    code, out, err = run_cli("export", checkpoint, "-o", tmp_path / "half.onnx", "--fp16")
    assert code == 0, err
    psnr = float(out.split("fp16 vs fp32: ")[1].split(" dB")[0])
    assert psnr >= 40
    graph = onnx.load(tmp_path / "half.onnx")
    assert graph.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert graph.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert any(init.data_type == TensorProto.FLOAT16 for init in graph.graph.initializer)
    assert tensorrt_problems(graph) == [] and _meta(tmp_path / "half.onnx")["gantx.precision"] == "fp16"
    assert _matches(tmp_path / "half.onnx", networks["G_A"], torch.rand(1, 3, 32, 32) * 2 - 1) < 0.05


def test_int8_calibrates_on_images_and_reports_psnr_and_speed(two_way, tmp_path, run_cli):
    checkpoint, _ = two_way
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "china.jpg", "flower.jpg"):
        real_photo(name, 48).convert("RGB").save(photos / f"{name.split('.')[0]}.png")
    code, out, err = run_cli(
        "export", checkpoint, "-o", tmp_path / "int8.onnx", "--int8", "--calibration", photos, "--target-psnr", "20"
    )
    assert code == 0, err
    assert "int8: calibrating (percentile) on 5 images" in err  # progress while it works
    assert "int8 vs fp32:" in out and "held-out images" in out and "CPU latency, timed in turn: fp32" in out
    assert "on ONNX Runtime\n" in out and ("on OpenVINO\n" in out) == (find_spec("openvino") is not None)
    for library_line in ("Percentile :", "Number of tensors", "histogram"):  # onnxruntime.quantization's own prints
        assert library_line not in out + err
    reported = float(out.split("int8 vs fp32: ")[1].split(" dB")[0])
    assert (reported < 20) == ("under 20 dB" in err)
    graph = onnx.load(tmp_path / "int8.onnx")
    ops = {node.op_type for node in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and tensorrt_problems(graph) == []
    assert _meta(tmp_path / "int8.onnx")["gantx.precision"] == "int8"

    # The runtime runs it unchanged: translated images agree with the fp32 model's within the reported PSNR.
    assert run_cli("export", checkpoint, "-o", tmp_path / "fp32.onnx")[0] == 0
    held_out = split_held_out(sorted(photos.iterdir()))[1]  # the images the report measured on
    for precision in ("fp32", "int8"):
        code, _, err = run_cli(
            "translate", *held_out, "-m", tmp_path / f"{precision}.onnx", "-o", tmp_path / precision, "--size", "32"
        )
        assert code == 0, err
    for path in held_out:
        fp32, int8 = (
            np.asarray(Image.open(tmp_path / precision / path.name), dtype=np.float64) for precision in ("fp32", "int8")
        )
        assert fp32.shape == int8.shape == np.asarray(Image.open(path)).shape  # the image's own size
        assert 10 * np.log10(255**2 / np.mean((fp32 - int8) ** 2)) >= reported - 1


@pytest.mark.parametrize(
    "speeds, openvino_line, warning",
    [
        (
            [EngineSpeed("ONNX Runtime", 3.0, 4.0), EngineSpeed("OpenVINO", 2.0, 2.5)],
            "  CPU latency, timed in turn: fp32 2 ms, int8 2.5 ms (0.80x) on OpenVINO\n",
            "gantx: warning: int8 runs at 0.75x fp32 on ONNX Runtime and 0.80x on OpenVINO here: "
            "the fp32 export (without --int8) is faster on this machine\n",
        ),
        (
            [EngineSpeed("ONNX Runtime", 3.0, 4.0), EngineSpeed("OpenVINO", 2.0, 1.0)],
            "  CPU latency, timed in turn: fp32 2 ms, int8 1 ms (2.00x) on OpenVINO\n",
            None,
        ),
    ],
)
def test_int8_slower_on_every_engine_warns_naming_the_faster_export(
    two_way, tmp_path, run_cli, monkeypatch, speeds, openvino_line, warning
):
    """The timings are mocked: which way they fall on this machine is not the test's to choose."""
    monkeypatch.setattr(precision_module, "engine_speeds", lambda fp32, int8, image, progress: speeds)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        real_photo(name, 48).convert("RGB").save(photos / name)
    code, out, err = run_cli(
        "export", two_way[0], "-o", tmp_path / "int8.onnx", "--int8", "--calibration", photos, "--target-psnr", "0"
    )
    assert code == 0, err
    assert "  CPU latency, timed in turn: fp32 3 ms, int8 4 ms (0.75x) on ONNX Runtime\n" in out
    assert openvino_line in out
    warnings = [line + "\n" for line in err.splitlines() if "warning" in line.lower()]
    assert warnings == ([warning] if warning else [])
    assert (tmp_path / "int8.onnx").is_file()  # a warning, not a failure: the file is written


def _corrupt(checkpoint, tmp_path, change):
    data = torch.load(checkpoint, weights_only=True)
    change(data)
    torch.save(data, tmp_path / "bad.pt")
    return tmp_path / "bad.pt"


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda ck, tmp: (tmp / "notes.pt").write_text("hello") and tmp / "notes.pt", [], "not a checkpoint"),
        (lambda ck, tmp: tmp / "missing.pt", [], "checkpoint not found"),
        (
            lambda ck, tmp: _corrupt(ck, tmp, lambda d: d["networks"]["G_A"].update(arch="resnet_99")),
            [],
            "unknown architecture 'resnet_99'",
        ),
        (
            lambda ck, tmp: _corrupt(ck, tmp, lambda d: d["networks"]["G_A"]["options"].update(ngf=16)),
            [],
            "G_A: weights do not fit 'resnet'",
        ),
        (lambda ck, tmp: ck, ["--static", "50x64"], "multiples of 4"),
        (
            lambda ck, tmp: ck,
            ["--static", "big"],
            "--static 'big': expected HxW, both sides of the fixed size, e.g. 256x256",
        ),
        (
            lambda ck, tmp: ck,
            ["--static", "256"],
            "--static '256': expected HxW, both sides of the fixed size, e.g. 256x256",
        ),
        (
            lambda ck, tmp: ck,
            ["--static", "0x0"],
            "--static '0x0': expected HxW, both sides of the fixed size, e.g. 256x256",
        ),
        (
            lambda ck, tmp: ck,
            ["--calibration", "photos"],
            "--calibration is for --int8 (its calibration images) or --fp16",
        ),
        (lambda ck, tmp: ck, ["-o", "x9.png"], "-o x9.png: the model file must end in .onnx"),
        (lambda ck, tmp: ck, ["-o", "."], "-o . is a folder: name the model file in it, e.g. -o model.onnx"),
        (lambda ck, tmp: ck, ["--direction", "AtoC"], "--direction 'AtoC': choose one of AtoB, BtoA"),
        (lambda ck, tmp: ck, ["--bn", "train"], "--bn 'train': choose one of auto, eval, batch-stats"),
        (
            lambda ck, tmp: ck,
            ["--calibration-method", "mean"],
            "--calibration-method 'mean': choose one of minmax, entropy, percentile",
        ),
        (lambda ck, tmp: ck, ["--int8"], "--int8 needs --calibration"),
        (lambda ck, tmp: ck, ["--int8", "--fp16"], "exclude each other"),
        (lambda ck, tmp: ck, ["--domains", "horse,zebra"], "a gantx checkpoint names its own domains"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_file(two_way, tmp_path, run_cli, make, args, message):
    source = make(two_way[0], tmp_path)
    code, _, err = run_cli("export", source, "-o", tmp_path / "out.onnx", *args)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.onnx").exists()


def test_unreadable_calibration_images_are_skipped_by_name(two_way, tmp_path, run_cli):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        real_photo(name, 40).convert("RGB").save(photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 but not really")
    code, out, err = run_cli("export", two_way[0], "-o", tmp_path / "half.onnx", "--fp16", "--calibration", photos)
    assert code == 0, err
    assert f"  calibration: skipped {photos / 'broken.jpg'}: cannot read image (" in err
    assert "fp16 vs fp32:" in out and "1 held-out images from" in out  # three readable: two calibrate, one is held out
    for name in ("chelsea.png", "coffee.png"):
        (photos / name).unlink()
    code, _, err = run_cli("export", two_way[0], "-o", tmp_path / "again.onnx", "--fp16", "--calibration", photos)
    assert (
        code == 2
        and f"--calibration {photos}: needs at least 2 readable images (some calibrate, some are held out), found 1"
        in err
    )
    assert not (tmp_path / "again.onnx").exists()


def test_disagreement_with_pytorch_fails_and_leaves_no_file(two_way, tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr(export_module, "FP32_TOLERANCE", 0.0)  # any rounding difference now counts
    code, _, err = run_cli("export", two_way[0], "-o", tmp_path / "out.onnx")
    assert code == 1 and "ONNX Runtime and PyTorch disagree" in err
    assert list(tmp_path.iterdir()) == []


def test_noise_models_export_with_their_labels(tmp_path, run_cli):
    torch.manual_seed(0)
    generator = create_model("cgan_generator", latent_dim=16)
    classes = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
    spec = ModelInfo(
        kind="noise2image", arch="cgan_generator", size=(28, 28), channels_out=1, latent_dim=16, classes=classes
    )
    code, _, err = run_cli(
        "export", save_one_generator(tmp_path / "cgan.pt", "cgan", generator, spec), "-o", tmp_path / "cgan.onnx"
    )
    assert code == 0, err
    info = ModelInfo.from_metadata(_meta(tmp_path / "cgan.onnx"))
    assert info.kind == "noise2image" and info.latent_dim == 16 and info.classes == classes
    z, labels = torch.randn(5, 16), torch.tensor([0, 3, 9, 9, 1])
    assert _matches(tmp_path / "cgan.onnx", generator.eval(), z, labels) <= 1e-4


def test_dtn_translator_records_padding_of_small_items(tmp_path, run_cli):
    translator = create_model("dtn_translator", channels_in=1, conv_dim=8, code_dim=16)
    spec = ModelInfo(
        kind="image2image",
        arch="dtn_translator",
        size=(32, 32),
        channels_in=1,
        channels_out=1,
        domains=("fashion", "sketch"),
        fit="pad",
    )
    code, _, err = run_cli(
        "export", save_one_generator(tmp_path / "dtn.pt", "dtn", translator, spec), "-o", tmp_path / "dtn.onnx"
    )
    assert code == 0, err
    info = ModelInfo.from_metadata(_meta(tmp_path / "dtn.onnx"))
    assert (info.fit, info.size_multiple, info.channels_in) == ("pad", 0, 1)
    assert _matches(tmp_path / "dtn.onnx", translator.eval(), torch.rand(3, 1, 32, 32) * 2 - 1) <= 1e-4


def test_export_without_torch_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None; sys.argv = ['gantx', 'export', 'x.pt', '-o', 'y.onnx']; "
        "from gantx.cli import main; main()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and 'pip install "gantx[train]"' in result.stderr and "Traceback" not in result.stderr
