"""This run and its area-term twins against the other synthetic runs, image by image.

``python benchmarks/results/synthetic-matched04blur-rise6/pair_runs.py`` pairs
this directory's ``results.json`` (``b:``: a student matched at
``perturb_share`` 0.4 on copies over the blurred substrate only, 6 epochs of
the ``rise`` stage 2 without its area term), ``area2/results.json`` (``a:``:
the same student, the same stage 2 with area weight 2), the share-0.4 run over
both substrates (``n:``, ``../synthetic-matched04-rise6/``), the track's record
(``r:``, ``../synthetic/``) and plain distillation with the same 10 stage-1
epochs (``p:``, ``../synthetic-matched-rise/plain-10-epochs/``). Every run
explains the same first 100 images of the same black box (checked by id);
``b:`` and ``a:`` score 300 (their ``full`` evaluation), the slow methods on
the first 100 (``subset``); ``area1/`` (``o:``, area weight 1) scores the
300 with AKD, Grad-CAM and the controls only, as do ``area05/`` (``h:``,
weight 0.5) and ``area075/`` (``t:``, weight 0.75). A ``rescore900/`` folder
beside a run's ``results.json`` re-scores that checkpoint with AKD,
Grad-CAM and the controls on the first 900 held-out images. It prints each
student's agreement, the paired differences (95 % bootstrap, 10,000
resamples, seed 0) that results.md quotes, issue 22's halving check of the transfer loss (as in
``../synthetic-matched04-rise6/pair_runs.py``) and each run's explainer gap.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "explainer_objective"))
from seed_means import (  # noqa: E402
    explainer_gap,
    paired_cells,
    print_transfer_halving,
    run_rows,
)

RUNS = {"b": HERE, "a": HERE / "area2", "n": HERE.parent / "synthetic-matched04-rise6",
        "r": HERE.parent / "synthetic",
        "p": HERE.parent / "synthetic-matched-rise" / "plain-10-epochs"}
PAIRS_100 = [("b:AKD (ours)", "b:Grad-CAM"), ("a:AKD (ours)", "a:Grad-CAM"),
             ("b:AKD (ours)", "n:AKD (ours)"), ("a:AKD (ours)", "n:AKD (ours)"),
             ("b:AKD (ours)", "r:AKD (ours)"), ("a:AKD (ours)", "r:AKD (ours)"),
             ("a:AKD (ours)", "b:AKD (ours)"), ("b:RISE on student", "n:RISE on student"),
             ("b:RISE on student", "b:Grad-CAM"), ("b:AKD (ours)", "b:RISE"),
             ("a:AKD (ours)", "a:RISE")]
PAIRS_300 = [("b:AKD (ours)", "b:Grad-CAM"), ("a:AKD (ours)", "a:Grad-CAM"),
             ("o:AKD (ours)", "o:Grad-CAM"), ("a:AKD (ours)", "b:AKD (ours)"),
             ("o:AKD (ours)", "b:AKD (ours)"), ("h:AKD (ours)", "h:Grad-CAM"),
             ("t:AKD (ours)", "t:Grad-CAM"), ("h:AKD (ours)", "b:AKD (ours)"),
             ("t:AKD (ours)", "b:AKD (ours)")]
#: Runs scored on 300 images and, where a rescore900/ folder is there, on 900.
WIDE = {"b": HERE, "a": HERE / "area2", "o": HERE / "area1", "h": HERE / "area05",
        "t": HERE / "area075"}


def main() -> None:
    first, full = {}, {}
    ids = None
    for tag, folder in RUNS.items():
        student = json.loads((folder / "results.json").read_text())["student"]
        fidelity = student["fidelity"]["student"]
        print(f"{tag}: clean agreement {fidelity['top1_agreement']:.4f}, perturbed "
              f"{fidelity['perturbed_top1_agreement']:.4f} on {fidelity['images']} images, "
              f"best epoch {fidelity['best_epoch']}")
        part = "subset" if tag in ("b", "a") else "full"
        run_ids, rows = run_rows(folder / "results.json", tag, part)
        assert ids is None or run_ids == ids, f"{tag}: other images"
        ids = run_ids
        first.update(rows)
    for tag, folder in WIDE.items():
        full.update(run_rows(folder / "results.json", tag)[1])
    for a, b in PAIRS_100:
        print(f"100 images: {a} minus {b}: " + paired_cells(first[a], first[b]))
    for a, b in PAIRS_300:
        print(f"300 images: {a} minus {b}: " + paired_cells(full[a], full[b]))
    for tag, folder in WIDE.items():
        if not (folder / "rescore900").is_dir():
            continue
        _, wide = run_rows(folder / "rescore900" / "results.json", tag)
        akd, gradcam = wide[f"{tag}:AKD (ours)"], wide[f"{tag}:Grad-CAM"]
        # The re-score repeats the run's maps: its first 300 images must score the same.
        drift = max(abs(x - y) for m in full[f"{tag}:AKD (ours)"]
                    for x, y in zip(full[f"{tag}:AKD (ours)"][m], akd[m], strict=False))
        print(f"{len(akd['insertion'])} images: {tag}:AKD (ours) minus {tag}:Grad-CAM: "
              + paired_cells(akd, gradcam) + f" (first 300 differ by at most {drift:.1e})")
    print_transfer_halving(first, ("b", "n"), rise="b:RISE", plain="p:RISE on student")
    for tag in ("b", "a", "n", "r"):
        gap = {k: f"{sum(v) / len(v):+.4f}" for k, v in explainer_gap(first, tag).items()}
        print(f"{tag}: explainer gap (RISE on student minus AKD, deletions sign-flipped) {gap}")


if __name__ == "__main__":
    main()
