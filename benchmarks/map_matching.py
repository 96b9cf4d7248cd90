"""Stage 1 again on copies masked by the explainer's own maps, then stage 2 again.

``python -m benchmarks.map_matching --checkpoint akd-demo/checkpoint --mode maps --out DIR``
rebuilds the demo's black box (same data, seed and training), loads a demo
checkpoint, and asks whether the student's agreement with the black box on
the images the metrics show (a map's most or least relevant pixels removed)
is what keeps AKD's maps from Grad-CAM's:

1. Every training image gets one copy with the pixels of the checkpoint's own
   map removed (per copy: a kept share uniform on [0.05, 0.95], the most or
   the least relevant pixels, over the blurred image or zeros; maps of the
   black box's class). ``--mode maps`` fine-tunes the student on the images
   and these copies, which the black box labels like any other view;
   ``--mode clean`` fine-tunes it on the images alone (the control, same
   epochs and settings).
2. A new explanation network is trained on the fine-tuned student with the
   demo's stage-2 settings and seed.
3. It, the checkpoint's explainer and Grad-CAM are scored on the black box as
   :mod:`benchmarks.explainer_objective` scores them (the first test images;
   stage 1 and stage 2 choose their best epochs on the test images after
   them, student only).

The student's agreement with the black box on a fixed, seeded set of such
copies of the held-out images is reported before and after stage 1.
``results.json`` is written to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import TensorDataset
from torchvision.transforms.functional import gaussian_blur

from benchmarks.common import predictions, write_results
from benchmarks.explainer_objective import add_demo_arguments, load_demo, score_rows
from captum_akd import AttentiveDistillationAttribution
from captum_akd.demo import accuracy
from captum_akd.distill import ExplainerConfig, distill_student, train_explainer
from captum_akd.evaluation import build_methods
from captum_akd.models import ExplanationNet


def map_masked(attr: AttentiveDistillationAttribution, model: torch.nn.Module, images: Tensor,
               generator: torch.Generator, blur: tuple[int, float]) -> Tensor:
    """One copy per image with the most or least relevant pixels of its map removed.

    Args:
        attr: whose maps rank the pixels (of ``model``'s top class).
        model: the black box.
        images: ``N x C x H x W`` images.
        generator: draws the kept share, the end of the ranking and the substrate.
        blur: ``(kernel, sigma)`` of the blurred substrate (the metrics' own).

    Returns:
        ``N x C x H x W`` copies.
    """
    with torch.no_grad():
        classes = predictions(model, images)
    maps = attr.attribute(images, target=classes, internal_batch_size=256).detach()
    n, _, h, w = maps.shape
    ranks = maps.flatten(1).argsort(1, descending=True).argsort(1).reshape(n, 1, h, w)
    share = torch.rand(n, generator=generator) * 0.9 + 0.05
    top = (ranks < (share * h * w).round()[:, None, None, None]).to(images)
    most = (torch.rand(n, generator=generator) < 0.5)[:, None, None, None]
    removed = torch.where(most, top, 1 - top)
    on_blur = (torch.rand(n, generator=generator) < 0.5)[:, None, None, None]
    kernel, sigma = blur
    substrate = torch.where(on_blur, gaussian_blur(images, [kernel, kernel], [sigma, sigma]),
                            torch.zeros_like(images))
    return (1 - removed) * images + removed * substrate


def agreement(model: torch.nn.Module, student: torch.nn.Module, images: Tensor) -> float:
    """Top-1 agreement of ``student`` with ``model`` on ``images``, as a share (results' unit)."""
    student.eval()
    with torch.no_grad():
        return round(accuracy(student, images, predictions(model, images)) / 100, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_demo_arguments(parser)
    parser.add_argument("--mode", choices=("maps", "clean"), required=True,
                        help="fine-tune on the images and their map-masked copies, or on the "
                             "images alone")
    parser.add_argument("--epochs", type=int, default=3, help="stage-1 fine-tuning epochs")
    args = parser.parse_args()
    s, train, test, target, loaded = load_demo(args)
    defaults = ExplainerConfig()
    blur = (defaults.blur_kernel, defaults.blur_sigma)
    held_images = test["image"][args.images:]
    held_out = TensorDataset(held_images, test["label"][args.images:])
    held_copies = map_masked(loaded, target, held_images, torch.Generator().manual_seed(7), blur)
    record = {"mode": args.mode, "epochs": args.epochs,
              "before": {"clean": agreement(target, loaded.student, held_images),
                         "map_masked": agreement(target, loaded.student, held_copies)}}
    started = time.time()
    images, labels = train["image"], train["label"]
    if args.mode == "maps":
        copies = map_masked(loaded, target, images, torch.Generator().manual_seed(s.seed + 1),
                            blur)
        # -1: the black box's answer is the copy's hard label.
        images, labels = torch.cat([images, copies]), torch.cat([labels, torch.full_like(
            labels, -1)])
    student = copy.deepcopy(loaded.student)
    result = distill_student(target, TensorDataset(images, labels), student=student,
                             val_data=held_out, epochs=args.epochs, seed=s.seed, quiet=True,
                             finetune=True, freeze_backbone_epochs=0)
    record["stage1"] = {"seconds": round(time.time() - started),
                        "best_epoch": result.report["best_epoch"]}
    record["after"] = {"clean": agreement(target, student, held_images),
                       "map_masked": agreement(target, student, held_copies)}
    print(json.dumps(record), flush=True)
    torch.manual_seed(s.seed)
    explainer = ExplanationNet.for_student(student, width=s.explainer_width)
    started = time.time()
    attr = train_explainer(target, TensorDataset(train["image"], train["label"]),
                           student=student, explainer=explainer, val_data=held_out,
                           epochs=s.explainer_epochs, seed=s.seed, quiet=True,
                           **{"area_target": s.area_target, **s.explainer_options})
    record["stage2_seconds"] = round(time.time() - started)
    methods = {f"new explainer ({args.mode})": attr, "checkpoint's explainer": loaded,
               **build_methods(target, loaded, target.features[-1], methods=("gradcam",),
                               controls=False, seed=s.seed)}
    record["rows"] = score_rows(target, methods, test, args.images, args.road_images,
                                args.threads, s)
    record["command"] = (f"python -m benchmarks.map_matching --checkpoint {args.checkpoint} "
                         f"--mode {args.mode} --epochs {args.epochs} --images {args.images} "
                         f"--road-images {args.road_images} --threads {args.threads}")
    print(json.dumps(record["rows"]))
    text = json.dumps(record, indent=1)
    write_results(Path(args.out), {"results.json": lambda path: path.write_text(text)},
                  overwrite=args.overwrite)


if __name__ == "__main__":
    main()
