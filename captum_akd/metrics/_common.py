"""Helpers shared by the metrics: target classes, class probabilities, map formats."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from captum_akd._image_ops import resize_maps
from captum_akd._validation import (
    call_black_box,
    check_finite,
    check_target_range,
    resolve_target,
)


def warn_if_training(model: Any, name: str = "model") -> None:
    """Warn when a module is in training mode.

    Batch norm in training mode would normalise each batch of perturbed images
    by its own statistics, so every score would depend on what else is in the
    batch; the metrics never switch modes themselves.

    Args:
        model: the model about to be scored; anything that is not a
            :class:`torch.nn.Module` (a plain function) never warns.
        name: the argument's name, used in the warning.

    Examples::

        >>> from captum_akd.metrics._common import warn_if_training
        >>> net = torch.nn.Linear(4, 2)
        >>> warn_if_training(net.eval())   # silent
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_if_training(net.train())
        >>> caught[0].category.__name__, str(caught[0].message)
        ('UserWarning', '`model` is in training mode; call `model.eval()` first ...')
    """
    if isinstance(model, torch.nn.Module) and model.training:
        warnings.warn(
            f"`{name}` is in training mode; call `{name}.eval()` first so that scores "
            "do not depend on the batch (batch norm, dropout)",
            stacklevel=3,
        )


def target_labels(
    model: Callable[..., Tensor],
    images: Tensor,
    target: Any,
    batch_size: int | None,
) -> Tensor:
    """Class indices to score: ``target`` (Captum-style) or the model's prediction.

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits; called (without
            gradients) only when ``target`` is ``None``.
        images: the ``N x C x H x W`` images.
        target: ``None`` (the model's top class for each image), an int, a list
            of ``N`` ints or a 0-d / length-``N`` integer tensor.
        batch_size: call the model on chunks of at most this many images
            (``None``: all at once).

    Returns:
        A LongTensor of ``N`` class indices.

    Examples::

        >>> from captum_akd.metrics._common import target_labels
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
        >>> images = torch.rand(2, 3, 4, 4)
        >>> target_labels(net, images, 3, None)
        tensor([3, 3])
        >>> target_labels(net, images, None, None).shape   # the predicted classes
        torch.Size([2])
    """
    n = images.shape[0]
    if target is None:
        return call_black_box(model, images, batch_size=batch_size).argmax(dim=1)
    return resolve_target(target, n, None, images.device)


def class_probabilities(logits: Tensor, labels: Tensor) -> Tensor:
    """Softmax probability of ``labels[i]`` in row ``i`` of ``N x K`` logits, as float32.

    Args:
        logits: ``N x K`` logits.
        labels: ``N`` class indices, each in ``[0, K)``.

    Returns:
        An ``N`` float32 tensor of probabilities.

    Raises:
        ValueError: if a class index is out of range.

    Examples::

        >>> from captum_akd.metrics._common import class_probabilities
        >>> class_probabilities(torch.zeros(2, 4), torch.tensor([0, 3]))
        tensor([0.2500, 0.2500])
    """
    check_target_range(labels, logits.shape[1])
    return logits.float().softmax(dim=1).gather(1, labels.view(-1, 1)).squeeze(1)


def score_images(
    model: Callable[..., Tensor],
    images: Tensor,
    labels: Tensor,
    batch_size: int | None,
) -> Tensor:
    """Softmax probability of each image's class, the model called in chunks.

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits (called without
            gradients).
        images: the ``N x C x H x W`` images to score.
        labels: ``N`` class indices.
        batch_size: call the model on chunks of at most this many images
            (``None``: all at once).

    Returns:
        An ``N`` float32 tensor: the probability of ``labels[i]`` for image ``i``.

    Examples::

        >>> from captum_akd.metrics._common import score_images
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
        >>> score_images(net.eval(), torch.rand(2, 3, 4, 4), torch.tensor([0, 1]), 1).shape
        torch.Size([2])
    """
    return class_probabilities(call_black_box(model, images, batch_size=batch_size), labels)


def format_maps(maps: Any, name: str = "saliency") -> Tensor:
    """Return a batch of maps as a finite floating-point ``N x 1 x H x W`` tensor.

    Accepts ``N x H x W``, ``N x 1 x H x W`` or ``N x C x H x W`` (channels
    averaged, as for :func:`captum_akd._validation.check_saliency`); integer
    maps are converted to float32.

    Args:
        maps: the batch of maps, ``N > 0``.
        name: the argument's name, used in error messages.

    Returns:
        The ``N x 1 x H x W`` floating-point maps.

    Raises:
        TypeError: if ``maps`` is not a tensor.
        ValueError: for another number of dimensions, an empty batch or
            non-finite values.

    Examples::

        >>> from captum_akd.metrics._common import format_maps
        >>> format_maps(torch.rand(2, 4, 4)).shape
        torch.Size([2, 1, 4, 4])
        >>> format_maps(torch.rand(2, 3, 4, 4)).shape
        torch.Size([2, 1, 4, 4])
    """
    if not isinstance(maps, Tensor):
        raise TypeError(f"`{name}` must be a tensor; got {type(maps).__name__}")
    if maps.dim() == 3:
        maps = maps.unsqueeze(1)
    if maps.dim() != 4 or maps.shape[0] == 0:
        raise ValueError(
            f"`{name}` must have shape N x 1 x H x W (or N x H x W) with N > 0; "
            f"got {tuple(maps.shape)}"
        )
    if not maps.is_floating_point():
        maps = maps.float()
    check_finite(maps, name)
    if maps.shape[1] != 1:
        maps = maps.mean(dim=1, keepdim=True)
    return maps


def upsample_to_inputs(saliency: Any, images: Tensor, name: str = "saliency") -> Any:
    """Bilinearly upsample maps of another spatial size to the images' ``H x W``.

    Anything that is not an ``N x [1|C] x h x w`` (or ``N x h x w``) batch of the
    right ``N`` is returned untouched, so that
    :func:`~captum_akd._validation.check_saliency` reports the mistake.

    Args:
        saliency: the maps to resize, usually ``N x 1 x h x w`` (coarse maps
            such as Grad-CAM's).
        images: the ``N x C x H x W`` images the maps explain.
        name: unused; kept for symmetry with the other helpers.

    Returns:
        ``N x 1 x H x W`` maps (channels averaged) on ``images``'s device, or
        ``saliency`` itself when it already has size ``H x W`` or cannot be
        read as such a batch.

    Examples::

        >>> from captum_akd.metrics._common import upsample_to_inputs
        >>> upsample_to_inputs(torch.rand(2, 1, 2, 2), torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 1, 8, 8])
    """
    if not isinstance(saliency, Tensor) or saliency.dim() not in (3, 4):
        return saliency
    if saliency.shape[0] != images.shape[0]:
        return saliency
    if tuple(saliency.shape[-2:]) == tuple(images.shape[-2:]):
        return saliency
    maps = saliency.unsqueeze(1) if saliency.dim() == 3 else saliency
    if maps.shape[1] not in (1, images.shape[1]):
        return saliency
    maps = maps.float() if not maps.is_floating_point() else maps
    maps = maps.mean(dim=1, keepdim=True).to(images.device)
    return resize_maps(maps, tuple(images.shape[-2:]))


def format_masks(masks: Any, maps: Tensor, name: str = "masks") -> Tensor:
    """Return ground-truth masks as an ``N x H x W`` bool tensor matching ``maps``.

    Bool masks are used as they are; numeric masks are thresholded at 0.5, so
    that soft masks from resizing keep the pixels that are mostly inside.

    Args:
        masks: ``N x H x W`` or ``N x 1 x H x W`` masks, bool or numeric.
        maps: the ``N x 1 x H x W`` maps they are compared with (see
            :func:`format_maps`).
        name: the argument's name, used in error messages.

    Returns:
        An ``N x H x W`` bool tensor on ``maps``'s device.

    Raises:
        TypeError: if ``masks`` is not a tensor.
        ValueError: for a shape that does not match ``maps``, or non-finite
            floating-point values.

    Examples::

        >>> from captum_akd.metrics._common import format_masks
        >>> format_masks(torch.tensor([[[0.2, 0.7], [0.5, 0.9]]]), torch.rand(1, 1, 2, 2))
        tensor([[[False,  True],
                 [False,  True]]])
    """
    if not isinstance(masks, Tensor):
        raise TypeError(f"`{name}` must be a tensor; got {type(masks).__name__}")
    if masks.dim() == 4:
        if masks.shape[1] != 1:
            raise ValueError(
                f"`{name}` must have one channel (N x 1 x H x W or N x H x W); "
                f"got shape {tuple(masks.shape)}"
            )
        masks = masks[:, 0]
    n, _, h, w = maps.shape
    if masks.dim() != 3 or tuple(masks.shape) != (n, h, w):
        raise ValueError(
            f"`{name}` must have shape N x H x W = {n} x {h} x {w} (or N x 1 x H x W) "
            f"to match `saliency`; got {tuple(masks.shape)}"
        )
    if masks.dtype == torch.bool:
        return masks.to(maps.device)
    if masks.is_floating_point():
        check_finite(masks, name)
    return (masks > 0.5).to(maps.device)
