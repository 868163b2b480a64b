"""Write the Fashion-MNIST samples bundled in src/gantx/data/fashion (run once; the files are committed).

    python tools/make_fashion_samples.py

Two items per class from the real **test** split (the first two of each
class, named CLASS-INDEX.png after their index in the split) and, for the
first of each, its Fashion-MNIST-M version (m-CLASS-INDEX.png: the MNIST-M
recipe with a patch of the test halves of the bundled photos). `gantx demo`
runs the zoo on them, so a fresh install shows real results with no download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gantx.trainers.data import FASHION_CLASSES, blend_with_photos, fashion_mnist

FOLDER = Path(__file__).resolve().parent.parent / "src/gantx/data/fashion"
PER_CLASS = 2


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    for old in FOLDER.glob("*.png"):
        old.unlink()
    items, labels = fashion_mnist("test")
    for label, name in enumerate(FASHION_CLASSES):
        chosen = np.flatnonzero(labels == label)[:PER_CLASS]
        for index in chosen:
            Image.fromarray(items[index]).save(FOLDER / f"{name}-{index}.png", optimize=True)
        first = chosen[0]
        (coloured,) = blend_with_photos(items[first : first + 1], "test", seed=label)
        Image.fromarray(coloured).save(FOLDER / f"m-{name}-{first}.png", optimize=True)
    print(f"wrote {len(list(FOLDER.glob('*.png')))} files to {FOLDER}")


if __name__ == "__main__":
    main()
