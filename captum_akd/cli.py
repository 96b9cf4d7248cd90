"""The ``captum-akd`` command.

Each subcommand is a :class:`Command` in :data:`COMMANDS`: a name, one line of
help, a function that adds its arguments to an ``argparse`` parser and a
function that runs it. Adding a subcommand is appending one entry.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset


class Command(NamedTuple):
    """A subcommand of ``captum-akd``.

    Attributes:
        name: what the user types (``captum-akd NAME``).
        help: one line for ``captum-akd --help``.
        description: the paragraph at the top of ``captum-akd NAME --help``.
        add_arguments: adds the subcommand's options to its parser.
        run: runs it with the parsed arguments; returns the exit status.
        epilog: text after the options (examples).

    Examples::

        >>> from captum_akd.cli import COMMANDS, Command, build_parser
        >>> hello = Command(
        ...     name="hello", help="print a greeting", description="Say hello.",
        ...     add_arguments=lambda parser: parser.add_argument("--name", default="you"),
        ...     run=lambda args: print(f"hello {args.name}") or 0,
        ... )
        >>> args = build_parser([*COMMANDS, hello]).parse_args(["hello", "--name", "Ada"])
        >>> args._run(args)
        hello Ada
        0
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str = ""


# ----------------------------------------------------------------------------- distill

STUDENTS = {
    **{f"cifar-resnet{d}": ("cifar", d) for d in (8, 14, 20, 32, 44, 56)},
    "resnet18": ("torchvision", "resnet18"),
    "resnet34": ("torchvision", "resnet34"),
    "resnet50": ("torchvision", "resnet50"),
    "efficientnet-lite0": ("efficientnet", "efficientnet-lite0"),
}
NORMALIZATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # The CIFAR-10 ResNets of ../shared/data were trained with ImageNet statistics.
    "cifar": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "none": None,
}

DISTILL_DESCRIPTION = """\
Distil a black-box image classifier into an attentive student, then train the
explanation network that turns the student's features into saliency maps
(stage 1 and stage 2 of attentive knowledge distillation). The black box is
only called, without gradients, on image batches. The result is a checkpoint
directory that AttentiveDistillationAttribution.load(DIR, forward_func=model)
reads; it is rewritten after every epoch, so an interrupted run continues with
--resume. Fidelity reports (top-1 agreement and KL with the black box; the
score the maps keep and remove) are printed and stored in DIR/config.json.

Runs unchanged on several GPUs or CPU processes with
  torchrun --nproc_per_node=N -m captum_akd.cli distill ...
(--batch-size is then per process)."""

DISTILL_EPILOG = """\
examples:
  # CIFAR-10: ResNet-56 black box, ResNet-20 student started from public weights
  captum-akd distill \\
      --target captum_akd.zoo.cifar_resnet:cifar_resnet56 \\
      --target-arg weights=../shared/data/weights/cifar10_resnet56.safetensors \\
      --data ../shared/data/cifar10/cifar10-train.zip \\
      --val-data ../shared/data/cifar10/cifar10-test.zip \\
      --normalize cifar --student cifar-resnet20 \\
      --student-weights ../shared/data/weights/cifar10_resnet20.safetensors \\
      --epochs 30 --out akd-cifar10

  # a folder of photos (class sub-folders or one flat folder, labels optional)
  captum-akd distill --target mypackage.models:build_classifier --data photos/ \\
      --image-size 224 --normalize imagenet --student resnet18 --out akd-photos
"""


def _parse_target_arg(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--target-arg must be KEY=VALUE; got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected S or HxW, e.g. 224 or 64x48; got {text!r}"
        ) from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected S or HxW with positive sizes; got {text!r}")
    return values[0], values[1]


