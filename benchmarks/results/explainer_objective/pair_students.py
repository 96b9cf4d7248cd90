"""Rows of two students' runs on one black box, paired image by image.

``python benchmarks/results/explainer_objective/pair_students.py``
prefixes the rows of the perturbation-matched student's files with ``m:`` and
those of the plain demo student's with ``p:`` (both explain the same images of
the same black box, whose own rows, RISE and Grad-CAM, repeat to every digit)
and prints the paired differences (95 % bootstrap, 10,000 resamples, seed 0)
that results.md quotes.
"""

import json
from pathlib import Path

from seed_means import paired_cells

HERE = Path(__file__).parent
FILES = {"m": ("matched_ceiling.json", "matched_rise.json"),
         "p": ("rise_ceiling.json", "rise_objective.json")}
PAIRS = [("m:RISE", "m:RISE on student"), ("p:RISE", "p:RISE on student"),
         ("m:RISE on student", "p:RISE on student"), ("m:RISE on student", "m:Grad-CAM"),
         ("m:checkpoint's explainer", "m:RISE on student"),
         ("m:checkpoint's explainer", "m:Grad-CAM"),
         *(("m:rise16-both-seed0", other) for other in (
             "m:Grad-CAM", "m:RISE on student", "p:rise16-both-seed0", "m:RISE",
             "m:Centre Gaussian (control)", "m:Sobel edges (control)",
             "m:Uniform noise (control)"))]


def main() -> None:
    rows = {}
    for tag, names in FILES.items():
        for name in names:
            rows.update({f"{tag}:{row}": values["per_image"] for row, values in
                         json.loads((HERE / name).read_text())["rows"].items()})
    for a, b in PAIRS:
        print(f"{a} minus {b}: " + paired_cells(rows[a], rows[b]))


if __name__ == "__main__":
    main()
