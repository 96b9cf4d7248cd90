"""The explainer's own gap of this seed on the first 50 images, image by image.

``python benchmarks/results/cifar10-rise/explainer-seed1/gap.py`` reads this
run's AKD scores of the record's first 50 images (from its full evaluation:
each image is scored alone) and the record's RISE on the student
(``../../cifar10/``: the same student, so the same maps) and prints RISE on
the student minus AKD on insertion, AKD minus RISE on the student on the
deletions (below 0 AKD is ahead), with 95 % bootstrap intervals (10,000
resamples, seed 0).
"""

import json
from pathlib import Path

from captum_akd.metrics import bootstrap_interval

HERE = Path(__file__).parent


def main() -> None:
    new = json.loads((HERE / "results.json").read_text())["evaluations"]["full"]
    record = json.loads((HERE.parents[1] / "cifar10" / "results.json").read_text())
    subset = record["evaluations"]["subset"]
    n = len(subset["image_ids"])
    if new["image_ids"][:n] != subset["image_ids"]:
        raise SystemExit("the two runs scored different images")
    akd = new["methods"]["AKD (ours)"]["per_image"]
    ceiling = subset["methods"]["RISE on student"]["per_image"]
    for key, sign in (("insertion_auc", 1), ("deletion_auc", -1), ("deletion_blur_auc", -1)):
        ci = bootstrap_interval([sign * (c - a) for c, a in zip(ceiling[key], akd[key][:n],
                                                                 strict=True)])
        print(f"{key}: {ci.mean:+.4f} [{ci.low:+.4f}, {ci.high:+.4f}]")


if __name__ == "__main__":
    main()
