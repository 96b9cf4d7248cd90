"""This run against the other synthetic runs on the same black box and images, image by image.

``python benchmarks/results/synthetic-matched04-rise6/pair_runs.py`` pairs the
rows of this directory's ``results.json`` (``n:``: the student matched at
``perturb_share`` 0.4 with 6 epochs of the ``rise`` stage 2) with those of
``../synthetic-matched-rise/results.json`` (``m:``: share 0.2, 4 epochs of
``rise``), ``../synthetic-matched-rise/plain-10-epochs/results.json`` (``p:``:
plain distillation, same 10 stage-1 epochs) and ``../synthetic-curve/results.json``
(``r:``: the recorded run). All four explain the same 100 images of the same
black box (the committed checkpoint's ``black_box.safetensors``, whose hash
every file gives), so the black box's own rows (RISE, Grad-CAM) are the same
maps. It prints the paired differences (95 % bootstrap, 10,000 resamples,
seed 0) that results.md quotes, then issue 22's halving check: per image,
the matched student's transfer loss minus half the plain student's, so the
loss has at least halved where the mean is on the loss's own side of 0 or
its interval includes 0.
"""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "explainer_objective"))
from seed_means import paired_cells, print_transfer_halving, run_rows  # noqa: E402

RUNS = {"n": HERE, "m": HERE.parent / "synthetic-matched-rise",
        "p": HERE.parent / "synthetic-matched-rise" / "plain-10-epochs",
        "r": HERE.parent / "synthetic-curve"}
PAIRS = [("n:AKD (ours)", "n:Grad-CAM"), ("n:AKD (ours)", "n:RISE"),
         ("n:AKD (ours)", "n:RISE on student"), ("n:AKD (ours)", "m:AKD (ours)"),
         ("n:AKD (ours)", "r:AKD (ours)"), ("n:RISE", "n:RISE on student"),
         ("m:RISE", "m:RISE on student"), ("p:RISE", "p:RISE on student"),
         ("r:RISE", "r:RISE on student"), ("n:RISE on student", "p:RISE on student"),
         ("n:RISE on student", "m:RISE on student"), ("r:AKD (ours)", "r:RISE on student"),
         ("n:RISE on student", "n:Grad-CAM"), ("n:Grad-CAM", "r:Grad-CAM")]


def main() -> None:
    table = {}
    for tag, folder in RUNS.items():
        table.update(run_rows(folder / "results.json", tag)[1])
    for a, b in PAIRS:
        print(f"{a} minus {b}: " + paired_cells(table[a], table[b]))
    print_transfer_halving(table, ("n", "m"), rise="n:RISE", plain="p:RISE on student")

if __name__ == "__main__":
    main()
