"""Small tensor operations on image batches shared across the project."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor


def gaussian_kernel1d(kernel_size: int, sigma: float, device=None, dtype=None) -> Tensor:
    """A normalised 1-D Gaussian of ``kernel_size`` taps."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"`blur_kernel` must be a positive odd int; got {kernel_size!r}")
    if sigma <= 0:
        raise ValueError(f"`blur_sigma` must be positive; got {sigma!r}")
    x = torch.arange(kernel_size, device=device, dtype=dtype or torch.float32)
    x = x - (kernel_size - 1) / 2
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def gaussian_blur(images: Tensor, kernel_size: int = 11, sigma: float = 5.0) -> Tensor:
    """Blur each channel of an ``N x C x H x W`` batch with a Gaussian.

    The kernel is separable and applied per channel with reflection padding
    (replication padding for images too small to reflect), so the output has
    the input's shape; this is the "blurred image" that insertion starts from
    and that the explainer's masks blend towards.

    Args:
        images: an ``N x C x H x W`` floating-point batch.
        kernel_size: the number of taps, a positive odd int.
        sigma: the Gaussian's standard deviation in pixels, positive.

    Returns:
        The blurred ``N x C x H x W`` batch, same dtype and device.

    Raises:
        ValueError: if ``kernel_size`` is not a positive odd int or ``sigma``
            is not positive.

    Examples::

        >>> from captum_akd._image_ops import gaussian_blur
        >>> gaussian_blur(torch.rand(2, 3, 8, 8), kernel_size=5, sigma=1.0).shape
        torch.Size([2, 3, 8, 8])
    """
    channels = images.shape[1]
    kernel = gaussian_kernel1d(kernel_size, sigma, images.device, images.dtype)
    pad = kernel_size // 2
    mode = "reflect" if min(images.shape[-2:]) > pad else "replicate"
    out = F.pad(images, (pad, pad, pad, pad), mode=mode)
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return out


