"""CIFAR-10 track: the public ResNet-56 as the black box, explained on cifar10-test.

The student is, in order of preference: the checkpoint given by
``--checkpoint``; a finished run of ``benchmarks/distill_cifar10.py``
(``--student-checkpoint``, by default its ``checkpoint-e30-explainer`` or
``checkpoint-e30``; a stage-1-only run gets its explainer trained here); or a
distillation run here (cached). The evaluation images are a class-balanced,
seeded choice from cifar10-test.

The model-randomisation sanity check (design 5) re-distils AKD from a
randomised ResNet-56 and compares its maps with AKD's, next to Grad-CAM on
the trained and the randomised network, by Spearman rank correlation
(``--no-sanity`` skips it).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from benchmarks.common import (
    REPO,
    TrackSetup,
    cached_attribution,
    cifar_split,
    explainer_options,
    explainer_seed,
    load_explicit_checkpoint,
    normalize_image,
    predictions,
)
from captum_akd import AttentiveDistillationAttribution
from captum_akd.blackbox import CountingBlackBox
from captum_akd.checkpoint import file_sha256
from captum_akd.models import AttentiveStudent
from captum_akd.report import save_maps_grid
from captum_akd.zoo.cifar_resnet import CIFAR_MEAN, CIFAR_STD, cifar_resnet56, normalize_cifar

NAME = "cifar10"
#: Where benchmarks/distill_cifar10.py writes its runs.
DISTILL_CIFAR10 = REPO / "benchmarks" / "results" / "distill_cifar10"
DEFAULTS: dict[str, Any] = {
    "n_images": 1000,
    "step": 32,  # one row of pixels per step
    "epochs": 30,
    "explainer_epochs": 10,
    "distill_batch_size": 128,
    "student_depth": 20,
}
NORMALIZATION = {"mean": list(CIFAR_MEAN), "std": list(CIFAR_STD)}
#: ``limit -> training set`` and ``() -> validation set``, loaded on first use.
TrainSet = Callable[[int | None], Dataset]
ValSet = Callable[[], Dataset]
#: A distilled attribution and the record of where it came from.
Distilled = tuple[AttentiveDistillationAttribution, dict[str, Any]]


@dataclass
class Run:
    """What every distillation of this track shares.

    Attributes:
        args: the parsed command line.
        data: the data folder (cifar10/ and weights/).
        device: where to train and explain.
        progress: show progress bars.
        train_set: loads the training set (a class-balanced subset of a size).
        val_set: loads the validation set.
    """

    args: argparse.Namespace
    data: Path
    device: torch.device
    progress: bool
    train_set: TrainSet
    val_set: ValSet


def add_arguments(group: argparse._ArgumentGroup) -> None:
    """:meth:`~benchmarks.common.Track.add_arguments` of CIFAR-10."""
    group.add_argument("--student-checkpoint", default="auto",
                       help="cifar10: a run of benchmarks/distill_cifar10.py to take the student "
                            "(and its explainer, if trained) from; 'auto' looks for "
                            "checkpoint-e30-explainer, then checkpoint-e30; 'none' distils here")
    group.add_argument("--from-scratch", action="store_true",
                       help="cifar10: do not start the student from the public ResNet-20")
    group.add_argument("--val-images", type=int, default=2000,
                       help="cifar10: test images drawn for the distillation's fidelity "
                            "reports and best epochs (those among the explained ones are "
                            "left out)")
    group.add_argument("--fidelity-images", type=int,
                       help="cifar10: test images for the student's agreement (default all)")
    group.add_argument("--sanity", action=argparse.BooleanOptionalAction, default=None,
                       help="cifar10: run the model-randomisation sanity check (default: on; "
                            "off with --checkpoint, which re-scores without training, since "
                            "the check re-distils AKD from a randomised network)")
    group.add_argument("--sanity-images", type=int, default=200,
                       help="cifar10: evaluation images of the sanity check")
    group.add_argument("--sanity-epochs", type=int, default=5,
                       help="cifar10: stage-1 epochs of the re-distillation from the random net")
    group.add_argument("--sanity-explainer-epochs", type=int, default=5,
                       help="cifar10: stage-2 epochs of that re-distillation")
    group.add_argument("--sanity-train-images", type=int, default=10000,
                       help="cifar10: training images of that re-distillation")


def unnormalize(images: Tensor) -> Tensor:
    """The ResNets' input space back to RGB in [0, 1], for figures.

    Args:
        images: ``N x 3 x H x W`` normalised images.

    Returns:
        RGB in [0, 1].
    """
    mean = torch.tensor(CIFAR_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=images.device).view(1, 3, 1, 1)
    return (images * std + mean).clamp(0, 1)


def round_robin(labels: list[int], seed: int) -> Tensor:
    """An order of the images that cycles through the classes.

    Within a class the order is a seeded shuffle; then the first image of
    every class comes first, then the second of every class, and so on. Any
    prefix (the images RISE and LIME run on, the rows of the grid of maps)
    is then as class-balanced as the whole.

    Args:
        labels: the class of each image.
        seed: seed of the shuffle.

    Returns:
        A permutation of ``range(len(labels))``.
    """
    shuffled = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    seen: dict[int, int] = {}
    keys = []
    for i in shuffled.tolist():
        rank = seen.get(labels[i], 0)
        seen[labels[i]] = rank + 1
        keys.append((rank, labels[i], i))
    return torch.tensor([i for _, _, i in sorted(keys)], dtype=torch.long)


def evaluation_set(test_zip: Path, n_images: int, seed: int) -> tuple[Any, Tensor]:
    """The track's evaluation images (a class-balanced draw) and their :func:`round_robin` order.

    Args:
        test_zip: ``cifar10-test.zip``.
        n_images: how many to draw.
        seed: seed of the draw and of the order.

    Returns:
        The preloaded :class:`~captum_akd.data.CifarZip` and the order to use its images in.
    """
    from captum_akd.data import CifarZip

    evaluation = CifarZip(test_zip, limit=n_images, seed=seed, preload=True)
    return evaluation, round_robin(evaluation.targets, seed)


def run_record(path: Path) -> dict[str, Any] | None:
    """What distill_cifar10.py recorded when the run at ``path`` ended, or ``None``.

    It writes ``<name>.json`` beside ``checkpoint-<name>`` (and
    ``checkpoint-<name>-explainer``) only after its last stage returned, so a
    record says the run finished; a run stopped half-way has none.

    Args:
        path: a run directory of distill_cifar10.py.

    Returns:
        The parsed record, or ``None`` without a checkpoint or a record.
    """
    name = path.name.removeprefix("checkpoint-").removesuffix("-explainer")
    record = path.parent / f"{name}.json"
    if not (path / "config.json").is_file() or not record.is_file():
        return None
    return json.loads(record.read_text(encoding="utf-8"))


def stage1_checkpoint(choice: str) -> tuple[Path, bool] | None:
    """The distill_cifar10 run to start from, or ``None`` to distil here.

    Args:
        choice: ``--student-checkpoint``: ``"auto"``, ``"none"`` or a path.

    Returns:
        ``(run directory, whether its explainer is trained)``, or ``None``.
    """
    if choice == "none":
        return None
    paths = [Path(choice)] if choice != "auto" else [
        DISTILL_CIFAR10 / name for name in ("checkpoint-e30-explainer", "checkpoint-e30")]
    for path in paths:
        record = run_record(path)
        if record is not None:
            return path, path.name.endswith("-explainer") and record.get("explainer") is not None
    if choice != "auto":
        raise ValueError(f"--student-checkpoint {choice!r} holds no finished student (no "
                         "record of distill_cifar10.py beside it)")
    return None


def student_recipe(args: argparse.Namespace, data: Path) -> AttentiveStudent:
    """A fresh attentive student, as distill_cifar10.py makes it.

    Args:
        args: the parsed command line (depth, ``--from-scratch``, seed).
        data: the data folder (for the public ResNet-20 weights).

    Returns:
        The student, seeded.
    """
    from captum_akd.models import cifar_resnet_student

    backbone = None
    if not args.from_scratch:
        if args.student_depth != 20:
            raise ValueError("the public backbone is a ResNet-20: pass --student-depth 20 or "
                             "--from-scratch")
        backbone = data / "weights" / "cifar10_resnet20.safetensors"
    torch.manual_seed(args.seed)
    return cifar_resnet_student(depth=args.student_depth, num_classes=10,
                                backbone_weights=backbone)


def distilled(run: Run, name: str, target: torch.nn.Module, epochs: int,
              explainer_epochs: int, train_images: int | None) -> Distilled:
    """Distil ``target`` here (cached), both stages, with distill_cifar10's stage-1 recipe.

    Args:
        run: the options, data and device.
        name: the cache entry's name.
        target: the network to distil (the ResNet-56 or its randomised copy).
        epochs: stage-1 epochs.
        explainer_epochs: stage-2 epochs.
        train_images: training images (``None``: all 50,000).

    Returns:
        The attribution and the record of :func:`cached_attribution`.
    """
    from captum_akd import distill

    args = run.args
    settings = {"track": NAME, "target": name, "student_depth": args.student_depth,
                "pretrained_backbone": not args.from_scratch, "epochs": epochs,
                "explainer_epochs": explainer_epochs, "train_images": train_images,
                "val_images": args.val_images, "val_without_explained": True,
                "batch_size": args.distill_batch_size,
                "optimizer": "sgd", "lr": args.student_lr, "seed": args.seed}
    changed = explainer_options(args, changed_only=True)
    if changed:
        settings["explainer"] = changed

    def train(run_dir: Path | None, black_box: CountingBlackBox
              ) -> AttentiveDistillationAttribution:
        return distill(
            black_box, run.train_set(train_images), student=student_recipe(args, run.data),
            val_data=run.val_set(), epochs=epochs, explainer_epochs=explainer_epochs,
            # SGD: with the pretrained backbone it beats AdamW here (distill_cifar10.py).
            student_config={"optimizer": "sgd", "lr": args.student_lr},
            explainer_config=explainer_options(args),
            batch_size=args.distill_batch_size, normalization=NORMALIZATION, device=run.device,
            seed=args.seed, out=run_dir, resume=run_dir is not None, quiet=not run.progress,
        )

    return cached_attribution(name, settings, target, run.device, args.cache, train)


def sanity(run: Run, target: torch.nn.Module, attr: AttentiveDistillationAttribution,
           images: Tensor, labels: Tensor) -> tuple[dict[str, Any], str, Callable[[Path], Any]]:
    """The model-randomisation test of design 5.

    Both sides of every pair explain the same classes: the trained target's
    predictions.

    Args:
        run: the options (``--sanity-*``), data and device.
        target: the trained ResNet-56.
        attr: AKD distilled from it.
        images: the evaluation images (the first ``--sanity-images`` are used).
        labels: the target's predictions on them.

    Returns:
        Its ``results.json`` entry, its markdown section and the writer of
        ``sanity.png``.
    """
    from captum_akd.baselines import GradCAM, LayerwiseSurrogateCAM
    from captum_akd.metrics import randomize_model, sanity_check

    args = run.args
    random_target = randomize_model(target, seed=args.seed).eval()
    for p in random_target.parameters():
        p.requires_grad_(False)
    started = time.perf_counter()
    random_attr, record = distilled(run, "cifar10-randomized", random_target, args.sanity_epochs,
                                    args.sanity_explainer_epochs, args.sanity_train_images)
    distill_seconds = time.perf_counter() - started
    n = min(args.sanity_images, images.shape[0])
    x, y = images[:n], labels[:n].to(run.device)
    pairs = {
        "AKD (ours)": (attr, random_attr),
        "Layer-wise CAM": (LayerwiseSurrogateCAM(attr.student, forward_func=target),
                           LayerwiseSurrogateCAM(random_attr.student, forward_func=random_target)),
        "Grad-CAM": (GradCAM(target, target.layer3), GradCAM(random_target, random_target.layer3)),
    }
    checks = {name: sanity_check(a, b, x, target=y, batch_size=args.batch_size)
              for name, (a, b) in pairs.items()}
    random_agreement = 100.0 * float(
        (predictions(random_attr.student, x) == predictions(random_target, x)).float().mean())
    classes = predictions(random_target, x)
    result = {
        "images": n,
        "labels": "the trained target's predictions (both sides explain the same class)",
        "randomized_target": {"seed": args.seed, "distinct_predicted_classes":
                              int(classes.unique().numel())},
        "redistillation": {**record, "student_agreement_percent": random_agreement,
                           "wall_seconds": distill_seconds},
        "spearman": {name: {"mean": c.mean,
                            "median": float(c.correlations[c.correlations.isfinite()].median())
                            if c.correlations.isfinite().any() else None,
                            "per_image": c.correlations.tolist()}
                     for name, c in checks.items()},
    }
    lines = [
        "## Sanity check: model randomisation (Adebayo et al. 2018)",
        "",
        "Spearman rank correlation between each method's maps for the trained ResNet-56 and "
        "for a randomised copy (`randomize_model`, every layer re-initialised, seed "
        f"{args.seed}); near 0 passes, near 1 means the maps ignore the model. AKD on the "
        f"random network is re-distilled from it ({args.sanity_epochs} + "
        f"{args.sanity_explainer_epochs} epochs on {args.sanity_train_images} training images, "
        f"same student recipe; {record['source']}); its student agrees with the random "
        f"network on {random_agreement:.1f} % of the images. The random network predicts "
        f"{result['randomized_target']['distinct_predicted_classes']} distinct class(es) on them.",
        "",
        "| Method | Mean Spearman ↓ | Median |",
        "|---|---|---|",
    ]
    for name, row in result["spearman"].items():
        median = "–" if row["median"] is None else f"{row['median']:.3f}"
        lines.append(f"| {name} | {row['mean']:.3f} | {median} |")
    lines += ["", f"{n} evaluation images. ![sanity check](sanity.png)", ""]
    columns = {f"{name}{suffix}": maps for name, check in checks.items()
               for suffix, maps in (("", check.original_maps),
                                    (" (random)", check.randomized_maps))}
    display = unnormalize(x[:6].cpu())
    writer = lambda p: save_maps_grid(p, display, columns, n=len(display))  # noqa: E731
    return result, "\n".join(lines), writer


def prepare(args: argparse.Namespace, device: torch.device, progress: bool) -> TrackSetup:
    """:meth:`~benchmarks.common.Track.prepare` of CIFAR-10, with the sanity check."""
    from captum_akd.data import CifarZip

    data = Path(args.data_dir)
    train_zip = data / "cifar10" / "cifar10-train.zip"
    test_zip = data / "cifar10" / "cifar10-test.zip"
    wall: dict[str, float] = {}
    started = time.perf_counter()
    target = cifar_resnet56(data / "weights" / "cifar10_resnet56.safetensors").to(device).eval()
    for p in target.parameters():
        p.requires_grad_(False)
    evaluation, order = evaluation_set(test_zip, args.n_images, args.seed)
    display = evaluation.data[order].float() / 255
    images = normalize_cifar(display).to(device)
    truth = torch.tensor(evaluation.targets)[order]
    image_ids = [evaluation.samples[i][0] for i in order.tolist()]
    wall["data"] = time.perf_counter() - started
    loaded: dict[Any, Any] = {}

    def train_set(limit: int | None) -> Dataset:
        if ("train", limit) not in loaded:
            loaded[("train", limit)] = CifarZip(train_zip, transform=normalize_image,
                                                limit=limit, seed=args.seed, preload=True)
        return loaded[("train", limit)]

    explained = set(image_ids)

    def val_set() -> Dataset:
        if "val" not in loaded:
            drawn = CifarZip(test_zip, transform=normalize_image, limit=args.val_images,
                             seed=args.seed + 1, preload=True)
            # The best epochs are chosen on these: never on an image that is scored.
            keep = [i for i, (name, _) in enumerate(drawn.samples) if name not in explained]
            loaded["val"] = Subset(drawn, keep)
        return loaded["val"]

    run = Run(args, data, device, progress, train_set, val_set)
    lap = time.perf_counter()
    stage1 = None if args.checkpoint is not None else stage1_checkpoint(args.student_checkpoint)
    if args.explainer_seed is not None and (stage1 is None or stage1[1]):
        # Otherwise the seed would be silently unused: no stage 2 trains alone here.
        raise ValueError("--explainer-seed: --student-checkpoint "
                         f"{args.student_checkpoint!r} gives no stage-1 run to train a stage 2 "
                         "on (none found, or its explainer is already trained)")
    if args.checkpoint is not None:
        attr, record = load_explicit_checkpoint(args.checkpoint, target, device)
    elif stage1 is not None and stage1[1]:
        attr = AttentiveDistillationAttribution.load(stage1[0], forward_func=target,
                                                     map_location=device)
        record = {"source": "loaded from distill_cifar10.py's run", "path": str(stage1[0]),
                  "checkpoint_dir": str(stage1[0])}
    elif stage1 is not None:
        attr, record = explainer_on(run, stage1[0], target)
    else:
        attr, record = distilled(run, NAME, target, args.epochs, args.explainer_epochs,
                                 args.train_images)
    wall["distill"] = time.perf_counter() - lap

    lap = time.perf_counter()
    fid_images, fid_truth = cifar_split(test_zip, args.fidelity_images, args.seed)
    target_pred = predictions(target, fid_images.to(device), progress=progress,
                              desc="target on test")
    student_pred = predictions(attr.student, fid_images.to(device), progress=progress,
                               desc="student on test")
    agreement = 100.0 * float((target_pred == student_pred).float().mean())
    target_acc = 100.0 * float((target_pred == fid_truth).float().mean())
    student_acc = 100.0 * float((student_pred == fid_truth).float().mean())
    wall["fidelity"] = time.perf_counter() - lap

    sections, extra_results, extra_files = [], {}, {}
    if args.sanity or (args.sanity is None and args.checkpoint is None):
        lap = time.perf_counter()
        labels = predictions(target, images)
        result, section, writer = sanity(run, target, attr, images, labels)
        sections.append(section)
        extra_results["sanity_check"] = result
        extra_files["sanity.png"] = writer
        wall["sanity_check"] = time.perf_counter() - lap

    n = images.shape[0]
    description = (
        f"**Black box**: CIFAR-10 ResNet-56 (akamaster/pytorch_resnet_cifar10, "
        f"`../shared/data/weights`), {target_acc:.1f} % top-1 on {len(fid_truth)} JPEG test "
        f"images. **Evaluation images**: {n} from cifar10-test, class-balanced, seed "
        f"{args.seed}, in round-robin class order (so the first images, where RISE and LIME "
        "may run alone, are balanced too). **Student**: attentive CIFAR "
        f"ResNet-{args.student_depth} "
        f"({record['source']}); top-1 agreement with the black box {agreement:.1f} % "
        f"(accuracy {student_acc:.1f} %) on the {len(fid_truth)} test images."
    )
    return TrackSetup(
        track=NAME,
        title="CIFAR-10 track: ResNet-56 black box",
        description=description,
        target=target,
        attr=attr,
        gradcam_layer=target.layer3,
        images=images,
        display=display,
        titles=[evaluation.classes[int(c)] for c in truth],
        image_ids=image_ids,
        step=args.step,
        agreement={"percent": agreement, "on": f"{len(fid_truth)} cifar10-test images"},
        agreement_goal=95.0,
        info={"data": {"test_zip": str(test_zip), "eval_images": n, "seed": args.seed,
                       "choice": "class-balanced (CifarZip limit), in round-robin class "
                                 "order so that every prefix is balanced too"},
              "target": {"model": "cifar_resnet56", "test_accuracy": target_acc,
                         "test_images": len(fid_truth)},
              "student": {"builder": attr.student.config, "agreement": agreement,
                          "test_accuracy": student_acc,
                          "fidelity": attr.metadata.get("fidelity")},
              "distillation": record},
        wall_seconds=wall,
        sections=sections,
        extra_results=extra_results,
        extra_files=extra_files,
    )


def explainer_on(run: Run, stage1: Path, target: torch.nn.Module) -> Distilled:
    """Train (cached) an explainer for the student of a stage-1 run of distill_cifar10.py.

    Args:
        run: the options (``--explainer-epochs``, ``--train-images``...), data and device.
        stage1: the run directory with the finished student.
        target: the black box.

    Returns:
        The attribution and the record of :func:`cached_attribution`.
    """
    from captum_akd.distill import train_explainer

    args = run.args
    student = AttentiveDistillationAttribution.load(stage1, map_location=run.device).student
    settings = {"track": NAME, "student_from": str(stage1),
                "student_sha256": file_sha256(stage1 / "student.safetensors"),
                "explainer_epochs": args.explainer_epochs, "train_images": args.train_images,
                "val_images": args.val_images, "val_without_explained": True,
                "batch_size": args.distill_batch_size,
                "seed": args.seed}
    seed = explainer_seed(args, settings)
    changed = explainer_options(args, changed_only=True)
    if changed:
        settings["explainer"] = changed

    def train(run_dir: Path | None, black_box: CountingBlackBox
              ) -> AttentiveDistillationAttribution:
        return train_explainer(
            black_box, run.train_set(args.train_images), student=student, val_data=run.val_set(),
            epochs=args.explainer_epochs, config=explainer_options(args),
            batch_size=args.distill_batch_size, normalization=NORMALIZATION, device=run.device,
            seed=seed, out=run_dir, resume=run_dir is not None, quiet=not run.progress,
        )

    attr, record = cached_attribution("cifar10-explainer", settings, target, run.device,
                                      args.cache, train)
    queries = attr.metadata.get("black_box_queries")
    if queries:
        # The student's distillation ran in distill_cifar10.py, uncounted.
        queries["covers"] = "the explainer stage only (the student's distillation not counted)"
    record["student_from"] = str(stage1)
    record["source"] = (f"student from distill_cifar10.py's `{stage1.name}`, explainer "
                        f"{record['source']}")
    return attr, record
