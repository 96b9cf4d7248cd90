"""Model-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

A map that explains a model must depend on what the model learned: when the
weights are re-drawn at random, the maps must change. The check compares maps
for the trained and the randomised model by Spearman rank correlation; a
correlation near 1 means the method ignores the model (an edge detector), a
correlation near 0 means it passes.

For the distilled explainer the randomised side is AKD re-distilled from the
randomised target (:func:`randomize_model`, then :func:`captum_akd.distill`);
for Grad-CAM or RISE it is the same method built on the randomised model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from captum_akd._validation import (
    call_black_box,
    check_finite,
    check_positive_int,
    format_image_inputs,
    resolve_target,
)


@dataclass(frozen=True)
class SanityCheckResult:
    """Spearman correlations between maps before and after randomisation.

    Attributes:
        correlations: ``N`` Spearman rank correlations in [-1, 1]; NaN where
            either map is constant (its ranks carry no order).
        mean: mean of the finite correlations (NaN if there are none).
        original_maps: maps for the original model, as the method returned them.
        randomized_maps: maps for the randomised model.
        target: ``N`` class indices both were asked to explain.

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.zoo import CifarResNet
        >>> model = CifarResNet(depth=8, num_classes=3).eval()
        >>> images = torch.randn(4, 3, 16, 16)
        >>> # A method compared with itself: every map keeps its ranks (fails the test).
        >>> result = sanity_check(GradCAM(model, model.layer3),
        ...                       GradCAM(model, model.layer3), images)
        >>> result.correlations, result.mean
        (tensor([1., 1., 1., 1.], dtype=torch.float64), 1.0)
        >>> result.original_maps.shape, result.target.shape
        (torch.Size([4, 1, 16, 16]), torch.Size([4]))
    """

    correlations: Tensor
    mean: float
    original_maps: Tensor
    randomized_maps: Tensor
    target: Tensor


def _average_ranks(values: Tensor) -> Tensor:
    """Ranks 1..M along dim 1 of ``N x M`` values, ties given their average rank."""
    n, m = values.shape
    sorted_values, order = values.sort(dim=1, stable=True)
    position = torch.arange(m, device=values.device).expand(n, m)
    starts_group = torch.ones_like(sorted_values, dtype=torch.bool)
    starts_group[:, 1:] = sorted_values[:, 1:] != sorted_values[:, :-1]
    ends_group = torch.ones_like(starts_group)
    ends_group[:, :-1] = starts_group[:, 1:]
    # first and last sorted position of each element's tie group, found with
    # running max / min instead of a loop over groups
    first = torch.where(starts_group, position, 0).cummax(dim=1).values
    last = torch.where(ends_group, position, m).flip(1).cummin(dim=1).values.flip(1)
    mean_rank = (first + last).to(torch.float64) / 2 + 1
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def spearman_correlation(maps_a: Tensor, maps_b: Tensor) -> Tensor:
    """Spearman rank correlation between corresponding maps of two batches.

    Pearson correlation of the pixel ranks of each pair of maps, with tied
    values given their average rank (as :func:`scipy.stats.spearmanr`).
    Computed in float64 on the maps' device, without a loop over images.

    Args:
        maps_a: ``N x ...`` maps (any shape after the batch dimension).
        maps_b: maps of the same shape as ``maps_a``.

    Returns:
        ``N`` correlations (float64) in [-1, 1]; NaN where either map is
        constant.

    Examples::

        >>> from captum_akd.metrics import spearman_correlation
        >>> a = torch.rand(2, 1, 8, 8)
        >>> spearman_correlation(a, a)
        tensor([1., 1.], dtype=torch.float64)
        >>> spearman_correlation(a, -a)
        tensor([-1., -1.], dtype=torch.float64)
    """
    for name, maps in (("maps_a", maps_a), ("maps_b", maps_b)):
        if not isinstance(maps, Tensor):
            raise TypeError(f"`{name}` must be a tensor; got {type(maps).__name__}")
        if maps.dim() < 2 or maps.shape[0] == 0 or maps[0].numel() < 2:
            raise ValueError(
                f"`{name}` must be N x ... with N > 0 and at least 2 values per map; "
                f"got shape {tuple(maps.shape)}"
            )
        check_finite(maps, name)
    if maps_a.shape != maps_b.shape:
        raise ValueError(
            f"`maps_a` and `maps_b` must have the same shape; got {tuple(maps_a.shape)} "
            f"and {tuple(maps_b.shape)}"
        )
    ranks_a = _average_ranks(maps_a.detach().flatten(1))
    ranks_b = _average_ranks(maps_b.detach().to(maps_a.device).flatten(1))
    ranks_a = ranks_a - ranks_a.mean(dim=1, keepdim=True)
    ranks_b = ranks_b - ranks_b.mean(dim=1, keepdim=True)
    covariance = (ranks_a * ranks_b).sum(dim=1)
    scale = torch.sqrt((ranks_a**2).sum(dim=1) * (ranks_b**2).sum(dim=1))
    # 0 / 0 for a constant map gives NaN on purpose: there is no rank order
    return (covariance / scale).clamp(-1, 1)


def _reinit_leftover(param: nn.Parameter) -> None:
    # PyTorch's own default for Linear and Conv weights; for 0/1-D parameters
    # a bias-like uniform draw on the same scale.
    if param.dim() >= 2:
        nn.init.kaiming_uniform_(param, a=math.sqrt(5))
    else:
        bound = 1 / math.sqrt(max(param.numel(), 1))
        nn.init.uniform_(param, -bound, bound)


def randomize_model(
    model: nn.Module,
    seed: int = 0,
    modules: Iterable[str] | None = None,
) -> nn.Module:
    """A deep copy of ``model`` with its parameters re-initialised at random.

    Every submodule with a ``reset_parameters`` method (convolutions, linear
    layers, batch norm, which also resets its running statistics) calls it;
    parameters no such method covers are re-drawn with PyTorch's default
    initialisation (Kaiming-uniform for weights, a small uniform for the rest).
    The original model is left untouched, and the global random state is
    restored afterwards. The same seed gives the same weights on the same
    device.

    Args:
        model: the trained model.
        seed: seed for the new weights.
        modules: qualified names (as in ``model.named_modules()``) of the
            submodules to randomise, each with everything inside it; ``None``
            randomises the whole model. Randomising the top layers first and
            widening step by step gives Adebayo et al.'s cascading test.

    Returns:
        The randomised copy, in the same train/eval mode and on the same devices.

    Examples::

        >>> from captum_akd.metrics import randomize_model
        >>> from captum_akd.zoo import CifarResNet
        >>> model = CifarResNet(depth=8, num_classes=3).eval()
        >>> random_model = randomize_model(model, seed=0)
        >>> torch.equal(random_model.conv1.weight, model.conv1.weight), random_model.training
        (False, False)
        >>> torch.equal(random_model.conv1.weight, randomize_model(model, seed=0).conv1.weight)
        True
        >>> head_only = randomize_model(model, seed=0, modules=["linear"])
        >>> (torch.equal(head_only.conv1.weight, model.conv1.weight),
        ...  torch.equal(head_only.linear.weight, model.linear.weight))
        (True, False)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module; got {type(model).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an int; got {seed!r}")
    randomized = copy.deepcopy(model)
    named = dict(randomized.named_modules())
    if modules is None:
        roots = [randomized]
    else:
        names = [modules] if isinstance(modules, str) else list(modules)
        unknown = [name for name in names if name not in named]
        if unknown:
            raise ValueError(
                f"`modules` names {unknown} that are not submodules of `model` "
                f"(see `model.named_modules()`)"
            )
        roots = [named[name] for name in names]
    targets: dict[int, nn.Module] = {}
    for root in roots:
        for module in root.modules():
            targets.setdefault(id(module), module)

    cuda_devices = sorted(
        {t.device.index or 0 for t in randomized.parameters() if t.device.type == "cuda"}
    )
    covered: set[int] = set()
    with torch.random.fork_rng(devices=cuda_devices), torch.no_grad():
        torch.manual_seed(seed)
        for module in targets.values():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
                covered.update(id(p) for p in module.parameters(recurse=False))
        for module in targets.values():
            for param in module.parameters(recurse=False):
                if id(param) not in covered:
                    _reinit_leftover(param)
                    covered.add(id(param))
    return randomized


def _explain(explainer: Any, images: Tensor, labels: Tensor) -> Tensor:
    attribute = getattr(explainer, "attribute", None)
    if attribute is not None:
        maps = attribute(images, target=labels)
    else:
        maps = explainer(images, labels)
    if isinstance(maps, tuple) and len(maps) == 1:
        maps = maps[0]
    if not isinstance(maps, Tensor):
        raise TypeError(f"the explainer must return a tensor of maps; got {type(maps).__name__}")
    return maps.detach()


def sanity_check(
    original: Any,
    randomized: Any,
    inputs: Tensor | tuple[Tensor],
    target: Any = None,
    absolute: bool = False,
    batch_size: int | None = None,
) -> SanityCheckResult:
    """Model-randomisation test: how much do the maps change with a random model?

    Explains ``inputs`` for the same classes with ``original`` (built on the
    trained model) and ``randomized`` (the same method on
    :func:`randomize_model`'s copy, or AKD re-distilled from it), then
    returns the Spearman rank correlation of each pair of maps
    (:func:`spearman_correlation`). Low correlations pass the test.

    Both explainers are asked about the same class, the original model's: with
    ``target=None`` it is the prediction of ``original.forward_func`` (one
    no-grad call), never the random model's.

    Args:
        original: the method on the trained model: a Captum attribution
            (``.attribute(inputs, target=...)``) or a callable
            ``(images, target) -> maps``.
        randomized: the same for the randomised model.
        inputs: ``N x C x H x W`` images, or a 1-tuple.
        target: Captum-style class target; ``None`` uses the original model's
            prediction (needs ``original.forward_func``).
        absolute: correlate absolute values of the maps (Adebayo et al. report
            both, since some methods flip sign at random).
        batch_size: explain at most this many images per call (``None``: all).

    Returns:
        A :class:`SanityCheckResult`.

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.metrics import randomize_model, sanity_check
        >>> from captum_akd.zoo import CifarResNet
        >>> model = CifarResNet(depth=8, num_classes=3).eval()
        >>> random_model = randomize_model(model, seed=0).eval()
        >>> images = torch.randn(4, 3, 16, 16)
        >>> result = sanity_check(GradCAM(model, model.layer3),
        ...                       GradCAM(random_model, random_model.layer3), images)
        >>> result.correlations.shape, bool(result.correlations.abs().max() <= 1)
        (torch.Size([4]), True)
        >>> # result.mean: near 0 passes, near 1 fails; the target is the original's class
        >>> torch.equal(result.target, model(images).argmax(dim=1))
        True
    """
    images, _ = format_image_inputs(inputs)
    check_positive_int(batch_size, "batch_size", allow_none=True)
    for name, explainer in (("original", original), ("randomized", randomized)):
        if getattr(explainer, "attribute", None) is None and not callable(explainer):
            raise TypeError(
                f"`{name}` must be an attribution with `.attribute` or a callable "
                f"(images, target) -> maps; got {type(explainer).__name__}"
            )
    n = images.shape[0]
    if target is None:
        forward_func: Callable[..., Tensor] | None = getattr(original, "forward_func", None)
        if forward_func is None:
            raise ValueError(
                "`target` is None and `original` has no `forward_func` to predict the "
                "class with; pass `target` explicitly"
            )
        labels = call_black_box(forward_func, images, batch_size=batch_size).argmax(dim=1)
    else:
        labels = resolve_target(target, n, None, images.device)

    chunk = batch_size or n
    maps_original, maps_randomized = [], []
    for lo in range(0, n, chunk):
        batch, batch_labels = images[lo : lo + chunk], labels[lo : lo + chunk]
        maps_original.append(_explain(original, batch, batch_labels))
        maps_randomized.append(_explain(randomized, batch, batch_labels))
    before = torch.cat(maps_original)
    after = torch.cat(maps_randomized)
    if before.shape != after.shape:
        raise ValueError(
            f"`original` and `randomized` returned maps of different shapes: "
            f"{tuple(before.shape)} and {tuple(after.shape)}"
        )
    if absolute:
        correlations = spearman_correlation(before.abs(), after.abs())
    else:
        correlations = spearman_correlation(before, after)
    finite = correlations[torch.isfinite(correlations)]
    return SanityCheckResult(
        correlations=correlations,
        mean=float(finite.mean()) if finite.numel() else float("nan"),
        original_maps=before,
        randomized_maps=after,
        target=labels,
    )
