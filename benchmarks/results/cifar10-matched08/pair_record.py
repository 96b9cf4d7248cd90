"""This probe (the track's record since the evening of 2026-12-07) against the record it replaced.

``python benchmarks/results/cifar10-matched08/pair_record.py`` pairs this
directory's ``results.json`` (``n:``: the record's stage 2 on the five-epoch
student matched at ``perturb_share`` 0.8, 1000 images, AKD, Grad-CAM and the
controls) and ``rise50/results.json`` (the same checkpoint re-scored with
RISE and RISE on the student on the first 50 of those images, the record's
slow-method images; its ``subset`` evaluation) and ``seed1/results.json``
(``s:``: stage 2 again on the same student with ``--explainer-seed 1``, AKD
and the controls on the 1000) with
``../cifar10-e5/results.json`` (``r:``: the record until 2026-12-07, the plain
five-epoch student; ``full`` 1000 images, ``subset`` its first 50). All four explain the
same images of the same black box (checked by id). It prints the paired
differences (95 % bootstrap, 10,000 resamples, seed 0) that results.md
quotes, issue 22's halving check of the transfer loss and issue 23's of the
explainer's own gap, both against the record's student; then each probe of
``PROBES`` (``t:``, ``train20k/``: the same stage 2 on 20,000 training
images; ``v:``, ``tv01/``: with ``tv_weight`` 0.1; ``g:``, ``grid16/``: with
``rise_grid`` 16; ``z:``, ``zero/``: destroying over zeros only; ``k:``,
``student15/``: the record's stage 2 on its student after ten more matched
epochs; ``c:``, ``train20k-zero/``: ``train20k/`` and ``zero/`` combined) against
this run's AKD, its own Grad-CAM and uniform-noise rows, and on the 50
against RISE. Last, ``train20k-zero/`` against the record on 1000 other
images (``--seed 1``: ``train20k-zero/fresh/`` with Grad-CAM and the
controls, ``train20k-zero/fresh-record/`` the record's checkpoint), and how
many of them the seed-0 images share.
"""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "explainer_objective"))
from seed_means import (  # noqa: E402
    paired_cells,
    print_gap_halving,
    print_transfer_halving,
    run_rows,
)

RECORD = HERE.parent / "cifar10-e5" / "results.json"
#: CIFAR-10 has no part masks, so no pointing game.
METRICS = ("insertion", "deletion", "deletion_blur", "road_combined")
PAIRS_1000 = [("n:AKD (ours)", "r:AKD (ours)"), ("n:AKD (ours)", "n:Grad-CAM"),
              ("n:AKD (ours)", "n:Uniform noise (control)"),
              ("r:AKD (ours)", "r:Uniform noise (control)"), ("s:AKD (ours)", "r:AKD (ours)"),
              ("s:AKD (ours)", "n:AKD (ours)"), ("s:AKD (ours)", "n:Grad-CAM"),
              ("s:AKD (ours)", "s:Uniform noise (control)")]
#: Probes of the record's stage 2 scored with AKD, Grad-CAM and the controls on the 1000:
#: tag -> folder.
PROBES = {"t": "train20k", "v": "tv01", "g": "grid16", "z": "zero", "k": "student15",
          "c": "train20k-zero"}
PAIRS_50 = [("n:AKD (ours)", "r:AKD (ours)"), ("n:AKD (ours)", "n:RISE"),
            ("r:AKD (ours)", "r:RISE"), ("n:RISE on student", "n:RISE"),
            ("r:RISE on student", "r:RISE"), ("n:RISE", "r:RISE")]


def rows(path: Path, tag: str, part: str = "full") -> tuple[list[str], dict]:
    """``run_rows`` on the four metrics CIFAR-10 has."""
    return run_rows(path, tag, part, metrics=METRICS)


def print_against_record(tag: str, table: dict, n: int) -> None:
    """A probe's AKD against the record's AKD (``n:``) and its own Grad-CAM and noise rows."""
    for b in ("n:AKD (ours)", f"{tag}:Grad-CAM", f"{tag}:Uniform noise (control)"):
        print(f"{n} images: {tag}:AKD (ours) minus {b}: "
              + paired_cells(table[f"{tag}:AKD (ours)"], table[b]))


def main() -> None:
    full_ids, wide = rows(HERE / "results.json", "n")
    record_ids, record = rows(RECORD, "r")
    seed_ids, seed = rows(HERE / "seed1" / "results.json", "s")
    assert full_ids == record_ids == seed_ids, "other images than the record's"
    wide.update(record)
    wide.update(seed)
    for a, b in PAIRS_1000:
        print(f"{len(full_ids)} images: {a} minus {b}: " + paired_cells(wide[a], wide[b]))
    ids, first = rows(HERE / "rise50" / "results.json", "n", "subset")
    record_ids, record = rows(RECORD, "r", "subset")
    assert ids == record_ids, "other images than the record's slow-method ones"
    first.update(record)
    for a, b in PAIRS_50:
        print(f"{len(ids)} images: {a} minus {b}: " + paired_cells(first[a], first[b]))
    print_transfer_halving(first, ("n",), rise="r:RISE", plain="r:RISE on student")
    print("## explainer's own gap (how far AKD falls short of RISE on the student; "
          "< 0: AKD is ahead): new, recorded, and new minus half the recorded")
    print_gap_halving(first)
    print("## probes of the record's stage 2 (on the 50: their full evaluation's rows there, "
          "each image being scored alone, against the record's RISE)")
    for tag, folder in PROBES.items():
        probe_ids, probe = rows(HERE / folder / "results.json", tag)
        assert probe_ids == full_ids, f"{folder}: other images than the record's"
        assert probe_ids[:len(ids)] == ids, "the slow-method images are not the first ones"
        wide.update(probe)
        print_against_record(tag, wide, len(probe_ids))
        on_50 = {m: v[:len(ids)] for m, v in wide[f"{tag}:AKD (ours)"].items()}
        print(f"{len(ids)} images: {tag}:AKD (ours) minus n:RISE: "
              + paired_cells(on_50, first["n:RISE"]))
    fresh_ids, fresh = rows(HERE / "train20k-zero" / "fresh" / "results.json", "c")
    again_ids, again = rows(HERE / "train20k-zero" / "fresh-record" / "results.json", "n")
    assert fresh_ids == again_ids, "the fresh runs explain other images"
    fresh.update(again)
    print(f"## train20k-zero on other images (--seed 1; {len(set(fresh_ids) & set(full_ids))} "
          "of them among the seed-0 ones)")
    print_against_record("c", fresh, len(fresh_ids))


if __name__ == "__main__":
    main()
