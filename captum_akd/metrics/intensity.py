"""Mean pixel intensity: how much of the image a map lights up."""

from __future__ import annotations

from torch import Tensor

from captum_akd._image_ops import minmax_normalize
from captum_akd.metrics._common import format_maps


def mean_pixel_intensity(saliency: Tensor) -> Tensor:
    """Mean of each map after per-map min-max normalisation to [0, 1].

    Lower means a more compact map; it says nothing about faithfulness on its
    own and is read next to insertion and deletion. A constant map scores 0.

    Args:
        saliency: ``N x 1 x H x W`` maps (``N x H x W`` accepted;
            ``N x C x H x W`` is averaged over channels first).

    Returns:
        ``N`` intensities in [0, 1] (``.mean()`` for the batch).

    Examples::

        >>> from captum_akd.metrics import mean_pixel_intensity
        >>> mean_pixel_intensity(torch.tensor([[[0.0, 1.0], [1.0, 2.0]]]))
        tensor([0.5000])
    """
    maps = format_maps(saliency, "saliency")
    return minmax_normalize(maps).flatten(1).mean(dim=1)
