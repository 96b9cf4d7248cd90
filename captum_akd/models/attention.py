"""CBAM: channel then spatial attention (Woo et al., ECCV 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ChannelAttention(nn.Module):
    """Per-channel gate from a shared MLP over average- and max-pooled features.

    Args:
        channels: number of feature channels ``C``.
        reduction: hidden width of the MLP is ``max(C // reduction, 1)``.

    Shape:
        ``N x C x h x w`` features to an ``N x C x 1 x 1`` gate in (0, 1).

    Examples::

        >>> ChannelAttention(64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 1, 1])
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Compute the channel gate of ``x``.

        Args:
            x: ``N x C x h x w`` features.

        Returns:
            The ``N x C x 1 x 1`` gate ``sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))``.
        """
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        peak = self.mlp(F.adaptive_max_pool2d(x, 1))
        return torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """Per-location gate from a convolution over the channel-wise mean and max.

    Args:
        kernel_size: size of the (odd) convolution kernel, 7 in CBAM.

    Shape:
        ``N x C x h x w`` features to an ``N x 1 x h x w`` map in (0, 1).

    Examples::

        >>> SpatialAttention(7)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        """Compute the spatial attention map of ``x``.

        Args:
            x: ``N x C x h x w`` features.

        Returns:
            The ``N x 1 x h x w`` map ``sigmoid(conv([mean_c(x), max_c(x)]))``.
        """
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Convolutional block attention: ``F' = Mc(F) * F``, then ``F'' = Ms(F') * F'``.

    A learnable scalar ``gate`` blends the attended features with the input,
    ``out = x + gate * (attended - x)``. With ``gate = 1`` (the default) this is
    plain CBAM. ``identity_init=True`` starts at ``gate = 0``, so a student
    initialised from a pretrained backbone computes exactly the backbone's
    function at the first step and learns how much attention to apply, instead
    of having every stage's features halved by untrained sigmoids.

    Args:
        channels: number of feature channels ``C``.
        reduction: channel-attention MLP reduction (16 in CBAM).
        spatial_kernel: spatial-attention kernel size (7 in CBAM).
        identity_init: start as the identity map (see above).

    Shape:
        ``forward(x)`` maps ``N x C x h x w`` to ``(attended, attention)``:
        attended features ``N x C x h x w`` and the spatial attention map
        ``N x 1 x h x w`` in [0, 1].

    Examples::

        >>> block = CBAM(64)
        >>> features, attention = block(torch.randn(2, 64, 8, 8))
        >>> features.shape, attention.shape
        (torch.Size([2, 64, 8, 8]), torch.Size([2, 1, 8, 8]))
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        spatial_kernel: int = 7,
        identity_init: bool = False,
    ) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel)
        self.gate = nn.Parameter(torch.tensor(0.0 if identity_init else 1.0))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Apply channel then spatial attention, blended with the input by ``gate``.

        Args:
            x: ``N x C x h x w`` features.

        Returns:
            ``(out, attention)``: ``out = x + gate * (attended - x)``, ``N x C x h x w``,
            and the ``N x 1 x h x w`` spatial attention map in [0, 1].
        """
        refined = x * self.channel(x)
        attention = self.spatial(refined)
        attended = refined * attention
        return x + self.gate * (attended - x), attention
