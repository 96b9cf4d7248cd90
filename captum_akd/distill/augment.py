"""Batch augmentation applied before the black box and the student see a batch.

Both models must see the same augmented image: the student then learns the
target's function on the augmented distribution (including what the target
says about a crop or a mix of two images), not a label set. All random draws
come from an explicit :class:`torch.Generator`, so an epoch's augmentation
depends only on its seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from captum_akd._image_ops import jpeg_recompress
from captum_akd._validation import check_jpeg_quality, check_number, one_of, optional_check

CROP_MODES = ("pad", "resized", "none")


@dataclass
class Mix:
    """How a batch was mixed with a shuffled copy of itself.

    Mixup blends whole images: image ``i`` is ``lam * x_i + (1 - lam) * x_perm[i]``.
    CutMix pastes a box of image ``perm[i]`` into image ``i`` (the same box for
    the whole batch); ``lam`` is then the fraction of pixels that image ``i``
    keeps. Either way the training step mixes the hard labels' cross-entropy
    with the same ``perm`` and ``lam``.

    Attributes:
        perm: the ``N`` indices of each image's partner.
        lam: the weight of the image's own content, in [0, 1].
        box: for CutMix, the pasted rows and columns ``(top, bottom, left,
            right)`` (end-exclusive); ``None`` for mixup.

    Examples::

        >>> from captum_akd.distill.augment import BatchAugment
        >>> images = torch.randn(4, 3, 8, 8)
        >>> augment = BatchAugment(crop="none", flip=False, mixup=1.0)
        >>> out, mix = augment(images, torch.Generator().manual_seed(0))
        >>> torch.allclose(out, mix.lam * images + (1 - mix.lam) * images[mix.perm])
        True
        >>> out, mix = BatchAugment(crop="none", flip=False, cutmix=1.0)(
        ...     images, torch.Generator().manual_seed(0))
        >>> top, bottom, left, right = mix.box
        >>> mix.lam == 1 - (bottom - top) * (right - left) / 64
        True
    """

    perm: Tensor
    lam: float
    box: tuple[int, int, int, int] | None = None


class BatchAugment:
    """Random crop, flip, JPEG re-compression, mixup and CutMix on ``N x C x H x W`` batches.

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
        cutmix: Beta(``cutmix``, ``cutmix``) parameter of CutMix (Yun et al.
            2019): a box covering a fraction ``1 - lam`` of the image, at a
            random place and clipped to the image, is pasted from each image's
            partner; 0 disables it. With both ``mixup`` and ``cutmix`` set,
            each batch gets one of the two, chosen with equal odds.
        jpeg_quality: re-encode every image as a JPEG of this quality after the
            crop and flip (and before mixup or CutMix), or of a quality drawn per image
            from ``[low, high]``; ``None`` disables it. The student then also
            learns what the black box says about compression artefacts. On
            images that were JPEGs already, a crop has moved their 8 x 8
            blocks off the grid; re-encoding adds artefacts on the grid
            again, over the moved ones. Encoding runs on the CPU (a CUDA batch
            is copied there and back). Needs 1- or 3-channel images.
        normalization: ``{"mean": [...], "std": [...]}`` the images were
            normalised with, to map them back to pixels for ``jpeg_quality``;
            ``None``: the images are pixels in [0, 1].

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
        cutmix: float = 0.0,
        jpeg_quality: int | tuple[int, int] | list[int] | None = None,
        normalization: Mapping[str, Any] | None = None,
    ) -> None:
        one_of(CROP_MODES)(crop, "crop")
        optional_check(partial(check_number, integer=True))(padding, "padding")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"`scale` must satisfy 0 < low <= high <= 1; got {scale!r}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"`ratio` must satisfy 0 < low <= high; got {ratio!r}")
        for name, value in (("mixup", mixup), ("cutmix", cutmix)):
            if value < 0:
                raise ValueError(f"`{name}` must be >= 0; got {value!r}")
        check_jpeg_quality(jpeg_quality)
        if normalization is not None and set(normalization) != {"mean", "std"}:
            raise ValueError("`normalization` must be a dict with keys 'mean' and 'std'; "
                             f"got keys {sorted(normalization)}")
        self.crop = crop
        self.padding = padding
        self.scale = scale
        self.ratio = ratio
        self.flip = flip
        self.mixup = mixup
        self.cutmix = cutmix
        self.jpeg_quality = jpeg_quality
        self.normalization = normalization

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
        if self.jpeg_quality is not None:
            images = self._jpeg(images, generator)
        if n < 2 or (self.mixup <= 0 and self.cutmix <= 0):
            return images, None
        use_cutmix = self.cutmix > 0
        if self.mixup > 0 and self.cutmix > 0:
            use_cutmix = bool(torch.rand(1, generator=generator) < 0.5)
        # Beta draws come from numpy, seeded from the generator, so they repeat too.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        concentration = self.cutmix if use_cutmix else self.mixup
        lam = float(np.random.default_rng(seed).beta(concentration, concentration))
        perm = torch.randperm(n, generator=generator).to(images.device)
        if not use_cutmix:
            return lam * images + (1 - lam) * images[perm], Mix(perm, lam)
        h, w = images.shape[-2:]
        top, bottom, left, right = _cut_box(h, w, 1 - lam, generator)
        # Advanced indexing on the right copies, so the paste reads no pasted pixels.
        images = images.clone()
        images[:, :, top:bottom, left:right] = images[perm, :, top:bottom, left:right]
        kept = 1 - (bottom - top) * (right - left) / (h * w)
        return images, Mix(perm, kept, (top, bottom, left, right))

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

    def _jpeg(self, images: Tensor, generator: torch.Generator) -> Tensor:
        bounds = self.jpeg_quality
        low, high = (bounds, bounds) if isinstance(bounds, int) else (bounds[0], bounds[-1])
        qualities = torch.randint(low, high + 1, (images.shape[0],), generator=generator)
        return jpeg_recompress(images, qualities.tolist(), self.normalization)


def _cut_box(
    h: int, w: int, area: float, generator: torch.Generator
) -> tuple[int, int, int, int]:
    """A box of about ``area`` of an ``h x w`` image, with the image's aspect ratio,
    centred at a random pixel and clipped to the image: ``(top, bottom, left, right)``."""
    cut_h, cut_w = round(h * math.sqrt(area)), round(w * math.sqrt(area))
    cy = int(torch.randint(0, h, (1,), generator=generator))
    cx = int(torch.randint(0, w, (1,), generator=generator))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, w)
    return top, bottom, left, right
