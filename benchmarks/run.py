"""Run one benchmark track: every method on the same images, scored on the black box.

    python -m benchmarks.run --track {synthetic,cifar10,imagenet-sample} \\
        --methods akd,layercam,gradcam,rise,lime,rise-student [--n-images N] \\
        [--checkpoint DIR] [--device cpu|cuda] --out benchmarks/results/<track>/

The track's target and data are loaded (from ``--data-dir``, default
``../shared/data``; nothing is downloaded), the attentive surrogate is
distilled, loaded from the cache or from ``--checkpoint``, the evaluation
images are explained with every method and the three controls, and every
metric of design section 5 is computed on the black box, per image.
``--out`` receives, all at once, ``results.json`` (every figure and per-image
value with its interval and paired comparison with AKD, the surrogate
ceiling, the black-box queries, settings, versions, machine, wall times, the
command and the checkpoint's weight hashes), ``results.md`` (the tables, each
cell a mean with its 95 % bootstrap interval, and one row per target),
``maps.png``, ``curves.png`` and the checkpoint used.

``--checkpoint DIR`` re-scores a track without training: DIR is a finished
checkpoint (``benchmarks/checkpoints/<track>/``, or a results directory's
``checkpoint/``); the synthetic track also takes its black box from DIR's
``black_box.safetensors``, and the cifar10 track skips its sanity check
(which re-distils) unless ``--sanity`` is given.

Distillations are cached under ``--cache`` (default ``benchmarks/.cache``),
named by a hash of their settings: an interrupted one resumes, a finished one
is loaded by later runs with the same settings.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import cifar10, imagenet_sample, synthetic
from benchmarks.common import (
    DEFAULT_CACHE,
    DEFAULT_DATA_DIR,
    REPO,
    Evaluation,
    Track,
    TrackSetup,
    bootstrap_settings,
    check_out,
    checkpoint_identity,
    evaluate,
    evaluation_to_dict,
    git_state,
    issue_targets,
    machine,
    package_versions,
    parse_methods,
    render_markdown,
    score,
    slice_of,
    write_results,
)
from captum_akd.distill.config import OBJECTIVES, PERTURB_CHOICES, SUBSTRATE_CHOICES

TRACKS: dict[str, Track] = {
    "synthetic": synthetic,
    "cifar10": cifar10,
    "imagenet-sample": imagenet_sample,
}


#: Defaults of common options for the tracks that set none of their own.
COMMON_DEFAULTS: dict[str, Any] = {"batch_size": 64}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the ``None`` of options whose default is per track."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The command line: common options, then each track's own.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0],
        formatter_class=_Formatter)

    def per_track(flag: str, kind: type, text: str, otherwise: str = "") -> None:
        # The help reads each track's default from the track, so it cannot go stale.
        dest = flag[2:].replace("-", "_")
        given = [f"{name} {track.DEFAULTS[dest]:g}" for name, track in TRACKS.items()
                 if dest in track.DEFAULTS]
        if len(given) < len(TRACKS):
            given.append(f"otherwise {COMMON_DEFAULTS.get(dest, otherwise)}")
        parser.add_argument(flag, type=kind, help=f"{text} (default: {', '.join(given)})")

    parser.add_argument("--track", required=True, choices=list(TRACKS))
    parser.add_argument("--methods", default="akd,layercam,gradcam,rise,lime,rise-student",
                        help="comma-separated, from akd,layercam,gradcam,rise,lime,rise-student "
                             "(RISE on the distilled student: the surrogate ceiling)")
    parser.add_argument("--controls", action=argparse.BooleanOptionalAction, default=True,
                        help="score the three controls (uniform noise, centre Gaussian, Sobel "
                             "edges) like methods")
    per_track("--n-images", int, "evaluation images")
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        help="default: cuda when available, else cpu")
    parser.add_argument("--out", type=Path, help="default benchmarks/results/<track>/")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing results directory")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder with cifar10/, imagenet-sample/ and weights/")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE),
                        help="folder of cached distillations; 'none' to train without one")
    parser.add_argument("--checkpoint", type=Path,
                        help="a finished AKD checkpoint directory (benchmarks/checkpoints/"
                             "<track>/, a results directory's checkpoint/) to re-score without "
                             "training; results name its weight hashes")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the data choice, training, RISE and LIME")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    per_track("--batch-size", int, "images per call when explaining, scoring and timing")
    per_track("--perturbation-batch", int, "perturbed images per black-box call of RISE and "
              "LIME", "the library's, 100 and 64")
    per_track("--step", int, "pixels per insertion/deletion step")
    per_track("--road-images", int, "evaluation images ROAD runs on (the first ones; about "
              "20 ms per image and method at 32 px, 1.4-1.9 s at 224 px on one core)", "all")
    parser.add_argument("--bootstrap-resamples", type=int, default=10_000,
                        help="resamples of every bootstrap interval (seeded by --seed)")
    parser.add_argument("--rise-masks", type=int, default=4000, help="RISE's N")
    parser.add_argument("--rise-grid", type=int, default=7, help="RISE's s")
    parser.add_argument("--rise-p1", type=float, default=0.5, help="RISE's p1")
    parser.add_argument("--lime-samples", type=int, default=1000)
    parser.add_argument("--score-images", type=int,
                        help="explain and score only the first K evaluation images (default: "
                             "all); the student's agreement is still measured on all of them")
    parser.add_argument("--slow-images", type=int,
                        help="run RISE, LIME and RISE on student on only the first K "
                             "evaluation images (default: all); every method is then also "
                             "compared on those K")
    parser.add_argument("--speed-images", type=int, default=2,
                        help="images RISE and LIME are timed on (the others: all; RISE on "
                             "student is not timed)")
    per_track("--epochs", int, "stage-1 (student) epochs")
    per_track("--explainer-epochs", int, "stage-2 (explainer) epochs")
    per_track("--train-images", int, "training (distillation) images", "all the track has")
    per_track("--distill-batch-size", int, "images per distillation step")
    per_track("--student-lr", float, "stage-1 peak learning rate",
              "the library's (its fine-tuning one for a pretrained student)")
    per_track("--student-depth", int, "depth of the CIFAR-style student", "unused")
    parser.add_argument("--perturb-share", type=float, default=0.0,
                        help="stage 1's perturbation matching (DistillConfig.perturb_share) "
                             "where this run distils the student: synthetic, and "
                             "imagenet-sample without --student-from (cifar10's stage 1 is "
                             "distill_cifar10.py's, with its own --perturb-share); default 0, "
                             "plain KD")
    parser.add_argument("--perturb-substrates", choices=SUBSTRATE_CHOICES,
                        help="what the removed pixels of those copies become "
                             "(DistillConfig.perturb_substrates; default: the library's, both); "
                             "only with --perturb-share")
    parser.add_argument("--perturb-masks", choices=PERTURB_CHOICES,
                        help="mask kinds of those copies (DistillConfig.perturb_masks; default: "
                             "the library's, both); only with --perturb-share")
    # Stage 2's settings: on cifar10 and imagenet-sample they replace the library's
    # defaults, on synthetic the demo's stage-2 settings of the same name.
    parser.add_argument("--explainer-objective", choices=OBJECTIVES,
                        help="stage 2's objective (ExplainerConfig.objective; default: the "
                             "library's, area; on synthetic the demo's, curve)")
    parser.add_argument("--explainer-budgets", type=int,
                        help="kept shares per image of the 'curve' objective (default: the "
                             "library's, 3)")
    parser.add_argument("--explainer-destroy", choices=("blur", "zero", "both"),
                        help="ExplainerConfig.destroy_substrate (default: the library's, blur)")
    parser.add_argument("--explainer-area-weight", type=float,
                        help="ExplainerConfig.area_weight (default: the library's, 2)")
    parser.add_argument("--explainer-tv-weight", type=float,
                        help="ExplainerConfig.tv_weight (default: the library's, 0.05)")
    parser.add_argument("--explainer-rise-masks", type=int,
                        help="ExplainerConfig.rise_masks: random masks per image of the 'rise' "
                             "objective (default: the library's, 16)")
    parser.add_argument("--explainer-rise-grid", type=int,
                        help="ExplainerConfig.rise_grid: cells per side of those masks (default: "
                             "the library's, 7)")
    parser.add_argument("--explainer-seed", type=int,
                        help="seeds stage 2 alone (its initial weights and batch order) where "
                             "it trains on a given student: cifar10 with a stage-1 run as "
                             "--student-checkpoint, imagenet-sample with --student-from; the "
                             "data and evaluation images stay --seed's (default: --seed)")
    parser.add_argument("--grid-images", type=int, default=8, help="rows of maps.png")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    for module in TRACKS.values():
        module.add_arguments(parser.add_argument_group(f"track {module.NAME}"))
    return parser


def _distils_student(args: argparse.Namespace) -> bool:
    """Whether this run trains stage 1 itself (what --perturb-share changes)."""
    if args.checkpoint is not None or args.track == cifar10.NAME:
        return False
    return args.track != imagenet_sample.NAME or args.student_from is None


def _stage2_alone(args: argparse.Namespace) -> bool:
    """Whether this run may train stage 2 alone on a given student (what --explainer-seed seeds)."""
    if args.checkpoint is not None:
        return False
    if args.track == cifar10.NAME:
        return args.student_checkpoint != "none"
    return args.track == imagenet_sample.NAME and args.student_from is not None


def resolve_args(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` and fill the per-track defaults.

    Args:
        argv: the command line after ``python -m benchmarks.run``.

    Returns:
        The options, with ``method_keys`` added and ``out``, ``cache`` and
        ``device`` resolved.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    track = TRACKS[args.track]
    for key, value in {**COMMON_DEFAULTS, **track.DEFAULTS}.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    try:
        args.method_keys = parse_methods(args.methods)
    except ValueError as err:
        parser.error(str(err))
    if args.out is None:
        args.out = REPO / "benchmarks" / "results" / args.track
    args.cache = None if str(args.cache).lower() == "none" else Path(args.cache)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    for name in ("n_images", "batch_size", "perturbation_batch", "step", "rise_masks",
                 "rise_grid", "lime_samples", "speed_images", "grid_images", "score_images",
                 "bootstrap_resamples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.road_images is not None and args.road_images < 0:
        parser.error("--road-images must be 0 (no ROAD) or more")
    if args.explainer_seed is not None and not _stage2_alone(args):
        parser.error("--explainer-seed seeds a stage 2 trained on a given student: use it with "
                     "--track cifar10 --student-checkpoint RUN or --track imagenet-sample "
                     "--student-from CHECKPOINT (and without --checkpoint)")
    if not 0.0 <= args.perturb_share < 1.0:
        parser.error(f"--perturb-share must be in [0, 1), got {args.perturb_share:g}")
    if args.perturb_share and not _distils_student(args):
        parser.error("--perturb-share changes a stage 1 this run does not train: use it on "
                     "synthetic, or on imagenet-sample without --student-from (and without "
                     "--checkpoint); cifar10's students come from distill_cifar10.py")
    for name in ("perturb_substrates", "perturb_masks"):
        if getattr(args, name) is not None and not args.perturb_share:
            parser.error(f"--{name.replace('_', '-')} sets the perturbed copies of stage 1's "
                         "perturbation matching: give --perturb-share above 0 too")
    if args.checkpoint is not None and not (args.checkpoint / "config.json").is_file():
        parser.error(f"--checkpoint {str(args.checkpoint)!r} holds no checkpoint (no "
                     "config.json)")
    return args


def jsonable(value: Any) -> Any:
    """Settings as JSON: paths as strings, the rest as is.

    Args:
        value: a setting (or a dict or list of them).

    Returns:
        The same with every path turned into a string.
    """
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run a track and write its results directory.

    Args:
        argv: the command line after ``python -m benchmarks.run`` (default
            ``sys.argv[1:]``).

    Returns:
        The content of ``results.json``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = resolve_args(argv)
    check_out(args.out, args.overwrite)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available")
    progress = not args.quiet
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    track = TRACKS[args.track]
    setup = track.prepare(args, device, progress)
    lap = time.perf_counter()
    evaluations = evaluate(setup, args.method_keys, args, progress)
    explain_seconds = time.perf_counter() - lap

    scored = {e.key: score(e.comparison, args) for e in evaluations}
    slices = {name: {e.key: slice_of(e, selected) for e in evaluations}
              for name, selected in setup.slices.items()}
    wall = {**setup.wall_seconds, "explain_and_score": explain_seconds,
            "total": time.perf_counter() - started}

    from captum_akd.evaluation import query_accounting, surrogate_ceiling
    from captum_akd.report import comparison_to_dict

    stats = bootstrap_settings(args)
    every = max(evaluations, key=lambda e: len(e.method_names))
    record = setup.info.get("distillation", {})
    results: dict[str, Any] = {
        "track": args.track,
        "command": "python -m benchmarks.run " + shlex.join(argv),
        "date": date,
        "git": git_state(),
        "machine": machine(device),
        "versions": package_versions(),
        "seed": args.seed,
        "settings": jsonable({k: v for k, v in vars(args).items()}),
        **setup.info,
        "checkpoint": checkpoint_identity(setup.attr, record),
        "agreement": setup.agreement,
        "evaluations": {e.key: evaluation_to_dict(e, scored[e.key], setup, args)
                        for e in evaluations},
        "slices": {name: {key: {"n_images": int(part.labels.numel()),
                                **comparison_to_dict(part, per_image=False, **stats)}
                          for key, part in per_eval.items()}
                   for name, per_eval in slices.items()},
        "surrogate_ceiling": surrogate_ceiling(every.comparison, **stats),
        "black_box_queries": query_accounting(
            every.comparison, setup.attr.metadata.get("black_box_queries")),
        **setup.extra_results,
        "wall_seconds": wall,
    }
    results["targets"] = issue_targets(evaluations, setup, args)
    results["wall_seconds"]["total"] = time.perf_counter() - started
    markdown = render_markdown(results, setup, evaluations, scored, slices, args)
    write_results(args.out, writers(results, markdown, setup, evaluations, args), args.overwrite)
    if progress:
        print(f"written: {args.out}")
    return results


def writers(results: dict[str, Any], markdown: str, setup: TrackSetup,
            evaluations: list[Evaluation], args: argparse.Namespace) -> dict[str, Any]:
    """The files of the results directory.

    Args:
        results: the content of ``results.json``.
        markdown: the content of ``results.md``.
        setup: the track (images, masks, checkpoint, extra files).
        evaluations: what :func:`~benchmarks.common.evaluate` returned; the
            one with every method gives ``maps.png`` and ``curves.png``.
        args: the parsed command line.

    Returns:
        File name -> function writing it at a given path.
    """
    from captum_akd.checkpoint import write_json
    from captum_akd.report import save_curves, save_maps_grid

    every = max(evaluations, key=lambda e: len(e.method_names))
    n = every.n_images
    files: dict[str, Any] = {
        "results.json": lambda p: write_json(results, p),
        "results.md": lambda p: p.write_text(markdown, encoding="utf-8"),
        "maps.png": lambda p: save_maps_grid(
            p, setup.display[:n], every.comparison,
            None if setup.masks is None else setup.masks[:n].cpu(),
            n=args.grid_images, titles=setup.titles[:n]),
        "curves.png": lambda p: save_curves(p, every.comparison),
        "checkpoint": lambda p: save_checkpoint_directory(p, setup),
        # Weights stay out of git, as in benchmarks/results/distill_cifar10.
        ".gitignore": lambda p: p.write_text("checkpoint*/\n", encoding="utf-8"),
    }
    for e in evaluations:
        if e is not every:
            files[f"curves-{e.key}.png"] = (lambda c: lambda p: save_curves(p, c))(e.comparison)
    files.update(setup.extra_files)
    return files


def save_checkpoint_directory(path: Path, setup: TrackSetup) -> Path:
    """The results' ``checkpoint/``: the attribution, plus the track's own files.

    A later ``--checkpoint`` of this directory re-scores the track without
    training (the synthetic track's black box is among the files).

    Args:
        path: the checkpoint directory to write.
        setup: the track (attribution and :attr:`TrackSetup.checkpoint_files`).

    Returns:
        ``path``.
    """
    setup.attr.save(path)
    for name, write in setup.checkpoint_files.items():
        write(path / name)
    return path


if __name__ == "__main__":
    try:
        main()
    except (FileExistsError, FileNotFoundError) as err:
        # A refused --out or missing data: the user's to fix, not a traceback.
        sys.exit(f"python -m benchmarks.run: error: {err}")