def minmax_normalize(maps: Tensor, eps: float = 1e-12) -> Tensor:
    """Scale each map of an ``N x ...`` batch to [0, 1] (constant maps become 0).

    Args:
        maps: a floating-point batch of ``N`` maps of any shape.
        eps: the smallest range divided by, so that constant maps give 0.

    Returns:
        A tensor of the same shape with each map's minimum at 0 and maximum at 1.

    Examples::

        >>> from captum_akd._image_ops import minmax_normalize
        >>> minmax_normalize(torch.tensor([[1.0, 3.0, 5.0], [2.0, 2.0, 2.0]]))
        tensor([[0.0000, 0.5000, 1.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    flat = maps.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    high = flat.max(dim=1, keepdim=True).values
    scaled = (flat - low) / (high - low).clamp_min(eps)
    return scaled.view_as(maps)


def resize_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly resize ``N x 1 x h x w`` maps to ``size`` (no-op when equal).

    Args:
        maps: an ``N x C x h x w`` floating-point batch (maps have ``C = 1``).
        size: the target ``(H, W)``.

    Returns:
        The ``N x C x H x W`` resized maps (``maps`` itself when already that size).

    Examples::

        >>> from captum_akd._image_ops import resize_maps
        >>> resize_maps(torch.rand(2, 1, 4, 4), (8, 8)).shape
        torch.Size([2, 1, 8, 8])
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def rise_masks(n: int, height: int, width: int, grid: int, p1: float,
               generator: torch.Generator, chunk: int = 256) -> Tensor:
    """RISE's smooth random masks: Bernoulli grids upsampled bilinearly, shifted, cropped.

    An ``s x s`` grid (``s = grid``) of cells that are 1 with probability
    ``p1`` is upsampled to ``(s + 1) * cell`` pixels a side (``cell =
    ceil(H / s)``, ``ceil(W / s)`` across), shifted by less than one cell in
    each direction and cropped to ``H x W`` (Petsiuk et al., BMVC 2018).

    Args:
        n: number of masks.
        height, width: their size.
        grid: cells per side ``s``.
        p1: probability that a cell is 1.
        generator: a CPU generator for every draw (so the masks repeat).
        chunk: masks upsampled at a time (the upsampled grids are larger than
            the masks, so all at once would need several times their memory).

    Returns:
        ``n x 1 x H x W`` masks on the CPU with values in [0, 1].

    Examples::

        >>> masks = rise_masks(3, 16, 16, 4, 0.5, torch.Generator().manual_seed(0))
        >>> masks.shape, bool(masks.min() >= 0), bool(masks.max() <= 1)
        (torch.Size([3, 1, 16, 16]), True, True)
    """
    cell_h, cell_w = math.ceil(height / grid), math.ceil(width / grid)
    up_size = ((grid + 1) * cell_h, (grid + 1) * cell_w)
    grids = (torch.rand(n, 1, grid, grid, generator=generator) < p1).float()
    shift_y = torch.randint(0, cell_h, (n,), generator=generator)
    shift_x = torch.randint(0, cell_w, (n,), generator=generator)
    rows, cols = torch.arange(height), torch.arange(width)
    masks = torch.empty(n, 1, height, width)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        up = F.interpolate(grids[start:stop], size=up_size, mode="bilinear",
                           align_corners=False)
        # Each mask has its own crop offset; advanced indexing crops them all at once.
        r = (shift_y[start:stop, None] + rows)[:, :, None]
        c = (shift_x[start:stop, None] + cols)[:, None, :]
        masks[start:stop, 0] = up[torch.arange(stop - start)[:, None, None], 0, r, c]
    # Interpolation weights summing to 1 + ulp can overshoot 1 by rounding.
    return masks.clamp_(0.0, 1.0)


PERTURB_MASKS = ("smooth", "scattered")
PERTURB_SUBSTRATES = ("blur", "zero")


def perturb(
    images: Tensor,
    generator: torch.Generator,
    masks: Sequence[str] = PERTURB_MASKS,
    substrates: Sequence[str] = PERTURB_SUBSTRATES,
    blur: tuple[int, float] = (11, 5.0),
) -> Tensor:
    """Partly removed copies of images, like those insertion, deletion and ROAD show a model.

    Each image gets its own mask kind, substrate and kept share, drawn from
    ``generator``: ``"smooth"`` masks are a random ``s x s`` grid (``s`` from 4
    to 8) upsampled bilinearly, blobs like RISE's masks and an explainer's
    maps; ``"scattered"`` masks are independent pixels, like the paper's
    deletion. The kept share is uniform on [0.05, 0.95] and exact (a per-image
    quantile). Removed pixels take the Gaussian-blurred image (``"blur"``,
    insertion's start) or 0 in the model's input space (``"zero"``, deletion's).

    Args:
        images: ``N x C x H x W`` images in the model's input space.
        generator: a CPU generator for every random draw (so it repeats).
        masks: the mask kinds to draw from.
        substrates: the substrates to draw from.
        blur: ``(kernel, sigma)`` of the blurred substrate.

    Returns:
        ``N x C x H x W`` perturbed copies (the input is not modified).

    Examples::

        >>> images = torch.randn(4, 3, 16, 16)
        >>> out = perturb(images, torch.Generator().manual_seed(0))
        >>> out.shape, bool((out == images).any()), bool((out != images).any())
        (torch.Size([4, 3, 16, 16]), True, True)
        >>> torch.equal(out, perturb(images, torch.Generator().manual_seed(0)))
        True
    """
    n, _, h, w = images.shape
    keep = torch.rand(n, generator=generator) * 0.9 + 0.05
    kind = torch.randint(len(masks), (n,), generator=generator)
    substrate = torch.randint(len(substrates), (n,), generator=generator)
    cells = int(torch.randint(4, 9, (1,), generator=generator))
    coarse = torch.rand(n, 1, cells, cells, generator=generator)
    scores = torch.where(
        torch.tensor([masks[k] == "smooth" for k in kind], dtype=torch.bool)[:, None, None, None],
        F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False),
        torch.rand(n, 1, h, w, generator=generator))
    # Ranks, not values: an exact kept share whatever the scores' distribution.
    ranks = scores.flatten(1).argsort(1).argsort(1).reshape(n, 1, h, w)
    mask = (ranks < (keep * h * w).round()[:, None, None, None]).to(images)
    blurred = gaussian_blur(images, *blur) if "blur" in substrates else images
    use_blur = torch.tensor([substrates[s] == "blur" for s in substrate],
                            dtype=torch.bool)[:, None, None, None]
    base = torch.where(use_blur.to(images.device), blurred, torch.zeros_like(images))
    return mask * images + (1 - mask) * base


def jpeg_recompress(images: Tensor, qualities: Sequence[int],
                    normalization: Mapping[str, Any] | None = None) -> Tensor:
    """Each image encoded as a JPEG of its quality and decoded again (on the CPU).

    Args:
        images: ``N x C x H x W`` images, ``C`` 1 or 3: pixels in [0, 1], or
            normalised with ``normalization``.
        qualities: ``N`` JPEG qualities in 1..100.
        normalization: ``{"mean": [...], "std": [...]}`` the images were
            normalised with, or ``None`` for pixels.

    Returns:
        The re-encoded images, in the input's space, device and dtype.

    Raises:
        ValueError: for another channel count, or pixels outside [0, 1]
            without a ``normalization``.

    Examples::

        >>> images = torch.linspace(0, 1, 16).expand(2, 3, 16, 16)   # a smooth ramp
        >>> out = jpeg_recompress(images, [95, 95])
        >>> out.shape, bool((out - images).abs().mean() < 0.05)
        (torch.Size([2, 3, 16, 16]), True)
    """
    c = images.shape[1]
    if c not in (1, 3):
        raise ValueError(f"`jpeg_quality` needs 1- or 3-channel images; got {c} channels")
    shape = (1, c, 1, 1)
    mean = std = None
    pixels = images.detach().float().cpu()
    if normalization is not None:
        mean = torch.as_tensor(normalization["mean"], dtype=torch.float32).reshape(shape)
        std = torch.as_tensor(normalization["std"], dtype=torch.float32).reshape(shape)
        pixels = pixels * std + mean
    elif pixels.min() < -1e-3 or pixels.max() > 1 + 1e-3:
        raise ValueError(
            "`jpeg_quality` needs pixels in [0, 1]; these images range over "
            f"[{float(pixels.min()):.3g}, {float(pixels.max()):.3g}]: pass the "
            "`normalization` they were made with"
        )
    pixels = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)
    decoded = torch.stack([
        _jpeg_round_trip(image, quality)
        for image, quality in zip(pixels, qualities, strict=True)
    ]).float() / 255
    if mean is not None:
        decoded = (decoded - mean) / std
    return decoded.to(device=images.device, dtype=images.dtype)


def _jpeg_round_trip(image: Tensor, quality: int) -> Tensor:
    """Encode a ``C x H x W`` uint8 image (C = 1 or 3) as a JPEG and decode it again."""
    array = image.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(
        buffer, format="JPEG", quality=quality)
    decoded = torch.from_numpy(np.asarray(Image.open(buffer)).copy())
    return decoded[None] if decoded.ndim == 2 else decoded.permute(2, 0, 1)
