"""The attentive surrogate: a CNN with a CBAM block after every stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from captum_akd.models.attention import CBAM


@dataclass
class StudentOutput:
    """What :meth:`AttentiveStudent.forward_features` returns.

    Attributes:
        logits: ``N x K`` class scores.
        features: one ``N x C_l x h_l x w_l`` tensor per stage (shallow to
            deep): the stage's output after its attention block.
        attention: one ``N x 1 x h_l x w_l`` spatial attention map per stage,
            in [0, 1].
        pooled: ``N x C_L`` globally averaged deepest features (the
            classifier's input).

    Examples::

        >>> from captum_akd.models import cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> out = student.forward_features(torch.randn(2, 3, 16, 16))
        >>> out.logits.shape, out.pooled.shape, len(out.features) == len(out.attention)
        (torch.Size([2, 3]), torch.Size([2, 64]), True)
    """

    logits: Tensor
    features: list[Tensor]
    attention: list[Tensor]
    pooled: Tensor


class AttentiveStudent(nn.Module):
    """A classifier split into stages ``S_1..S_L`` with a CBAM block after each.

    The student is the white-box stand-in for a black-box target: it is
    distilled to reproduce the target's logits, and its attended per-stage
    features feed the :class:`~captum_akd.models.ExplanationNet`. The head is
    global average pooling and one linear layer, so the class activation map
    of class ``c`` is ``sum_k fc.weight[c, k] * F_L[k]`` without a backward pass
    (:meth:`class_activation_map`).

    Build one with :func:`cifar_resnet_student`, :func:`resnet_student` or
    :func:`efficientnet_lite_student` rather than by hand: the builders record
    their arguments in :attr:`config`, which is what checkpoints store.

    Args:
        stem: module applied to the input before the first stage.
        stages: the stages, shallow to deep.
        stage_channels: output channels of each stage.
        num_classes: number of classes ``K``.
        in_channels: number of input channels ``C`` (3 for RGB).
        min_input_size: smallest height/width the network accepts (its total
            stride, so the deepest map is at least 1 x 1).
        reduction: CBAM channel-attention reduction.
        spatial_kernel: CBAM spatial-attention kernel size.
        identity_init: start every CBAM block as the identity (for a
            pretrained backbone).
        config: the builder name and arguments that rebuild this student.

    Shape:
        ``forward``: ``N x C x H x W`` to ``N x K`` logits.

    Examples::

        >>> from captum_akd.models import cifar_resnet_student
        >>> student = cifar_resnet_student(depth=20, num_classes=10)
        >>> out = student.forward_features(torch.randn(2, 3, 32, 32))
        >>> out.logits.shape, [f.shape[-1] for f in out.features]
        (torch.Size([2, 10]), [32, 16, 8])
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: Sequence[nn.Module],
        stage_channels: Sequence[int],
        num_classes: int,
        in_channels: int = 3,
        min_input_size: int = 1,
        reduction: int = 16,
        spatial_kernel: int = 7,
        identity_init: bool = False,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(stages) != len(stage_channels) or not stages:
            raise ValueError(
                "`stages` and `stage_channels` must be non-empty and of equal length; "
                f"got {len(stages)} and {len(stage_channels)}"
            )
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an int >= 2; got {num_classes!r}")
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.attentions = nn.ModuleList(
            CBAM(c, reduction, spatial_kernel, identity_init) for c in stage_channels
        )
        self.fc = nn.Linear(stage_channels[-1], num_classes)
        self.stage_channels = list(stage_channels)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.min_input_size = min_input_size
        self.config = dict(config or {})
        # Set by the builders and checkpoint loading: distillation then fine-tunes.
        self.pretrained = False

    def forward_features(self, x: Tensor) -> StudentOutput:
        """Logits plus every stage's attended features and attention map.

        Args:
            x: ``N x C x H x W`` images, ``H`` and ``W`` at least
                :attr:`min_input_size`.

        Returns:
            A :class:`StudentOutput`: ``N x K`` logits, one
            ``N x C_l x h_l x w_l`` attended feature map and one
            ``N x 1 x h_l x w_l`` attention map per stage (shallow to deep),
            and the ``N x C_L`` pooled features.

        Examples::

            >>> from captum_akd.models import cifar_resnet_student
            >>> student = cifar_resnet_student(depth=8, num_classes=3)
            >>> out = student.forward_features(torch.randn(2, 3, 16, 16))
            >>> [tuple(a.shape) for a in out.attention]
            [(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 4, 4)]
        """
        features, attention = [], []
        out = self.stem(x)
        for stage, attend in zip(self.stages, self.attentions, strict=True):
            out, att = attend(stage(out))
            features.append(out)
            attention.append(att)
        pooled = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return StudentOutput(self.fc(pooled), features, attention, pooled)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, for use as a plain classifier.

        Args:
            x: ``N x C x H x W`` images, ``H`` and ``W`` at least
                :attr:`min_input_size`.

        Returns:
            ``N x K`` logits (``forward_features(x).logits``).
        """
        return self.forward_features(x).logits

    def class_activation_map(self, deepest: Tensor, labels: Tensor) -> Tensor:
        """CAM of class ``labels[i]`` for each image from the classifier weights.

        Args:
            deepest: ``N x C_L x h x w`` attended features of the last stage.
            labels: ``N`` class indices.

        Returns:
            ``N x 1 x h x w`` maps whose spatial mean is the class logit minus
            the bias (the head is linear after average pooling).

        Examples::

            >>> from captum_akd.models import cifar_resnet_student
            >>> student = cifar_resnet_student(depth=8, num_classes=3).eval()
            >>> out = student.forward_features(torch.randn(2, 3, 16, 16))
            >>> labels = torch.tensor([0, 2])
            >>> cam = student.class_activation_map(out.features[-1], labels)
            >>> cam.shape                                   # the deepest stage's size
            torch.Size([2, 1, 4, 4])
            >>> logit = out.logits[[0, 1], labels] - student.fc.bias[labels]
            >>> torch.allclose(cam.mean(dim=(1, 2, 3)), logit, atol=1e-5)
            True
        """
        weights = self.fc.weight[labels]  # N x C_L
        return (weights[:, :, None, None] * deepest).sum(dim=1, keepdim=True)
