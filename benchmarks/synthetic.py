"""Synthetic track: the demo's fine-grained shapes, with part masks for the pointing games.

The data, the black box (a plain CNN trained here) and the distillation are the
demo's (:mod:`captum_akd.demo`), through the demo's own functions
(:func:`~captum_akd.demo.demo_data`, :func:`~captum_akd.demo.demo_target`,
:func:`~captum_akd.demo.demo_distill`): the same seeds, student, explanation
network and stage settings, so with the demo's sizes the track explains the
demo's black box with the demo's AKD. The trained target is cached beside the
distillation, so a second run with the same settings trains nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from benchmarks.common import (
    EXPLAINER_OPTIONS,
    TrackSetup,
    cached_attribution,
    load_explicit_checkpoint,
    perturb_options,
    predictions,
    settings_key,
)
from captum_akd import AttentiveDistillationAttribution
from captum_akd.blackbox import CountingBlackBox
from captum_akd.checkpoint import file_sha256
from captum_akd.demo import DemoSettings, accuracy, demo_data, demo_distill, demo_target

NAME = "synthetic"
#: The black box is trained here, so a checkpoint of this track carries it too:
#: ``--checkpoint DIR`` then re-scores with exactly the black box it explained.
BLACK_BOX_FILE = "black_box.safetensors"
_DEMO = DemoSettings()
#: Defaults of the common options on this track: the demo's full run.
DEFAULTS: dict[str, Any] = {
    "n_images": _DEMO.eval_images,
    "step": _DEMO.image_size,  # one row of pixels per step
    "epochs": _DEMO.student_epochs,
    "explainer_epochs": _DEMO.explainer_epochs,
    "train_images": _DEMO.train_images,
    "student_depth": _DEMO.student_depth,
}

#: DemoSettings fields that only size the scoring, not the distillation.
_SCORING_SETTINGS = ("rise_masks", "lime_samples", "slow_speed_images", "step", "road_images",
                     "ceiling_images", "bootstrap_resamples")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    """:meth:`~benchmarks.common.Track.add_arguments` of the synthetic track."""
    group.add_argument("--image-size", type=int, default=_DEMO.image_size,
                       help="synthetic: side of the images")
    group.add_argument("--num-classes", type=int, default=_DEMO.num_classes,
                       help="synthetic: classes")
    group.add_argument("--test-images", type=int, default=_DEMO.test_images,
                       help="synthetic: held-out images (the first --n-images are explained)")
    group.add_argument("--target-epochs", type=int, default=_DEMO.target_epochs,
                       help="synthetic: epochs of training the black box")
    group.add_argument("--black-box", type=Path,
                       help="synthetic: a black_box.safetensors to explain instead of "
                            "training one (e.g. benchmarks/checkpoints/synthetic/"
                            "black_box.safetensors: the recorded run's black box, so "
                            "runs with other settings pair with it image by image)")


def demo_settings(args: argparse.Namespace) -> DemoSettings:
    """The demo's settings with this run's sizes.

    Args:
        args: the parsed command line.

    Returns:
        A :class:`~captum_akd.demo.DemoSettings`.
    """
    return DemoSettings(
        image_size=args.image_size, num_classes=args.num_classes,
        train_images=args.train_images, test_images=args.test_images,
        eval_images=args.n_images, target_epochs=args.target_epochs,
        student_epochs=args.epochs, explainer_epochs=args.explainer_epochs,
        student_depth=args.student_depth, rise_masks=args.rise_masks,
        lime_samples=args.lime_samples, slow_speed_images=args.speed_images,
        step=args.step, seed=args.seed,
        student_options=perturb_options(args),
        explainer_options={**_DEMO.explainer_options, **given_explainer_options(args)},
    )


def given_explainer_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--explainer-*`` options given on the command line, as ExplainerConfig fields.

    On this track they replace the demo's stage-2 settings of the same name
    (the others stay the demo's), unlike on the tracks that start from the
    library's defaults.

    Args:
        args: the parsed command line.

    Returns:
        ``{ExplainerConfig field: value}`` for each option given.
    """
    return {field_name: getattr(args, option) for option, field_name in EXPLAINER_OPTIONS.items()
            if getattr(args, option, None) is not None}


