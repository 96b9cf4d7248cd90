"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci, Kasneci; ICML 2022).

Deletion and insertion replace pixels by 0 or blur, states a classifier has
never seen, so part of what they measure is the model's reaction to the
replacement. ROAD removes pixels by noisy linear imputation instead
(:func:`~captum_akd.metrics.noisy_linear_imputation`), which leaks little
about the removed region's shape, and reads the class probability at fixed
shares of removed pixels, most relevant first (MoRF) and least relevant first
(LeRF).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from captum_akd._validation import (
    call_black_box,
    check_number,
    check_positive_int,
    check_saliency,
    format_image_inputs,
)
from captum_akd.metrics._common import (
    class_probabilities,
    score_images,
    target_labels,
    warn_if_training,
)
from captum_akd.metrics.imputation import _impute_one

#: The shares of pixels (in %) ROAD removes by default, as in the paper.
DEFAULT_PERCENTILES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)


@dataclass(frozen=True)
class ROADResult:
    """Per-image curves and scores of a ROAD run.

    Attributes:
        percentiles: the ``P`` shares of pixels removed, in %.
        n_removed: the ``P`` numbers of pixels removed per image,
            ``floor(H * W * p / 100)``.
        morf_curves: ``N x P`` softmax probabilities of each image's class
            with the ``n_removed[j]`` most relevant pixels imputed (lower is
            better).
        lerf_curves: ``N x P`` probabilities with the least relevant pixels
            imputed (higher is better).
        morf: ``N`` means of ``morf_curves`` over the percentiles.
        lerf: ``N`` means of ``lerf_curves`` over the percentiles.
        combined: ``N`` combined scores ``lerf - morf``, the mean over the
            percentiles of LeRF minus MoRF (higher is better).
        original: ``N`` probabilities of the class on the unperturbed images.
        target: ``N`` class indices that were scored.

    Examples::

        >>> import torch
        >>> from captum_akd.metrics import road
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
        >>> result = road(model, torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8))
        >>> result.morf_curves.shape, result.combined.shape, result.n_removed[:3]
        (torch.Size([2, 9]), torch.Size([2]), (6, 12, 19))
        >>> by_percentile = (result.lerf_curves - result.morf_curves).mean(1)
        >>> torch.allclose(result.combined, by_percentile, atol=1e-6)
        True
        >>> isinstance(result.mean, float)     # the combined score of the batch
        True
    """

    percentiles: tuple[float, ...]
    n_removed: tuple[int, ...]
    morf_curves: Tensor
    lerf_curves: Tensor
    morf: Tensor
    lerf: Tensor
    combined: Tensor
    original: Tensor
    target: Tensor

    @property
    def mean(self) -> float:
        """Mean of :attr:`combined` over the batch, the number a table reports."""
        return float(self.combined.mean())


