"""The ``captum-akd`` command.

Each subcommand is a :class:`Command` in :data:`COMMANDS`: a name, one line of
help, a function that adds its arguments to an ``argparse`` parser and a
function that runs it. Adding a subcommand is appending one entry.
"""

from __future__ import annotations

import argparse
import dataclasses
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


def _optional_float(text: str) -> float | None:
    """``none`` turns a float setting off on the command line (``--area-target none``)."""
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none'; got {text!r}") from None


def _image_size(text: str) -> tuple[int, int]:
    """Bad sizes fail while parsing, with argparse's usage line, before anything runs."""
    from captum_akd._validation import image_size_pair

    try:
        return image_size_pair(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


_TYPES: dict[Any, Callable[[str], Any]] = {"optional_float": _optional_float,
                                           "image_size": _image_size}


def add_config_arguments(
    group: argparse._ArgumentGroup, cls: type, prefix: str = "", taken: frozenset = frozenset()
) -> None:
    """Add one option per field of a config dataclass, from the field's own metadata.

    An option is ``--field-name`` (or the field's ``flag``), with the field's
    help text and default; booleans get ``--x/--no-x``. Its value lands in
    ``args.<prefix><field>``. Fields whose option name is in ``taken`` (used
    by another config already) are spelled ``--<prefix>field-name`` instead.

    Args:
        group: the parser or argument group to add to.
        cls: :class:`~captum_akd.distill.RunConfig`,
            :class:`~captum_akd.distill.DistillConfig` or
            :class:`~captum_akd.distill.ExplainerConfig`.
        prefix: the destination prefix (``"explainer_"`` for stage 2).
        taken: field names whose plain option another config already uses.

    Examples::

        >>> import argparse
        >>> from captum_akd.distill import ExplainerConfig
        >>> parser = argparse.ArgumentParser()
        >>> add_config_arguments(parser, ExplainerConfig, "explainer_", frozenset({"epochs"}))
        >>> args = parser.parse_args(["--explainer-epochs", "3", "--area-target", "none"])
        >>> args.explainer_epochs, args.explainer_area_target, args.explainer_tv_weight
        (3, None, 0.05)
    """
    from captum_akd.distill.config import _default_text

    for f in dataclasses.fields(cls):
        cli = dict(f.metadata.get("cli", {}))
        name = f.name.replace("_", "-")
        flag = cli.pop("flag", None) or (
            f"--{prefix.replace('_', '-')}{name}" if f.name in taken else f"--{name}")
        kwargs: dict[str, Any] = {"dest": prefix + f.name, "default": f.default}
        if isinstance(f.default, bool) or cli.pop("boolean", False):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            given = cli.pop("type", None)
            kwargs["type"] = _TYPES.get(given, given) or type(f.default)
            if "choices" not in cli:
                kwargs["metavar"] = {int: "N", float: "X"}.get(kwargs["type"], "VALUE")
        kwargs.update(cli)
        required = kwargs.get("required", False)
        help_text = f.metadata["help"]
        kwargs["help"] = help_text + ("." if required else
                                      f" (default: {_default_text(cls, f)}).")
        if required:
            kwargs.pop("default")
        group.add_argument(flag, **kwargs)


def config_from_args(cls: type, args: argparse.Namespace, prefix: str = "") -> Any:
    """Build a config dataclass from the options :func:`add_config_arguments` added.

    Args:
        cls: the config class.
        args: the parsed options.
        prefix: the destination prefix used when adding them.

    Returns:
        A validated ``cls`` instance.

    Examples::

        >>> import argparse
        >>> from captum_akd.distill import DistillConfig
        >>> parser = argparse.ArgumentParser()
        >>> add_config_arguments(parser, DistillConfig)
        >>> config_from_args(DistillConfig, parser.parse_args(["--mixup", "0.5"])).mixup
        0.5
    """
    return cls(**{f.name: getattr(args, prefix + f.name) for f in dataclasses.fields(cls)})


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``captum-akd distill`` to ``parser``.

    The black box, data and student options are written here; those of the
    two training stages and of the run are generated from
    :class:`~captum_akd.distill.DistillConfig`,
    :class:`~captum_akd.distill.ExplainerConfig` and
    :class:`~captum_akd.distill.RunConfig` (see :func:`add_config_arguments`).
    ``--target``, ``--data`` and ``--out`` are required.

    Args:
        parser: the sub-command's parser.

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
    from captum_akd.distill import DistillConfig, ExplainerConfig, RunConfig
    from captum_akd.models import STUDENT_ARCHS

    group = parser.add_argument_group("black box")
    group.add_argument(
        "--target", required=True, metavar="MODULE:FACTORY",
        help="the black box: FACTORY in the importable MODULE is called (with the "
             "--target-arg values as keyword arguments) and must return a callable mapping "
             "N x C x H x W images to N x K logits; an nn.Module is put in eval mode. "
             "FACTORY may also name a ready model object. Or the path of a deployed model "
             "file ending in .onnx, run by ONNX Runtime (pip install captum-akd[onnx]); "
             "--target-arg then sets OnnxBlackBox options, e.g. outputs=probabilities, "
             "input_name=NAME, batch_size=N.")
    group.add_argument(
        "--target-arg", action="append", default=[], type=_parse_target_arg,
        metavar="KEY=VALUE",
        help="keyword argument for FACTORY (repeatable); VALUE is read as JSON when it "
             "parses (numbers, true/false, lists), else as a string.")

    group = parser.add_argument_group("data")
    group.add_argument("--data", help="training images: a .zip archive laid out as "
                       "<split>/<class>/<image> (the CIFAR-10 archives of "
                       "../shared/data/cifar10), or a folder with one sub-folder per class, or "
                       "a flat folder of unlabelled images. Labels are optional: without them "
                       "the black box's prediction is the hard label.",
                       required=True, metavar="PATH")
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
    group.add_argument("--preload", action="store_true",
                       help="decode a zip archive into memory once (fast epochs; 150 MB for "
                            "CIFAR-10 train).")

    group = parser.add_argument_group("student and explainer")
    group.add_argument("--student", choices=sorted(STUDENT_ARCHS), default="cifar-resnet20",
                       metavar="ARCH",
                       help=f"student architecture: {', '.join(STUDENT_ARCHS)} (default "
                            "cifar-resnet20). Its head gets as many classes as the black box "
                            "returns.")
    group.add_argument(
        "--student-weights", metavar="PATH",
        help="start the student's backbone from these weights: a CIFAR ResNet safetensors "
             "file of the same depth, or a torchvision ResNet state dict; for "
             "efficientnet-lite0 write 'pretrained' (ImageNet weights from the optional "
             "package). The attention blocks then start as the identity.")
    group.add_argument("--peer", choices=sorted(STUDENT_ARCHS), metavar="ARCH",
                       help="train a second student of this architecture alongside by mutual "
                            "transfer of local attention (Cheng et al.); only the first is kept.")
    group.add_argument("--peer-weights", metavar="PATH",
                       help="backbone weights of the --peer student, as --student-weights.")
    group.add_argument("--explainer-width", type=int, default=64, metavar="C",
                       help="channels of the explainer's deepest decoder level (default 64).")

    stage1 = frozenset(f.name for f in dataclasses.fields(DistillConfig))
    add_config_arguments(parser.add_argument_group("stage 1: distillation"), DistillConfig)
    add_config_arguments(parser.add_argument_group("stage 2: explanation network"),
                         ExplainerConfig, "explainer_", stage1)
    group = parser.add_argument_group("run")
    add_config_arguments(group, RunConfig)
    group.add_argument("--threads", type=int, metavar="N",
                       help="torch CPU threads (default: torch's choice).")


def load_target(spec: str, kwargs: dict[str, Any]) -> Callable[..., Tensor]:
    """Import ``MODULE:FACTORY``, or open a ``.onnx`` file, and build the black box.

    ``FACTORY`` (a dotted attribute path inside ``MODULE``) is called with
    ``kwargs``; it may also name a ready :class:`torch.nn.Module`, in which
    case ``kwargs`` must be empty. A ``spec`` ending in ``.onnx`` that names
    an existing file (or has no ``:``) is a deployed model instead: it is
    opened as an :class:`~captum_akd.blackbox.OnnxBlackBox` with ``kwargs``
    as its keyword arguments (``outputs``, ``input_name``, ``output_name``,
    ``batch_size``, ``providers``, ``num_classes``, ``threads``).

    Args:
        spec: ``"MODULE:FACTORY"``, e.g. ``"captum_akd.zoo:cifar_resnet56"``,
            or the path of an ONNX model, e.g. ``"model.onnx"``.
        kwargs: keyword arguments for the factory or for
            :class:`~captum_akd.blackbox.OnnxBlackBox` (``--target-arg``
            values).

    Returns:
        The black box, a callable ``N x C x H x W -> N x K`` logits; an
        :class:`torch.nn.Module` is put in eval mode.

    Raises:
        ValueError: for a malformed ``spec``, a module that does not import, a
            missing attribute, or a factory that does not return a callable;
            for a ``.onnx`` path that does not exist, an option
            :class:`~captum_akd.blackbox.OnnxBlackBox` does not take, a model
            it refuses, or ONNX Runtime not installed (the message says
            ``pip install captum-akd[onnx]``).

    Examples::

        >>> from captum_akd.cli import load_target
        >>> model = load_target("captum_akd.zoo.cifar_resnet:cifar_resnet20", {"num_classes": 5})
        >>> type(model).__name__, model.training
        ('CifarResNet', False)
        >>> torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), "resnet20.onnx",
        ...                   dynamo=False, input_names=["images"],
        ...                   dynamic_axes={"images": {0: "n"}})
        >>> black_box = load_target("resnet20.onnx", {"batch_size": 8})
        >>> black_box.batch_size, black_box(torch.zeros(2, 3, 32, 32)).shape
        (8, torch.Size([2, 5]))
    """
    if spec.lower().endswith(".onnx") and (os.path.isfile(spec) or ":" not in spec):
        return _load_onnx_target(spec, kwargs)
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


def _load_onnx_target(path: str, kwargs: dict[str, Any]) -> Callable[..., Tensor]:
    """``--target model.onnx``: option and install errors as one-line ValueErrors."""
    import inspect

    from captum_akd.blackbox import OnnxBlackBox

    if not os.path.isfile(path):
        raise ValueError(f"--target {path!r}: no such ONNX model file")
    options = set(inspect.signature(OnnxBlackBox).parameters) - {"path_or_session"}
    unknown = sorted(set(kwargs) - options)
    if unknown:
        raise ValueError(f"--target-arg {', '.join(unknown)}: not an option of an ONNX target; "
                         f"OnnxBlackBox takes {', '.join(sorted(options))}")
    try:
        return OnnxBlackBox(path, **kwargs)
    except ImportError as err:  # main() prints ValueErrors as one line, not a traceback
        raise ValueError(f"--target {path!r}: {err}") from None


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

        >>> from captum_akd.cli import open_images
        >>> imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        >>> dataset, sized = open_images("../shared/data/cifar10/cifar10-test.zip", None, 100,
        ...                              None, False, imagenet)
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
        ...     "distill", "--target", "captum_akd.zoo.cifar_resnet:cifar_resnet20",
        ...     "--data", "../shared/data/cifar10/cifar10-test.zip", "--limit", "16",
        ...     "--normalize", "cifar", "--student", "cifar-resnet8", "--batch-size", "8",
        ...     "--epochs", "1", "--explainer-epochs", "1", "--explainer-width", "16",
        ...     "--device", "cpu", "--quiet", "--out", "akd-small"])
        >>> run_distill(args)
        0
    """
    import captum_akd
    from captum_akd._validation import call_black_box
    from captum_akd.data._batches import probe_batch
    from captum_akd.distill import DistillConfig, ExplainerConfig, RunConfig
    from captum_akd.distill._distributed import setup
    from captum_akd.models import ExplanationNet, build_student

    if args.threads:
        torch.set_num_threads(args.threads)
    run = config_from_args(RunConfig, args)
    student_config = config_from_args(DistillConfig, args)
    explainer_config = config_from_args(ExplainerConfig, args, "explainer_")
    ctx = setup(run.device)
    target = load_target(args.target, dict(args.target_arg))
    if isinstance(target, nn.Module):
        target.to(ctx.device)
    normalize = run.normalization
    normalize = (normalize["mean"], normalize["std"]) if normalize else None
    train, sized = open_images(args.data, args.split, args.limit, run.image_size, args.preload,
                               normalize)
    val = None
    if args.val_data:
        val, _ = open_images(args.val_data, args.val_split, args.val_limit, run.image_size,
                             args.preload, normalize)
    if sized:  # a folder was read at that size already
        run = dataclasses.replace(run, image_size=None)
    # The student's head must match the black box: ask the black box once.
    images, _ = probe_batch(train, run.image_size, "--data", max_items=2, spread=0)
    num_classes = call_black_box(target, images.to(ctx.device)).shape[1]
    torch.manual_seed(run.seed)
    student = build_student(args.student, num_classes, args.student_weights)
    peer = build_student(args.peer, num_classes, args.peer_weights) if args.peer else None
    explainer = ExplanationNet.for_student(student, width=args.explainer_width)
    attr = captum_akd.distill(
        target, train, student=student, val_data=val, explainer=explainer, peer=peer,
        student_config=student_config, explainer_config=explainer_config,
        run=dataclasses.replace(run, device=str(ctx.device)),
    )
    if ctx.is_main and not args.quiet:
        fidelity = attr.metadata.get("fidelity", {})
        print(json.dumps(fidelity, indent=2))
        student = fidelity.get("student") or {}
        if "start" in student:
            print(f"student: held-out agreement {student['start']['top1_agreement']:.4f} at the "
                  f"start, {student['top1_agreement']:.4f} at the best epoch "
                  f"({student['best_epoch']}, kept), {student['last']['top1_agreement']:.4f} "
                  "after the last")
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

        >>> args = build_parser().parse_args(["demo", "--quick", "--out", "q"])
        >>> args._run is run_demo_command, args.quick, args.out   # run_demo_command(args) runs it
        (True, True, 'q')
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


DEMO = Command("demo", "the end-to-end demo on built-in data (the README's first command)",
               DEMO_DESCRIPTION, add_demo_arguments, run_demo_command,
               "example:\n  captum-akd demo --out akd-demo\n  captum-akd demo --quick --out /tmp/q")

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