def trained_target(s: DemoSettings, train: dict[str, torch.Tensor], cache: Path | None,
                   progress: bool) -> tuple[torch.nn.Module, str]:
    """The demo's black box: trained here (:func:`~captum_akd.demo.demo_target`), or cached.

    Args:
        s: the sizes of the run.
        train: the training tensors (``"image"``, ``"label"``).
        cache: the cache folder, or ``None``.
        progress: show a progress bar.

    Returns:
        The trained SmallCNN (eval mode, frozen) and where it came from.
    """
    key = settings_key({"num_classes": s.num_classes, "image_size": s.image_size,
                        "train_images": s.train_images, "target_epochs": s.target_epochs,
                        "target_width": s.target_width, "seed": s.seed})
    path = cache / f"synthetic-target-{key}.safetensors" if cache is not None else None
    if path is not None and path.is_file():
        return load_black_box(s, path), "loaded from the cache"
    target = demo_target(s, train, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_black_box(target, path)
    return target.eval(), "trained in this run"


def prepare(args: argparse.Namespace, device: torch.device, progress: bool) -> TrackSetup:
    """:meth:`~benchmarks.common.Track.prepare` of the synthetic track."""
    s = demo_settings(args)
    given = [("--distill-batch-size", args.distill_batch_size), ("--student-lr", args.student_lr)]
    for flag, value in given:
        if value is not None:
            raise ValueError(f"{flag} does not apply to the synthetic track: it distils with "
                             "the demo's settings (captum_akd.demo.demo_distill)")
    if args.checkpoint is not None and args.black_box is not None:
        raise ValueError("--black-box and --checkpoint both name the black box; give one (a "
                         "synthetic checkpoint carries its own black_box.safetensors)")
    if args.black_box is not None and not args.black_box.is_file():
        raise ValueError(f"--black-box {str(args.black_box)!r} is not a file (expected a "
                         f"{BLACK_BOX_FILE} written by this track)")
    n = s.eval_images
    if s.test_images <= n:
        raise ValueError(f"--test-images ({s.test_images}) must exceed --n-images ({n}): the "
                         "rest of the held-out images measure the student's fidelity")
    wall: dict[str, float] = {}
    started = time.perf_counter()
    common = {"num_classes": s.num_classes, "image_size": s.image_size}
    train, test = demo_data(s, progress)
    wall["data"] = time.perf_counter() - started

    lap = time.perf_counter()
    stored = None if args.checkpoint is None else Path(args.checkpoint) / BLACK_BOX_FILE
    given_sha256 = None if args.black_box is None else file_sha256(args.black_box)
    if args.black_box is not None:
        target = load_black_box(s, args.black_box)
        target_source = f"loaded from --black-box, sha256 {given_sha256[:12]}"
    elif stored is not None and stored.is_file():
        target = load_black_box(s, stored)
        target_source = f"loaded from --checkpoint ({BLACK_BOX_FILE})"
    else:
        target, target_source = trained_target(s, train, args.cache, progress)
    target.to(device)
    test_images = test["image"].to(device)
    target_accuracy = accuracy(target, test_images, test["label"].to(device))
    wall["target"] = time.perf_counter() - lap

    lap = time.perf_counter()
    if args.checkpoint is not None:
        attr, record = load_explicit_checkpoint(args.checkpoint, target, device)
    else:
        # Only what the distillation depends on keys the cache, not the scoring sizes.
        settings = {"track": NAME, **{k: v for k, v in dataclasses.asdict(s).items()
                                      if k not in _SCORING_SETTINGS}}
        if given_sha256 is not None:
            # A given black box is not the one the settings would train: key on its weights.
            settings["black_box_sha256"] = given_sha256

        def train_attr(run_dir: Path | None, black_box: CountingBlackBox
                       ) -> AttentiveDistillationAttribution:
            return demo_distill(s, black_box, train, test, progress=progress, out=run_dir,
                                resume=run_dir is not None)

        attr, record = cached_attribution(NAME, settings, target, device, args.cache, train_attr)
    wall["distill"] = time.perf_counter() - lap

    target_pred = predictions(target, test_images)
    student_pred = predictions(attr.student, test_images)
    agreement = 100.0 * float((target_pred == student_pred).float().mean())
    labels = test["label"][:n]
    description = (
        f"**Data**: FineGrainedShapes (the demo's), {s.num_classes} classes told apart by one "
        f"small part, {s.image_size} x {s.image_size} px; {s.train_images} training and "
        f"{s.test_images} held-out images, of which the first {n} are explained. "
        f"**Black box**: a plain CNN (SmallCNN) trained for {s.target_epochs} epochs "
        f"({target_source}), {target_accuracy:.1f} % held-out accuracy. **Student**: attentive "
        f"CIFAR-style ResNet-{s.student_depth} ({record['source']}), {s.student_epochs} + "
        f"{s.explainer_epochs} epochs"
        + (f", stage-1 settings {s.student_options}" if s.student_options else "")
        + (f", stage-2 settings {s.explainer_options}"
           if s.explainer_options != _DEMO.explainer_options else "")
        + f"; top-1 agreement with the black box {agreement:.1f} % on "
        f"the {s.test_images} held-out images. Pointing-game tolerance 15 px at 224, scaled."
    )
    return TrackSetup(
        track=NAME,
        title="Synthetic track: fine-grained shapes with part masks",
        description=description,
        target=target,
        attr=attr,
        gradcam_layer=target.features[-1],
        images=test_images[:n],
        display=test["image"][:n].clone(),
        titles=[f"class {int(c)}" for c in labels],
        image_ids=[f"FineGrainedShapes(seed={s.seed + 1})[{i}]" for i in range(n)],
        step=s.step,
        masks=test["mask"][:n].to(device),
        agreement={"percent": agreement, "on": f"{s.test_images} held-out images"},
        agreement_goal=None,
        info={"data": {"dataset": "FineGrainedShapes", **common, "train_images": s.train_images,
                       "test_images": s.test_images, "eval_images": n,
                       "train_seed": s.seed, "test_seed": s.seed + 1},
              "target": {"model": "SmallCNN", "source": target_source,
                         "heldout_accuracy": target_accuracy,
                         "sha256": black_box_sha256(target)},
              "student": {"builder": attr.student.config, "agreement": agreement,
                          "fidelity": attr.metadata.get("fidelity")},
              "distillation": record},
        wall_seconds=wall,
        checkpoint_files={BLACK_BOX_FILE: lambda p: save_black_box(target, p)},
    )


def load_black_box(s: DemoSettings, path: Path) -> torch.nn.Module:
    """The track's SmallCNN black box from a checkpoint's ``black_box.safetensors``.

    Args:
        s: the sizes of the run (classes).
        path: the weights file.

    Returns:
        The black box, in eval mode and frozen.
    """
    from captum_akd.zoo.small_cnn import SmallCNN

    target = SmallCNN(s.num_classes, width=s.target_width)
    target.load_state_dict(load_file(str(path)))
    for p in target.parameters():
        p.requires_grad_(False)
    return target.eval()


def save_black_box(target: torch.nn.Module, path: Path) -> None:
    """Write the black box's weights (safetensors), beside a checkpoint's student.

    Args:
        target: the black box.
        path: the file to write.
    """
    save_file({k: v.detach().cpu().contiguous() for k, v in target.state_dict().items()},
              str(path))


def black_box_sha256(target: torch.nn.Module) -> str:
    """The SHA-256 of the black box's weights as :func:`save_black_box` writes them.

    Args:
        target: the black box.

    Returns:
        The hex digest, what results name the black box by.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / BLACK_BOX_FILE
        save_black_box(target, path)
        return file_sha256(path)
