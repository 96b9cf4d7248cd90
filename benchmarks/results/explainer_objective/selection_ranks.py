"""How well each held-out figure of stage 2's final report ranks explainers by their scores.

``python benchmarks/results/explainer_objective/selection_ranks.py RESULTS ...`` reads
``results.json`` files of ``benchmarks.explainer_objective`` and prints, for each
candidate selection figure (computed on held-out images, never the scored ones),
its Spearman rank correlation across the trained variants with each scored
metric (signed so that +1 means "a higher figure, a better score"), and the
variant it would pick.
"""

import json
import sys

from scipy.stats import spearmanr

from captum_akd.evaluation import METRICS

SCORED = ("insertion", "deletion", "deletion_blur", "road_combined")


def figures(report: dict) -> dict[str, float]:
    """The candidate figures: the black box's and the student's, from the held-out report."""
    return {"black box: score kept by the map (target_retained)": report["target_retained"],
            "black box: score removed by the map (target_lost)": report["target_lost"],
            "student: coarse insertion minus deletion (the default pick)":
                report["student_insertion"] - report["student_deletion"]}


def main() -> None:
    runs = {}
    for path in sys.argv[1:]:
        results = json.load(open(path))
        for name, trained in results["trained"].items():
            runs[name] = (figures(trained["report"]), results["rows"][name])
    names = sorted(runs)
    print(f"{len(names)} variants: {', '.join(names)}")
    for figure in runs[names[0]][0]:
        x = [runs[n][0][figure] for n in names]
        cells = []
        for metric in SCORED:
            sign = 1 if METRICS[metric].higher_is_better else -1
            rho = spearmanr(x, [sign * runs[n][1][metric][0] for n in names]).statistic
            cells.append(f"{metric} {rho:+.2f}")
        pick = max(names, key=lambda n: runs[n][0][figure])
        print(f"{figure}: {'; '.join(cells)}; picks {pick}")


if __name__ == "__main__":
    main()
