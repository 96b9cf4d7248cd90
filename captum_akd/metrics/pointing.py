"""Pointing game (Zhang et al. 2016) and energy pointing game (Wang et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_akd._image_ops import minmax_normalize
from captum_akd.metrics._common import format_maps, format_masks


def pointing_game(
    saliency: Tensor,
    masks: Tensor,
    tolerance: float = 15,
    reference_size: int = 224,
) -> Tensor:
    """Whether each map's maximum falls on the ground-truth mask, within a tolerance.

    A hit when the map's maximum lies within ``tolerance`` pixels (Euclidean)
    of a mask pixel, i.e. inside the mask dilated by a disk. The tolerance is
    given at an image side of ``reference_size`` and scaled with the image:
    the radius is ``tolerance * min(H, W) / reference_size`` (15 px at 224,
    about 2.1 px at 32). The short side is used because that is the side
    classifiers resize to.

    When a map has several equal maxima, the first in row-major order
    (top-left) is the point. An empty mask can never be hit: drop such images
    (e.g. parts hidden in that image) before averaging.

    Args:
        saliency: ``N x 1 x H x W`` or ``N x H x W`` maps.
        masks: ``N x 1 x H x W`` or ``N x H x W`` ground-truth masks at the
            maps' size; bool, or numeric thresholded at 0.5.
        tolerance: radius in pixels at ``reference_size``; 0 for an exact hit.
        reference_size: the image side at which ``tolerance`` is given.

    Returns:
        ``N`` bools, True for a hit (``.float().mean()`` is the accuracy).

    Examples::

        >>> from captum_akd.metrics import pointing_game
        >>> masks = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
        >>> masks[:, :, 8:16, 8:16] = True              # the part, rows/cols 8-15
        >>> maps = torch.zeros(2, 1, 32, 32)
        >>> maps[0, 0, 10, 12] = 1.0                    # inside the part
        >>> maps[1, 0, 30, 30] = 1.0                    # far from it
        >>> hits = pointing_game(maps, masks)           # radius 15 * 32 / 224, ~2.1 px
        >>> hits, hits.float().mean()
        (tensor([ True, False]), tensor(0.5000))
        >>> maps[1, 0, 30, 30], maps[1, 0, 16, 16] = 0.0, 1.0   # 1.4 px off the corner
        >>> pointing_game(maps, masks), pointing_game(maps, masks, tolerance=0)
        (tensor([True, True]), tensor([ True, False]))
    """
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not (math.isfinite(tolerance) and tolerance >= 0)
    ):
        raise ValueError(f"`tolerance` must be a finite number >= 0; got {tolerance!r}")
    if (
        isinstance(reference_size, bool)
        or not isinstance(reference_size, int)
        or (reference_size < 1)
    ):
        raise ValueError(f"`reference_size` must be a positive int; got {reference_size!r}")
    maps = format_maps(saliency, "saliency")
    inside = format_masks(masks, maps)
    n, _, height, width = maps.shape
    radius = tolerance * min(height, width) / reference_size

    point = maps.flatten(1).argmax(dim=1)
    row = torch.div(point, width, rounding_mode="floor").view(n, 1, 1)
    col = (point % width).view(n, 1, 1)
    rows = torch.arange(height, device=maps.device).view(1, height, 1)
    cols = torch.arange(width, device=maps.device).view(1, 1, width)
    dist2 = (rows - row) ** 2 + (cols - col) ** 2
    # integer squared distances against radius**2: no sqrt, so no rounding at the edge
    near = dist2 <= radius**2 + 1e-9
    return (inside & near).flatten(1).any(dim=1)


def energy_pointing_game(saliency: Tensor, masks: Tensor, normalize: bool = False) -> Tensor:
    """Share of each map's mass that lies inside the ground-truth mask.

    ``sum(map * mask) / sum(map)`` as in Score-CAM (Wang et al. 2020), on the
    raw map with negative values clipped to 0 (negative evidence is not
    mass). With ``normalize=True`` the map is min-max normalised first, which
    removes its floor: a map of 1 inside the mask and 0.5 outside then scores
    1 instead of its raw share. A map with no mass scores 0.

    Args:
        saliency: ``N x 1 x H x W`` or ``N x H x W`` maps.
        masks: ``N x 1 x H x W`` or ``N x H x W`` masks at the maps' size;
            bool, or numeric thresholded at 0.5.
        normalize: min-max normalise each map before measuring.

    Returns:
        ``N`` shares in [0, 1]; higher is better.

    Examples::

        >>> from captum_akd.metrics import energy_pointing_game
        >>> masks = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
        >>> masks[..., :4] = True                         # the left half
        >>> maps = torch.full((1, 1, 8, 8), 0.5)
        >>> maps[..., :4] = 1.0                           # 1 inside, 0.5 outside
        >>> energy_pointing_game(maps, masks)             # 32 / (32 + 16)
        tensor([0.6667])
        >>> energy_pointing_game(maps, masks, normalize=True)   # the floor removed
        tensor([1.])
    """
    maps = format_maps(saliency, "saliency")
    inside = format_masks(masks, maps)
    maps = minmax_normalize(maps) if normalize else maps.clamp_min(0)
    mass = maps.flatten(1)
    total = mass.sum(dim=1)
    hit = (mass * inside.flatten(1)).sum(dim=1)
    return torch.where(total > 0, hit / total.clamp_min(torch.finfo(mass.dtype).tiny), 0.0)
