"""Throughput of every saliency method against plain inference, CIFAR-10 ResNet-56.

One process, the same cifar10-test images, batch size and thread count for
every row; each row is images explained per second after a warm-up (see
:func:`captum_akd.metrics.throughput`). AKD and layer-wise CAM run on an
attentive ResNet-20 student (speed does not depend on its training, so an
untrained one is used unless ``--checkpoint`` names a distilled one). RISE and
LIME are timed on fewer images than the fast methods (``--slow-images``): their
cost per image does not depend on how many images there are.

    python benchmarks/throughput_cifar10.py --threads 2

Writes ``benchmarks/results/throughput_cifar10/results.json`` and
``results.md`` (``--out``), refusing to overwrite unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import DEFAULT_DATA_DIR, cifar_split, machine  # noqa: E402
from captum_akd import AttentiveDistillationAttribution  # noqa: E402
from captum_akd.checkpoint import write_directory_atomically, write_json  # noqa: E402
from captum_akd.evaluation import METHOD_LABELS, build_methods  # noqa: E402
from captum_akd.metrics import throughput  # noqa: E402
from captum_akd.models import ExplanationNet, cifar_resnet_student  # noqa: E402
from captum_akd.zoo.cifar_resnet import cifar_resnet56  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR),
                        help="folder holding cifar10/ and weights/ (default ../shared/data)")
    parser.add_argument("--images", type=int, default=256,
                        help="test images the fast methods and inference are timed on")
    parser.add_argument("--slow-images", type=int, default=4,
                        help="of those, how many RISE and LIME are timed on")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rise-masks", type=int, default=4000)
    parser.add_argument("--lime-samples", type=int, default=1000)
    parser.add_argument("--checkpoint", help="a distilled AKD checkpoint (default: untrained)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results" / "throughput_cifar10"))
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = Path(args.data_dir)
    target = cifar_resnet56(data / "weights" / "cifar10_resnet56.safetensors").eval()
    images, _ = cifar_split(data / "cifar10" / "cifar10-test.zip", args.images)
    with torch.no_grad():
        labels = target(images).argmax(1)

    if args.checkpoint:
        akd = AttentiveDistillationAttribution.load(args.checkpoint, forward_func=target)
    else:
        student = cifar_resnet_student(depth=20, num_classes=10).eval()
        akd = AttentiveDistillationAttribution(target, student, ExplanationNet.for_student(student))
    # The methods a user would time; controls and RISE on the student are diagnostics.
    methods = build_methods(target, akd, target.layer3,
                            ("akd", "layercam", "gradcam", "rise", "lime"), controls=False,
                            rise_masks=args.rise_masks, lime_samples=args.lime_samples)
    slow = {METHOD_LABELS["rise"], METHOD_LABELS["lime"]}
    rows = {"Normal inference": throughput(target, images, batch_size=args.batch_size)}
    for name, method in methods.items():
        k = args.slow_images if name in slow else len(images)
        rows[name] = throughput(method, images[:k], target=labels[:k],
                                batch_size=args.batch_size, warmup=1,
                                repeats=1 if name in slow else 3)
        print(f"{name}: {rows[name].images_per_second:.2f} images/s", flush=True)

    reference = rows["Normal inference"].images_per_second
    grad_cam = rows["Grad-CAM"].images_per_second
    command = "python " + " ".join(["benchmarks/throughput_cifar10.py",
                                    *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    results = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(images.device),
        "settings": {"images": len(images), "slow_images": args.slow_images,
                     "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                     "rise_masks": args.rise_masks, "lime_samples": args.lime_samples,
                     "checkpoint": args.checkpoint},
        "rows": {name: {"images_per_second": r.images_per_second, "n_images": r.n_images,
                        "seconds": r.seconds, "x_inference": r.images_per_second / reference,
                        "x_grad_cam": r.images_per_second / grad_cam}
                 for name, r in rows.items()},
    }
    lines = [
        "# Throughput on the CIFAR-10 ResNet-56",
        "",
        f"Command: `{command}`, {results['date']}; {results['machine']['processor']}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, device "
        f"{results['machine']['device']}; batch size {args.batch_size}; RISE with "
        f"{args.rise_masks} masks, LIME with {args.lime_samples} samples.",
        "",
        "| Method | Images / s | Images timed | × inference | × Grad-CAM |",
        "|---|---|---|---|---|",
        *[f"| {name} | {r['images_per_second']:.3g} | {r['n_images']} | "
          f"{r['x_inference']:.3g} | {r['x_grad_cam']:.3g} |"
          for name, r in results["rows"].items()],
        "",
    ]
    write_directory_atomically(args.out, {
        "results.json": lambda p: write_json(results, p),
        "results.md": lambda p: p.write_text("\n".join(lines), encoding="utf-8"),
    }, overwrite=args.overwrite, marker="results.json")
    print("\n".join(lines))
    return results


if __name__ == "__main__":
    main()
