"""Uncertainty of benchmark numbers: bootstrap intervals and paired comparisons.

A table cell is a mean over images with a 95 % percentile-bootstrap interval;
a method is compared with a reference (AKD) by the paired per-image difference
and its interval, and called better or worse only when that interval excludes
0 (``../design.md`` section 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from captum_akd._validation import check_number, check_positive_int

# Resampled index rows are drawn this many elements at a time, so that 10,000
# resamples of many thousand images never hold all indices at once; numpy
# draws the same stream whatever the chunking.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class BootstrapInterval:
    """A mean over images with its percentile-bootstrap confidence interval.

    Attributes:
        mean: the mean of the scores (the point estimate, not a bootstrap mean).
        low: the lower end of the interval.
        high: the upper end of the interval.
        confidence: the interval's nominal coverage (0.95 for 95 %).
        n_resamples: the number of bootstrap resamples.
        n: the number of images (scores).

    Examples::

        >>> from captum_akd.metrics import bootstrap_interval
        >>> cell = bootstrap_interval([0.5, 0.5, 0.5])
        >>> cell.mean, cell.low, cell.high
        (0.5, 0.5, 0.5)
        >>> cell.format(2)
        '0.50 [0.50, 0.50]'
    """

    mean: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    n: int

    def format(self, digits: int = 3) -> str:
        """The interval as a table cell, ``"mean [low, high]"``.

        Args:
            digits: digits after the decimal point.

        Returns:
            For example ``"0.705 [0.690, 0.720]"``.
        """
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class PairedComparison:
    """The paired per-image difference of two methods' scores and what it allows saying.

    Attributes:
        difference: the mean over images of ``scores - reference``.
        low: the lower end of the difference's bootstrap interval.
        high: the upper end of the interval.
        verdict: ``"better"`` or ``"worse"`` (the method of ``scores``
            compared with ``reference``) when the interval excludes 0, else
            ``"tie"``.
        higher_is_better: whether a higher score is better (``False`` for
            deletion and MoRF).
        confidence: the interval's nominal coverage.
        n_resamples: the number of bootstrap resamples.
        n: the number of images (pairs).

    Examples::

        >>> from captum_akd.metrics import paired_comparison
        >>> result = paired_comparison([0.9, 0.8, 0.7], [0.5, 0.5, 0.5])
        >>> result.verdict, round(result.difference, 3), result.low > 0
        ('better', 0.3, True)
    """

    difference: float
    low: float
    high: float
    verdict: str
    higher_is_better: bool
    confidence: float
    n_resamples: int
    n: int


def bootstrap_interval(
    scores: Any,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> BootstrapInterval:
    r"""Mean of per-image scores with a seeded percentile-bootstrap interval.

    With :math:`n` scores, ``n_resamples`` resamples of :math:`n` scores each
    are drawn with replacement and their means taken; the interval is the
    :math:`(1 - c)/2` and :math:`(1 + c)/2` quantiles of those means
    (:math:`c` = ``confidence``; 2.5 % and 97.5 % by default), computed with
    ``np.percentile``'s default linear interpolation. Exactly::

        rng = np.random.default_rng(seed)
        means = x[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
        low, high = np.percentile(means, [50 * (1 - c), 50 * (1 + c)])

    (drawn in chunks of rows, which gives the same numbers), so results are
    deterministic for a seed. 10,000 resamples of 1,000 images take a few
    hundredths of a second.

    Args:
        scores: ``n >= 1`` finite per-image scores: a 1-D tensor (any device),
            NumPy array or sequence of numbers.
        confidence: the interval's coverage, in (0, 1).
        n_resamples: the number of bootstrap resamples (10,000 in the
            benchmarks).
        seed: seed of the NumPy generator that draws the resamples.

    Returns:
        A :class:`BootstrapInterval` of Python floats.

    Raises:
        ValueError: for empty, non-1-D or non-finite scores, or a bad
            ``confidence`` or ``n_resamples``.
        TypeError: if ``seed`` is not an int.

    Examples::

        >>> import torch
        >>> from captum_akd.metrics import bootstrap_interval
        >>> scores = torch.linspace(0.0, 1.0, 101)
        >>> cell = bootstrap_interval(scores, n_resamples=2000, seed=0)
        >>> round(cell.mean, 3), cell.low < 0.5 < cell.high, cell.n
        (0.5, True, 101)
        >>> cell == bootstrap_interval(scores, n_resamples=2000, seed=0)   # seeded
        True
    """
    x = _as_scores(scores, "scores")
    means = _bootstrap_means(x, confidence, n_resamples, seed)
    low, high = _percentile_interval(means, confidence)
    return BootstrapInterval(
        mean=float(x.mean()),
        low=low,
        high=high,
        confidence=float(confidence),
        n_resamples=n_resamples,
        n=x.size,
    )


def paired_comparison(
    scores: Any,
    reference: Any,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Compare two methods on the same images by their paired per-image difference.

    The differences ``d_i = scores_i - reference_i`` are bootstrapped exactly
    as in :func:`bootstrap_interval` (the same images resampled for both
    methods, which removes the images' own difficulty from the comparison).
    The verdict, for the method of ``scores`` against ``reference``:

    - the interval lies above 0: ``"better"`` if ``higher_is_better``, else
      ``"worse"``;
    - it lies below 0: ``"worse"`` if ``higher_is_better``, else ``"better"``;
    - it contains 0 (ends included): ``"tie"``.

    Use ``higher_is_better=True`` for insertion, LeRF, ROAD's combined score,
    pointing games; ``False`` for deletion (either substrate), MoRF and
    average drop.

    Args:
        scores: ``n`` per-image scores of the method judged (tensor, array or
            sequence).
        reference: ``n`` scores of the reference method (AKD) on the same
            images, in the same order.
        higher_is_better: whether higher scores are better.
        confidence: the interval's coverage, in (0, 1).
        n_resamples: the number of bootstrap resamples.
        seed: seed of the resamples.

    Returns:
        A :class:`PairedComparison`.

    Raises:
        ValueError: if the two have different lengths, or as for
            :func:`bootstrap_interval`.
        TypeError: if ``higher_is_better`` is not a bool or ``seed`` not an int.

    Examples::

        >>> from captum_akd.metrics import paired_comparison
        >>> method, akd = [0.10, 0.12, 0.08, 0.11], [0.20, 0.21, 0.19, 0.22]
        >>> paired_comparison(method, akd, higher_is_better=False).verdict   # deletion
        'better'
        >>> paired_comparison(method, akd, higher_is_better=True).verdict    # insertion
        'worse'
        >>> paired_comparison([0.1, 0.3], [0.2, 0.2]).verdict               # +0.1 and -0.1
        'tie'
    """
    if not isinstance(higher_is_better, bool):
        raise TypeError(
            f"`higher_is_better` must be a bool; got {type(higher_is_better).__name__}"
        )
    a = _as_scores(scores, "scores")
    b = _as_scores(reference, "reference")
    if a.shape != b.shape:
        raise ValueError(
            f"`scores` and `reference` must hold one score per image of the same images; "
            f"got {a.size} and {b.size}"
        )
    diff = a - b
    low, high = _percentile_interval(
        _bootstrap_means(diff, confidence, n_resamples, seed), confidence
    )
    if low > 0:
        verdict = "better" if higher_is_better else "worse"
    elif high < 0:
        verdict = "worse" if higher_is_better else "better"
    else:
        verdict = "tie"
    return PairedComparison(
        difference=float(diff.mean()),
        low=low,
        high=high,
        verdict=verdict,
        higher_is_better=higher_is_better,
        confidence=float(confidence),
        n_resamples=n_resamples,
        n=diff.size,
    )


def _as_scores(values: Any, name: str) -> np.ndarray:
    """Per-image scores from a tensor, array or list as a float64 array, checked once."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a 1-D sequence of numbers") from None
    if x.ndim != 1 or x.size == 0:
        raise ValueError(
            f"`{name}` must be a non-empty 1-D sequence of per-image scores; "
            f"got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"`{name}` contains {int((~np.isfinite(x)).sum())} NaN or infinite")
    return x


def _bootstrap_means(x: np.ndarray, confidence: float, n_resamples: int, seed: int) -> np.ndarray:
    """Means of ``n_resamples`` resamples of ``x``, drawn in chunks to bound memory."""
    check_number(confidence, "confidence", strict=True, high=1.0)
    if confidence == 1.0:
        raise ValueError("`confidence` must be below 1 (e.g. 0.95); got 1.0")
    check_positive_int(n_resamples, "n_resamples")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int; got {type(seed).__name__}")
    rng = np.random.default_rng(seed)
    n = x.size
    rows = max(1, _CHUNK_ELEMENTS // n)
    means = np.empty(n_resamples)
    for lo in range(0, n_resamples, rows):
        hi = min(lo + rows, n_resamples)
        means[lo:hi] = x[rng.integers(0, n, size=(hi - lo, n))].mean(axis=1)
    return means


def _percentile_interval(means: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` interval of the bootstrap means, as floats."""
    low, high = np.percentile(means, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(low), float(high)
