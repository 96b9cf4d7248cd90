"""Stage-2 variants compared by their seed-mean maps' scores, image by image.

``python benchmarks/results/explainer_objective/seed_means.py RESULTS BASE VARIANT ...``
reads a ``results.json`` of ``benchmarks.explainer_objective`` (or several,
``A.json,B.json``: runs of one black box, their rows pooled) whose rows are
named ``NAME-seedS``. For each NAME it averages every image's score over the
seeds (one number per image and metric: what a user who picks a seed at random
gets on that image, in expectation), prints a cell per metric (mean and 95 %
bootstrap interval, 10,000 resamples, seed 0) and pairs each VARIANT with BASE
and with Grad-CAM image by image.

The pairing scripts beside other runs' results import from here: ``run_rows``
reads a ``results.json`` of ``benchmarks.run``, ``paired_cells`` prints the
paired differences, ``print_gap_halving`` issue 23's check on the
explainer's own gap (``explainer_gap``) and ``print_transfer_halving`` issue
22's on the surrogate's transfer loss.
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from captum_akd.evaluation import METRICS
from captum_akd.metrics import bootstrap_interval, paired_comparison

#: Per-image keys of a ``benchmarks.run`` results.json -> captum_akd.evaluation.METRICS names.
RUN_KEYS = {"insertion_auc": "insertion", "deletion_auc": "deletion",
            "deletion_blur_auc": "deletion_blur", "road_combined": "road_combined",
            "energy": "energy_pointing_game"}


def run_rows(path: Path, tag: str, part: str = "full",
             metrics: tuple[str, ...] = tuple(RUN_KEYS.values()),
             ) -> tuple[list[str], dict[str, dict[str, list[float]]]]:
    """The image ids and every method's per-image scores of one evaluation (``part``) of a
    ``benchmarks.run`` results.json, rows named ``tag:method``; nothing if the run has no
    such evaluation."""
    evaluation = json.loads(Path(path).read_text())["evaluations"].get(part)
    if evaluation is None:
        return [], {}
    return evaluation["image_ids"], {
        f"{tag}:{name}": {RUN_KEYS[k]: v for k, v in entry["per_image"].items()
                          if RUN_KEYS.get(k) in metrics}
        for name, entry in evaluation["methods"].items()}


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


def explainer_gap(scores: dict[str, dict[str, list[float]]], tag: str) -> dict[str, list[float]]:
    """Per image, how far the run ``tag``'s AKD falls short of RISE on its student (both
    judged by the black box) on insertion and both deletions; below 0 AKD is ahead."""
    return {metric: [sign * (s - a) for s, a in zip(scores[f"{tag}:RISE on student"][metric],
                                                    scores[f"{tag}:AKD (ours)"][metric],
                                                    strict=True)]
            for metric, sign in (("insertion", 1), ("deletion", -1), ("deletion_blur", -1))}


def print_transfer_halving(scores: dict[str, dict[str, list[float]]], tags: tuple[str, ...],
                           rise: str, plain: str) -> None:
    """Issue 22's halving check of the deletion transfer loss (RISE on the student minus RISE
    on the black box ``rise``) for each run in ``tags``, against the plain student ``plain``'s:
    the loss has at least halved where loss minus half the plain one is at most 0 or ties."""
    for tag in tags:
        matched = scores[f"{tag}:RISE on student"]
        for metric in ("deletion", "deletion_blur"):
            # Deletion: lower is better, so the loss is student minus black box.
            loss = [s - r for s, r in zip(matched[metric], scores[rise][metric], strict=True)]
            old = [s - r for s, r in zip(scores[plain][metric], scores[rise][metric],
                                         strict=True)]
            ci = bootstrap_interval([a - 0.5 * b for a, b in zip(loss, old, strict=True)])
            cut = 1 - sum(loss) / sum(old)
            print(f"{tag}: {metric} transfer loss {sum(loss) / len(loss):.4f} against plain "
                  f"{sum(old) / len(old):.4f} ({cut:.0%} cut); loss minus half plain's "
                  f"{ci.mean:+.4f} [{ci.low:+.4f}, {ci.high:+.4f}]")


def print_gap_halving(scores: dict[str, dict[str, list[float]]]) -> None:
    """Issue 23's halving check of the explainer's own gap, for the two runs tagged
    ``n:`` (new) and ``r:`` (recorded) in ``scores``."""
    new_gap, old_gap = explainer_gap(scores, "n"), explainer_gap(scores, "r")
    for metric, gap in new_gap.items():
        new, old = bootstrap_interval(gap), bootstrap_interval(old_gap[metric])
        excess = bootstrap_interval([g - h / 2 for g, h in zip(gap, old_gap[metric],
                                                                strict=True)])
        print(f"{metric}: new {new.mean:+.4f} [{new.low:+.4f}, {new.high:+.4f}], recorded "
              f"{old.mean:+.4f} [{old.low:+.4f}, {old.high:+.4f}]; new minus half the recorded "
              f"{excess.mean:+.4f} [{excess.low:+.4f}, {excess.high:+.4f}]")


if __name__ == "__main__":
    main()
