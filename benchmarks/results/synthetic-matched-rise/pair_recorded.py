"""This run against the `curve` record of the synthetic track (``../synthetic-curve/``), per image.

``python benchmarks/results/synthetic-matched-rise/pair_recorded.py`` pairs the
rows of this directory's ``results.json`` (``n:``: the perturbation-matched
student with the ``rise`` stage 2) with those of
``../synthetic-curve/results.json`` (``r:``: the recorded run, plain
distillation and the ``curve`` stage 2). Both explain the same 100 images of
the same black box (the committed checkpoint's ``black_box.safetensors``, whose
hash both files give), so the black box's own rows (RISE, Grad-CAM) are the
same maps. It prints the paired differences (95 % bootstrap, 10,000 resamples,
seed 0) that results.md quotes.
"""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "explainer_objective"))
from seed_means import paired_cells, run_rows  # noqa: E402

PAIRS = [("n:AKD (ours)", "r:AKD (ours)"), ("n:AKD (ours)", "n:Grad-CAM"),
         ("n:AKD (ours)", "n:RISE"), ("n:AKD (ours)", "n:RISE on student"),
         ("r:AKD (ours)", "r:RISE on student"),
         ("n:RISE", "n:RISE on student"), ("r:RISE", "r:RISE on student"),
         ("n:RISE on student", "r:RISE on student"), ("n:Grad-CAM", "r:Grad-CAM")]


def main() -> None:
    table = {**run_rows(HERE / "results.json", "n")[1],
             **run_rows(HERE.parent / "synthetic-curve" / "results.json", "r")[1]}
    for a, b in PAIRS:
        print(f"{a} minus {b}: " + paired_cells(table[a], table[b]))


if __name__ == "__main__":
    main()
