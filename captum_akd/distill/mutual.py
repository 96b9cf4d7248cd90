"""Mutual transfer of local attention maps (Cheng et al. 2022; design 3.4).

Two students are distilled together. Each stage's spatial attention map is cut
into a ``k x k`` grid of local maps; the loss adds ``1 - pearson(local_a,
local_b)`` for every cell, pulling the students towards the same *pattern* of
attention in each region (Pearson ignores scale and offset), plus a mutual KL
between their softened predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from captum_akd.distill.losses import distillation_kl


def grid_cells(maps: Tensor, grid: int) -> Tensor:
    """Cut ``N x C x h x w`` maps into ``grid x grid`` cells.

    The grid is reduced so every cell has at least 2 x 2 pixels (a Pearson
    correlation needs some spread), and maps whose sides are not multiples of
    it are bilinearly resized up to the next multiple first.

    Args:
        maps: ``N x C x h x w`` maps (attention maps have ``C = 1``).
        grid: the requested number of cells ``k`` per side.

    Returns:
        ``N x G x P``: ``G = g * g`` cells (``g = min(k, h // 2, w // 2)``, at
        least 1), row by row, of ``P = C * ceil(h / g) * ceil(w / g)`` pixels
        each.

    Examples::

        >>> from captum_akd.distill.mutual import grid_cells
        >>> grid_cells(torch.rand(2, 1, 8, 8), 2).shape
        torch.Size([2, 4, 16])
        >>> grid_cells(torch.rand(2, 1, 3, 3), 4).shape   # too small: one cell
        torch.Size([2, 1, 9])
    """
    n, c, h, w = maps.shape
    g = max(1, min(grid, h // 2, w // 2))
    ch, cw = math.ceil(h / g), math.ceil(w / g)
    if (ch * g, cw * g) != (h, w):
        maps = F.interpolate(maps, size=(ch * g, cw * g), mode="bilinear", align_corners=False)
    cells = maps.reshape(n, c, g, ch, g, cw).permute(0, 2, 4, 1, 3, 5)
    return cells.reshape(n, g * g, c * ch * cw)


def pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Pearson correlation along the last dimension (0 where either is constant).

    Args:
        a: ``... x P`` values.
        b: ``... x P`` values, the same shape as ``a``.
        eps: added to the denominator, so constant inputs give 0, not NaN.

    Returns:
        The ``...`` correlations, each in [-1, 1].

    Examples::

        >>> from captum_akd.distill.mutual import pearson
        >>> pearson(torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]),
        ...         torch.tensor([[2.0, 4.0, 6.0], [3.0, 2.0, 1.0]]))
        tensor([1., 0.])
    """
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    cov = (a * b).sum(dim=-1)
    return cov / ((a.pow(2).sum(dim=-1) * b.pow(2).sum(dim=-1)).sqrt() + eps)


def local_attention_loss(
    maps_a: Sequence[Tensor], maps_b: Sequence[Tensor], grid: int = 2
) -> Tensor:
    """Mean of ``1 - pearson`` over images, grid cells and stages.

    Args:
        maps_a: one ``N x 1 x h_l x w_l`` attention map per stage of student A.
        maps_b: the same for student B (same number of stages); a stage whose
            size differs is resized to A's size.
        grid: ``k``: each map is cut into ``k x k`` local maps.

    Returns:
        A scalar in [0, 2].

    Examples::

        >>> maps = [torch.rand(2, 1, 8, 8)]
        >>> loss = local_attention_loss(maps, [3 * m + 1 for m in maps], grid=2)
        >>> abs(loss.item()) < 1e-6      # the same pattern up to scale and offset
        True
    """
    if len(maps_a) != len(maps_b):
        raise ValueError(
            f"mutual transfer needs students with as many stages: {len(maps_a)} and "
            f"{len(maps_b)}"
        )
    losses = []
    for a, b in zip(maps_a, maps_b, strict=True):
        a, b = a.float(), b.float()
        if a.shape[-2:] != b.shape[-2:]:
            b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False)
        losses.append((1 - pearson(grid_cells(a, grid), grid_cells(b, grid))).mean())
    return sum(losses) / len(losses)


def mutual_kl(logits_a: Tensor, logits_b: Tensor, temperature: float) -> Tensor:
    """Each student learns the other's softened prediction (the other held fixed).

    Args:
        logits_a: student A's ``N x K`` logits.
        logits_b: student B's ``N x K`` logits.
        temperature: ``T > 0``.

    Returns:
        A scalar, ``T^2 * (KL(p_b || p_a) + KL(p_a || p_b))`` averaged over the
        batch, with the target side detached in each term (see
        :func:`~captum_akd.distill.losses.distillation_kl`).

    Examples::

        >>> from captum_akd.distill.mutual import mutual_kl
        >>> logits = torch.randn(2, 10)
        >>> mutual_kl(logits, logits, temperature=4.0)
        tensor(0.)
    """
    return distillation_kl(logits_a, logits_b, temperature) + distillation_kl(
        logits_b, logits_a, temperature
    )
