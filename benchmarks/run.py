"""Run one benchmark track: every method on the same images, scored on the black box.

    python -m benchmarks.run --track {synthetic,cifar10,imagenet-sample} \\
        --methods akd,layercam,gradcam,rise,lime [--n-images N] [--device cpu|cuda] \\
        --out benchmarks/results/<track>/

The track's target and data are loaded (from ``--data-dir``, default
``../shared/data``; nothing is downloaded), the attentive surrogate is
distilled or loaded from the cache, the evaluation images are explained with
every method and every metric of design section 5 is computed on the black
box. ``--out`` receives, all at once, ``results.json`` (every figure and
per-image value, settings, versions, machine, wall times, the command),
``results.md`` (the method paper's tables and one line per target of issue 6),
``maps.png``, ``curves.png`` and the checkpoint used.

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
    TrackSetup,
    check_out,
    evaluate,
    git_state,
    issue_targets,
    machine,
    package_versions,
    parse_methods,
    render_markdown,
    slice_rows,
    write_results,
)

TRACKS = {
    "synthetic": synthetic,
    "cifar10": cifar10,
    "imagenet-sample": imagenet_sample,
}


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
    parser.add_argument("--track", required=True, choices=list(TRACKS))
    parser.add_argument("--methods", default="akd,layercam,gradcam,rise,lime",
                        help="comma-separated, from akd,layercam,gradcam,rise,lime")
    parser.add_argument("--n-images", type=int,
                        help="evaluation images (default per track: synthetic 24, cifar10 "
                             "1000, imagenet-sample 300)")
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
                        help="a finished AKD checkpoint to load instead of distilling")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the data choice, training, RISE and LIME")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--batch-size", type=int,
                        help="images per call when explaining, scoring and timing (default "
                             "64; imagenet-sample 16, faster per image on a CPU)")
    parser.add_argument("--perturbation-batch", type=int,
                        help="perturbed images per black-box call of RISE and LIME (default: "
                             "the library's 100 and 64; imagenet-sample 16)")
    parser.add_argument("--step", type=int,
                        help="pixels per insertion/deletion step (default per track: one row "
                             "at 32 and 64 px, 1792 at 224 px)")
    parser.add_argument("--rise-masks", type=int, default=4000, help="RISE's N")
    parser.add_argument("--rise-grid", type=int, default=7, help="RISE's s")
    parser.add_argument("--rise-p1", type=float, default=0.5, help="RISE's p1")
    parser.add_argument("--lime-samples", type=int, default=1000)
    parser.add_argument("--slow-images", type=int,
                        help="run RISE and LIME on only the first K evaluation images "
                             "(default: all); every method is then also compared on those K")
    parser.add_argument("--speed-images", type=int, default=2,
                        help="images RISE and LIME are timed on (the others: all)")
    parser.add_argument("--epochs", type=int, help="stage-1 (student) epochs; default per track")
    parser.add_argument("--explainer-epochs", type=int,
                        help="stage-2 (explainer) epochs; default per track")
    parser.add_argument("--train-images", type=int,
                        help="training (distillation) images; default per track")
    parser.add_argument("--distill-batch-size", type=int, help="default per track")
    parser.add_argument("--student-lr", type=float,
                        help="stage-1 peak learning rate (default: the library's, except "
                             "imagenet-sample 1e-4)")
    parser.add_argument("--student-depth", type=int,
                        help="depth of the CIFAR-style student (synthetic 14, cifar10 20)")
    parser.add_argument("--grid-images", type=int, default=8, help="rows of maps.png")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    for module in TRACKS.values():
        module.add_arguments(parser.add_argument_group(f"track {module.NAME}"))
    return parser


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
    for key, value in {"batch_size": 64, **track.DEFAULTS}.items():
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
                 "rise_grid", "lime_samples", "speed_images", "grid_images"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
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

    slices: dict[str, dict[str, Any]] = {}
    for name, selected in setup.slices.items():
        slices[name] = {e.key: slice_rows(e, selected, setup, args.batch_size)
                        for e in evaluations}
    wall = {**setup.wall_seconds, "explain_and_score": explain_seconds,
            "total": time.perf_counter() - started}

    from captum_akd.report import comparison_to_dict

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
        "agreement": setup.agreement,
        "evaluations": {
            e.key: {"n_images": e.n_images, "image_ids": [setup.image_ids[i] for i in e.index],
                    "wall_seconds": e.seconds, **comparison_to_dict(e.comparison)}
            for e in evaluations
        },
        "slices": slices,
        **setup.extra_results,
        "wall_seconds": wall,
    }
    results["targets"] = issue_targets(evaluations, setup, args)
    results["wall_seconds"]["total"] = time.perf_counter() - started
    markdown = render_markdown(results, setup, evaluations, slices, args)
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
        "checkpoint": lambda p: setup.attr.save(p),
        # Weights stay out of git, as in benchmarks/results/distill_cifar10.
        ".gitignore": lambda p: p.write_text("checkpoint*/\n", encoding="utf-8"),
    }
    for e in evaluations:
        if e is not every:
            files[f"curves-{e.key}.png"] = (lambda c: lambda p: save_curves(p, c))(e.comparison)
    files.update(setup.extra_files)
    return files


if __name__ == "__main__":
    try:
        main()
    except (FileExistsError, FileNotFoundError) as err:
        # A refused --out or missing data: the user's to fix, not a traceback.
        sys.exit(f"python -m benchmarks.run: error: {err}")
