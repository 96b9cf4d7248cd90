"""Insertion and deletion: the causal metrics of RISE (Petsiuk et al. 2018).

Algorithms A1 and A2 of the method paper. A map is good for insertion when
revealing its most salient pixels first brings the class probability back
quickly (high area), and good for deletion when removing them first destroys
it quickly (low area).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from captum_akd._image_ops import gaussian_blur
from captum_akd._validation import (
    call_black_box,
    check_positive_int,
    check_saliency,
    format_image_inputs,
)
from captum_akd.metrics._common import class_probabilities, target_labels, warn_if_training


@dataclass(frozen=True)
class CausalMetricResult:
    """Curves and areas of an insertion or deletion run.

    Attributes:
        kind: ``"insertion"`` or ``"deletion"``.
        curves: ``N x (n_steps + 1)`` softmax probabilities of each image's
            class; column ``i`` is the image after ``i`` steps (column 0 the
            start image, the last column the finished one).
        auc: ``N`` areas under the curves on [0, 1], trapezoid rule.
        mean: mean of ``auc`` over the batch, the number the benchmarks report.
        step: pixels changed per step.
        n_pixels: ``H * W``, pixels per image.
        target: ``N`` class indices that were scored.
        substrate: what the changed pixels come from or go to: ``"blur"`` for
            insertion (its start), ``"zero"`` or ``"blur"`` for deletion.

    Examples::

        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
        >>> images, maps = torch.rand(4, 3, 8, 8), torch.rand(4, 1, 8, 8)
        >>> result = insertion(model, images, maps, step=16)
        >>> result.kind, result.substrate, result.n_steps, result.n_pixels
        ('insertion', 'blur', 4, 64)
        >>> result.fractions                    # x axis of the curves, for plots
        tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000])
        >>> mean_curve = result.curves.mean(0)  # y axis: the mean curve
        >>> round(result.mean, 2)               # the reported area
        0.39
    """

    kind: str
    curves: Tensor
    auc: Tensor
    mean: float
    step: int
    n_pixels: int
    target: Tensor
    substrate: str = "zero"

    @property
    def n_steps(self) -> int:
        """Number of steps, ``ceil(H * W / step)``."""
        return self.curves.shape[1] - 1

    @property
    def fractions(self) -> Tensor:
        """``n_steps + 1`` fractions of pixels changed at each curve point, for plots."""
        changed = torch.arange(self.n_steps + 1, device=self.curves.device) * self.step
        return changed.clamp(max=self.n_pixels).float() / self.n_pixels


def insertion(
    model: Callable[..., Tensor],
    inputs: Tensor | tuple[Tensor],
    saliency: Tensor,
    target: Any = None,
    step: int | None = None,
    blur_kernel: int = 11,
    blur_sigma: float = 5.0,
    batch_size: int = 64,
) -> CausalMetricResult:
    r"""Insertion metric (Algorithm A1; RISE's ``CausalMetric`` in ``"ins"`` mode).

    Starts from a Gaussian-blurred copy of each image (per channel,
    ``blur_kernel`` taps, ``blur_sigma``) and puts back the original pixels,
    most salient first, ``step`` pixels per step and all channels at once,
    until the image is whole again. After every step, including step 0 (the
    blurred image) and the last (the original image), the softmax probability
    of the image's class is recorded. The score is the area under that curve
    on [0, 1]:

    .. math::
        \mathrm{AUC} = \frac{1}{S}\Big(\sum_{i=0}^{S} p_i - \frac{p_0 + p_S}{2}\Big),
        \qquad S = \lceil HW / \mathrm{step} \rceil.

    Higher is better. The last step may change fewer than ``step`` pixels;
    like RISE, the steps are still counted as equally wide.

    Pixels with equal saliency are taken in row-major order (top-left first):
    the ordering is a stable descending sort, so results do not depend on the
    device or the sort algorithm. (RISE's NumPy code reverses an ascending
    sort, which takes tied pixels bottom-right first; only ties differ.)

    Images, their blurred copies and all intermediate states are built on the
    inputs' device; the model sees at most ``batch_size`` states per call.

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits, in eval mode.
            Always the target model, never a student.
        inputs: ``N x C x H x W`` images in the model's input space
            (normalised), or a 1-tuple holding them.
        saliency: ``N x 1 x H x W`` maps (``N x H x W`` and ``N x C x H x W``,
            averaged over channels, are accepted) at the inputs' size.
        target: the class to score: ``None`` (the model's prediction on the
            original image), an int, a list of ``N`` ints or an integer tensor
            of ``N`` (or 0-d).
        step: pixels inserted per step, in ``[1, H * W]``. ``None`` uses ``W``
            (one image row's worth, ``H`` steps; RISE uses 224 at 224 x 224).
        blur_kernel: taps of the Gaussian (odd).
        blur_sigma: standard deviation of the Gaussian, in pixels.
        batch_size: at most this many perturbed images per model call.

    Returns:
        A :class:`CausalMetricResult` with ``kind="insertion"``.

    Examples::

        >>> from captum_akd.metrics import insertion
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
        >>> images, maps = torch.rand(4, 3, 8, 8), torch.rand(4, 1, 8, 8)
        >>> result = insertion(model, images, maps, step=16)   # 64 pixels, 4 steps
        >>> result.curves.shape, result.auc.shape
        (torch.Size([4, 5]), torch.Size([4]))
        >>> # the last point is the whole image, scored for the predicted class
        >>> probs = model(images).softmax(dim=1)
        >>> torch.equal(result.target, probs.argmax(dim=1))
        True
        >>> torch.allclose(result.curves[:, -1], probs.max(dim=1).values)
        True
        >>> round(result.mean, 2)                              # the reported number
        0.39
    """
    return _causal_metric(
        "insertion", model, inputs, saliency, target, step, blur_kernel, blur_sigma, batch_size,
        "blur",
    )


def deletion(
    model: Callable[..., Tensor],
    inputs: Tensor | tuple[Tensor],
    saliency: Tensor,
    target: Any = None,
    step: int | None = None,
    batch_size: int = 64,
    substrate: str = "zero",
    blur_kernel: int = 11,
    blur_sigma: float = 5.0,
) -> CausalMetricResult:
    r"""Deletion metric (Algorithm A2; RISE's ``CausalMetric`` in ``"del"`` mode).

    Starts from each image and sets its pixels to 0 in the model's input
    space (the normalised image, i.e. the dataset mean colour), most salient
    first, ``step`` pixels per step and all channels at once, until nothing is
    left. The softmax probability of the image's class is recorded after every
    step, including step 0 (the original image) and the last (all zeros), and
    the score is the area under the curve exactly as in :func:`insertion`.
    Lower is better.

    ``substrate="blur"`` is *deletion to blur*: removed pixels take their
    values in the Gaussian-blurred copy of the image instead of 0, exactly
    the image :func:`insertion` starts from (same helper, ``blur_kernel``
    taps, ``blur_sigma``, per channel), so the last curve point is the
    blurred image. Zeroing scattered pixels is far out of the training
    distribution (on the imagenet-sample track a uniform-noise map beats
    every method on the paper's deletion), a blurred pixel much less; the benchmarks report
    both. The default, ``"zero"``, is the paper's metric and does not look at
    ``blur_kernel`` or ``blur_sigma``.

    Ties in saliency are broken as in :func:`insertion` (row-major order).

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits, in eval mode.
        inputs: ``N x C x H x W`` images in the model's input space, or a 1-tuple.
        saliency: ``N x 1 x H x W`` maps at the inputs' size.
        target: ``None`` (the model's prediction on the original image) or a
            Captum-style class target.
        step: pixels removed per step, in ``[1, H * W]``; ``None`` uses ``W``.
        batch_size: at most this many perturbed images per model call.
        substrate: ``"zero"`` (the paper's deletion) or ``"blur"`` (deletion
            to blur).
        blur_kernel: taps of the Gaussian (odd), for ``substrate="blur"``.
        blur_sigma: standard deviation of the Gaussian in pixels, for
            ``substrate="blur"``.

    Returns:
        A :class:`CausalMetricResult` with ``kind="deletion"`` and
        ``substrate`` as given.

    Raises:
        ValueError: for an unknown ``substrate``, or as for :func:`insertion`.

    Examples::

        >>> import torch
        >>> from captum_akd.metrics import deletion
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
        >>> images, maps = torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8)
        >>> result = deletion(model, images, maps, step=8)
        >>> result.auc.shape, result.substrate      # N areas, lower is better
        (torch.Size([2]), 'zero')
        >>> to_blur = deletion(model, images, maps, step=8, substrate="blur")
        >>> to_blur.curves.shape, to_blur.substrate  # 8 steps, to the blurred image
        (torch.Size([2, 9]), 'blur')
    """
    if substrate not in _DELETION_SUBSTRATES:
        raise ValueError(
            f"`substrate` must be one of {', '.join(map(repr, _DELETION_SUBSTRATES))}; "
            f"got {substrate!r}"
        )
    return _causal_metric(
        "deletion", model, inputs, saliency, target, step, blur_kernel, blur_sigma, batch_size,
        substrate,
    )


# What deletion replaces removed pixels with: 0 in the input space, or the blurred image.
_DELETION_SUBSTRATES = ("zero", "blur")


def _check_step(step: Any, n_pixels: int, width: int) -> int:
    if step is None:
        return width
    if not isinstance(step, int) or isinstance(step, bool) or not 1 <= step <= n_pixels:
        raise ValueError(
            f"`step` must be an int from 1 to H * W = {n_pixels} (pixels changed per "
            f"step); got {step!r}"
        )
    return step


@torch.no_grad()
def _causal_metric(
    kind: str,
    model: Callable[..., Tensor],
    inputs: Any,
    saliency: Tensor,
    target: Any,
    step: int | None,
    blur_kernel: int,
    blur_sigma: float,
    batch_size: int,
    substrate: str,
) -> CausalMetricResult:
    images, _ = format_image_inputs(inputs)
    maps = check_saliency(saliency, images)
    n, _, height, width = images.shape
    n_pixels = height * width
    step = _check_step(step, n_pixels, width)
    check_positive_int(batch_size, "batch_size")
    warn_if_training(model)

    if kind == "insertion":
        start = gaussian_blur(images, blur_kernel, blur_sigma)
        finish = images
    elif substrate == "blur":
        start = images
        finish = gaussian_blur(images, blur_kernel, blur_sigma)
    else:
        start = images
        # a 0-d zero broadcasts in torch.where, so no N x C x H x W zeros are made
        finish = torch.zeros((), dtype=images.dtype, device=images.device)

    labels = target_labels(model, images, target, batch_size)
    n_steps = math.ceil(n_pixels / step)

    # rank[i, p] is the position of pixel p in image i's most-salient-first
    # order; after k steps exactly the pixels with rank < k * step are changed,
    # so any (image, step) state is one comparison away and states of many
    # images and steps can share a model call.
    order = torch.argsort(maps.flatten(1), dim=1, descending=True, stable=True)
    positions = torch.arange(n_pixels, device=images.device).expand(n, -1)
    rank = torch.empty_like(order).scatter_(1, order, positions)

    total = n * (n_steps + 1)
    image_idx = torch.arange(n, device=images.device).repeat_interleave(n_steps + 1)
    step_idx = torch.arange(n_steps + 1, device=images.device).repeat(n)
    probs = torch.empty(total, device=images.device)
    for lo in range(0, total, batch_size):
        idx = image_idx[lo : lo + batch_size]
        changed = rank[idx] < (step_idx[lo : lo + batch_size] * step).unsqueeze(1)
        changed = changed.view(-1, 1, height, width)
        new = finish[idx] if finish.dim() else finish
        states = torch.where(changed, new, start[idx])
        probs[lo : lo + batch_size] = class_probabilities(
            call_black_box(model, states), labels[idx]
        )

    curves = probs.view(n, n_steps + 1)
    auc = (curves.sum(dim=1) - (curves[:, 0] + curves[:, -1]) / 2) / n_steps
    return CausalMetricResult(
        kind=kind,
        curves=curves,
        auc=auc,
        mean=float(auc.mean()),
        step=step,
        n_pixels=n_pixels,
        target=labels,
        substrate=substrate,
    )
