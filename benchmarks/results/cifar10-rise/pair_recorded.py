"""This run against the ``curve`` stage 2 on CIFAR-10 (``../cifar10-curve/``), image by image.

``python benchmarks/results/cifar10-rise/pair_recorded.py`` pairs the rows of
this directory's ``results.json`` (``n:``: a new explanation network trained
with the ``rise`` objective on the recorded run's student) with those of
``../cifar10-curve/results.json`` (``r:``: the track's record until 2026-12-07,
the ``curve`` objective, the same student). Both explain the same images of the
same ResNet-56 (the image ids are checked), so the black box's own rows
(Grad-CAM, RISE) are the same maps. It prints the paired differences (95 % bootstrap,
10,000 resamples, seed 0) that results.md quotes: on all evaluation images
(``full``) and on the first ones RISE ran on (``subset``), then issue 23's
halving check of the explainer's own gap (how far AKD falls short of RISE run
on the student, both judged by the black box: RISE on the student minus AKD on
insertion, AKD minus RISE on the student on the deletions; below 0 AKD is
ahead): per image, the new gap minus half the recorded one, which is at most 0
where the gap has at least halved.

``pair_recorded.py NEW RECORDED`` pairs two other results directories of one
track the same way. A row of a method that sees only the black box and the
images (Grad-CAM, RISE, LIME, the controls...) that NEW did not score is taken
from RECORDED: on the same images it is the same map (so a run that re-scored
AKD alone still pairs with them); other missing rows are left out. A NEW run
without the first images' evaluation (no slow method) pairs there with its
own scores of those images from the full evaluation.
"""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "explainer_objective"))
from seed_means import paired_cells, print_gap_halving, run_rows  # noqa: E402

#: The metrics paired (no energy pointing game: CIFAR-10 has no part masks).
METRICS = ("insertion", "deletion", "deletion_blur", "road_combined")
FULL = [("n:AKD (ours)", "r:AKD (ours)"), ("n:AKD (ours)", "n:Grad-CAM"),
        ("r:AKD (ours)", "r:Grad-CAM"), ("n:AKD (ours)", "n:Layer-wise CAM"),
        ("n:AKD (ours)", "n:Uniform noise (control)"),
        ("n:AKD (ours)", "n:Centre Gaussian (control)"),
        ("n:AKD (ours)", "n:Sobel edges (control)"), ("n:Grad-CAM", "r:Grad-CAM")]
#: Rows that depend on the run's student and explainer: never shared between the two runs.
OWN = ("AKD (ours)", "RISE on student")
SUBSET = [("n:AKD (ours)", "n:RISE"), ("n:AKD (ours)", "n:RISE on student"),
          ("r:AKD (ours)", "r:RISE on student"), ("n:RISE", "n:RISE on student"),
          ("n:RISE", "r:RISE")]


def table(part: str, new_dir: Path, recorded_dir: Path) -> dict[str, dict[str, list[float]]]:
    """Both runs' rows of one evaluation, after checking they scored the same images."""
    ids_n, new = run_rows(new_dir / "results.json", "n", part, METRICS)
    ids_r, recorded = run_rows(recorded_dir / "results.json", "r", part, METRICS)
    if not ids_n and ids_r:
        # A run without the slow methods has no subset: its first images are the same
        # per-image scores (each image is scored alone), so the full rows serve.
        ids_n, new = run_rows(new_dir / "results.json", "n", "full", METRICS)
        ids_n, new = ids_n[:len(ids_r)], {k: {m: v[:len(ids_r)] for m, v in scores.items()}
                                          for k, scores in new.items()}
    if ids_n != ids_r[:len(ids_n)]:
        raise SystemExit(f"{part}: the two runs scored different images")
    n = len(ids_n)
    recorded = {name: {k: v[:n] for k, v in scores.items()} for name, scores in recorded.items()}
    shared = {"n:" + name[2:]: scores for name, scores in recorded.items()
              if name[2:] not in OWN and "n:" + name[2:] not in new}
    return {**new, **shared, **recorded}


def main(new_dir: Path = HERE, recorded_dir: Path = HERE.parent / "cifar10-curve") -> None:
    for part, pairs in (("full", FULL), ("subset", SUBSET)):
        scores = table(part, new_dir, recorded_dir)
        if "n:AKD (ours)" not in scores:
            continue
        print(f"## {part}: {len(scores['n:AKD (ours)']['insertion'])} images")
        for a, b in pairs:
            if a in scores and b in scores:
                print(f"{a} minus {b}: " + paired_cells(scores[a], scores[b]))
    # The gap check reads the subset's scores, the last ones the loop loaded.
    if "n:RISE on student" not in scores or "r:RISE on student" not in scores:
        return
    print("## explainer's own gap (how far AKD falls short of RISE on the student; "
          "< 0: AKD is ahead): new, recorded, and new minus half the recorded")
    print_gap_halving(scores)

if __name__ == "__main__":
    main(*map(Path, sys.argv[1:3]))
