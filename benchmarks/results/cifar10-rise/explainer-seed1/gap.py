"""The explainer's own gap of this seed on the first 50 images, image by image.

``python benchmarks/results/cifar10-rise/explainer-seed1/gap.py`` reads this
run's AKD scores of the record's first 50 images (from its full evaluation:
each image is scored alone) and the record's RISE on the student
(``../../cifar10-e5/``: the same student, so the same maps) and prints RISE on
the student minus AKD on insertion, AKD minus RISE on the student on the
deletions (below 0 AKD is ahead), with 95 % bootstrap intervals (10,000
resamples, seed 0).
"""

import sys
from pathlib import Path

from captum_akd.metrics import bootstrap_interval

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1] / "explainer_objective"))
from seed_means import RUN_KEYS, explainer_gap, run_rows  # noqa: E402


def main() -> None:
    gap_metrics = ("insertion", "deletion", "deletion_blur")
    ids, new = run_rows(HERE / "results.json", "n", "full", gap_metrics)
    subset, record = run_rows(HERE.parents[1] / "cifar10-e5" / "results.json", "r", "subset",
                              gap_metrics)
    n = len(subset)
    if ids[:n] != subset:
        raise SystemExit("the two runs scored different images")
    scores = {"n:AKD (ours)": {m: v[:n] for m, v in new["n:AKD (ours)"].items()},
              "n:RISE on student": record["r:RISE on student"]}
    names = {metric: key for key, metric in RUN_KEYS.items()}
    for metric, gap in explainer_gap(scores, "n").items():
        ci = bootstrap_interval(gap)
        print(f"{names[metric]}: {ci.mean:+.4f} [{ci.low:+.4f}, {ci.high:+.4f}]")


if __name__ == "__main__":
    main()
