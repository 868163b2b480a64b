"""Public CycleGAN/pix2pix generator state_dicts become contract models that compute what they computed.

The references are tests/torch_helpers.py's own re-implementations of the
public layouts with random weights; nothing is downloaded.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import onnx
import pytest
from PIL import Image
from real_images import real_photo
from torch_helpers import PublicResnetGenerator, PublicUnetGenerator, randomise

torch = pytest.importorskip("torch")

from gantx.errors import GantxError  # noqa: E402
from gantx.exporters.graph import cpu_session  # noqa: E402
from gantx.exporters.public import recognise  # noqa: E402


def _save(state, path):
    torch.save(state, path)
    return path


def _onnx_vs_reference(model_path, reference, shapes, per_image_train=False):
    """Max abs difference between the exported model and the reference module on random [-1, 1] batches."""
    session = cpu_session(onnx.load(model_path))
    torch.manual_seed(1)
    worst = 0.0
    for shape in shapes:
        x = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            if per_image_train:  # batch statistics of each image on its own, dropout off
                training = copy.deepcopy(reference).train()  # a copy: training mode updates running stats
                for layer in training.modules():
                    if isinstance(layer, torch.nn.Dropout):
                        layer.eval()
                expected = torch.cat([training(x[i : i + 1]) for i in range(len(x))])
            else:
                expected = reference(x)
        actual = session.run(["output"], {"input": x.numpy()})[0]
        worst = max(worst, float(np.abs(actual - expected.numpy()).max()))
    return worst


def _meta(path):
    return {prop.key: prop.value for prop in onnx.load(path).metadata_props}


def test_resnet9_state_dict_becomes_a_contract_model(tmp_path, run_cli):
    reference = randomise(PublicResnetGenerator(ngf=8, n_blocks=9))
    source = _save(reference.state_dict(), tmp_path / "latest_net_G_A.pth")
    code, out, err = run_cli(
        "export", source, "-o", tmp_path / "horse2zebra.onnx", "--domains", "horse,zebra", "--trained-size", "32"
    )
    assert code == 0, err
    assert "recognised resnet_9blocks (n_blocks=9, ngf=8, norm=instance" in out
    meta = _meta(tmp_path / "horse2zebra.onnx")
    assert meta["gantx.arch"] == "resnet_9blocks" and meta["gantx.domains"] == "horse,zebra"
    assert meta["gantx.direction"] == "A->B" and meta["gantx.size"] == "32,32" and meta["gantx.size_multiple"] == "4"
    assert _onnx_vs_reference(tmp_path / "horse2zebra.onnx", reference, [(2, 3, 32, 32), (1, 3, 44, 36)]) <= 1e-4


@pytest.mark.parametrize(
    ("reference", "arch"),
    [
        (
            lambda: PublicResnetGenerator(ngf=4, n_blocks=6, use_dropout=True),
            "resnet_6blocks",
        ),  # dropout shifts indices
        (lambda: PublicResnetGenerator(ngf=4, n_blocks=3, norm="instance_affine", output_nc=1), "resnet"),
        (lambda: PublicResnetGenerator(ngf=4, n_blocks=2, norm="batch", input_nc=1), "resnet"),
        (lambda: PublicUnetGenerator(ngf=4, num_downs=5), "unet_32"),
        (lambda: PublicUnetGenerator(ngf=2, num_downs=7, norm="instance"), "unet_128"),
        (lambda: PublicUnetGenerator(ngf=4, num_downs=6, norm="instance_affine", use_dropout=False), "unet"),
    ],
)
def test_public_variants_are_recognised_and_exported_faithfully(tmp_path, run_cli, reference, arch):
    reference = randomise(reference())
    source = _save(reference.state_dict(), tmp_path / "net_G.pth")
    code, out, err = run_cli("export", source, "-o", tmp_path / "model.onnx", "--bn", "eval")
    assert code == 0, err
    assert f"recognised {arch} " in out
    size = int(_meta(tmp_path / "model.onnx")["gantx.size"].split(",")[0])
    channels = reference.state_dict()[next(iter(reference.state_dict()))].shape[1]
    assert _onnx_vs_reference(tmp_path / "model.onnx", reference, [(2, channels, size, size)]) <= 1e-4


def test_pix2pix_batch_norm_offers_both_test_time_behaviours(tmp_path, run_cli):
    reference = randomise(PublicUnetGenerator(ngf=4, num_downs=5))
    source = _save(reference.state_dict(), tmp_path / "facades_label2photo.pth")
    code, out, _ = run_cli("export", source, "-o", tmp_path / "batch.onnx")
    assert code == 0 and "per-image batch statistics" in out  # the default for a public pix2pix file
    assert _meta(tmp_path / "batch.onnx")["gantx.bn"] == "batch-stats"
    assert _onnx_vs_reference(tmp_path / "batch.onnx", reference, [(3, 3, 32, 32)], per_image_train=True) <= 1e-4
    code, out, _ = run_cli("export", source, "-o", tmp_path / "eval.onnx", "--bn", "eval")
    assert code == 0 and "running statistics" in out
    assert _onnx_vs_reference(tmp_path / "eval.onnx", reference, [(3, 3, 32, 32)]) <= 1e-4
    # The two behaviours really differ, so the choice matters.
    assert _onnx_vs_reference(tmp_path / "eval.onnx", reference, [(1, 3, 32, 32)], per_image_train=True) > 1e-2


def _renamed(state):
    """The same tensors under another re-implementation's names (blocks called `body`, no `model.` Sequential)."""
    return {key.replace("model.", "net.layer").replace("conv_block", "body"): value for key, value in state.items()}


