"""Average drop and increase in confidence (Chattopadhyay et al. 2018, Grad-CAM++).

Both compare the model's confidence in a class on the image with its
confidence on the image multiplied by the map: a faithful map keeps what the
model needs, so the confidence should barely drop (or even rise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from captum_akd._image_ops import minmax_normalize
from captum_akd._validation import check_positive_int, check_saliency, format_image_inputs
from captum_akd.metrics._common import (
    score_images,
    target_labels,
    upsample_to_inputs,
    warn_if_training,
)

# Softmax scores can underflow to 0 in float32; the drop is then 0 / tiny = 0.
_TINY = torch.finfo(torch.float32).tiny


@dataclass(frozen=True)
class ConfidenceResult:
    """Scores on the images and on the images times their maps.

    Attributes:
        average_drop: mean over images of ``max(0, Y - O) / Y * 100`` (percent;
            lower is better).
        increase_in_confidence: percentage of images with ``O > Y`` (higher is
            better).
        original_scores: ``N`` softmax scores ``Y`` of each image's class on the image.
        masked_scores: ``N`` softmax scores ``O`` on the image times its map.
        drops: ``N`` per-image drops ``max(0, Y - O) / Y * 100``.
        target: ``N`` class indices that were scored.

    Examples::

        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
        >>> images, maps = torch.rand(4, 3, 8, 8), torch.rand(4, 1, 8, 8)
        >>> result = confidence_change(model, images, maps)
        >>> round(result.average_drop, 1), result.increase_in_confidence, result.drops.shape
        (7.9, 25.0, torch.Size([4]))
        >>> int((result.masked_scores > result.original_scores).sum())  # 1 of 4 images
        1
    """

    average_drop: float
    increase_in_confidence: float
    original_scores: Tensor
    masked_scores: Tensor
    drops: Tensor
    target: Tensor


@torch.no_grad()
def confidence_change(
    model: Callable[..., Tensor],
    inputs: Tensor | tuple[Tensor],
    saliency: Tensor,
    target: Any = None,
    normalize: bool = True,
    batch_size: int | None = None,
) -> ConfidenceResult:
    r"""Average drop % and increase in confidence % in one pass of the model.

    With ``Y`` the model's softmax score of class ``c`` on the image and ``O``
    its score on ``image * map``:

    .. math::
        \text{average drop} = \frac{100}{N}\sum_i \frac{\max(0, Y_i - O_i)}{Y_i},
        \qquad
        \text{increase in confidence} = \frac{100}{N}\sum_i [O_i > Y_i].

    The map multiplies the image in the model's input space, broadcast over
    channels. Maps smaller than the image (a raw Grad-CAM, say) are first
    upsampled bilinearly to the input size; then, with ``normalize=True``,
    each map is min-max normalised to [0, 1] (a constant map becomes all zeros).
    With ``normalize=False`` the maps must already lie in [0, 1].

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits, in eval mode.
        inputs: ``N x C x H x W`` images in the model's input space, or a 1-tuple.
        saliency: ``N x 1 x h x w`` maps (``N x h x w`` and ``N x C x h x w``
            accepted); ``h x w`` is the input size or smaller.
        target: ``None`` (the model's prediction on the image) or a
            Captum-style class target (int, list of ``N``, integer tensor).
        normalize: min-max normalise each map to [0, 1] first.
        batch_size: at most this many images per model call (``None``: all).

    Returns:
        A :class:`ConfidenceResult`.

    Examples::

        >>> from captum_akd.metrics import confidence_change
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
        >>> images, maps = torch.rand(4, 3, 8, 8), torch.rand(4, 1, 8, 8)
        >>> result = confidence_change(model, images, maps)
        >>> round(result.average_drop, 1), result.increase_in_confidence
        (7.9, 25.0)
        >>> keep_all = confidence_change(model, images, torch.ones(4, 1, 8, 8), normalize=False)
        >>> keep_all.average_drop, keep_all.increase_in_confidence   # nothing changes
        (0.0, 0.0)
    """
    images, _ = format_image_inputs(inputs)
    maps = check_saliency(upsample_to_inputs(saliency, images), images)
    check_positive_int(batch_size, "batch_size", allow_none=True)
    warn_if_training(model)
    if normalize:
        maps = minmax_normalize(maps)
    elif maps.min() < 0 or maps.max() > 1:
        raise ValueError(
            "`saliency` must lie in [0, 1] when `normalize=False`; got values in "
            f"[{float(maps.min()):.4g}, {float(maps.max()):.4g}] (pass normalize=True "
            "to min-max normalise each map)"
        )

    labels = target_labels(model, images, target, batch_size)
    original = score_images(model, images, labels, batch_size)
    masked = score_images(model, images * maps, labels, batch_size)
    drops = (original - masked).clamp_min(0) / original.clamp_min(_TINY) * 100
    return ConfidenceResult(
        average_drop=float(drops.mean()),
        increase_in_confidence=float((masked > original).float().mean() * 100),
        original_scores=original,
        masked_scores=masked,
        drops=drops,
        target=labels,
    )


def average_drop(
    model: Callable[..., Tensor],
    inputs: Tensor | tuple[Tensor],
    saliency: Tensor,
    target: Any = None,
    normalize: bool = True,
    batch_size: int | None = None,
) -> float:
    """Average drop %: ``mean(max(0, Y - O) / Y) * 100``; lower is better.

    See :func:`confidence_change` for the definition; use it directly to get
    both numbers from one pass.

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits, in eval mode.
        inputs: ``N x C x H x W`` images in the model's input space, or a 1-tuple.
        saliency: ``N x 1 x h x w`` maps (upsampled to the input size if smaller).
        target: ``None`` (the model's prediction) or a Captum-style class target.
        normalize: min-max normalise each map to [0, 1] first.
        batch_size: at most this many images per model call (``None``: all).

    Returns:
        The average drop in percent, a float in [0, 100].

    Examples::

        >>> from captum_akd.metrics import average_drop
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
        >>> images, maps = torch.rand(4, 3, 8, 8), torch.rand(4, 1, 8, 8)
        >>> round(average_drop(model, images, maps), 1)
        7.9
    """
    return confidence_change(model, inputs, saliency, target, normalize, batch_size).average_drop


def increase_in_confidence(
    model: Callable[..., Tensor],
    inputs: Tensor | tuple[Tensor],
    saliency: Tensor,
    target: Any = None,
    normalize: bool = True,
    batch_size: int | None = None,
) -> float:
    """Increase in confidence %: share of images with ``O > Y``, times 100; higher is better.

    See :func:`confidence_change` for the definition.

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits, in eval mode.
        inputs: ``N x C x H x W`` images in the model's input space, or a 1-tuple.
        saliency: ``N x 1 x h x w`` maps (upsampled to the input size if smaller).
        target: ``None`` (the model's prediction) or a Captum-style class target.
        normalize: min-max normalise each map to [0, 1] first.
        batch_size: at most this many images per model call (``None``: all).

    Returns:
        The share of images whose score rises, in percent, a float in [0, 100].

    Examples::

        >>> from captum_akd.metrics import increase_in_confidence
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
        >>> images, maps = torch.rand(4, 3, 8, 8), torch.rand(4, 1, 8, 8)
        >>> increase_in_confidence(model, images, maps)   # 1 image of 4
        25.0
    """
    return confidence_change(
        model, inputs, saliency, target, normalize, batch_size
    ).increase_in_confidence
