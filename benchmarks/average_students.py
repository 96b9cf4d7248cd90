"""Average the weights of distilled CIFAR-10 students into one student.

Students trained one after the other from the same start (a warm restart of
``distill_cifar10.py --init-from``) lie in one basin of the loss; the mean of
their weights can generalise better than any of them (weight averaging, as in
SWA). Batch-norm statistics are the mean of the students' unless
``--recompute-batch-norm`` estimates them again on the cifar10-train images as
they are (with that option one student is enough, to measure what the
re-estimate alone does). The result is an ordinary checkpoint directory, for
``agreement_cifar10.py --student`` or ``AttentiveDistillationAttribution.load``::

    python benchmarks/average_students.py \
        benchmarks/results/distill_cifar10/checkpoint-bb10-mix25 \
        benchmarks/results/distill_cifar10/checkpoint-mix25-mix28 \
        --out benchmarks/results/distill_cifar10/checkpoint-avg-mix

Data are read from ``../shared/data`` (``--data-dir``). The black box is not
called.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import update_bn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import cifar_split  # noqa: E402
from captum_akd import AttentiveDistillationAttribution  # noqa: E402


@torch.no_grad()
def average_weights(models: Sequence[nn.Module]) -> nn.Module:
    """A copy of ``models[0]`` whose floating-point weights and buffers are the
    mean of all the models'; integer buffers (batch counters) are the first's.

    Raises:
        ValueError: ``models`` is empty, or the models differ in their entries
            or tensor shapes.
    """
    if not models:
        raise ValueError("models: expected at least one model, got none")
    mean = copy.deepcopy(models[0])
    states = [m.state_dict() for m in models]
    for i, state in enumerate(states[1:], start=1):
        if state.keys() != states[0].keys() or any(
                state[k].shape != states[0][k].shape for k in state):
            raise ValueError(f"models[{i}]: its weights do not match models[0]'s "
                             "(another architecture or configuration)")
    for key, value in mean.state_dict().items():
        if value.is_floating_point():
            value.copy_(torch.stack([s[key].to(value) for s in states]).mean(0))
    return mean


def recalibrate_batch_norm(model: nn.Module, batches: Iterable[Tensor]) -> nn.Module:
    """Re-estimate every batch-norm layer's running mean and variance as the
    equal-weight average of their values on each of ``batches`` (torch's
    ``update_bn``); the model is left in eval mode."""
    update_bn(batches, model)
    return model.eval()


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("students", nargs="+", type=Path,
                        help="checkpoint directories written by distill_cifar10.py")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"),
                        help="folder holding cifar10/ (default ../shared/data)")
    parser.add_argument("--recompute-batch-norm", action="store_true",
                        help="estimate the batch-norm statistics again on the training "
                             "images as they are (default: the mean of the students')")
    parser.add_argument("--bn-images", type=int,
                        help="with --recompute-batch-norm, a class-balanced subset of this "
                             "many training images (default all 50,000)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing checkpoint at --out")
    args = parser.parse_args(argv)
    if len(args.students) < 2 and not args.recompute_batch_norm:
        parser.error("students: expected at least two checkpoint directories "
                     "(one is enough with --recompute-batch-norm)")
    if args.out.exists() and not args.overwrite:
        parser.error(f"--out: {args.out} exists; pass --overwrite to replace it")
    torch.set_num_threads(args.threads)

    loaded = [AttentiveDistillationAttribution.load(path) for path in args.students]
    student = average_weights([a.student for a in loaded])
    metadata = {"stage": "student", "averaged_from": [str(p) for p in args.students],
                "batch_norm": "mean of the students'"}
    if args.recompute_batch_norm:
        images, _ = cifar_split(Path(args.data_dir) / "cifar10" / "cifar10-train.zip",
                                args.bn_images)
        recalibrate_batch_norm(student, images.split(args.batch_size))
        metadata["batch_norm"] = f"estimated on {len(images)} training images"

    first = loaded[0]
    averaged = AttentiveDistillationAttribution(
        None, student, first.explainer, input_size=first.input_size,
        normalization=first.normalization, metadata=metadata)
    out = averaged.save(args.out, overwrite=args.overwrite)
    print(f"written: {out}")
    return out


if __name__ == "__main__":
    main()
