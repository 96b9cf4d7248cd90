"""How well each held-out figure of stage 2's final report ranks explainers by their scores.

``python benchmarks/results/explainer_objective/selection_ranks.py RESULTS ...`` reads
``results.json`` files of ``benchmarks.explainer_objective`` and prints, for each
candidate selection figure (computed on held-out images, never the scored ones),
its Spearman rank correlation across the trained variants with each scored
metric (signed so that +1 means "a higher figure, a better score"), and the
variant it would pick. A run trained with ``restarts`` also lends its
restarts' black-box scores (coarse held-out insertion minus deletion) to the
variants of the other files that have the same options and seed; that figure
is ranked over the variants it covers.
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


RESTART_SCORE = "black box: coarse insertion minus deletion (the restarts' score)"


def _options(trained: dict) -> str:
    """A variant's training options but its seed, as a key to match restarts with."""
    ignored = ("seed", "init", "restarts")
    return json.dumps({k: v for k, v in trained["options"].items() if k not in ignored},
                      sort_keys=True)


def main() -> None:
    runs, restart_scores = {}, {}
    for path in sys.argv[1:]:
        results = json.load(open(path))
        for name, trained in results["trained"].items():
            if "restarts" in trained["report"]:
                for restart in trained["report"]["restarts"]:
                    restart_scores[_options(trained), restart["seed"]] = restart["score"]
            else:
                runs[name] = (figures(trained["report"]), results["rows"][name],
                              (_options(trained), trained["options"]["seed"]))
    for figure_set, _, key in runs.values():
        if key in restart_scores:
            figure_set[RESTART_SCORE] = restart_scores[key]
    names = sorted(runs)
    print(f"{len(names)} variants: {', '.join(names)}")
    for figure in {f: None for n in names for f in runs[n][0]}:
        covered = [n for n in names if figure in runs[n][0]]
        if len(covered) < 3:
            continue
        x = [runs[n][0][figure] for n in covered]
        cells = []
        for metric in SCORED:
            sign = 1 if METRICS[metric].higher_is_better else -1
            rho = spearmanr(x, [sign * runs[n][1][metric][0] for n in covered]).statistic
            cells.append(f"{metric} {rho:+.2f}")
        pick = max(covered, key=lambda n: runs[n][0][figure])
        print(f"{figure} ({len(covered)} variants): {'; '.join(cells)}; picks {pick}")


if __name__ == "__main__":
    main()