@torch.no_grad()
def road(
    model: Callable[..., Tensor],
    inputs: Tensor | tuple[Tensor],
    saliency: Tensor,
    target: Any = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    noise: float = 0.01,
    seed: int = 0,
    batch_size: int = 64,
    num_threads: int = 1,
) -> ROADResult:
    r"""ROAD, most and least relevant first, with its combined score (per image).

    For each image, its map ranks the pixels (all channels move together).
    For every share :math:`p` in ``percentiles`` (10, 20, ..., 90 % by
    default) the :math:`k_p = \lfloor HW p / 100 \rfloor` highest-ranked
    pixels (MoRF) or lowest-ranked pixels (LeRF) are removed and filled in by
    noisy linear imputation
    (:func:`~captum_akd.metrics.noisy_linear_imputation`, noise ``noise``),
    and the black box's softmax probability of the image's class is recorded:
    :math:`\mathrm{MoRF}_p` and :math:`\mathrm{LeRF}_p`. The scores are the
    means over the :math:`P` percentiles,

    .. math::

        \mathrm{MoRF} = \frac1P \sum_p \mathrm{MoRF}_p, \quad
        \mathrm{LeRF} = \frac1P \sum_p \mathrm{LeRF}_p, \quad
        \mathrm{combined} = \frac1P \sum_p (\mathrm{LeRF}_p - \mathrm{MoRF}_p)
                          = \mathrm{LeRF} - \mathrm{MoRF} .

    A faithful map has low MoRF (removing what it points at destroys the
    class), high LeRF (removing what it ignores does not) and a high combined
    score; a random map has LeRF close to MoRF and a combined score near 0.
    ``pytorch_grad_cam.metrics.road.ROADCombined`` returns half of this
    combined score, ``(LeRF - MoRF) / 2``; the ordering of methods is the same.

    How it relates to the maintained implementation: the imputer is the
    authors' (the one ``pytorch-grad-cam`` 1.5 ships) and the test suite
    checks that, on maps without ties and without noise, every
    ``morf_curves`` / ``lerf_curves`` column equals
    ``ROADMostRelevantFirst`` / ``ROADLeastRelevantFirst`` with the same
    number of pixels removed, and ``combined`` twice ``ROADCombined``. Three
    things differ on purpose:

    - pixels are ranked with a stable sort, so exactly :math:`k_p` pixels go
      whatever the ties (pixels of equal relevance are taken in row-major
      order, for both orders). ``pytorch-grad-cam`` keeps the pixels below a
      ``np.percentile`` threshold, so on a map with a plateau (a Grad-CAM
      map that is 0 on half the image, a constant map) it removes a
      different share, up to every pixel. Its ``percentile`` argument is also
      the share *kept*: its ``ROADMostRelevantFirst(80)`` removes 20 %;
    - the noise comes from ``seed``, not the global RNG: one ``C x H x W``
      standard normal field per (order, percentile) is drawn from a
      :class:`torch.Generator` on the CPU and shared by all images, so an
      image's scores depend neither on the global RNG nor on the other images
      of the batch, and two methods are compared on the same noise;
    - imputations and model calls are batched: the model sees
      ``batch_size`` imputed images per call, and ``num_threads`` threads
      solve the sparse systems (SciPy releases the GIL while solving).

    Cost: per image, :math:`2P` sparse solves on the CPU (whatever the
    inputs' device) and :math:`2P + 1` images through the model. With the
    default percentiles the solves take about 1.4 to 1.9 s of one CPU core
    per 224 x 224 image (the 70 to 90 % removals dominate; smooth maps, whose
    removed regions are large holes, are the slower end) and about 20 ms per
    32 x 32 image; 100 ImageNet images and 10 methods are about half an hour
    on one core. ``num_threads`` solves that many systems at once on free
    cores.

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits, in eval mode.
            Always the target model, never a student.
        inputs: ``N x C x H x W`` images in the model's input space
            (normalised), or a 1-tuple holding them. Imputation and noise act
            on these values.
        saliency: ``N x 1 x H x W`` maps (``N x H x W`` and ``N x C x H x W``,
            averaged over channels, are accepted) at the inputs' size; higher
            means more relevant.
        target: the class to score: ``None`` (the model's prediction on the
            original image), an int, a list of ``N`` ints or an integer tensor
            of ``N`` (or 0-d).
        percentiles: the shares of pixels to remove, in %, each in [0, 100).
        noise: standard deviation of the imputation noise in input units
            (0.01 as in the paper and ``pytorch-grad-cam``), ``>= 0``.
        seed: seed of the noise fields.
        batch_size: at most this many imputed images per model call.
        num_threads: threads solving the imputations (1: in the caller's
            thread). Results do not depend on it (nor on ``batch_size``,
            beyond the model's own batch-dependent rounding).

    Returns:
        A :class:`ROADResult` with ``N x P`` curves and ``N`` scores.

    Raises:
        ValueError: for a bad shape, percentile, ``noise``, ``batch_size`` or
            ``num_threads``.
        TypeError: if ``seed`` is not an int.

    Examples::

        >>> import torch
        >>> from captum_akd.metrics import road
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
        >>> images, maps = torch.rand(2, 3, 16, 16), torch.rand(2, 1, 16, 16)
        >>> result = road(model, images, maps, batch_size=8)
        >>> result.morf_curves.shape, result.lerf.shape, result.percentiles[-1]
        (torch.Size([2, 9]), torch.Size([2]), 90.0)
        >>> again = road(model, images, maps, batch_size=8, num_threads=2)
        >>> torch.equal(result.combined, again.combined)      # seeded
        True
    """
    images, _ = format_image_inputs(inputs)
    maps = check_saliency(saliency, images)
    percentiles = _check_percentiles(percentiles)
    check_number(noise, "noise")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int; got {type(seed).__name__}")
    check_positive_int(batch_size, "batch_size")
    check_positive_int(num_threads, "num_threads")
    warn_if_training(model)

    n, channels, height, width = images.shape
    n_pixels = height * width
    n_removed = tuple(math.floor(n_pixels * p / 100) for p in percentiles)
    labels = target_labels(model, images, target, batch_size)
    original = score_images(model, images, labels, batch_size)

    # Masks are built on the CPU, where the imputation is solved.
    flat = maps.flatten(1).cpu()
    orders = (
        torch.argsort(flat, dim=1, descending=True, stable=True),  # MoRF
        torch.argsort(flat, dim=1, stable=True),  # LeRF
    )
    gen = torch.Generator().manual_seed(seed)
    fields = torch.randn((2, len(percentiles), channels, height, width), generator=gen)

    def impute(item: tuple[int, int, int]) -> Tensor:
        i, order, j = item
        removed = torch.zeros(n_pixels, dtype=torch.bool)
        removed[orders[order][i, : n_removed[j]]] = True
        return _impute_one(images[i], removed.view(height, width), noise, fields[order, j])

    items = [(i, o, j) for i in range(n) for o in range(2) for j in range(len(percentiles))]
    probs = torch.empty(len(items), device=images.device)
    pool = ThreadPoolExecutor(num_threads) if num_threads > 1 else None
    try:
        for lo in range(0, len(items), batch_size):
            block = items[lo : lo + batch_size]
            states = list(pool.map(impute, block)) if pool else [impute(t) for t in block]
            idx = torch.tensor([t[0] for t in block], device=images.device)
            logits = call_black_box(model, torch.stack(states))
            probs[lo : lo + len(block)] = class_probabilities(logits, labels[idx])
    finally:
        if pool is not None:
            pool.shutdown()

    curves = probs.view(n, 2, len(percentiles))
    morf_curves, lerf_curves = curves[:, 0], curves[:, 1]
    morf, lerf = morf_curves.mean(dim=1), lerf_curves.mean(dim=1)
    return ROADResult(
        percentiles=percentiles,
        n_removed=n_removed,
        morf_curves=morf_curves,
        lerf_curves=lerf_curves,
        morf=morf,
        lerf=lerf,
        combined=lerf - morf,
        original=original,
        target=labels,
    )


def _check_percentiles(percentiles: Any) -> tuple[float, ...]:
    """The percentiles as floats, refusing shares that would remove every pixel."""
    if isinstance(percentiles, (str, bytes)) or not isinstance(percentiles, Sequence):
        raise ValueError(
            f"`percentiles` must be a sequence of numbers in [0, 100); got {percentiles!r}"
        )
    if len(percentiles) == 0:
        raise ValueError("`percentiles` is empty; give at least one share of pixels in %")
    for p in percentiles:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 100:
            raise ValueError(
                f"`percentiles` must hold numbers in [0, 100) (shares of pixels removed, "
                f"in %); got {p!r}"
            )
    return tuple(float(p) for p in percentiles)
