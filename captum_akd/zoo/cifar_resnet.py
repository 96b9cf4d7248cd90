"""CIFAR-style ResNets (He et al. 2016, section 4.2) with "option A" shortcuts.

The layout matches the widely used CIFAR-10 ResNet-20/32/44/56 checkpoints
(key names ``conv1``, ``bn1``, ``layer{1,2,3}.{i}.conv{1,2}|bn{1,2}``,
``linear``), so those weights load with :func:`load_cifar_resnet`. The same
blocks form the backbone of :func:`captum_akd.models.cifar_resnet_student`.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CIFAR_MEAN = (0.485, 0.456, 0.406)
CIFAR_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a parameter-free shortcut.

    A stride-2 block subsamples the input and zero-pads its channels for the
    shortcut ("option A"), so the block adds no weights beyond its convolutions.

    Args:
        in_planes: input channels.
        planes: output channels (``in_planes`` or more; the shortcut pads
            ``(planes - in_planes) // 2`` zero channels on each side).
        stride: stride of the first convolution, 1 or 2.

    Shape:
        ``N x in_planes x H x W`` to ``N x planes x H / stride x W / stride``.

    Examples::

        >>> from captum_akd.zoo.cifar_resnet import BasicBlock
        >>> BasicBlock(16, 32, stride=2)(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 32, 4, 4])
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = stride != 1 or in_planes != planes
        self.pad = (planes - in_planes) // 2

    def forward(self, x: Tensor) -> Tensor:
        """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

        Args:
            x: ``N x in_planes x H x W`` features.

        Returns:
            ``N x planes x H' x W'`` features (``H' = ceil(H / stride)``).
        """
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.downsample:
            shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + shortcut)


def make_stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """A stage of ``blocks`` BasicBlocks, the first with ``stride``.

    Args:
        in_planes: input channels of the stage.
        planes: channels of every block's output.
        blocks: number of blocks (:class:`BasicBlock`).
        stride: stride of the first block (the others use 1).

    Returns:
        An :class:`torch.nn.Sequential` mapping ``N x in_planes x H x W`` to
        ``N x planes x H / stride x W / stride``.

    Examples::

        >>> from captum_akd.zoo.cifar_resnet import make_stage
        >>> stage = make_stage(16, 32, blocks=3, stride=2)
        >>> len(stage), stage(torch.randn(2, 16, 8, 8)).shape
        (3, torch.Size([2, 32, 4, 4]))
    """
    layers = [BasicBlock(in_planes, planes, stride)]
    layers += [BasicBlock(planes, planes, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def blocks_per_stage(depth: int) -> int:
    """Blocks per stage of a CIFAR ResNet of ``depth`` (6n + 2 layers).

    Args:
        depth: the number of weighted layers, ``6n + 2`` with ``n >= 1``.

    Returns:
        ``n = (depth - 2) // 6``.

    Raises:
        ValueError: if ``depth`` is not an int of the form ``6n + 2`` (at least 8).

    Examples::

        >>> from captum_akd.zoo.cifar_resnet import blocks_per_stage
        >>> blocks_per_stage(20), blocks_per_stage(56)
        (3, 9)
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"`depth` must be 6n + 2 (20, 32, 44, 56, 110); got {depth!r}")
    return (depth - 2) // 6


class CifarResNet(nn.Module):
    """ResNet for 32 x 32 inputs: a 3x3 stem, three stages (16, 32, 64 channels),
    global average pooling and a linear classifier.

    Args:
        depth: 6n + 2 (20, 32, 44, 56, 110).
        num_classes: size of the classifier.

    Shape:
        ``N x 3 x H x W`` (normalised RGB) to ``N x num_classes`` logits.

    Examples::

        >>> model = CifarResNet(depth=20).eval()
        >>> model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, depth: int = 56, num_classes: int = 10) -> None:
        super().__init__()
        n = blocks_per_stage(depth)
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = make_stage(16, 16, n, 1)
        self.layer2 = make_stage(16, 32, n, 2)
        self.layer3 = make_stage(32, 64, n, 2)
        self.linear = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: Tensor) -> Tensor:
        """Classify ``x``.

        Args:
            x: ``N x 3 x H x W`` normalised RGB images (32 x 32 for CIFAR).

        Returns:
            ``N x num_classes`` logits.
        """
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def load_cifar_resnet(path: str | os.PathLike, depth: int, num_classes: int = 10) -> CifarResNet:
    """Build a :class:`CifarResNet` and load a safetensors state dict into it.

    Args:
        path: a ``.safetensors`` file with the key layout above.
        depth: the depth the weights were trained at.
        num_classes: classifier size.

    Returns:
        The model in eval mode.

    Examples::

        >>> model = load_cifar_resnet("../shared/data/weights/cifar10_resnet56.safetensors", 56)
    """
    from safetensors.torch import load_file

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`path`: no weights file at {path!r}")
    model = CifarResNet(depth, num_classes)
    state = load_file(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"`path`: {path!r} does not hold CIFAR ResNet-{depth} weights with "
            f"{num_classes} classes: {str(err).splitlines()[0]}"
        ) from None
    return model.eval()


def cifar_resnet56(weights: str | os.PathLike | None = None, num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-56; loads ``weights`` (safetensors) when given.

    Args:
        weights: path to a ``.safetensors`` state dict, or ``None`` for a
            randomly initialised network.
        num_classes: classifier size.

    Returns:
        A :class:`CifarResNet` mapping ``N x 3 x H x W`` to ``N x num_classes``
        logits (in eval mode when ``weights`` are loaded).

    Examples::

        >>> target = cifar_resnet56("../shared/data/weights/cifar10_resnet56.safetensors")
        >>> target(normalize_cifar(torch.rand(2, 3, 32, 32))).shape
        torch.Size([2, 10])
    """
    if weights is None:
        return CifarResNet(56, num_classes)
    return load_cifar_resnet(weights, 56, num_classes)


def cifar_resnet20(weights: str | os.PathLike | None = None, num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-20; loads ``weights`` (safetensors) when given.

    Args:
        weights: path to a ``.safetensors`` state dict, or ``None`` for a
            randomly initialised network.
        num_classes: classifier size.

    Returns:
        A :class:`CifarResNet` mapping ``N x 3 x H x W`` to ``N x num_classes``
        logits (in eval mode when ``weights`` are loaded).

    Examples::

        >>> cifar_resnet20()(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    if weights is None:
        return CifarResNet(20, num_classes)
    return load_cifar_resnet(weights, 20, num_classes)


def normalize_cifar(images: Tensor) -> Tensor:
    """Map RGB in [0, 1] to the CIFAR ResNets' input space (ImageNet mean/std).

    Args:
        images: ``N x 3 x H x W`` floats in [0, 1].

    Returns:
        ``(images - mean) / std`` per channel, same shape, device and dtype.

    Examples::

        >>> normalize_cifar(torch.zeros(1, 3, 32, 32))[0, :, 0, 0]
        tensor([-2.1179, -2.0357, -1.8044])
    """
    mean = torch.tensor(CIFAR_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std
