"""Small tensor operations on image batches shared across the project."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
