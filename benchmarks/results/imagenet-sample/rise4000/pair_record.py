"""This run against the track's record (``../``), image by image, on the photos both scored.

``python benchmarks/results/imagenet-sample/rise4000/pair_record.py`` checks that
AKD and Grad-CAM, the same checkpoint and black box, repeat the record's per-image
scores on the first 20 photos, and pairs RISE with 4000 masks (this run) against
RISE with 1000 (the record) on the 8 photos the record ran it on (ROAD combined:
on the first 8 too, both runs scored it there). Paired differences: 95 % bootstrap,
10,000 resamples, seed 0.
"""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1] / "explainer_objective"))
from seed_means import paired_cells, run_rows  # noqa: E402

METRICS = ("insertion", "deletion", "deletion_blur", "road_combined")


def main() -> None:
    ids, new = run_rows(HERE / "results.json", "n", "full", METRICS)
    ids_r, record = run_rows(HERE.parent / "results.json", "r", "full", METRICS)
    _, subset = run_rows(HERE.parent / "results.json", "r", "subset", METRICS)
    if ids != ids_r[:len(ids)]:
        raise SystemExit("the two runs scored different photos")
    for method in ("AKD (ours)", "Grad-CAM"):
        # Shortest list wins: the record ran ROAD on 12 photos, this run on 20.
        largest = max(abs(a - b) for metric in METRICS
                      for a, b in zip(new[f"n:{method}"][metric], record[f"r:{method}"][metric],
                                      strict=False))
        print(f"{method}: largest per-image difference from the record {largest:.2e}")
    n = len(subset["r:RISE"]["insertion"])
    first = {m: v[:n] for m, v in new["n:RISE"].items()}
    print(f"RISE N = 4000 minus N = 1000 on the first {n} photos: "
          + paired_cells(first, subset["r:RISE"]))


if __name__ == "__main__":
    main()
