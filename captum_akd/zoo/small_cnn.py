"""A plain CNN that plays the black box in the demo and the synthetic track."""

from __future__ import annotations

from torch import Tensor, nn


def _block(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """VGG-style classifier: four conv blocks, three 2x2 max-pools, GAP, linear.

    The library knows nothing about it beyond calling it, which is the point:
    it stands in for a user's model. ``features[-1]`` (the last conv block) is
    the layer Grad-CAM uses.

    Args:
        num_classes: number of classes ``K``.
        width: channels of the first block (doubled after each pool, capped at 4x).
        in_channels: input channels.

    Shape:
        ``N x C x H x W`` (H, W at least 8) to ``N x K`` logits.

    Examples::

        >>> model = SmallCNN(num_classes=8)
        >>> model(torch.randn(2, 3, 64, 64)).shape
        torch.Size([2, 8])
    """

    def __init__(self, num_classes: int = 8, width: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(in_channels, w),
            nn.MaxPool2d(2),
            _block(w, 2 * w),
            nn.MaxPool2d(2),
            _block(2 * w, 4 * w),
            nn.MaxPool2d(2),
            _block(4 * w, 4 * w),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * w, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Classify ``x``.

        Args:
            x: ``N x C x H x W`` images, ``H`` and ``W`` at least 8.

        Returns:
            ``N x K`` logits.
        """
        return self.classifier(self.pool(self.features(x)).flatten(1))
