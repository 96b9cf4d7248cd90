"""Speed of the RISE term's forward passes: the frozen student against its channels-last copy.

A ``rise`` stage-2 step scores ``rise_masks`` masked copies of every image
with the frozen student, without gradient; those passes are most of the
step. On the CPU stage 2 runs them on a channels-last copy of the student
(:func:`captum_akd.distill._stage2.rise_scorer`). This times one step's
batch of masked copies (the demo's 64 px shapes, ``--images`` x
``--masks``, composed over the blurred image as the term composes them)
through both, alternating, and reports the median of ``--repeats`` timings
each and the largest difference between their logits. The student is the
demo's, untrained: its speed does not depend on its weights.

    python benchmarks/stage2_speed.py --threads 2

Writes ``benchmarks/results/stage2_speed/results.json`` and ``results.md``
(``--out``), refusing to overwrite unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import machine, write_results  # noqa: E402
from captum_akd._image_ops import gaussian_blur, rise_masks  # noqa: E402
from captum_akd.checkpoint import write_json  # noqa: E402
from captum_akd.data import FineGrainedShapes  # noqa: E402
from captum_akd.demo import DemoSettings, dataset_tensors  # noqa: E402
from captum_akd.distill import ExplainerConfig  # noqa: E402
from captum_akd.distill._stage2 import rise_scorer  # noqa: E402
from captum_akd.models import cifar_resnet_student  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=128, help="images per step (batch size)")
    parser.add_argument("--masks", type=int, default=16, help="masked copies per image")
    parser.add_argument("--repeats", type=int, default=5, help="timings of each, alternating")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results" / "stage2_speed"))
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args(argv)


def _seconds(model: torch.nn.Module, batch: torch.Tensor) -> tuple[float, torch.Tensor]:
    """One timed forward pass without gradient, and its logits."""
    start = time.perf_counter()
    with torch.no_grad():
        logits = model(batch)
    return time.perf_counter() - start, logits


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    settings = DemoSettings()
    images = dataset_tensors(FineGrainedShapes(args.images, image_size=settings.image_size,
                                               num_classes=settings.num_classes, seed=0),
                             progress=False)["image"]
    side = settings.image_size
    # Stage 2's own defaults for the masks and the blurred substrate.
    config = ExplainerConfig()
    generator = torch.Generator().manual_seed(0)
    masks = rise_masks(args.images * args.masks, side, side, config.rise_grid, config.rise_p1,
                       generator)
    blurred = gaussian_blur(images, config.blur_kernel, config.blur_sigma).repeat_interleave(
        args.masks, 0)
    batch = masks * images.repeat_interleave(args.masks, 0) + (1 - masks) * blurred
    student = cifar_resnet_student(depth=settings.student_depth,
                                   num_classes=settings.num_classes,
                                   stem_stride=settings.student_stem_stride).eval()
    student.requires_grad_(False)
    models = {"frozen student": student,
              "channels-last copy": rise_scorer(student, torch.device("cpu"))}
    for model in models.values():  # warm-up
        _seconds(model, batch[: args.masks])
    times: dict[str, list[float]] = {name: [] for name in models}
    logits = {}
    for _ in range(args.repeats):
        for name, model in models.items():
            seconds, logits[name] = _seconds(model, batch)
            times[name].append(seconds)
    median = {name: statistics.median(t) for name, t in times.items()}
    speedup = median["frozen student"] / median["channels-last copy"]
    difference = (logits["frozen student"] - logits["channels-last copy"]).abs().max().item()

    command = "python " + " ".join(["benchmarks/stage2_speed.py",
                                    *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    results = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(images.device),
        "settings": {"images": args.images, "masks": args.masks, "side": side,
                     "repeats": args.repeats, "threads": torch.get_num_threads()},
        "seconds": times,
        "median_seconds": median,
        "speedup": speedup,
        "max_logit_difference": difference,
    }
    lines = [
        "# The RISE term's forward passes: frozen student against its channels-last copy",
        "",
        f"Command: `{command}`, {results['date']}; {results['machine']['processor']}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}. One `rise` step's "
        f"masked copies: {args.images} images x {args.masks} masks = "
        f"{args.images * args.masks} images of {side} x {side} px through the demo's student "
        f"(untrained), no gradient; median of {args.repeats} timings each, alternating.",
        "",
        "| Student | Median s | Fastest - slowest s | Images / s (median) |",
        "|---|---|---|---|",
        *[f"| {name} | {m:.3f} | {min(times[name]):.3f} - {max(times[name]):.3f} | "
          f"{len(batch) / m:.0f} |" for name, m in median.items()],
        "",
        f"Speed-up (ratio of the medians): {speedup:.2f} x; the slowest channels-last "
        f"timing against the fastest plain one: "
        f"{min(times['frozen student']) / max(times['channels-last copy']):.2f} x. Largest "
        f"difference between the two's logits: {difference:.1e}. A timing benchmark: no "
        "faithfulness is measured, so no control rows.",
        "",
    ]
    write_results(Path(args.out), {
        "results.json": lambda p: write_json(results, p),
        "results.md": lambda p: p.write_text("\n".join(lines), encoding="utf-8"),
    }, args.overwrite)
    print("\n".join(lines))
    return results


if __name__ == "__main__":
    main()
