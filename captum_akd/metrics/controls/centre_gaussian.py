"""Centre-Gaussian control: the photographer's prior that the object is in the middle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from captum_akd._image_ops import minmax_normalize
from captum_akd._validation import check_number
from captum_akd.metrics.controls.base import ControlAttribution


class CentreGaussianControl(ControlAttribution):
    r"""Control whose map is a Gaussian centred on the image, the same for every image.

    Photographs, and ImageNet in particular, tend to have the object in the
    middle; a map that only says "the centre matters" can score well on
    insertion and deletion without looking at the image or the model. For an
    ``H x W`` input the map is

    .. math::

        G(y, x) = \exp\Big(-\frac{(y - c_y)^2}{2 \sigma_y^2}
                           - \frac{(x - c_x)^2}{2 \sigma_x^2}\Big),
        \quad c_y = \frac{H - 1}{2},\ c_x = \frac{W - 1}{2},\
        \sigma_y = f H,\ \sigma_x = f W,

    with ``f = sigma_fraction`` (a quarter of the side by default), then
    min-max normalised to [0, 1]: 1 at the centre pixel (the four central
    pixels for even sizes), 0 at the corners. Pixels at mirrored positions
    get exactly equal values, so metrics break those ties in their own order
    (row-major for :func:`~captum_akd.metrics.insertion`). The model is
    never called; the images only give the size, device and dtype.

    Args:
        forward_func: the black box (stored, never called; may be ``None``).
        sigma_fraction: the standard deviation as a fraction of the side, > 0.

    Returns:
        From :meth:`attribute`: ``N x 1 x H x W`` maps in [0, 1], identical
        for all images of one size, in the inputs' dtype and on their device.

    Raises:
        ValueError: if ``sigma_fraction`` is not a positive number.

    Examples::

        >>> import torch
        >>> from captum_akd.metrics import CentreGaussianControl
        >>> maps = CentreGaussianControl(None).attribute(torch.rand(2, 3, 9, 9))
        >>> maps.shape, float(maps[0, 0, 4, 4]), float(maps[0, 0, 0, 0])
        (torch.Size([2, 1, 9, 9]), 1.0, 0.0)
        >>> torch.equal(maps[0], maps[1])
        True
    """

    def __init__(
        self, forward_func: Callable[..., Tensor] | None, sigma_fraction: float = 0.25
    ) -> None:
        check_number(sigma_fraction, "sigma_fraction", strict=True)
        super().__init__(forward_func)
        self.sigma_fraction = float(sigma_fraction)

    def _attribute_batch(
        self, images: Tensor, labels: Tensor, additional_forward_args: Any
    ) -> Tensor:
        n, _, height, width = images.shape
        kwargs = {"device": images.device, "dtype": torch.float64}
        # Squared offsets from the centre are exact for mirrored pixels, so
        # the map is exactly symmetric.
        dy = (torch.arange(height, **kwargs) - (height - 1) / 2) ** 2
        dx = (torch.arange(width, **kwargs) - (width - 1) / 2) ** 2
        sy, sx = self.sigma_fraction * height, self.sigma_fraction * width
        gauss = torch.exp(-dy[:, None] / (2 * sy**2) - dx[None, :] / (2 * sx**2))
        gauss = minmax_normalize(gauss.view(1, 1, height, width))
        return gauss.to(images.dtype).expand(n, -1, -1, -1)
