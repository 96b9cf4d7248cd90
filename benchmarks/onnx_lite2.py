"""EfficientNet-Lite2 served by ONNX Runtime as the black box of the ImageNet track.

The track's black box (``efficientnet_lite2_target``) is exported to ONNX in
a temporary folder and run through :class:`~captum_akd.blackbox.OnnxBlackBox`
on the track's 120 held-out photos (same seeded split). Recorded:

- agreement of the two paths: top-1 on every photo, the largest logit
  difference;
- AKD's maps through each path, from the track's committed checkpoint (the
  student was distilled once): with ``target=None`` the class is the black
  box's prediction, so the maps are equal exactly when the predictions are;
- plain inference throughput of ONNX Runtime and PyTorch side by side, same
  photos, batch size and thread count.

Run: ``python -m benchmarks.onnx_lite2`` (about 3 minutes on 2 CPU cores);
writes ``benchmarks/results/onnx_lite2/results.{json,md}``.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from benchmarks.common import check_out, git_state, machine, package_versions, write_results
from benchmarks.imagenet_sample import load_images

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of this benchmark."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.onnx_lite2",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--checkpoint", type=Path,
                        default=REPO / "benchmarks" / "checkpoints" / "imagenet-sample")
    parser.add_argument("--n-images", type=int, default=120,
                        help="held-out photos (the track's first ones)")
    parser.add_argument("--seed", type=int, default=0, help="the track's split seed")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "onnx_lite2")
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Export, compare and time; write the results.

    Args:
        argv: the command line (``sys.argv[1:]`` when ``None``).

    Returns:
        The content of ``results.json``.
    """
    from scipy.stats import binomtest

    from captum_akd import AttentiveDistillationAttribution
    from captum_akd.blackbox import OnnxBlackBox
    from captum_akd.checkpoint import read_config
    from captum_akd.data import imagenet_sample
    from captum_akd.metrics import throughput
    from captum_akd.zoo import (
        EFFICIENTNET_LITE2_RESIZE,
        EFFICIENTNET_LITE2_SIZE,
        efficientnet_lite2_target,
        efficientnet_lite_preprocess,
    )

    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    check_out(args.out, args.overwrite)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    preprocess = functools.partial(efficientnet_lite_preprocess,
                                   image_size=EFFICIENTNET_LITE2_SIZE,
                                   resize_size=EFFICIENTNET_LITE2_RESIZE)
    dataset = imagenet_sample(args.data_dir / "imagenet-sample", preprocess=preprocess)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))
    images, _ = load_images(dataset, order[: args.n_images], True, "held-out photos")

    model = efficientnet_lite2_target().eval()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "lite2.onnx"
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated in favour of the dynamo one,
            # which needs onnxscript; this one needs nothing more.
            warnings.simplefilter("ignore")
            torch.onnx.export(model, images[:1], str(path), dynamo=False,
                              input_names=["images"], output_names=["logits"],
                              dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}})
        onnx_bytes = path.stat().st_size
        black_box = OnnxBlackBox(path, batch_size=args.batch_size,
                                 providers=["CPUExecutionProvider"], threads=args.threads)

    with torch.no_grad():
        torch_logits = torch.cat([model(chunk) for chunk in images.split(args.batch_size)])
    onnx_logits = black_box(images)
    agree = torch_logits.argmax(1) == onnx_logits.argmax(1)
    max_diff = float((torch_logits - onnx_logits).abs().max())

    timed = images[: min(args.n_images, 2 * args.batch_size)]
    speeds = {"PyTorch": throughput(model, timed, batch_size=args.batch_size),
              "ONNX Runtime": throughput(black_box, timed, batch_size=args.batch_size)}

    maps = {}
    for name, forward in (("PyTorch", model), ("ONNX Runtime", black_box)):
        attr = AttentiveDistillationAttribution.load(args.checkpoint, forward_func=forward)
        maps[name] = attr.attribute(images, target=None, internal_batch_size=args.batch_size)
    maps_equal = bool(torch.equal(maps["PyTorch"], maps["ONNX Runtime"]))
    map_diff = float((maps["PyTorch"] - maps["ONNX Runtime"]).abs().max())

    interval = binomtest(int(agree.sum()), args.n_images).proportion_ci(method="wilson")
    results = {
        "command": "python -m benchmarks.onnx_lite2 " + shlex.join(argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "git": git_state(), "machine": machine(torch.device("cpu")),
        "versions": package_versions(),
        "images": args.n_images, "onnx_file_bytes": onnx_bytes,
        "top1_agreement": int(agree.sum()), "max_abs_logit_difference": max_diff,
        "top1_agreement_wilson_95": [interval.low, interval.high],
        "akd_maps_equal": maps_equal, "akd_max_abs_map_difference": map_diff,
        "checkpoint": {"path": str(args.checkpoint.relative_to(REPO))
                       if args.checkpoint.is_relative_to(REPO) else str(args.checkpoint),
                       "weights_sha256": read_config(args.checkpoint)["weights_sha256"]},
        "throughput": {k: {"images_per_second": v.images_per_second, "n_images": v.n_images,
                           "batch_size": v.batch_size, "threads": v.threads}
                       for k, v in speeds.items()},
        "wall_seconds": time.perf_counter() - started,
    }
    markdown = render(results, args)
    write_results(args.out, {"results.json": lambda p: p.write_text(json.dumps(results,
                                                                              indent=2)),
                             "results.md": lambda p: p.write_text(markdown)}, args.overwrite)
    print(markdown)
    return results


def render(results: dict, args: argparse.Namespace) -> str:
    """``results.md`` of this benchmark."""
    n = results["images"]
    rows = "\n".join(f"| {name} | {v['images_per_second']:.1f} | {v['n_images']} |"
                     for name, v in results["throughput"].items())
    hashes = ", ".join(f"`{k}` sha256 `{v}`"
                       for k, v in results["checkpoint"]["weights_sha256"].items())
    git = results["git"]
    return f"""# EfficientNet-Lite2 through ONNX Runtime: the ImageNet track's black box, exported

Command: `{results['command']}`

Run on {results['date']} at commit `{git['commit'] or 'unknown'}`\
{' (with uncommitted changes)' if git['dirty'] else ''}; torch \
{results['versions']['torch']}, onnxruntime {results['versions'].get('onnxruntime')}; \
{results['machine']['cpu_count']} CPU cores, {args.threads} threads for both runtimes.

The black box of `benchmarks/results/imagenet-sample/` (EfficientNet-Lite2, 260 x 260)
exported with `torch.onnx.export` (TorchScript exporter, dynamic batch axis,
{results['onnx_file_bytes'] / 1e6:.1f} MB) and run by `OnnxBlackBox` on the track's
{n} held-out photos (seed {args.seed}).

- Top-1 agreement with the PyTorch model: **{results['top1_agreement']} of {n}** photos
  (95 % Wilson interval [{results['top1_agreement_wilson_95'][0]:.3f},
  {results['top1_agreement_wilson_95'][1]:.3f}]); largest logit difference
  {results['max_abs_logit_difference']:.2e}.
- AKD maps with `target=None` (the class is the black box's prediction) from the
  committed checkpoint `{results['checkpoint']['path']}` ({hashes}), once with each
  black box: **{'equal' if results['akd_maps_equal'] else 'different'}** on all {n}
  photos (largest difference {results['akd_max_abs_map_difference']:.2e}). The student
  was distilled once, through PyTorch; it never needs the black box again.

Plain inference, same photos, batch size {args.batch_size}, CPU:

| Runtime | Images/s | Images timed |
|---|---|---|
{rows}

This checks that two runtimes give one black box; it scores no maps, so the
protocol's control rows and per-metric intervals do not apply (the track's
maps are scored in `benchmarks/results/imagenet-sample/`).

Wall time {results['wall_seconds']:.0f} s.
"""


if __name__ == "__main__":
    main()
