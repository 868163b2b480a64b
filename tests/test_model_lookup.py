"""What `gantx translate -m` and `gantx info` say when the model named is not an ONNX model gantx can open."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest

ZOO = (
    "fashion-boot2sneaker, fashion-cgan, fashion-dcgan, fashion-edges2item, fashion-m2fashion, fashion-sneaker2boot, "
    "photo-upscale2x"
)


def torch_checkpoint(path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"generators": {"AtoB": {"weight": torch.zeros(2)}}}, path)


def zip_without_suffix(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:  # torch.save's format, whatever the file is called
        archive.writestr("archive/data.pkl", pickle.dumps({}))


def legacy_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"state_dict": {}}, protocol=2))


def garbage(path: Path) -> None:
    path.write_bytes(b"\x12\x34 not a model")


def checkpoint_message(name: str) -> str:
    return f"{name}: a PyTorch checkpoint, not an ONNX model: gantx export {name} -o model.onnx makes one"


NOT_FOUND = "neither a file nor a bundled model"
CASES = [
    ("runs/x/latest.pt", torch_checkpoint, checkpoint_message("runs/x/latest.pt")),
    ("runs/x/generator.pth", garbage, checkpoint_message("runs/x/generator.pth")),  # by its suffix
    ("runs/x/weights.bin", zip_without_suffix, checkpoint_message("runs/x/weights.bin")),  # by its magic bytes
    ("runs/x/old.ckpt", legacy_pickle, checkpoint_message("runs/x/old.ckpt")),
    ("runs/x/broken.onnx", garbage, "runs/x/broken.onnx: not an ONNX model (its bytes do not parse as one)"),
    ("fashion-cgann", None, f"model not found: fashion-cgann ({NOT_FOUND}; did you mean fashion-cgan?)"),
    (
        "fashion-sneaker2bot",
        None,
        f"model not found: fashion-sneaker2bot ({NOT_FOUND}; did you mean fashion-sneaker2boot?)",
    ),
    ("horse2zebra", None, f"model not found: horse2zebra ({NOT_FOUND}; bundled models: {ZOO})"),
]


@pytest.mark.parametrize("verb", ["translate", "info"])
@pytest.mark.parametrize(("model", "make", "message"), CASES, ids=[case[0] for case in CASES])
def test_a_model_that_is_not_one_says_what_it_is_in_one_line(
    verb, model, make, message, mixed_folder, tmp_path, monkeypatch, run_cli
):
    monkeypatch.chdir(tmp_path)
    if make:
        Path(model).parent.mkdir(parents=True, exist_ok=True)
        make(Path(model))
    args = ["translate", mixed_folder / "cat.png", "-m", model, "-o", "out"] if verb == "translate" else ["info", model]
    code, stdout, stderr = run_cli(*args)
    assert (code, stdout, stderr) == (2, "", f"gantx: error: {message}\n")
    assert not (tmp_path / "out").exists()
