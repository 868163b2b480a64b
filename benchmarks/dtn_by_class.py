"""Where the shipped DTN misses: the judge's agreement class by class, beside its accuracy on real items.

    python benchmarks/dtn_by_class.py     # after quality.py: needs its judge (runs/quality/judge.pt)

Scores the zoo's fashion-m2fashion exactly as quality.py does (the real test split blended with the test
photos, seed 1) and writes results/dtn-by-class.md: for each class, how often the judge names it on the
real grey items, on the DTN's translations and on the source turned grey, and what the wrong verdicts on
translations were.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from quality import ROOT, load_judge, translate_dtn_test

from gantx.bench import machine
from gantx.trainers.data import FASHION_CLASSES, fashion_mnist, to_tensor
from gantx.trainers.evaluation import Judge, predict


def verdicts(judge: Judge, images: np.ndarray) -> np.ndarray:
    return predict(judge, to_tensor(images)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", type=Path, default=ROOT / "runs/quality/judge.pt", help="quality.py's judge")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/dtn-by-class.md")
    args = parser.parse_args()
    if not args.judge.is_file():
        parser.error(f"no judge at {args.judge}: run benchmarks/quality.py first (it trains one)")
    judge = load_judge(args.judge)
    test, labels = fashion_mnist("test")
    translated, grey = translate_dtn_test("fashion-m2fashion", test)
    on_real, on_translated, on_grey = (verdicts(judge, images) for images in (test, translated, grey))
    lines = [
        f"fashion-m2fashion against the judge's accuracy on real items, class by class ({machine()['cpu']}).",
        "",
        f"Overall: translations {np.mean(on_translated == labels):.3f}, real items {np.mean(on_real == labels):.3f},"
        f" grey source {np.mean(on_grey == labels):.3f}.",
        "",
        "| class | judge on real items | on translations | on grey source | translations judged as, most often |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, name in enumerate(FASHION_CLASSES):
        items = labels == label
        wrong = np.bincount(on_translated[items & (on_translated != label)], minlength=10) / items.sum()
        most = ", ".join(f"{FASHION_CLASSES[other]} {wrong[other]:.3f}" for other in np.argsort(-wrong)[:2])
        shares = (np.mean(verdicts_on[items] == label) for verdicts_on in (on_real, on_translated, on_grey))
        lines.append(f"| {name} | " + " | ".join(f"{share:.3f}" for share in shares) + f" | {most} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
