"""Batch augmentation applied before the black box and the student see a batch.

Both models must see the same augmented image: the student then learns the
target's function on the augmented distribution (including what the target
says about a crop or a mix of two images), not a label set. All random draws
come from an explicit :class:`torch.Generator`, so an epoch's augmentation
depends only on its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

CROP_MODES = ("pad", "resized", "none")


@dataclass
class Mix:
    """How a batch was mixed: image ``i`` is ``lam * x_i + (1 - lam) * x_perm[i]``.

    The training step mixes the hard labels' cross-entropy with the same
    ``perm`` and ``lam``.

    Attributes:
        perm: the ``N`` indices of each image's partner.
        lam: the mixing weight in [0, 1], drawn from Beta(``mixup``, ``mixup``).

    Examples::

        >>> from captum_akd.distill.augment import BatchAugment
        >>> images = torch.randn(4, 3, 8, 8)
        >>> augment = BatchAugment(crop="none", flip=False, mixup=1.0)
        >>> out, mix = augment(images, torch.Generator().manual_seed(0))
        >>> torch.allclose(out, mix.lam * images + (1 - mix.lam) * images[mix.perm])
        True
    """

    perm: Tensor
    lam: float


class BatchAugment:
    """Random crop, horizontal flip and optional mixup on ``N x C x H x W`` batches.

    Args:
        crop: ``"pad"``: pad by ``padding`` pixels (zeros, i.e. the mean of a
            normalised input) and crop back to ``H x W`` at a random offset,
            the CIFAR recipe; ``"resized"``: a random box of ``scale`` of the
            area and aspect ``ratio`` resized to ``H x W``, the ImageNet
            recipe; ``"none"``.
        padding: padding for ``"pad"``; ``None`` is ``max(H, W) // 8``.
        scale: area range of ``"resized"`` boxes.
        ratio: aspect ratio range of ``"resized"`` boxes.
        flip: flip half the images horizontally.
        mixup: Beta(``mixup``, ``mixup``) parameter of mixup; 0 disables it.

    Examples::

        >>> augment = BatchAugment(crop="pad", flip=True)
        >>> out, mix = augment(torch.randn(8, 3, 32, 32), torch.Generator().manual_seed(0))
        >>> out.shape, mix
        (torch.Size([8, 3, 32, 32]), None)
    """

    def __init__(
        self,
        crop: str = "pad",
        padding: int | None = None,
        scale: tuple[float, float] = (0.35, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        mixup: float = 0.0,
    ) -> None:
        if crop not in CROP_MODES:
            raise ValueError(f"`crop` must be one of {CROP_MODES}; got {crop!r}")
        if padding is not None and (not isinstance(padding, int) or padding < 0):
            raise ValueError(f"`padding` must be a non-negative int or None; got {padding!r}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"`scale` must satisfy 0 < low <= high <= 1; got {scale!r}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"`ratio` must satisfy 0 < low <= high; got {ratio!r}")
        if mixup < 0:
            raise ValueError(f"`mixup` must be >= 0; got {mixup!r}")
        self.crop = crop
        self.padding = padding
        self.scale = scale
        self.ratio = ratio
        self.flip = flip
        self.mixup = mixup

    def __call__(self, images: Tensor, generator: torch.Generator) -> tuple[Tensor, Mix | None]:
        """Augment ``images``; returns the batch and the mix applied (or ``None``)."""
        n = images.shape[0]
        flips = (torch.rand(n, generator=generator) < 0.5) if self.flip else None
        if self.crop == "pad":
            images = self._pad_crop(images, generator)
        elif self.crop == "resized":
            images = self._resized_crop(images, generator, flips)
            flips = None  # already folded into the sampling grid
        if flips is not None and bool(flips.any()):
            mask = flips.to(images.device)[:, None, None, None]
            images = torch.where(mask, images.flip(-1), images)
        mix = None
        if self.mixup > 0 and n > 1:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            lam = float(np.random.default_rng(seed).beta(self.mixup, self.mixup))
            perm = torch.randperm(n, generator=generator).to(images.device)
            images = lam * images + (1 - lam) * images[perm]
            mix = Mix(perm, lam)
        return images, mix

    def _pad_crop(self, images: Tensor, generator: torch.Generator) -> Tensor:
        n, _, h, w = images.shape
        pad = self.padding if self.padding is not None else max(h, w) // 8
        if pad == 0:
            return images
        padded = F.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
        rows = dy[:, None] + torch.arange(h, device=images.device)  # N x H
        cols = dx[:, None] + torch.arange(w, device=images.device)  # N x W
        batch = torch.arange(n, device=images.device)[:, None, None]
        # Advanced indexing puts the indexed dims first: N x H x W x C.
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        return out.permute(0, 3, 1, 2).contiguous()

    def _resized_crop(
        self, images: Tensor, generator: torch.Generator, flips: Tensor | None
    ) -> Tensor:
        n, _, h, w = images.shape
        area = torch.empty(n).uniform_(self.scale[0], self.scale[1], generator=generator)
        log_ratio = torch.empty(n).uniform_(
            math.log(self.ratio[0]), math.log(self.ratio[1]), generator=generator
        )
        aspect = torch.exp(log_ratio)
        # Box size as a fraction of the image's width and height.
        bw = torch.sqrt(area * aspect).clamp(max=1.0)
        bh = torch.sqrt(area / aspect).clamp(max=1.0)
        cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - bw)
        cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - bh)
        sx = bw if flips is None else torch.where(flips, -bw, bw)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = sx
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = bh
        theta[:, 1, 2] = cy
        theta = theta.to(device=images.device, dtype=images.dtype)
        grid = F.affine_grid(theta, [n, images.shape[1], h, w], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                             align_corners=False)
