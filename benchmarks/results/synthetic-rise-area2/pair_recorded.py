"""This run against the recorded synthetic run (``../synthetic/``), image by image.

``python benchmarks/results/synthetic-rise-area2/pair_recorded.py`` pairs the
rows of this directory's ``results.json`` (``n:``: the ``rise`` stage 2 with an
area term, weight 2, on a plain student distilled in the run) with those of
``../synthetic/results.json`` (``r:``: the recorded run, plain distillation and
the ``curve`` stage 2). Both explain the same 100 images of the same black box
(the committed checkpoint's ``black_box.safetensors``, whose hash both files
give), so the black box's own rows (Grad-CAM, RISE, LIME) are the same maps.
It prints the paired differences (95 % bootstrap, 10,000 resamples, seed 0)
that results.md quotes, then issue 23's halving check of the explainer's own
gap (RISE on each run's student minus its AKD on insertion, AKD minus RISE on
the student on the deletions; below 0 AKD is ahead): per image, this run's gap
minus half the recorded one, at most 0 where the gap has at least halved.
"""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "synthetic-matched-rise"))
from pair_recorded import rows  # noqa: E402
from seed_means import paired_cells  # noqa: E402

from captum_akd.metrics import bootstrap_interval  # noqa: E402

PAIRS = [("n:AKD (ours)", "r:AKD (ours)"), ("n:AKD (ours)", "n:Grad-CAM"),
         ("n:AKD (ours)", "n:RISE"), ("n:AKD (ours)", "n:LIME"),
         ("n:AKD (ours)", "n:RISE on student"), ("r:AKD (ours)", "r:RISE on student"),
         ("n:RISE", "n:RISE on student"), ("n:Grad-CAM", "r:Grad-CAM"), ("n:RISE", "r:RISE")]


def main() -> None:
    table = {**rows(HERE / "results.json", "n"),
             **rows(HERE.parent / "synthetic" / "results.json", "r")}
    for a, b in PAIRS:
        print(f"{a} minus {b}: " + paired_cells(table[a], table[b]))
    for metric, sign in (("insertion", 1), ("deletion", -1), ("deletion_blur", -1)):
        gap = {tag: [sign * (s - a) for s, a in zip(table[f"{tag}:RISE on student"][metric],
                                                    table[f"{tag}:AKD (ours)"][metric],
                                                    strict=True)]
               for tag in "nr"}
        new, old = bootstrap_interval(gap["n"]), bootstrap_interval(gap["r"])
        excess = bootstrap_interval([g - h / 2 for g, h in zip(gap["n"], gap["r"], strict=True)])
        print(f"{metric} gap: new {new.mean:+.4f} [{new.low:+.4f}, {new.high:+.4f}], recorded "
              f"{old.mean:+.4f} [{old.low:+.4f}, {old.high:+.4f}]; new minus half the recorded "
              f"{excess.mean:+.4f} [{excess.low:+.4f}, {excess.high:+.4f}]")


if __name__ == "__main__":
    main()