def _parse_normalize(text: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    if text in NORMALIZATIONS:
        return NORMALIZATIONS[text]
    try:
        mean, std = text.split("/")
        return tuple(float(v) for v in mean.split(",")), tuple(float(v) for v in std.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--normalize takes {', '.join(NORMALIZATIONS)} or MEAN,MEAN,MEAN/STD,STD,STD; "
            f"got {text!r}"
        ) from None


def _area_target(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction or 'none'; got {text!r}") from None


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``captum-akd distill`` to ``parser``.

    The options are gathered in groups (black box, data, student and
    explainer, stage 1, stage 2, run); defaults of the training options are
    those of :class:`~captum_akd.distill.DistillConfig` and
    :class:`~captum_akd.distill.ExplainerConfig`. ``--target``, ``--data``
    and ``--out`` are required.

    Args:
        parser: the sub-command's parser.

    Returns:
        None.

    Examples::

        >>> import argparse
        >>> from captum_akd.cli import add_distill_arguments
        >>> parser = argparse.ArgumentParser()
        >>> add_distill_arguments(parser)
        >>> args = parser.parse_args(["--target", "mypkg.models:build", "--data", "train.zip",
        ...                           "--out", "run", "--image-size", "64x48"])
        >>> args.image_size, args.student, args.batch_size
        ((64, 48), 'cifar-resnet20', 128)
    """
    from captum_akd.distill import DistillConfig, ExplainerConfig

    s1, s2 = DistillConfig(), ExplainerConfig()
    group = parser.add_argument_group("black box")
    group.add_argument(
        "--target", required=True, metavar="MODULE:FACTORY",
        help="the black box: FACTORY in the importable MODULE is called (with the "
             "--target-arg values as keyword arguments) and must return a callable mapping "
             "N x C x H x W images to N x K logits; an nn.Module is put in eval mode. "
             "FACTORY may also name a ready model object.")
    group.add_argument(
        "--target-arg", action="append", default=[], type=_parse_target_arg,
        metavar="KEY=VALUE",
        help="keyword argument for FACTORY (repeatable); VALUE is read as JSON when it "
             "parses (numbers, true/false, lists), else as a string.")

    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", required=True, metavar="PATH",
        help="training images: a .zip archive laid out as <split>/<class>/<image> (the "
             "CIFAR-10 archives of ../shared/data/cifar10), or a folder with one "
             "sub-folder per class, or a flat folder of unlabelled images. Labels are "
             "optional: without them the black box's prediction is the hard label.")
    group.add_argument(
        "--val-data", metavar="PATH",
        help="held-out images for the fidelity reports, same forms as --data; without it "
             "the reports use 1024 training images.")
    group.add_argument("--split", metavar="NAME",
                       help="top-level folder of a --data zip holding several splits.")
    group.add_argument("--val-split", metavar="NAME",
                       help="top-level folder of a --val-data zip holding several splits.")
    group.add_argument("--limit", type=int, metavar="N",
                       help="use only N training images (class-balanced for a zip).")
    group.add_argument("--val-limit", type=int, metavar="N",
                       help="use only N held-out images.")
    group.add_argument(
        "--image-size", type=_parse_size, metavar="S|HxW",
        help="resize every image to S x S or H x W (folders: scale to cover and centre-crop). "
             "Needed when images differ in size.")
    group.add_argument(
        "--normalize", type=_parse_normalize, default=None, metavar="PRESET|MEAN/STD",
        help="map [0, 1] RGB to the black box's input space: 'imagenet', 'cifar' (the "
             "ImageNet statistics the CIFAR ResNets of ../shared/data use), 'none' "
             "(default), or MEAN,MEAN,MEAN/STD,STD,STD. Recorded in the checkpoint; "
             "explain images normalised the same way.")
    group.add_argument("--preload", action="store_true",
                       help="decode a zip archive into memory once (fast epochs; 150 MB for "
                            "CIFAR-10 train).")
    group.add_argument("--workers", type=int, default=0, metavar="N",
                       help="DataLoader worker processes (default 0: load in the main process).")

    group = parser.add_argument_group("student and explainer")
    group.add_argument("--student", choices=sorted(STUDENTS), default="cifar-resnet20",
                       metavar="ARCH",
                       help=f"student architecture: {', '.join(STUDENTS)} (default "
                            "cifar-resnet20). Its head gets as many classes as the black box "
                            "returns.")
    group.add_argument(
        "--student-weights", metavar="PATH",
        help="start the student's backbone from these weights: a CIFAR ResNet safetensors "
             "file of the same depth, or a torchvision ResNet state dict; for "
             "efficientnet-lite0 write 'pretrained' (ImageNet weights from the optional "
             "package). The attention blocks then start as the identity.")
    group.add_argument("--peer", choices=sorted(STUDENTS), metavar="ARCH",
                       help="train a second student of this architecture alongside by mutual "
                            "transfer of local attention (Cheng et al.); only the first is kept.")
    group.add_argument("--peer-weights", metavar="PATH",
                       help="backbone weights of the --peer student, as --student-weights.")
    group.add_argument("--explainer-width", type=int, default=64, metavar="C",
                       help="channels of the explainer's deepest decoder level (default 64).")

    group = parser.add_argument_group("stage 1: distillation")
    group.add_argument("--epochs", type=int, default=s1.epochs,
                       help=f"stage-1 epochs (default {s1.epochs}).")
    group.add_argument("--optimizer", choices=["adamw", "sgd"], default=s1.optimizer,
                       help="optimizer of both stages (default adamw; sgd uses Nesterov "
                            "momentum). Learning rates follow a cosine schedule to 0.")
    group.add_argument("--lr", type=float,
                       help="stage-1 peak learning rate (default 2e-3 for adamw, 0.05 for sgd).")
    group.add_argument("--weight-decay", type=float,
                       help="stage-1 weight decay (default 0.05 adamw, 5e-4 sgd; never on "
                            "biases, norms or attention gates).")
    group.add_argument("--momentum", type=float, default=s1.momentum,
                       help=f"SGD momentum (default {s1.momentum}).")
    group.add_argument("--warmup-epochs", type=float, default=s1.warmup_epochs,
                       help=f"stage-1 linear warm-up in epochs (default {s1.warmup_epochs:g}).")
    group.add_argument("--temperature", type=float, default=s1.temperature,
                       help=f"distillation temperature T (default {s1.temperature:g}).")
    group.add_argument("--alpha", type=float, default=s1.alpha,
                       help="weight of T^2 * KL(target || student) against (1 - alpha) * "
                            f"cross-entropy on hard labels (default {s1.alpha:g}).")
    group.add_argument("--crop", choices=["pad", "resized", "none"], default=s1.crop,
                       help="random crop applied before both models see a batch: 'pad' "
                            "(pad and crop back, for small images; default), 'resized' "
                            "(random resized crop, for photos) or 'none'.")
    group.add_argument("--padding", type=int,
                       help="padding of --crop pad (default an eighth of the side).")
    group.add_argument("--no-flip", action="store_true",
                       help="no random horizontal flips (in either stage).")
    group.add_argument("--mixup", type=float, default=s1.mixup,
                       help="mixup Beta parameter, 0 to disable (default 0).")
    group.add_argument("--cutmix", type=float, default=s1.cutmix,
                       help="CutMix Beta parameter, 0 to disable (default 0): a box from "
                            "another image of the batch is pasted in, and the black box "
                            "labels the result; with --mixup too, each batch gets one of "
                            "the two.")
    group.add_argument("--jpeg-quality", type=int, nargs="+", metavar="Q",
                       help="re-encode each augmented training image as a JPEG of quality Q, "
                            "or of one drawn per image from LOW HIGH, before both models see "
                            "it: for data that are JPEGs already, whose block grid a crop "
                            "shifts (default: off).")
    group.add_argument("--grad-clip", type=float,
                       help="clip the gradient norm to this value (both stages).")
    group.add_argument("--mutual-weight", type=float, default=s1.mutual_weight,
                       help=f"with --peer: weight of the mutual KL (default {s1.mutual_weight:g}).")
    group.add_argument("--attention-weight", type=float, default=s1.attention_weight,
                       help="with --peer: weight of the local-attention Pearson loss "
                            f"(default {s1.attention_weight:g}).")
    group.add_argument("--attention-grid", type=int, default=s1.attention_grid,
                       help="with --peer: cut attention maps into a k x k grid "
                            f"(default {s1.attention_grid}).")
    group.add_argument("--eval-every", type=int, default=s1.eval_every,
                       help="measure agreement on the held-out data every N epochs (0: "
                            f"only at the end; default {s1.eval_every}).")

    group = parser.add_argument_group("stage 2: explanation network")
    group.add_argument("--explainer-epochs", type=int, default=s2.epochs,
                       help=f"stage-2 epochs (default {s2.epochs}).")
    group.add_argument("--explainer-lr", type=float,
                       help="stage-2 peak learning rate (default 2e-3 adamw, 0.02 sgd).")
    group.add_argument("--preserve-weight", type=float, default=s2.preserve_weight,
                       help="weight of CE(student(M*x + (1-M)*b), c): the kept pixels must "
                            f"carry the class (default {s2.preserve_weight:g}).")
    group.add_argument("--destroy-weight", type=float, default=s2.destroy_weight,
                       help="weight of -log(1 - p(c | (1-M)*x + M*b)): removing the map must "
                            f"kill the class (default {s2.destroy_weight:g}).")
    group.add_argument("--area-weight", type=float, default=s2.area_weight,
                       help=f"weight of the area term (default {s2.area_weight:g}).")
    group.add_argument("--area-target", type=_area_target, default=s2.area_target,
                       metavar="FRACTION|none",
                       help="share of the image a map should keep; smaller gives tighter, "
                            "more peaked maps ('none': plain mean(M) penalty; default "
                            f"{s2.area_target:g}).")
    group.add_argument("--tv-weight", type=float, default=s2.tv_weight,
                       help=f"weight of the total variation of M (default {s2.tv_weight:g}).")
    group.add_argument("--other-class-fraction", type=float, default=s2.other_class_fraction,
                       help="share of images explained for a class other than the black "
                            "box's prediction, so maps stay class-specific (default "
                            f"{s2.other_class_fraction:g}).")
    group.add_argument("--other-class", choices=["second", "random"], default=s2.other_class,
                       help="that other class: the student's second most likely ('second', "
                            "default) or a random one.")
    group.add_argument("--blur-sigma", type=float, default=s2.blur_sigma,
                       help="sigma of the Gaussian blur b that removed pixels are replaced "
                            f"with (kernel {s2.blur_kernel}; default {s2.blur_sigma:g}).")

    group = parser.add_argument_group("run")
    group.add_argument("--out", required=True, metavar="DIR",
                       help="checkpoint directory, rewritten after every epoch.")
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --out (same options required); a missing "
                            "--out starts a new run.")
    group.add_argument("--overwrite", action="store_true",
                       help="start over in an --out that already holds a checkpoint.")
    group.add_argument("--batch-size", type=int, default=128,
                       help="images per batch and process (default 128).")
    group.add_argument("--device", help="cpu, cuda or cuda:N (default cuda when available).")
    group.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                       help="mixed precision, bfloat16 autocast of the student (default: on with "
                            "CUDA; --amp turns it on for the CPU too, fast on CPUs with "
                            "bfloat16 instructions).")
    group.add_argument("--seed", type=int, default=0,
                       help="seeds the student's initialisation, data order, augmentation "
                            "and class choices (default 0).")
    group.add_argument("--threads", type=int, metavar="N",
                       help="torch CPU threads (default: torch's choice).")
    group.add_argument("--quiet", action="store_true", help="no progress bars or log lines.")


def load_target(spec: str, kwargs: dict[str, Any]) -> Callable[..., Tensor]:
    """Import ``MODULE:FACTORY`` and build the black box.

    ``FACTORY`` (a dotted attribute path inside ``MODULE``) is called with
    ``kwargs``; it may also name a ready :class:`torch.nn.Module`, in which
    case ``kwargs`` must be empty.

    Args:
        spec: ``"MODULE:FACTORY"``, e.g. ``"captum_akd.zoo:cifar_resnet56"``.
        kwargs: keyword arguments for the factory (``--target-arg`` values).

    Returns:
        The black box, a callable ``N x C x H x W -> N x K`` logits; an
        :class:`torch.nn.Module` is put in eval mode.

    Raises:
        ValueError: for a malformed ``spec``, a module that does not import, a
            missing attribute, or a factory that does not return a callable.

    Examples::

        >>> from captum_akd.cli import load_target
        >>> model = load_target("captum_akd.zoo.cifar_resnet:cifar_resnet20", {"num_classes": 5})
        >>> type(model).__name__, model.training
        ('CifarResNet', False)
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--target must be MODULE:FACTORY, e.g. mypkg.models:build; got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"--target: cannot import {module_name!r}: {err}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--target: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        if kwargs:
            raise ValueError(f"--target {spec!r} names a model object; --target-arg needs a "
                             "factory")
        model = obj
    elif callable(obj):
        model = obj(**kwargs)
    else:
        raise ValueError(f"--target {spec!r} is neither a factory nor a model")
    if not callable(model):
        raise ValueError(f"--target factory returned {type(model).__name__}, not a model")
    if isinstance(model, nn.Module):
        model.eval()
    return model


class Normalized(Dataset):
    """A dataset whose images are normalised per channel: ``(x - mean) / std``.

    Args:
        base: a dataset of ``(image, label)`` pairs, images ``C x H x W``
            float tensors.
        mean: ``C`` per-channel means.
        std: ``C`` per-channel standard deviations.

    Returns (``dataset[i]``):
        ``(image, label)``: ``base[i]``'s image normalised, same shape, and its
        label unchanged.

    Examples::

        >>> from torch.utils.data import TensorDataset
        >>> from captum_akd.cli import Normalized
        >>> base = TensorDataset(torch.full((4, 3, 8, 8), 0.5), torch.arange(4))
        >>> dataset = Normalized(base, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        >>> image, label = dataset[1]
        >>> image.shape, image.abs().max().item(), label.item()
        (torch.Size([3, 8, 8]), 0.0, 1)
    """

    def __init__(self, base: Dataset, mean: Sequence[float], std: Sequence[float]) -> None:
        self.base = base
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return (image - self.mean) / self.std, label


def open_images(
    path: str,
    split: str | None,
    limit: int | None,
    image_size: tuple[int, int] | None,
    preload: bool,
    normalize: tuple[Sequence[float], Sequence[float]] | None,
) -> tuple[Dataset, bool]:
    """Open a zip archive or an image folder as a dataset of ``(image, label)``.

    Args:
        path: a ``.zip`` archive read by :class:`~captum_akd.data.CifarZip`, or
            a folder read by :class:`~captum_akd.data.ImageFolderDataset`.
        split: the archive's top-level folder to read (zip only).
        limit: keep at most this many images: class-balanced for a zip, evenly
            spaced for a folder; ``None`` keeps all.
        image_size: ``(H, W)`` a folder's images are resized and centre-cropped
            to; ignored for a zip (the caller resizes).
        preload: decode a zip archive into memory once.
        normalize: ``(mean, std)`` per channel applied with :class:`Normalized`,
            or ``None`` for ``[0, 1]`` RGB.

    Returns:
        ``(dataset, sized)``: the dataset, whose items are ``3 x H x W`` float
        images and int labels, and whether its images already have
        ``image_size`` (true only for a folder opened with one).

    Raises:
        ValueError: if ``path`` is neither a ``.zip`` file nor a folder.

    Examples::

        >>> from captum_akd.cli import NORMALIZATIONS, open_images
        >>> dataset, sized = open_images("../shared/data/cifar10/cifar10-test.zip", None, 100,
        ...                              None, False, NORMALIZATIONS["cifar"])
        >>> len(dataset), sized
        (100, False)
    """
    from captum_akd.data import CifarZip, ImageFolderDataset

    sized = False
    if os.path.isfile(path) and path.lower().endswith(".zip"):
        dataset: Dataset = CifarZip(path, limit=limit, split=split, preload=preload)
    elif os.path.isdir(path):
        dataset = ImageFolderDataset(path, image_size=image_size)
        sized = image_size is not None
        if limit is not None and limit < len(dataset):
            step = len(dataset) / limit
            dataset = Subset(dataset, [int(i * step) for i in range(limit)])
    else:
        raise ValueError(f"{path!r} is neither a .zip archive nor a folder of images")
    if normalize is not None:
        dataset = Normalized(dataset, *normalize)
    return dataset, sized


def build_student(name: str, num_classes: int, weights: str | None):
    """Build the student architecture ``name`` with ``num_classes`` outputs.

    Args:
        name: a key of :data:`STUDENTS` (``"cifar-resnet20"``, ``"resnet18"``,
            ``"efficientnet-lite0"``, ...).
        num_classes: the black box's number of classes ``K``.
        weights: backbone weights to start from: a CIFAR ResNet safetensors
            file, a torchvision ResNet state dict, ``"pretrained"`` for
            EfficientNet-Lite0, or ``None`` for a random initialisation.

    Returns:
        An :class:`~captum_akd.models.AttentiveStudent` mapping ``N x 3 x H x W``
        images to ``N x num_classes`` logits.

    Raises:
        ValueError: for EfficientNet-Lite0 weights other than ``"pretrained"``.

    Examples::

        >>> from captum_akd.cli import build_student
        >>> student = build_student("cifar-resnet8", 10, None)
        >>> type(student).__name__, student.num_classes
        ('AttentiveStudent', 10)
    """
    from captum_akd.models import cifar_resnet_student, efficientnet_lite_student, resnet_student

    family, arg = STUDENTS[name]
    if family == "cifar":
        return cifar_resnet_student(depth=arg, num_classes=num_classes, backbone_weights=weights)
    if family == "torchvision":
        return resnet_student(arg, num_classes=num_classes, weights=weights)
    if weights not in (None, "pretrained"):
        raise ValueError("efficientnet-lite0 takes --student-weights pretrained or nothing")
    return efficientnet_lite_student(num_classes, arg, pretrained=weights == "pretrained")


def run_distill(args: argparse.Namespace) -> int:
    """Run ``captum-akd distill``: build everything from the options and train.

    Opens the black box and the data, asks the black box once for its number
    of classes, builds the student (and ``--peer``) and the explainer, and
    calls :func:`captum_akd.distill.distill`, which writes the checkpoint to
    ``--out``. The main process then prints the fidelity reports.

    Args:
        args: the parsed options (see :func:`add_distill_arguments`).

    Returns:
        The exit status, 0.

    Examples::

        >>> from captum_akd.cli import build_parser, run_distill
        >>> args = build_parser().parse_args([
        ...     "distill", "--target", "captum_akd.zoo:cifar_resnet56",
        ...     "--target-arg", "weights=../shared/data/weights/cifar10_resnet56.safetensors",
        ...     "--data", "../shared/data/cifar10/cifar10-train.zip", "--limit", "512",
        ...     "--normalize", "cifar", "--epochs", "1", "--explainer-epochs", "1",
        ...     "--out", "akd-small"])
        >>> run_distill(args)
        0
    """
    import captum_akd
    from captum_akd._validation import call_black_box
    from captum_akd.distill.batches import probe_batch
    from captum_akd.distill.distributed import setup
    from captum_akd.models import ExplanationNet

    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = setup(args.device)
    target = load_target(args.target, dict(args.target_arg))
    if isinstance(target, nn.Module):
        target.to(ctx.device)
    train, sized = open_images(args.data, args.split, args.limit, args.image_size, args.preload,
                               args.normalize)
    val = None
    if args.val_data:
        val, _ = open_images(args.val_data, args.val_split, args.val_limit, args.image_size,
                             args.preload, args.normalize)
    image_size = None if sized else args.image_size
    # The student's head must match the black box: ask the black box once.
    images, _ = probe_batch(train, image_size, "--data", max_items=2, spread=0)
    num_classes = call_black_box(target, images.to(ctx.device)).shape[1]
    torch.manual_seed(args.seed)
    student = build_student(args.student, num_classes, args.student_weights)
    peer = build_student(args.peer, num_classes, args.peer_weights) if args.peer else None
    explainer = ExplanationNet.for_student(student, width=args.explainer_width)
    flip = not args.no_flip
    student_config = dict(
        epochs=args.epochs, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
        momentum=args.momentum, warmup_epochs=args.warmup_epochs, temperature=args.temperature,
        alpha=args.alpha, crop=args.crop, padding=args.padding, flip=flip, mixup=args.mixup,
        cutmix=args.cutmix,
        jpeg_quality=args.jpeg_quality,
        grad_clip=args.grad_clip, mutual_weight=args.mutual_weight,
        attention_weight=args.attention_weight, attention_grid=args.attention_grid,
        eval_every=args.eval_every,
    )
    explainer_config = dict(
        epochs=args.explainer_epochs, optimizer=args.optimizer, lr=args.explainer_lr,
        momentum=args.momentum, grad_clip=args.grad_clip, flip=flip,
        preserve_weight=args.preserve_weight, destroy_weight=args.destroy_weight,
        area_weight=args.area_weight, area_target=args.area_target, tv_weight=args.tv_weight,
        other_class_fraction=args.other_class_fraction, other_class=args.other_class,
        blur_sigma=args.blur_sigma,
    )
    normalization = None
    if args.normalize is not None:
        normalization = {"mean": list(args.normalize[0]), "std": list(args.normalize[1])}
    attr = captum_akd.distill(
        target, train, student=student, val_data=val, explainer=explainer, out=args.out,
        student_config=student_config, explainer_config=explainer_config, peer=peer,
        batch_size=args.batch_size, image_size=image_size, normalization=normalization,
        device=ctx.device, amp=args.amp, seed=args.seed, num_workers=args.workers,
        resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
    )
    if ctx.is_main and not args.quiet:
        fidelity = attr.metadata.get("fidelity", {})
        print(json.dumps(fidelity, indent=2))
        print(f"checkpoint: {args.out}  (AttentiveDistillationAttribution.load({args.out!r}, "
              "forward_func=model))")
    return 0


DISTILL = Command(
    name="distill",
    help="distil a black-box classifier and train its explanation network",
    description=DISTILL_DESCRIPTION,
    add_arguments=add_distill_arguments,
    run=run_distill,
    epilog=DISTILL_EPILOG,
)

DEMO_DESCRIPTION = """\
Run the whole pipeline on built-in data, with nothing downloaded: train a plain
CNN on the synthetic fine-grained dataset (it plays the black box), distil it
into an attentive student and an explanation network, explain held-out images
with AKD, layer-wise surrogate CAM, Grad-CAM, RISE and LIME, score every map on
the black box, and write report.md, results.json, maps.png, curves.png and the
checkpoint to --out. The full run takes about ten minutes on two CPU cores,
--quick about two."""


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``captum-akd demo`` to ``parser``.

    Args:
        parser: the sub-command's parser.

    Returns:
        None.

    Examples::

        >>> build_parser().parse_args(["demo", "--quick"]).quick
        True
    """
    parser.add_argument("--out", default="akd-demo",
                        help="directory the report is written to (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller run of about two minutes (fewer images, epochs, masks)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it exists (default: refuse)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run_demo_command(args: argparse.Namespace) -> int:
    """Run ``captum-akd demo`` and print where everything is and what it means.

    Args:
        args: the parsed options (see :func:`add_demo_arguments`).

    Returns:
        The exit status, 0.

    Examples::

        >>> run_demo_command(build_parser().parse_args(["demo", "--quick", "--out", "q"]))
        0
    """
    from pathlib import Path

    from captum_akd.demo import reading, run_demo

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"--out {str(out)!r} exists; pass --overwrite to replace it")
    results = run_demo(out, quick=args.quick, overwrite=args.overwrite, progress=not args.quiet)
    print(f"report:      {out / 'report.md'}")
    print(f"results:     {out / 'results.json'}")
    print(f"maps:        {out / 'maps.png'}")
    print(f"curves:      {out / 'curves.png'}")
    print(f"checkpoint:  {out / 'checkpoint'}  "
          f"(AttentiveDistillationAttribution.load({str(out / 'checkpoint')!r}, "
          "forward_func=model))")
    print()
    print(reading(results))
    return 0


DEMO = Command(
    name="demo",
    help="the end-to-end demo on built-in data (the README's first command)",
    description=DEMO_DESCRIPTION,
    add_arguments=add_demo_arguments,
    run=run_demo_command,
    epilog="example:\n  captum-akd demo --out akd-demo\n  captum-akd demo --quick --out /tmp/q",
)

#: The subcommands, in the order ``captum-akd --help`` lists them.
COMMANDS: list[Command] = [DISTILL, DEMO]


def build_parser(commands: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    """Build the ``captum-akd`` parser with one sub-parser per command.

    Each sub-parser stores its command's ``run`` function as ``args._run``,
    which :func:`main` calls.

    Args:
        commands: the subcommands; ``None`` means :data:`COMMANDS`.

    Returns:
        An :class:`argparse.ArgumentParser` that requires a command name.

    Examples::

        >>> from captum_akd.cli import build_parser
        >>> args = build_parser().parse_args(["demo", "--quick"])
        >>> args.command, args.quick, args.out
        ('demo', True, 'akd-demo')
    """
    from captum_akd._version import __version__

    parser = argparse.ArgumentParser(
        prog="captum-akd",
        description="Fast saliency maps for black-box image classifiers by attentive "
                    "knowledge distillation, with a Captum interface.",
    )
    parser.add_argument("--version", action="version", version=f"captum-akd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands if commands is not None else COMMANDS:
        child = sub.add_parser(
            command.name, help=command.help, description=command.description,
            epilog=command.epilog or None, formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(child)
        child.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``captum-akd`` command.

    Errors in the user's input (``ValueError``, ``TypeError``, missing files)
    are printed as one line, without a traceback, with exit status 2.

    Args:
        argv: the arguments after the program name; ``None`` reads
            ``sys.argv``.

    Returns:
        The exit status: the command's (0) or 2 for an input error.

    Examples::

        >>> from captum_akd.cli import main
        >>> main(["distill", "--target", "no_such_module:build", "--data", "x", "--out", "o"])
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args._run(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as err:
        print(f"captum-akd {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
