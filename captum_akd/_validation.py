"""Input checks shared by every attribution, metric and training entry point.

Each check raises a ``ValueError`` or ``TypeError`` whose message names the
argument and says what was expected, so that a user's mistake never surfaces as
a shape error deep inside a convolution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor


def format_image_inputs(inputs: Any, name: str = "inputs") -> tuple[Tensor, bool]:
    """Return ``(images, was_tuple)`` for a tensor or a 1-tuple holding one.

    Args:
        inputs: an ``N x C x H x W`` floating-point tensor, or a tuple with
            exactly one such tensor (Captum's tuple form).
        name: the argument's name, used in error messages.

    Returns:
        The ``N x C x H x W`` tensor (checked with :func:`check_images`) and
        whether it came wrapped in a tuple, so that the caller can hand its
        result back in the same form.

    Examples::

        >>> images, was_tuple = format_image_inputs((torch.zeros(2, 3, 4, 4),))
        >>> images.shape, was_tuple
        (torch.Size([2, 3, 4, 4]), True)
    """
    was_tuple = isinstance(inputs, (tuple, list))
    if was_tuple:
        if len(inputs) != 1:
            raise ValueError(
                f"`{name}` must be a tensor or a tuple of exactly one tensor "
                f"(images N x C x H x W); got a {type(inputs).__name__} of {len(inputs)}"
            )
        inputs = inputs[0]
    if not isinstance(inputs, Tensor):
        raise TypeError(
            f"`{name}` must be a torch.Tensor of shape N x C x H x W; "
            f"got {type(inputs).__name__}"
        )
    check_images(inputs, name)
    return inputs, was_tuple


def check_images(images: Tensor, name: str = "inputs") -> None:
    """Check that ``images`` is a finite, floating-point ``N x C x H x W`` batch.

    Args:
        images: the tensor to check.
        name: the argument's name, used in error messages.

    Raises:
        ValueError: if ``images`` does not have 4 dimensions, is empty (``N = 0``)
            or holds NaN or infinite values.
        TypeError: if ``images`` is not floating point.

    Examples::

        >>> check_images(torch.zeros(2, 3, 4, 4))
        >>> check_images(torch.zeros(3, 4, 4))
        Traceback (most recent call last):
        ...
        ValueError: `inputs` must have 4 dimensions (N x C x H x W); got shape (3, 4, 4) with 3
    """
    if images.dim() != 4:
        raise ValueError(
            f"`{name}` must have 4 dimensions (N x C x H x W); got shape "
            f"{tuple(images.shape)} with {images.dim()}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: the batch dimension is 0")
    if not images.is_floating_point():
        raise TypeError(
            f"`{name}` must be a floating-point tensor (the model's input space, "
            f"e.g. normalised float32); got dtype {images.dtype}"
        )
    check_finite(images, name)


def check_finite(tensor: Tensor, name: str) -> None:
    """Raise if ``tensor`` holds NaN or infinite values.

    Args:
        tensor: a tensor of any shape.
        name: the argument's name, used in the error message.

    Raises:
        ValueError: naming ``name`` and the number of non-finite values.

    Examples::

        >>> check_finite(torch.tensor([1.0, float("nan")]), "maps")
        Traceback (most recent call last):
        ...
        ValueError: `maps` contains 1 NaN or infinite value(s)
    """
    if not torch.isfinite(tensor).all():
        n_bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"`{name}` contains {n_bad} NaN or infinite value(s)")


def check_channels(images: Tensor, expected: int, name: str = "inputs") -> None:
    """Raise if ``images`` does not have ``expected`` channels (dimension 1).

    Args:
        images: an ``N x C x H x W`` batch.
        expected: the number of channels ``C`` the model takes.
        name: the argument's name, used in the error message.

    Raises:
        ValueError: if ``C != expected``.

    Examples::

        >>> check_channels(torch.zeros(2, 3, 8, 8), 3)
        >>> check_channels(torch.zeros(2, 1, 8, 8), 3)
        Traceback (most recent call last):
        ...
        ValueError: `inputs` must have 3 channel(s) in dimension 1 (N x C x H x W); got 1 ...
    """
    if images.shape[1] != expected:
        raise ValueError(
            f"`{name}` must have {expected} channel(s) in dimension 1 (N x C x H x W); "
            f"got {images.shape[1]} (shape {tuple(images.shape)})"
        )


def check_min_size(images: Tensor, min_size: int, name: str = "inputs") -> None:
    """Raise if the spatial size of ``images`` is smaller than ``min_size``.

    Args:
        images: an ``N x C x H x W`` batch.
        min_size: the smallest height and width the model accepts.
        name: the argument's name, used in the error message.

    Raises:
        ValueError: if ``H < min_size`` or ``W < min_size``.

    Examples::

        >>> check_min_size(torch.zeros(2, 3, 8, 8), 32)
        Traceback (most recent call last):
        ...
        ValueError: `inputs` must be at least 32 x 32 pixels for this model; got 8 x 8
    """
    height, width = images.shape[-2:]
    if height < min_size or width < min_size:
        raise ValueError(
            f"`{name}` must be at least {min_size} x {min_size} pixels for this model; "
            f"got {height} x {width}"
        )


def check_same_device(images: Tensor, module: torch.nn.Module, what: str) -> None:
    """Raise if ``module``'s parameters do not live on ``images``'s device.

    Only the first parameter is looked at; a module without parameters passes.

    Args:
        images: the inputs, any shape.
        module: the network that will be applied to ``images``.
        what: how to name ``module`` in the error message (``"student"``, ...).

    Raises:
        ValueError: if the devices differ; the message says how to move them.

    Examples::

        >>> check_same_device(torch.zeros(1, 3, 8, 8), torch.nn.Conv2d(3, 4, 3), "model")
    """
    param = next(module.parameters(), None)
    if param is not None and param.device != images.device:
        raise ValueError(
            f"`inputs` are on {images.device} but the {what} is on {param.device}; "
            f"move one of them (e.g. `attr.to({str(images.device)!r})`)"
        )


def format_additional_args(additional_forward_args: Any) -> tuple:
    """Return ``additional_forward_args`` as a tuple, as Captum passes them."""
    if additional_forward_args is None:
        return ()
    if isinstance(additional_forward_args, tuple):
        return additional_forward_args
    return (additional_forward_args,)


def check_logits(output: Any, n: int, name: str = "forward_func") -> Tensor:
    """Check that a black box returned an ``N x K`` tensor of logits.

    Args:
        output: what the black box returned.
        n: the batch size it was called on.
        name: how to name the black box in error messages.

    Returns:
        ``output`` unchanged.

    Raises:
        TypeError: if ``output`` is not a floating-point tensor.
        ValueError: if ``output`` is not 2-D with ``n`` rows.

    Examples::

        >>> check_logits(torch.zeros(2, 10), 2).shape
        torch.Size([2, 10])
    """
    if not isinstance(output, Tensor):
        raise TypeError(
            f"`{name}` must return a tensor of logits N x K; got {type(output).__name__}"
        )
    if output.dim() != 2 or output.shape[0] != n:
        raise ValueError(
            f"`{name}` must return logits of shape N x K = {n} x K for a batch of {n} "
            f"images; got shape {tuple(output.shape)}"
        )
    if not output.is_floating_point():
        raise TypeError(f"`{name}` must return floating-point logits; got {output.dtype}")
    return output


@torch.no_grad()
def call_black_box(
    forward_func: Callable[..., Tensor],
    images: Tensor,
    additional_forward_args: Any = None,
    batch_size: int | None = None,
) -> Tensor:
    """Call a black-box classifier without gradients and return its ``N x K`` logits.

    The black box is only ever called on input tensors: its parameters,
    gradients and internals are never read.

    Args:
        forward_func: the black box, ``images -> logits``.
        images: ``N x C x H x W`` inputs in the black box's input space.
        additional_forward_args: extra positional arguments, passed after the
            images (Captum's convention).
        batch_size: call the black box on chunks of at most this many images.

    Returns:
        ``N x K`` logits (detached), the chunks concatenated in order.

    Raises:
        ValueError: if ``forward_func`` is ``None``, or returns something other
            than ``n x K`` logits for a chunk of ``n`` images.

    Examples::

        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
        >>> call_black_box(net, torch.zeros(6, 3, 4, 4), batch_size=4).shape
        torch.Size([6, 5])
    """
    if forward_func is None:
        raise ValueError(
            "`forward_func` is None: the black box is needed here (to pick the "
            "target class); pass it to the constructor or give `target` explicitly"
        )
    extra = format_additional_args(additional_forward_args)
    n = images.shape[0]
    step = n if not batch_size else batch_size
    outputs = []
    for start in range(0, n, step):
        chunk = images[start : start + step]
        out = check_logits(forward_func(chunk, *extra), chunk.shape[0])
        outputs.append(out.detach())
    return torch.cat(outputs)


def resolve_target(
    target: Any,
    n: int,
    num_classes: int | None,
    device: torch.device,
) -> Tensor:
    """Turn a Captum-style target into a LongTensor of ``n`` class indices.

    Args:
        target: an int, a list of ``n`` ints, or a 0-d / length-``n`` integer
            tensor (Captum's ``TargetType`` for classifiers). ``None`` is
            resolved by the caller (the black box's prediction).
        n: the batch size.
        num_classes: the number of classes, to check the range; ``None`` skips it.
        device: where the returned tensor lives.

    Returns:
        A contiguous 1-D LongTensor of length ``n``.

    Raises:
        TypeError: for a bool, a tuple, a non-integer tensor or list, or any
            other type.
        ValueError: for ``None``, a wrong length or an out-of-range class index.

    Examples::

        >>> resolve_target(3, 2, 10, torch.device("cpu"))
        tensor([3, 3])
        >>> resolve_target(torch.tensor(4), 3, None, torch.device("cpu"))
        tensor([4, 4, 4])
    """
    if target is None:
        raise ValueError("`target` is None; resolve it with the black box's prediction first")
    if isinstance(target, bool):
        raise TypeError("`target` must be a class index, not a bool")
    if isinstance(target, tuple):
        raise TypeError(
            "`target` as a tuple selects an element of a multi-dimensional output; "
            "these attributions explain classifiers, so give an int, a list of N ints "
            "or a tensor of N class indices"
        )
    if isinstance(target, int):
        labels = torch.full((n,), target, dtype=torch.long, device=device)
    elif isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(f"`target` must be an integer tensor; got dtype {target.dtype}")
        if target.dim() == 0:
            labels = target.reshape(1).expand(n)
        elif target.dim() == 1 and target.numel() == n:
            labels = target
        else:
            raise ValueError(
                f"`target` as a tensor must be 0-d or have exactly N = {n} elements; "
                f"got shape {tuple(target.shape)}"
            )
        labels = labels.to(device=device, dtype=torch.long)
    elif isinstance(target, Sequence) and not isinstance(target, (str, bytes)):
        if len(target) != n:
            raise ValueError(
                f"`target` as a list must have one class per input (N = {n}); got {len(target)}"
            )
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in target):
            raise TypeError(
                "`target` as a list must hold ints (one class index per input); "
                f"got {[type(t).__name__ for t in target][:5]}"
            )
        labels = torch.tensor(list(target), dtype=torch.long, device=device)
    else:
        raise TypeError(
            "`target` must be None, an int, a list of N ints or an integer tensor; "
            f"got {type(target).__name__}"
        )
    if num_classes is not None:
        check_target_range(labels, num_classes)
    return labels.contiguous()


def check_target_range(labels: Tensor, num_classes: int, name: str = "target") -> None:
    """Raise if any class index in ``labels`` is outside ``[0, num_classes)``.

    Args:
        labels: class indices, any shape (an empty tensor passes).
        num_classes: the number of classes ``K`` of the model.
        name: the argument's name, used in the error message.

    Raises:
        ValueError: naming the first offending index found (the minimum if
            negative, else the maximum).

    Examples::

        >>> check_target_range(torch.tensor([0, 10]), 10)
        Traceback (most recent call last):
        ...
        ValueError: `target` holds class index 10, out of range for a model with 10 classes ...
    """
    if labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(
            f"`{name}` holds class index {bad}, out of range for a model with "
            f"{num_classes} classes (valid: 0 to {num_classes - 1})"
        )


def check_positive_int(value: Any, name: str, allow_none: bool = False) -> None:
    """Raise unless ``value`` is a positive int (or ``None`` when allowed).

    Args:
        value: the value to check; a bool is not an int here.
        name: the argument's name, used in the error message.
        allow_none: accept ``None`` too (an optional setting left unset).

    Raises:
        ValueError: if ``value`` is not an int ``>= 1`` (or allowed ``None``).

    Examples::

        >>> check_positive_int(None, "internal_batch_size", allow_none=True)
        >>> check_positive_int(0, "batch_size")
        Traceback (most recent call last):
        ...
        ValueError: `batch_size` must be a positive int; got 0
    """
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive int; got {value!r}")


def check_saliency(saliency: Tensor, images: Tensor, name: str = "saliency") -> Tensor:
    """Check a saliency batch against its images and return it as ``N x 1 x H x W``.

    Accepts ``N x H x W``, ``N x 1 x H x W`` or ``N x C x H x W`` (channels
    averaged, as Captum attributions broadcast to the input come back).

    Args:
        saliency: the maps; ``N``, ``H`` and ``W`` must match ``images``.
        images: the ``N x C x H x W`` images the maps explain.
        name: the argument's name, used in error messages.

    Returns:
        The finite ``N x 1 x H x W`` maps on ``images``'s device, in its dtype.

    Raises:
        TypeError: if ``saliency`` is not a tensor.
        ValueError: for a shape that does not match, or non-finite values.

    Examples::

        >>> images = torch.zeros(2, 3, 4, 4)
        >>> check_saliency(torch.rand(2, 3, 4, 4), images).shape
        torch.Size([2, 1, 4, 4])
        >>> check_saliency(torch.rand(2, 4, 4), images).shape
        torch.Size([2, 1, 4, 4])
    """
    if not isinstance(saliency, Tensor):
        raise TypeError(f"`{name}` must be a tensor; got {type(saliency).__name__}")
    n, c, h, w = images.shape
    if saliency.dim() == 3:
        saliency = saliency.unsqueeze(1)
    if saliency.dim() != 4 or saliency.shape[0] != n or saliency.shape[-2:] != (h, w):
        raise ValueError(
            f"`{name}` must have shape N x 1 x H x W = {n} x 1 x {h} x {w} to match the "
            f"inputs (N x H x W and N x C x H x W are accepted too); got {tuple(saliency.shape)}"
        )
    if saliency.shape[1] not in (1, c):
        raise ValueError(
            f"`{name}` must have 1 or {c} channels to match the inputs; got {saliency.shape[1]}"
        )
    check_finite(saliency, name)
    if saliency.shape[1] != 1:
        saliency = saliency.mean(dim=1, keepdim=True)
    return saliency.to(images.device, dtype=images.dtype if images.is_floating_point() else None)
