"""Perturbation matching on the demo's data and black box: stage 1 only.

``python -m benchmarks.perturbation_probe SHARE`` distils the demo's black box
(the demo's data, seed and student, 6 epochs) with ``perturb_share=SHARE``
and prints the clean and perturbed held-out agreement as one JSON line
(recorded in ``benchmarks/results/perturbation_demo/results.md``).
"""

from __future__ import annotations

import json
import sys
import time

import torch
from torch.utils.data import TensorDataset

from captum_akd.demo import DemoSettings, demo_data, demo_target
from captum_akd.distill import distill_student
from captum_akd.models import cifar_resnet_student


def main(share: float) -> dict:
    """Train the demo's black box, distil it with ``share``, return the fidelity figures."""
    torch.set_num_threads(1)
    s = DemoSettings()
    train, test = demo_data(s, progress=False)
    target = demo_target(s, train, progress=False)
    student = cifar_resnet_student(depth=s.student_depth, num_classes=s.num_classes,
                                   stem_stride=s.student_stem_stride)
    held_out = TensorDataset(test["image"][s.eval_images:], test["label"][s.eval_images:])
    started = time.time()
    result = distill_student(target, TensorDataset(train["image"], train["label"]),
                             student=student, val_data=held_out, epochs=s.student_epochs,
                             seed=s.seed, quiet=True, perturb_share=share)
    r = result.report
    return {"share": share, "seconds": round(time.time() - started),
            "clean": r["top1_agreement"], "perturbed": r["perturbed_top1_agreement"],
            "kl": r["kl"], "perturbed_kl": r["perturbed_kl"], "best_epoch": r["best_epoch"],
            "history": [(h["epoch"], h.get("val_agreement")) for h in result.history]}


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]))))
