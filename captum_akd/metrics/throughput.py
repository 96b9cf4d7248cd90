"""Throughput: images explained (or classified) per second."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from captum_akd._validation import check_positive_int, format_image_inputs, resolve_target


@dataclass(frozen=True)
class ThroughputResult:
    """One throughput measurement.

    Attributes:
        images_per_second: ``n_images / seconds``.
        seconds: median wall-clock time of one pass over all images.
        n_images: images per pass.
        batch_size: images per call of the method.
        threads: ``torch.get_num_threads()`` during the run.
        device: the inputs' device, e.g. ``"cpu"`` or ``"cuda:0"``.
        device_name: the accelerator's name on CUDA, else the device type.
        timings: wall-clock seconds of every timed pass.

    Examples::

        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
        >>> result = throughput(model, torch.rand(8, 3, 8, 8), batch_size=4, repeats=3)
        >>> result.n_images, result.batch_size, len(result.timings), result.device_name
        (8, 4, 3, 'cpu')
        >>> f"{result.images_per_second:.0f} images/s on {result.device_name}"
        '... images/s on cpu'
        >>> result.images_per_second == result.n_images / result.seconds
        True
    """

    images_per_second: float
    seconds: float
    n_images: int
    batch_size: int
    threads: int
    device: str
    device_name: str
    timings: tuple[float, ...]


def _synchronize(device: torch.device) -> None:
    # Kernels run asynchronously on accelerators: without waiting for them the
    # clock would only measure how fast work is queued.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def throughput(
    method: Any,
    inputs: Tensor | tuple[Tensor],
    target: Any = None,
    batch_size: int | None = None,
    warmup: int = 2,
    repeats: int = 3,
) -> ThroughputResult:
    """Images per second of a saliency method, or of a model's plain inference.

    Each timed pass runs ``method`` over all ``inputs`` in chunks of
    ``batch_size``; the result is the median over ``repeats`` passes, after
    ``warmup`` untimed calls on the first chunk (allocator, cuDNN autotuning,
    lazy initialisation). On CUDA the device is synchronised before the clock
    starts and before it stops. To compare methods, measure them in one run on
    the same images, batch size, device and thread count (all recorded in the
    result).

    Args:
        method: a Captum attribution (anything with ``.attribute(inputs,
            target=...)``), called with each chunk and its targets; or a plain
            callable such as the model itself, called on each chunk under
            :func:`torch.no_grad` (``target`` ignored), for the reference row.
        inputs: ``N x C x H x W`` images on the device to measure, or a 1-tuple.
        target: passed to ``method.attribute``, sliced per chunk when it has
            one entry per image; ``None`` lets the method pick (its cost counts).
        batch_size: images per call; ``None`` for all ``N`` at once.
        warmup: untimed calls before measuring (0 allowed).
        repeats: timed passes over all images.

    Returns:
        A :class:`ThroughputResult`.

    Examples::

        >>> from captum_akd.baselines import RISE
        >>> from captum_akd.metrics import throughput
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
        >>> images = torch.rand(8, 3, 8, 8)
        >>> reference = throughput(model, images, batch_size=4)   # plain inference
        >>> rise = throughput(RISE(model, n_masks=16), images, target=[0, 1] * 4,
        ...                   batch_size=4, warmup=1, repeats=1)
        >>> rise.n_images, rise.device, len(rise.timings), rise.images_per_second > 0
        (8, 'cpu', 1, True)
        >>> rise.threads == torch.get_num_threads()
        True
    """
    images, _ = format_image_inputs(inputs)
    check_positive_int(batch_size, "batch_size", allow_none=True)
    check_positive_int(repeats, "repeats")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"`warmup` must be an int >= 0; got {warmup!r}")
    n = images.shape[0]
    chunk = batch_size or n
    attribute = getattr(method, "attribute", None)
    if attribute is None and not callable(method):
        raise TypeError(
            "`method` must have an `attribute` method (a Captum attribution) or be "
            f"callable (a model); got {type(method).__name__}"
        )
    # Per-image targets are sliced with the images; scalars go to every chunk.
    labels = None
    if attribute is not None and target is not None and not isinstance(target, int):
        labels = resolve_target(target, n, None, images.device)

    def run(lo: int) -> None:
        batch = images[lo : lo + chunk]
        if attribute is None:
            with torch.no_grad():
                method(batch)
        else:
            batch_target = labels[lo : lo + chunk] if labels is not None else target
            attribute(batch, target=batch_target)

    for _ in range(warmup):
        run(0)
    _synchronize(images.device)
    timings = []
    for _ in range(repeats):
        _synchronize(images.device)
        started = time.perf_counter()
        for lo in range(0, n, chunk):
            run(lo)
        _synchronize(images.device)
        timings.append(time.perf_counter() - started)

    seconds = statistics.median(timings)
    device = images.device
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = device.type
    return ThroughputResult(
        images_per_second=n / seconds if seconds > 0 else float("inf"),
        seconds=seconds,
        n_images=n,
        batch_size=chunk,
        threads=torch.get_num_threads(),
        device=str(device),
        device_name=device_name,
        timings=tuple(timings),
    )
