"""Run several saliency methods on the same images and score them on the black box.

This is the measuring core shared by ``captum-akd demo`` and the benchmark
harness: every number comes from :mod:`captum_akd.metrics`, computed with the
black-box model (never a surrogate), on one set of images, one class per image
(the model's prediction unless given) and one device.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from captum_akd._validation import call_black_box, check_images, resolve_target
from captum_akd.metrics import (
    CausalMetricResult,
    ThroughputResult,
    confidence_change,
    deletion,
    energy_pointing_game,
    insertion,
    mean_pixel_intensity,
    pointing_game,
    throughput,
)


@dataclass
class MethodResult:
    """Every metric of one method on the evaluation images.

    Attributes:
        name: the method's label in tables.
        maps: ``N x 1 x H x W`` maps (on the CPU).
        insertion: insertion curves and areas (higher is better).
        deletion: deletion curves and areas (lower is better).
        mean_pixel_intensity: ``N`` values (lower is a more compact map).
        average_drop: average drop % (lower is better).
        increase_in_confidence: increase in confidence % (higher is better).
        drops: ``N`` per-image drops %.
        pointing_hits: ``N`` pointing-game hits, or ``None`` without masks.
        energy: ``N`` energy-pointing-game shares, or ``None`` without masks.
        speed: throughput of the method (images explained per second).
        attribute_seconds: wall time of explaining all ``N`` images once.

    Examples::

        >>> result = comparison["Grad-CAM"]        # from compare_methods
        >>> result.maps.shape, result.insertion.auc.shape
        (torch.Size([4, 1, 32, 32]), torch.Size([4]))
        >>> result.summary()["insertion"] == result.insertion.mean
        True
    """

    name: str
    maps: Tensor
    insertion: CausalMetricResult
    deletion: CausalMetricResult
    mean_pixel_intensity: Tensor
    average_drop: float
    increase_in_confidence: float
    drops: Tensor
    pointing_hits: Tensor | None
    energy: Tensor | None
    speed: ThroughputResult
    attribute_seconds: float

    def summary(self) -> dict[str, Any]:
        """The headline numbers as a flat dict (what tables show).

        Returns:
            A dict with the mean ``"insertion"`` and ``"deletion"`` areas, the mean
            ``"mean_pixel_intensity"``, ``"average_drop"`` and
            ``"increase_in_confidence"`` (percent), ``"pointing_game"`` and
            ``"energy_pointing_game"`` (percent, ``None`` without masks) and
            ``"images_per_second"``; every value a float or ``None``.
        """
        row = {
            "insertion": self.insertion.mean,
            "deletion": self.deletion.mean,
            "mean_pixel_intensity": float(self.mean_pixel_intensity.mean()),
            "average_drop": self.average_drop,
            "increase_in_confidence": self.increase_in_confidence,
            "pointing_game": None,
            "energy_pointing_game": None,
            "images_per_second": self.speed.images_per_second,
        }
        if self.pointing_hits is not None:
            row["pointing_game"] = float(self.pointing_hits.float().mean()) * 100
        if self.energy is not None:
            row["energy_pointing_game"] = float(self.energy.mean()) * 100
        return row


@dataclass
class Comparison:
    """Results of :func:`compare_methods`.

    Index it by method name (``comparison["RISE"]``) to get that method's
    :class:`MethodResult`; an unknown name raises ``KeyError``.

    Attributes:
        methods: one :class:`MethodResult` per method, in the order given.
        labels: ``N`` classes explained (the model's prediction unless given).
        inference: the black box's plain inference throughput, same images,
            batch and device: the reference row of speed tables.
        settings: the parameters of the run (step, batch size, ...).

    Examples::

        >>> [result.name for result in comparison.methods]   # from compare_methods
        ['Grad-CAM', 'RISE']
        >>> comparison.labels.shape, comparison.settings["image_size"]
        (torch.Size([4]), [32, 32])
        >>> comparison["RISE"].speed.images_per_second < comparison.inference.images_per_second
        True
    """

    methods: list[MethodResult]
    labels: Tensor
    inference: ThroughputResult
    settings: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> MethodResult:
        for result in self.methods:
            if result.name == name:
                return result
        raise KeyError(name)


def compare_methods(
    model: Any,
    methods: Mapping[str, Any],
    images: Tensor,
    *,
    target: Any = None,
    masks: Tensor | None = None,
    step: int | None = None,
    batch_size: int = 64,
    speed_images: Mapping[str, int] | None = None,
    tolerance: float = 15,
    reference_size: int = 224,
    progress: bool = True,
) -> Comparison:
    """Explain ``images`` with every method and compute every metric on ``model``.

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits, in eval mode.
        methods: name -> attribution (anything with ``attribute(inputs,
            target=...)`` returning ``N x 1 x H x W`` or input-shaped maps).
        images: ``N x C x H x W`` in the model's input space.
        target: classes to explain (Captum forms); ``None`` takes the model's
            prediction, so every method explains the same class.
        masks: optional ``N x 1 x H x W`` ground-truth masks for the pointing
            games.
        step: pixels per insertion/deletion step (``None``: one row).
        batch_size: images per call for attributions, metrics and timing.
        speed_images: name -> how many of the images to time that method on
            (default: all); slow perturbation methods may use fewer.
        tolerance: pointing-game tolerance in pixels at ``reference_size``.
        reference_size: image size at which ``tolerance`` holds.
        progress: show a progress bar over methods.

    Returns:
        A :class:`Comparison`: per method the ``N x 1 x H x W`` maps (CPU) and
        every metric, plus the ``N`` labels explained and the black box's own
        inference speed.

    Examples::

        >>> from captum_akd.baselines import RISE, GradCAM
        >>> from captum_akd.evaluation import compare_methods
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> images = torch.randn(4, 3, 32, 32)
        >>> methods = {"Grad-CAM": GradCAM(model, model.layer3), "RISE": RISE(model, n_masks=64)}
        >>> comparison = compare_methods(model, methods, images, progress=False)
        >>> comparison["RISE"].maps.shape, comparison.settings["step"]
        (torch.Size([4, 1, 32, 32]), 32)
    """
    check_images(images, "images")
    n = images.shape[0]
    if target is None:
        labels = call_black_box(model, images, batch_size=batch_size).argmax(dim=1)
    else:
        labels = resolve_target(target, n, None, images.device)
    inference = throughput(model, images, batch_size=batch_size)
    speed_images = dict(speed_images or {})
    results = []
    bar = tqdm(methods.items(), desc="methods", disable=not progress)
    for name, method in bar:
        bar.set_postfix_str(name)
        started = time.perf_counter()
        maps = method.attribute(images, target=labels, internal_batch_size=batch_size)
        seconds = time.perf_counter() - started
        if isinstance(maps, tuple):
            maps = maps[0]
        maps = maps.detach()
        if maps.shape[1] != 1:
            maps = maps.mean(dim=1, keepdim=True)
        ins = insertion(model, images, maps, labels, step=step, batch_size=batch_size)
        dele = deletion(model, images, maps, labels, step=step, batch_size=batch_size)
        conf = confidence_change(model, images, maps, labels, batch_size=batch_size)
        hits = energy = None
        if masks is not None:
            hits = pointing_game(maps, masks, tolerance, reference_size).cpu()
            energy = energy_pointing_game(maps, masks).cpu()
        k = min(speed_images.get(name, n), n)
        speed = throughput(method, images[:k], target=labels[:k], batch_size=batch_size,
                           warmup=1, repeats=1 if k < n else 2)
        results.append(
            MethodResult(
                name=name,
                maps=maps.cpu(),
                insertion=ins,
                deletion=dele,
                mean_pixel_intensity=mean_pixel_intensity(maps).cpu(),
                average_drop=conf.average_drop,
                increase_in_confidence=conf.increase_in_confidence,
                drops=conf.drops.cpu(),
                pointing_hits=hits,
                energy=energy,
                speed=speed,
                attribute_seconds=seconds,
            )
        )
    settings = {
        "n_images": n,
        "image_size": list(images.shape[-2:]),
        "step": results[0].insertion.step if results else step,
        "batch_size": batch_size,
        "speed_images": {r.name: r.speed.n_images for r in results},
        "threads": torch.get_num_threads(),
        "device": str(images.device),
        "pointing_tolerance_px": tolerance * min(images.shape[-2:]) / reference_size,
    }
    return Comparison(results, labels.cpu(), inference, settings)
