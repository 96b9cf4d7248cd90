"""Uniform-noise control: a map that is pure chance, seeded per image."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from captum_akd.metrics.controls.base import ControlAttribution


class UniformNoiseControl(ControlAttribution):
    """Control whose map is i.i.d. uniform noise on [0, 1), one draw per image.

    The floor every method must clear: its ranking of pixels is random, so
    its insertion, deletion and ROAD scores are what chance gives on these
    images and this model. (On the paper's deletion, which zeroes scattered
    pixels far out of the training distribution, it beats every method on
    the imagenet-sample track; that is why deletion to blur and ROAD are
    reported too.)

    The map of an image is drawn from a :class:`torch.Generator` on the CPU
    seeded with a hash (BLAKE2b) of ``seed``, the image's shape and its
    values (as float64). So the same seed and image always give the same
    map, whatever the global RNG state, the image's position in the batch,
    the other images, ``internal_batch_size``, the device or the dtype; two
    different images get independent maps. The model is never called.

    Args:
        forward_func: the black box (stored, never called; may be ``None``).
        seed: the seed mixed into every image's hash; another seed gives other
            maps.

    Returns:
        From :meth:`attribute`: ``N x 1 x H x W`` maps, float32 draws from
        [0, 1) cast to the inputs' dtype, on their device.

    Raises:
        TypeError: if ``seed`` is not an int.

    Examples::

        >>> import torch
        >>> from captum_akd.metrics import UniformNoiseControl
        >>> images = torch.rand(3, 3, 16, 16)
        >>> control = UniformNoiseControl(None, seed=0)
        >>> maps = control.attribute(images)
        >>> maps.shape, bool(maps.min() >= 0), bool(maps.max() < 1)
        (torch.Size([3, 1, 16, 16]), True, True)
        >>> torch.equal(maps[1:], control.attribute(images[1:]))   # not tied to the batch
        True
        >>> torch.equal(maps, UniformNoiseControl(None, seed=1).attribute(images))
        False
    """

    def __init__(self, forward_func: Callable[..., Tensor] | None, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"`seed` must be an int; got {type(seed).__name__}")
        super().__init__(forward_func)
        self.seed = seed

    def _attribute_batch(
        self, images: Tensor, labels: Tensor, additional_forward_args: Any
    ) -> Tensor:
        height, width = images.shape[-2:]
        maps = torch.empty(images.shape[0], 1, height, width)
        for i, image in enumerate(images):
            gen = torch.Generator().manual_seed(_image_seed(image, self.seed))
            maps[i] = torch.rand(1, height, width, generator=gen)
        return maps.to(device=images.device, dtype=images.dtype)


def _image_seed(image: Tensor, seed: int) -> int:
    """A 63-bit generator seed from ``seed`` and the image, so that maps follow images."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(repr((seed, tuple(image.shape))).encode())
    digest.update(image.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
    return int.from_bytes(digest.digest(), "little") >> 1
