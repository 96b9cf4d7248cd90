"""Sobel-edge control: a map of where the image has contrast, blind to the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_akd._image_ops import gaussian_blur, minmax_normalize
from captum_akd._validation import check_number
from captum_akd.metrics.controls.base import ControlAttribution

# Horizontal derivative (x grows to the right); its transpose is the vertical one.
_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


class SobelEdgeControl(ControlAttribution):
    r"""Control whose map is the Sobel edge magnitude of the image itself.

    Saliency maps that look like edge detectors are a known failure (Adebayo
    et al., NeurIPS 2018): many images have their object where the contrast
    is, so an edge map can score well while saying nothing about the model.
    For each image, in the space it is given in (the normalised model input):

    1. each channel is smoothed with a Gaussian of ``blur_kernel`` taps and
       standard deviation ``blur_sigma``
       (:func:`captum_akd._image_ops.gaussian_blur`, reflection padding), so
       that pixel noise does not dominate;
    2. the Sobel derivatives :math:`g_x, g_y` of each smoothed channel are
       taken with replicated borders (so a constant image has no edges, not
       even at its border);
    3. the map is :math:`\sum_c \sqrt{g_{x,c}^2 + g_{y,c}^2}`, summed over
       channels, min-max normalised to [0, 1] per image (a constant image
       gives an all-zero map).

    The model is never called.

    Args:
        forward_func: the black box (stored, never called; may be ``None``).
        blur_kernel: taps of the smoothing Gaussian, a positive odd int
            (``1`` switches smoothing off).
        blur_sigma: its standard deviation in pixels, > 0.

    Returns:
        From :meth:`attribute`: ``N x 1 x H x W`` maps in [0, 1], in the
        inputs' dtype and on their device.

    Raises:
        ValueError: if ``blur_kernel`` is not a positive odd int or
            ``blur_sigma`` is not positive.

    Examples::

        >>> import torch
        >>> from captum_akd.metrics import SobelEdgeControl
        >>> images = torch.zeros(1, 3, 16, 16)
        >>> images[..., 8:] = 1.0                  # a vertical edge between columns 7 and 8
        >>> edges = SobelEdgeControl(None).attribute(images)
        >>> edges.shape, float(edges[0, 0, 5, 7]), float(edges[0, 0, 5, 0])
        (torch.Size([1, 1, 16, 16]), 1.0, 0.0)
        >>> float(SobelEdgeControl(None).attribute(torch.ones(1, 3, 16, 16)).max())
        0.0
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor] | None,
        blur_kernel: int = 5,
        blur_sigma: float = 1.0,
    ) -> None:
        if isinstance(blur_kernel, bool) or not isinstance(blur_kernel, int) or (
            blur_kernel < 1 or blur_kernel % 2 == 0
        ):
            raise ValueError(f"`blur_kernel` must be a positive odd int; got {blur_kernel!r}")
        check_number(blur_sigma, "blur_sigma", strict=True)
        super().__init__(forward_func)
        self.blur_kernel = blur_kernel
        self.blur_sigma = float(blur_sigma)

    def _attribute_batch(
        self, images: Tensor, labels: Tensor, additional_forward_args: Any
    ) -> Tensor:
        channels = images.shape[1]
        smooth = gaussian_blur(images, self.blur_kernel, self.blur_sigma)
        sobel_x = torch.tensor(_SOBEL_X, device=images.device, dtype=images.dtype)
        kernels = torch.stack([sobel_x, sobel_x.t()]).unsqueeze(1).repeat(channels, 1, 1, 1)
        padded = F.pad(smooth, (1, 1, 1, 1), mode="replicate")
        grads = F.conv2d(padded, kernels, groups=channels)  # N x 2C: (gx, gy) per channel
        magnitude = grads.unflatten(1, (channels, 2)).pow(2).sum(dim=2).sqrt()
        return minmax_normalize(magnitude.sum(dim=1, keepdim=True))
