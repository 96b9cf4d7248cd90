"""This run against the `curve` record it replaced (``../synthetic-curve/``), image by image.

``python benchmarks/results/synthetic/pair_recorded.py`` pairs the rows of this
directory's ``results.json`` (``n:``: the ``rise`` stage 2 with an area term,
weight 2, on a plain student distilled in the run) with those of
``../synthetic-curve/results.json`` (``r:``: the track's record until
2026-12-07, plain distillation and the ``curve`` stage 2). Both explain the
same 100 images of the same black box (the committed checkpoint's
``black_box.safetensors``, whose hash both files give), so the black box's own
rows (Grad-CAM, RISE, LIME) are the same maps. It prints the paired differences
(95 % bootstrap, 10,000 resamples, seed 0) that results.md quotes, then issue
23's halving check of the explainer's own gap (RISE on each run's student minus
its AKD on insertion, AKD minus RISE on the student on the deletions; below 0
AKD is ahead): per image, this run's gap minus half the recorded one, at most 0
where the gap has at least halved.
"""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "explainer_objective"))
from seed_means import paired_cells, print_gap_halving, run_rows  # noqa: E402

PAIRS = [("n:AKD (ours)", "r:AKD (ours)"), ("n:AKD (ours)", "n:Grad-CAM"),
         ("n:AKD (ours)", "n:RISE"), ("n:AKD (ours)", "n:LIME"),
         ("n:AKD (ours)", "n:RISE on student"), ("r:AKD (ours)", "r:RISE on student"),
         ("n:RISE", "n:RISE on student"), ("n:Grad-CAM", "r:Grad-CAM"), ("n:RISE", "r:RISE")]


def main() -> None:
    table = {**run_rows(HERE / "results.json", "n")[1],
             **run_rows(HERE.parent / "synthetic-curve" / "results.json", "r")[1]}
    for a, b in PAIRS:
        print(f"{a} minus {b}: " + paired_cells(table[a], table[b]))
    print("## explainer's own gap (how far AKD falls short of RISE on the student; "
          "< 0: AKD is ahead): new, recorded, and new minus half the recorded")
    print_gap_halving(table)

if __name__ == "__main__":
    main()
