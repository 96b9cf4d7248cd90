"""Stage-2 variants compared by their seed-mean maps' scores, image by image.

``python benchmarks/results/explainer_objective/seed_means.py RESULTS BASE VARIANT ...``
reads a ``results.json`` of ``benchmarks.explainer_objective`` (or several,
``A.json,B.json``: runs of one black box, their rows pooled) whose rows are
named ``NAME-seedS``. For each NAME it averages every image's score over the
seeds (one number per image and metric: what a user who picks a seed at random
gets on that image, in expectation), prints a cell per metric (mean and 95 %
bootstrap interval, 10,000 resamples, seed 0) and pairs each VARIANT with BASE
and with Grad-CAM image by image.
"""

import json
import statistics
import sys
from collections import defaultdict

from captum_akd.evaluation import METRICS
from captum_akd.metrics import bootstrap_interval, paired_comparison


def seed_means(rows: dict) -> tuple[dict[str, dict[str, list[float]]], dict[str, int]]:
    """Per-image scores averaged over each variant's seeds (fixed rows as they are), and
    how many seeds each variant has."""
    groups = defaultdict(list)
    metrics = next(iter(rows.values()))["per_image"]
    for name, row in rows.items():
        key = name.rsplit("-seed", 1)[0] if "-seed" in name else name
        groups[key].append(row["per_image"])
    return {name: {m: [statistics.mean(v) for v in zip(*(g[m] for g in group), strict=True)]
                   for m in metrics}
            for name, group in groups.items()}, {k: len(g) for k, g in groups.items()}


def main() -> None:
    paths, base, *variants = sys.argv[1:]
    rows = {}
    for path in paths.split(","):
        rows.update(json.load(open(path))["rows"])
    means, counts = seed_means(rows)
    for name in [base, *variants, "checkpoint's explainer", "Grad-CAM"]:
        cells = [f"{ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}]"
                 for ci in (bootstrap_interval(v) for v in means[name].values())]
        print(f"| {name} ({counts[name]} seed(s)) | " + " | ".join(cells) + " |")
    for name in variants:
        for reference in (base, "Grad-CAM"):
            print(f"{name} vs {reference}: " + paired_cells(means[name], means[reference]))


def paired_cells(scores: dict[str, list[float]], reference: dict[str, list[float]]) -> str:
    """Each metric's paired difference from ``reference``, interval and verdict, as
    results.md quotes them."""
    parts = []
    for metric in scores:
        c = paired_comparison(scores[metric], reference[metric],
                              higher_is_better=METRICS[metric].higher_is_better)
        parts.append(f"{metric} {c.difference:+.3f} [{c.low:+.3f}, {c.high:+.3f}] {c.verdict}")
    return "; ".join(parts)


def print_gap_halving(scores: dict[str, dict[str, list[float]]]) -> None:
    """Issue 23's halving check of the explainer's own gap, for the two runs tagged
    ``n:`` (new) and ``r:`` (recorded) in ``scores``."""
    for metric, sign in (("insertion", 1), ("deletion", -1), ("deletion_blur", -1)):
        # Signed so that a gap above 0 is AKD short of RISE on its student.
        gap = {tag: [sign * (s - a) for s, a in zip(scores[f"{tag}:RISE on student"][metric],
                                                    scores[f"{tag}:AKD (ours)"][metric],
                                                    strict=True)]
               for tag in "nr"}
        new, old = bootstrap_interval(gap["n"]), bootstrap_interval(gap["r"])
        excess = bootstrap_interval([g - h / 2 for g, h in zip(gap["n"], gap["r"], strict=True)])
        print(f"{metric}: new {new.mean:+.4f} [{new.low:+.4f}, {new.high:+.4f}], recorded "
              f"{old.mean:+.4f} [{old.low:+.4f}, {old.high:+.4f}]; new minus half the recorded "
              f"{excess.mean:+.4f} [{excess.low:+.4f}, {excess.high:+.4f}]")


if __name__ == "__main__":
    main()
