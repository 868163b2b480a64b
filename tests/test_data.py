"""Training data: idx files, built-in selections, the edge extractor, Fashion-MNIST-M, folders and their errors."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402
from real_images import real_photo  # noqa: E402

from gantx.errors import GantxError  # noqa: E402
from gantx.trainers import data  # noqa: E402

HAVE_FASHION = any((d / "train-images-idx3-ubyte.gz").is_file() for d in data.FASHION_DIRS)
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason="Fashion-MNIST not installed")


def test_idx_reader_reads_the_standard_layout(tmp_path):
    values = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in values.shape)
    (tmp_path / "x-idx3-ubyte.gz").write_bytes(gzip.compress(header + values.tobytes()))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x-idx3-ubyte.gz"), values)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(header + values.tobytes()[:-1]))
    with pytest.raises(GantxError, match="holds 23 values"):
        data.read_idx(tmp_path / "bad.gz")


@needs_fashion
def test_fashion_selection_keeps_the_named_classes_and_renumbers_them():
    items, labels = data.fashion_mnist("test")
    assert items.shape == (10000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10  # the test split is balanced
    selected, paired = data.builtin("fashion-mnist:ankle-boot,sneaker", "test", None, 0)
    assert paired is None and selected.classes == ("ankle-boot", "sneaker") and len(selected) == 2000
    # Label 0 is the first class named: its images are exactly the ankle boots of the split, in order.
    boots = items[labels == 9]
    np.testing.assert_array_equal(
        ((selected.images[selected.labels == 0, 0] + 1) * 127.5).round().numpy().astype(np.uint8), boots
    )


def test_fashion_mnist_m_is_the_absolute_difference_with_a_photo_patch():
    item = np.zeros((1, 28, 28), np.uint8)
    item[0, 10:18, :] = 255
    out = data.blend_with_photos(item, "train", seed=3)[0].astype(int)
    # Where the item is black the patch shows unchanged; where white, inverted: |p - 255| = 255 - p.
    patch = out.copy()
    patch[10:18] = 255 - out[10:18]
    found = any(
        (photo[y : y + 28, x : x + 28].astype(int) == patch).all()
        for photo in data.photos("train")
        for y in range(photo.shape[0] - 27)
        for x in range(photo.shape[1] - 27)
        if photo[y, x, 0] == patch[0, 0, 0]
    )
    assert found


def test_fit_pads_28_to_32_with_background_and_keeps_items_exact():
    items = torch.rand(2, 1, 28, 28) * 2 - 1
    padded = data.fit(items, 32, 1)
    assert padded.shape == (2, 1, 32, 32)
    assert torch.equal(padded[..., 2:30, 2:30], items)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (padded[..., border] == -1).all()


# -- folders and their errors -------------------------------------------------------------------------


def _photo_folder(folder, names, size=40):
    folder.mkdir(parents=True)
    for name in names:
        real_photo("astronaut.png", size).convert("RGB").save(folder / name)
    return folder


def test_class_folders_and_pairs_load_as_labelled_and_aligned_tensors(tmp_path):
    _photo_folder(tmp_path / "classes" / "cats", ["a.png", "b.png"])
    _photo_folder(tmp_path / "classes" / "dogs", ["c.png"])
    images = data.load_classes(tmp_path / "classes", 3, 16, None, 0)
    assert images.classes == ("cats", "dogs") and images.labels.tolist() == [0, 0, 1]
    assert images.images.shape == (3, 3, 16, 16) and images.images.min() >= -1 and images.images.max() <= 1

    # A side-by-side pair: the left half is A, the right half B.
    left, right = np.full((8, 8, 3), 10, np.uint8), np.full((8, 8, 3), 240, np.uint8)
    (tmp_path / "pairs").mkdir()
    Image.fromarray(np.concatenate([left, right], 1)).save(tmp_path / "pairs" / "p.png")
    a, b = data.load_pairs(tmp_path / "pairs", 1, 1, 8, None, 0)
    assert torch.allclose(a.images, torch.full_like(a.images, 10 / 127.5 - 1)) and torch.allclose(
        b.images, torch.full_like(b.images, 240 / 127.5 - 1)
    )


def _error_cases(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = _photo_folder(tmp_path / "broken", ["good.png"])
    (broken / "bad.png").write_bytes(b"not a png at all")
    pairs = tmp_path / "pairs"
    _photo_folder(pairs / "A", ["1.png", "2.png"])
    _photo_folder(pairs / "B", ["1.png"])
    return [
        ("dcgan", empty, "empty: no images in this folder"),
        ("cyclegan", broken, "bad.png: cannot read image"),
        ("pix2pix", pairs, "2.png: no partner"),
    ]


def test_data_errors_stop_before_training_with_one_line_naming_the_file(tmp_path, run_cli):
    for family, folder, message in _error_cases(tmp_path):
        extra = ("--data-b", str(folder)) if family == "cyclegan" else ()
        code, out, err = run_cli(
            "train", family, "--out", tmp_path / f"run-{family}", "--data", folder, *extra, "--max-steps", "1"
        )
        assert code == 2, (family, err)
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and not (tmp_path / f"run-{family}" / "latest.pt").exists()


def test_image_folder_runs_train_with_crops_and_flips(tmp_path, run_cli):
    """Colour photos in trainA/trainB, loaded at 36 and randomly cropped to 32: a real folder run end to end."""
    root = tmp_path / "photos"
    _photo_folder(root / "trainA", ["a1.png", "a2.png"])
    shutil.copytree(root / "trainA", root / "trainB")
    code, _, err = run_cli("train", "cyclegan", "--out", tmp_path / "run",
                           "--data", root / "trainA", "--data-b", root / "trainB",
                           "--channels", "3", "--size", "32", "--load-size", "36", "--flip", "--ngf", "4", "--ndf", "4",
                           "--batch-size", "2", "--max-steps", "2", "-q")  # fmt: skip
    assert code == 0, err
    from gantx.trainers.checkpoint import load_checkpoint

    export = load_checkpoint(tmp_path / "run" / "latest.pt").contract
    assert export.domains == ("trainA", "trainB") and export.fit == "resize" and export.channels_in == 3
