"""The explanation network: student features + class CAM -> saliency map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from captum_akd.models.student import AttentiveStudent


def _conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class _DecoderLevel(nn.Module):
    """One top-down step: fuse the coarser decoder state with a stage's skip."""

    def __init__(self, skip_channels: int, width: int, coarser_width: int) -> None:
        super().__init__()
        self.lateral = nn.Conv2d(skip_channels, width, 1)
        # Inputs: lateral skip, the class CAM and the stage's attention map,
        # plus the upsampled coarser state when there is one.
        in_ch = width + 2 + coarser_width
        self.fuse = nn.Sequential(_conv_bn_relu(in_ch, width), _conv_bn_relu(width, width))

    def forward(
        self,
        skip: Tensor,
        attention: Tensor,
        cam: Tensor,
        film: Tensor,
        coarser: Tensor | None,
    ) -> Tensor:
        size = skip.shape[-2:]
        parts = [self.lateral(skip), F.interpolate(cam, size=size, mode="bilinear",
                                                   align_corners=False), attention]
        if coarser is not None:
            parts.append(F.interpolate(coarser, size=size, mode="bilinear", align_corners=False))
        out = self.fuse(torch.cat(parts, dim=1))
        scale, shift = film.chunk(2, dim=1)
        return out * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


class ExplanationNet(nn.Module):
    """Decodes a student's multi-level features into a class-specific map.

    For class ``c`` the network receives every stage's attended features
    ``F_1..F_L`` and attention maps ``A_1..A_L`` of a frozen
    :class:`~captum_akd.models.AttentiveStudent`, plus the class activation map
    of ``c`` computed from the student's own classifier weights (no backward
    pass). It decodes them top-down, U-Net/FPN style: each level fuses the
    upsampled coarser state with a 1x1 lateral projection of that stage's
    features, the CAM and the stage's attention map, and is modulated (FiLM)
    by a projection of the class's classifier weight vector so the decoder
    knows which class it explains. A 1x1 convolution and a sigmoid give one
    map in [0, 1], upsampled bilinearly to the input resolution.

    Build the one that fits a student with :meth:`for_student`.

    Args:
        stage_channels: channels ``C_l`` of each stage's features, shallow to deep.
        class_dim: length of the class vector (the student's ``C_L``).
        width: decoder channels at the deepest level; each shallower level
            has half as many (at least 16), which keeps the high-resolution
            levels cheap.
        first_stage: the shallowest stage decoded. 0 decodes every stage;
            ``k`` skips the first ``k``, whose levels run at the highest
            resolutions, for a cheaper and coarser decoder: on an
            EfficientNet-Lite0 student at 260 x 260 (batch 32, 2 CPU
            threads) the stride-2 level costs about a tenth of the student's
            forward pass, and ``first_stage=1`` decodes at stride 4 instead.
            The map is upsampled to the input size either way. Default: 0.

    Shape:
        ``forward(features, attention, cam, class_vectors, input_size)``:
        the per-stage features and attention maps of
        :class:`~captum_akd.models.StudentOutput` for ``N`` images, their
        ``N x 1 x h_L x w_L`` class activation maps, ``N x C_L`` class vectors
        and the ``(H, W)`` to return; output ``N x 1 x H x W`` in [0, 1].

    Examples::

        >>> from captum_akd.models import cifar_resnet_student, ExplanationNet
        >>> student = cifar_resnet_student(depth=20, num_classes=10).eval()
        >>> explainer = ExplanationNet.for_student(student)
        >>> x = torch.randn(2, 3, 32, 32)
        >>> maps = explainer.explain(student, x, torch.tensor([3, 5]))
        >>> maps.shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self, stage_channels: Sequence[int], class_dim: int, width: int = 64,
        first_stage: int = 0,
    ) -> None:
        super().__init__()
        self.stage_channels = list(stage_channels)
        if not isinstance(first_stage, int) or not 0 <= first_stage < len(self.stage_channels):
            raise ValueError(f"`first_stage` must be an int in [0, {len(self.stage_channels)}) "
                             f"(the student has {len(self.stage_channels)} stages); got "
                             f"{first_stage!r}")
        self.class_dim = class_dim
        self.width = width
        self.first_stage = first_stage
        decoded = self.stage_channels[first_stage:]
        n_levels = len(decoded)
        self.level_widths = [max(width >> (n_levels - 1 - i), 16) for i in range(n_levels)]
        self.levels = nn.ModuleList(
            _DecoderLevel(c, w, self.level_widths[i + 1] if i + 1 < n_levels else 0)
            for i, (c, w) in enumerate(zip(decoded, self.level_widths, strict=True))
        )
        self.film = nn.Linear(class_dim, 2 * sum(self.level_widths))
        # FiLM starts neutral so early training sees plain features.
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.head = nn.Conv2d(self.level_widths[0], 1, 1)
        self.config: dict[str, Any] = {
            "builder": "ExplanationNet",
            "kwargs": {"stage_channels": self.stage_channels, "class_dim": class_dim,
                       "width": width, "first_stage": first_stage},
        }

    @classmethod
    def for_student(cls, student: AttentiveStudent, width: int = 64,
                    first_stage: int = 0) -> ExplanationNet:
        """The explanation network matching ``student``'s stages and head.

        Args:
            student: the :class:`~captum_akd.models.AttentiveStudent` to explain.
            width: decoder channels at the deepest level (see the class).
            first_stage: the shallowest stage decoded (see the class).

        Returns:
            An untrained :class:`ExplanationNet` with one decoder level per
            stage of ``student``.

        Examples::

            >>> from captum_akd.models import cifar_resnet_student
            >>> explainer = ExplanationNet.for_student(cifar_resnet_student(depth=8))
            >>> explainer.stage_channels, explainer.class_dim, explainer.level_widths
            ([16, 32, 64], 64, [16, 32, 64])
            >>> student = cifar_resnet_student(depth=8)
            >>> ExplanationNet.for_student(student, first_stage=1).level_widths
            [32, 64]
        """
        return cls(student.stage_channels, student.stage_channels[-1], width, first_stage)

    def forward(
        self,
        features: Sequence[Tensor],
        attention: Sequence[Tensor],
        cam: Tensor,
        class_vectors: Tensor,
        input_size: tuple[int, int],
    ) -> Tensor:
        """Decode one map per image.

        Plain tensors in and out, so :class:`~torch.nn.parallel.DistributedDataParallel`
        wraps this network as it is.

        Args:
            features: the student's attended features ``F_l``, one
                ``N x C_l x h_l x w_l`` tensor per stage, shallow to deep
                (:attr:`~captum_akd.models.StudentOutput.features`).
            attention: its spatial attention maps ``A_l``, one
                ``N x 1 x h_l x w_l`` tensor per stage
                (:attr:`~captum_akd.models.StudentOutput.attention`).
            cam: ``N x 1 x h_L x w_L`` class activation maps (any scale; they
                are standardised per image here).
            class_vectors: ``N x C_L`` classifier weight rows of the classes.
            input_size: ``(H, W)`` of the returned maps.

        Returns:
            ``N x 1 x H x W`` maps in [0, 1].
        """
        flat = cam.flatten(1)
        cam = (cam - flat.mean(1)[:, None, None, None]) / (
            flat.std(1, unbiased=False)[:, None, None, None] + 1e-6
        )
        films = self.film(class_vectors / (class_vectors.norm(dim=1, keepdim=True) + 1e-6))
        films = films.split([2 * w for w in self.level_widths], dim=1)
        state = None
        for i in reversed(range(len(self.levels))):
            stage = self.first_stage + i
            state = self.levels[i](features[stage], attention[stage], cam, films[i], state)
        logits = self.head(state)
        logits = F.interpolate(logits, size=input_size, mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)

    def explain(self, student: AttentiveStudent, images: Tensor, labels: Tensor) -> Tensor:
        """Run ``student`` on ``images`` and decode the maps of classes ``labels``.

        Gradients flow into this network (for training) but the caller decides
        whether the student is frozen.

        Args:
            student: the student this network was built for.
            images: ``N x C x H x W`` inputs.
            labels: ``N`` class indices to explain.

        Returns:
            ``N x 1 x H x W`` maps in [0, 1].

        Examples::

            >>> from captum_akd.models import cifar_resnet_student
            >>> student = cifar_resnet_student(depth=8, num_classes=3).eval()
            >>> explainer = ExplanationNet.for_student(student).eval()
            >>> with torch.no_grad():
            ...     maps = explainer.explain(student, torch.randn(2, 3, 16, 16),
            ...                              torch.tensor([0, 2]))
            >>> maps.shape, bool(maps.min() >= 0), bool(maps.max() <= 1)
            (torch.Size([2, 1, 16, 16]), True, True)
        """
        output = student.forward_features(images)
        cam = student.class_activation_map(output.features[-1], labels)
        return self(output.features, output.attention, cam, student.fc.weight[labels],
                    tuple(images.shape[-2:]))