def test_other_names_match_by_structure_and_shape():
    reference = randomise(PublicResnetGenerator(ngf=4, n_blocks=3, norm="instance_affine"))
    recognised = recognise(_renamed(reference.state_dict()), size=32)
    assert any("by order and shape" in note for note in recognised.notes)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(recognised.module(x), reference(x), atol=1e-6)


def test_stale_instance_norm_statistics_are_ignored():
    # Before PyTorch 0.4, instance norm saved running statistics that nothing uses.
    reference = randomise(PublicResnetGenerator(ngf=4, n_blocks=2))
    state = dict(reference.state_dict())
    state["model.2.running_mean"] = torch.full((4,), 5.0)
    state["model.2.running_var"] = torch.full((4,), 9.0)
    recognised = recognise(state, size=32)
    assert recognised.module.options["norm"] == "instance"
    assert any("ignored running statistics of 1 instance-norm" in note for note in recognised.notes)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(recognised.module(x), reference(x), atol=1e-6)


def test_order_that_shapes_cannot_settle_is_refused(tmp_path):
    state = _renamed(randomise(PublicResnetGenerator(ngf=4, n_blocks=2)).state_dict())
    keys = list(state)
    first = [key for key in keys if key.startswith("net.layer10.")]
    second = [key for key in keys if key.startswith("net.layer11.")]
    # Stored order swaps the two (same-shaped) residual blocks; the keys' natural order does not.
    start = keys.index(first[0])
    reordered = keys[:start] + second + first + keys[start + len(first) + len(second) :]
    with pytest.raises(GantxError, match="ambiguous match for resnet"):
        recognise({key: state[key] for key in reordered})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: {"weight": torch.zeros(3)}, "fewer than two convolution kernels"),
        (lambda: dict(list(PublicResnetGenerator(ngf=4, n_blocks=2).state_dict().items())[:-1]), "weights do not fit"),
        (
            lambda: {"model.0.weight": torch.zeros(8, 3, 3, 3), "model.1.weight": torch.zeros(8, 8, 3, 3)},
            "expected 7x7 (ResNet) or 4x4",
        ),
        (lambda: {"epoch": 3, "netG": {"a": 1}}, "neither a gantx checkpoint nor a generator state_dict"),
    ],
)
def test_files_that_are_no_generator_fail_in_one_line(tmp_path, run_cli, make, message):
    source = _save(make(), tmp_path / "odd.pth")
    code, out, err = run_cli("export", source, "-o", tmp_path / "odd.onnx")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "odd.onnx").exists()


class Payload:
    """Stands for anything a pickle would have to import and run to rebuild."""

    def __reduce__(self):
        return (print, ("this would have run",))


def test_files_needing_arbitrary_unpickling_are_refused(tmp_path, run_cli):
    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        pickle.dump({"model.1.weight": Payload()}, handle)
    torch.save({"generator": PublicResnetGenerator(ngf=4, n_blocks=1)}, tmp_path / "module.pth")  # a whole module
    for name in ("evil.pth", "module.pth"):
        code, out, err = run_cli("export", tmp_path / name, "-o", tmp_path / "x.onnx")
        assert code == 2 and "refusing to load, the file needs arbitrary unpickling" in err, err
        assert "this would have run" not in out + err and not (tmp_path / "x.onnx").exists()


def test_files_that_are_no_checkpoint_or_no_model_say_so(tmp_path, run_cli, mixed_folder):
    (tmp_path / "notes.pt").write_text("hello")
    for source in (mixed_folder / "cat.png", tmp_path / "notes.pt"):
        code, _, err = run_cli("export", source, "-o", tmp_path / "x.onnx")
        assert code == 2 and f"{source}: not a checkpoint" in err and "unpickling" not in err, err
    code, _, err = run_cli(
        "translate", mixed_folder / "cat.png", "-m", mixed_folder / "cat.png", "-o", tmp_path / "o.png"
    )
    assert code == 2 and f"{mixed_folder / 'cat.png'}: not an ONNX model" in err and "PROTOBUF" not in err, err
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "o.png").exists()


def test_translate_with_the_imported_model_equals_the_pytorch_forward_pass(tmp_path, run_cli):
    reference = randomise(PublicResnetGenerator(ngf=8, n_blocks=9), seed=3)
    source = _save(reference.state_dict(), tmp_path / "latest_net_G.pth")
    assert run_cli("export", source, "-o", tmp_path / "r9.onnx", "--trained-size", "64")[0] == 0
    photo = real_photo("chelsea.png", 97)  # 97 x 64: padded to multiples of 4 and cropped back
    photo.save(tmp_path / "cat.png")
    out = tmp_path / "out.png"
    code, _, err = run_cli(
        "translate", tmp_path / "cat.png", "-m", tmp_path / "r9.onnx", "-o", out, "--precision", "fp32"
    )
    assert code == 0, err  # fp32: exact on whichever engine auto chooses (bf16 is not, on random weights)
    translated = np.asarray(Image.open(out).convert("RGB")).astype(int)

    pixels = torch.from_numpy(np.asarray(photo.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
    height, width = pixels.shape[2:]
    pad_h, pad_w = -height % 4, -width % 4
    x = torch.nn.functional.pad(
        pixels / 127.5 - 1, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode="reflect"
    )
    with torch.no_grad():
        y = reference(x)[0, :, pad_h // 2 : pad_h // 2 + height, pad_w // 2 : pad_w // 2 + width]
    expected = torch.round((y.clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy().astype(int)
    difference = np.abs(translated - expected)
    # fp32 rounding may put a value on the other side of a .5 step: at most one level, rarely.
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01
