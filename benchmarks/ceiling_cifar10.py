"""The surrogate ceiling of CIFAR-10 students: RISE on each student against RISE on the black box.

``python -m benchmarks.ceiling_cifar10 NAME=RUN_DIR ...`` loads the CIFAR-10
ResNet-56 black box and the students of distill_cifar10.py runs, explains the
cifar10 track's first evaluation images (class-balanced, seed 0, round-robin
class order: the images where the track runs RISE) with RISE on the black
box and with RISE on each student (same masks), and judges every map on the
black box. Per student, the paired difference from RISE on the black box is
its **transfer loss**: what no explainer of that student can recover. No
explanation network is trained, so students are compared in minutes
instead of a track run each. ``results.json`` is written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from benchmarks.cifar10 import DEFAULTS, evaluation_set
from benchmarks.common import DEFAULT_DATA_DIR, write_results
from captum_akd import AttentiveDistillationAttribution
from captum_akd.evaluation import (
    CEILING_METRICS,
    bootstrap_cells,
    build_methods,
    compare_methods,
    paired_differences,
)
from captum_akd.zoo.cifar_resnet import cifar_resnet56, normalize_cifar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--images", type=int, default=50, help="explained images")
    parser.add_argument("--rise-masks", type=int, default=4000, help="RISE's N")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="results directory")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("students", nargs="+", metavar="NAME=RUN_DIR",
                        help="a label and a distill_cifar10.py run directory")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    target = cifar_resnet56(args.data_dir / "weights" / "cifar10_resnet56.safetensors").eval()
    target.requires_grad_(False)
    evaluation, order = evaluation_set(args.data_dir / "cifar10" / "cifar10-test.zip",
                                       DEFAULTS["n_images"], 0)
    images = normalize_cifar(evaluation.data[order[: args.images]].float() / 255)
    methods = {}
    for spec in args.students:
        name, _, path = spec.partition("=")
        attr = AttentiveDistillationAttribution.load(path, target)
        built = build_methods(target, attr, target.layer3, methods=("rise", "rise-student"),
                              controls=False, rise_masks=args.rise_masks, seed=0)
        methods.setdefault("RISE", built["RISE"])
        methods[f"RISE on student {name}"] = built["RISE on student"]
    # Untimed: speed is not the point here, and timing would run RISE a second time.
    comparison = compare_methods(target, methods, images, step=32, road_images=0,
                                 speed_images=dict.fromkeys(methods, 0), progress=True)
    cells = bootstrap_cells(comparison, seed=0)
    paired = paired_differences(comparison, "RISE", seed=0)
    rows = {}
    for name in methods:
        rows[name] = {k: round(cells[name][k].mean, 4) for k in CEILING_METRICS}
        if name in paired:
            rows[name]["transfer_loss"] = {
                k: [round(-paired[name][k].difference, 4), round(-paired[name][k].high, 4),
                    round(-paired[name][k].low, 4), paired[name][k].verdict]
                for k in CEILING_METRICS}
        print(json.dumps({name: rows[name]}), flush=True)
    text = json.dumps({"command": "python -m benchmarks.ceiling_cifar10 " + " ".join(
        [f"--images {args.images} --rise-masks {args.rise_masks} --threads {args.threads}",
         *args.students]), "images": args.images, "rise_masks": args.rise_masks,
        "transfer_loss": "RISE on the black box minus RISE on the student, [difference, low, "
                         "high, verdict of RISE on the student against RISE]", "rows": rows},
        indent=1)
    write_results(args.out, {"results.json": lambda path: path.write_text(text)},
                  overwrite=args.overwrite)


if __name__ == "__main__":
    main()
