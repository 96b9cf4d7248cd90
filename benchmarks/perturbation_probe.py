"""Perturbation matching on the demo's data and black box: stage 1 only.

``python -m benchmarks.perturbation_probe SHARE [--append] [--epochs N]``
distils the demo's black box (the demo's data, seed and student; the demo's
6 epochs unless ``--epochs``) with ``perturb_share=SHARE`` (the copies added
to each batch with ``--append``, else in place of images) and prints the
clean and perturbed held-out agreement as one JSON line (recorded in
``benchmarks/results/perturbation_demo/results.md``).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.data import TensorDataset

from captum_akd.demo import DemoSettings, demo_data, demo_target
from captum_akd.distill import distill_student
from captum_akd.models import cifar_resnet_student


def main(share: float, append: bool = False, epochs: int | None = None) -> dict:
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
                             student=student, val_data=held_out,
                             epochs=epochs or s.student_epochs, seed=s.seed, quiet=True,
                             perturb_share=share, perturb_append=append)
    r = result.report
    return {"share": share, "append": append, "epochs": epochs or s.student_epochs,
            "seconds": round(time.time() - started),
            "clean": r["top1_agreement"], "perturbed": r["perturbed_top1_agreement"],
            "kl": r["kl"], "perturbed_kl": r["perturbed_kl"], "best_epoch": r["best_epoch"],
            "history": [(h["epoch"], h.get("val_agreement")) for h in result.history]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("share", type=float, help="perturb_share")
    parser.add_argument("--append", action="store_true", help="perturb_append")
    parser.add_argument("--epochs", type=int, help="stage-1 epochs (default: the demo's)")
    args = parser.parse_args()
    print(json.dumps(main(args.share, append=args.append, epochs=args.epochs)))
