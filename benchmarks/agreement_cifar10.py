"""Where a distilled CIFAR-10 student and the ResNet-56 black box disagree.

Top-1 agreement alone does not say whether the student is short of training
or the black box is hard to imitate. This script splits the student's
agreement on cifar10-test by the black box's confidence, by whether the black
box is right, and by whether the black box keeps its own prediction when the
image is mirrored; and it measures that self-consistency under a mirror and
under one- and two-pixel shifts (padding with the mean colour). On the test
images it also compares both models on shifted and JPEG re-encoded copies:
the images are quality-75 JPEGs, and a shift moves their 8 x 8 compression
blocks off the grid, as the crops of training do. With
``--train`` the same figures for cifar10-train, the images the student was
distilled on, say whether it falls short in fitting the black box or in
generalising. It writes
``benchmarks/results/distill_cifar10/agreement-<name>.json``::

    python benchmarks/agreement_cifar10.py \
        --student benchmarks/results/distill_cifar10/checkpoint-e5-kd12 --name e5-kd12

Data and weights are read from ``../shared/data`` (``--data-dir``).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import cifar_split, predictions  # noqa: E402
from captum_akd import AttentiveDistillationAttribution  # noqa: E402
from captum_akd._validation import call_black_box  # noqa: E402
from captum_akd.checkpoint import write_json  # noqa: E402
from captum_akd.distill import BatchAugment  # noqa: E402
from captum_akd.zoo.cifar_resnet import CIFAR_MEAN, CIFAR_STD, cifar_resnet56  # noqa: E402

RESULTS = HERE / "results" / "distill_cifar10"
CONFIDENCE_BINS = (0.0, 0.5, 0.7, 0.9, 0.99, 1.0)
SHIFTS = ((1, 0), (0, 1), (2, 2))
# (dx, dy, JPEG quality or None) of each view compared by view_agreement.
VIEWS = {"as is": (0, 0, None), "re-encoded q75": (0, 0, 75), "shifted 3,2": (3, 2, None),
         "shifted 3,2, re-encoded q75": (3, 2, 75)}


def shift(images: Tensor, dx: int, dy: int) -> Tensor:
    """Move ``N x C x H x W`` images by ``(dx, dy)`` pixels, filling with zeros.

    In the ResNets' normalised input space zero is the mean colour.
    """
    h, w = images.shape[-2:]
    pad = max(abs(dx), abs(dy))
    padded = F.pad(images, (pad, pad, pad, pad))
    return padded[..., pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def share(mask: Tensor) -> float:
    """The share of true values in a boolean tensor (NaN for an empty one)."""
    return float(mask.float().mean()) if mask.numel() else float("nan")


def analyse(target: torch.nn.Module, student: torch.nn.Module, images: Tensor,
            labels: Tensor, batch_size: int = 500) -> dict:
    """The agreement figures for ``images`` (normalised) and their ``labels``."""
    target_logits = call_black_box(target, images, batch_size=batch_size)
    student_pred = predictions(student, images, batch_size)
    target_pred = target_logits.argmax(1)
    agree = student_pred == target_pred
    right = target_pred == labels
    mirror_pred = call_black_box(target, images.flip(-1), batch_size=batch_size).argmax(1)
    stable = mirror_pred == target_pred
    confidence = target_logits.softmax(1).amax(1)

    bins = []
    for low, high in itertools.pairwise(CONFIDENCE_BINS):
        inside = (confidence >= low) & ((confidence < high) | (high == 1.0))
        bins.append({"confidence": [low, high], "images": int(inside.sum()),
                     "agreement": share(agree[inside])})
    shifts = {}
    for dx, dy in SHIFTS:
        moved = call_black_box(target, shift(images, dx, dy), batch_size=batch_size).argmax(1)
        shifts[f"{dx},{dy}"] = share(moved == target_pred)
    return {
        "images": len(images),
        "target_accuracy": share(right),
        "student_accuracy": share(student_pred == labels),
        "top1_agreement": share(agree),
        "agreement_where_target_right": share(agree[right]),
        "agreement_where_target_wrong": share(agree[~right]),
        "student_right_where_target_wrong": share((student_pred == labels)[~right]),
        "agreement_by_target_confidence": bins,
        "target_mirror_consistency": share(stable),
        "agreement_where_target_mirror_stable": share(agree[stable]),
        "agreement_where_target_mirror_unstable": share(agree[~stable]),
        "target_shift_consistency": shifts,
    }


def view_agreement(target: torch.nn.Module, student: torch.nn.Module, images: Tensor,
                   labels: Tensor, normalization: dict, batch_size: int = 500) -> dict:
    """Both models' accuracy and their agreement on each of :data:`VIEWS` of ``images``.

    ``normalization`` (``{"mean", "std"}``) maps the images back to pixels for
    the JPEG round trip, the one distillation's ``jpeg_quality`` makes.
    """
    results = {}
    for name, (dx, dy, quality) in VIEWS.items():
        view = shift(images, dx, dy)
        if quality is not None:
            encode = BatchAugment(crop="none", flip=False, jpeg_quality=quality,
                                  normalization=normalization)
            view, _ = encode(view, torch.Generator())
        target_pred = call_black_box(target, view, batch_size=batch_size).argmax(1)
        student_pred = predictions(student, view, batch_size)
        results[name] = {"target_accuracy": share(target_pred == labels),
                         "student_accuracy": share(student_pred == labels),
                         "top1_agreement": share(student_pred == target_pred)}
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", type=Path, required=True,
                        help="a checkpoint directory written by distill_cifar10.py")
    parser.add_argument("--name", required=True, help="result name")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"),
                        help="folder holding cifar10/ and weights/ (default ../shared/data)")
    parser.add_argument("--test-limit", type=int, help="use this many test images")
    parser.add_argument("--train", action="store_true",
                        help="also analyse the training images (five times the work)")
    parser.add_argument("--train-limit", type=int,
                        help="with --train, use a class-balanced subset of this many")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing result of the same name")
    args = parser.parse_args(argv)
    out = RESULTS / f"agreement-{args.name}.json"
    if out.exists() and not args.overwrite:
        raise SystemExit(f"{out} exists; pass --overwrite to replace it")
    torch.set_num_threads(args.threads)
    data = Path(args.data_dir)

    target = cifar_resnet56(data / "weights" / "cifar10_resnet56.safetensors").eval()
    student = AttentiveDistillationAttribution.load(args.student).student.eval()

    test = cifar_split(data / "cifar10" / "cifar10-test.zip", args.test_limit)
    normalization = {"mean": list(CIFAR_MEAN), "std": list(CIFAR_STD)}
    results = {
        "command": "python " + " ".join([os.path.relpath(__file__, REPO),
                                         *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "student": str(args.student),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__},
        "test": analyse(target, student, *test),
        "test_views": view_agreement(target, student, *test, normalization),
    }
    if args.train:
        results["train"] = analyse(
            target, student, *cifar_split(data / "cifar10" / "cifar10-train.zip",
                                          args.train_limit))
    write_json(results, out)
    print(f"written: {out}")
    return results


if __name__ == "__main__":
    main()
