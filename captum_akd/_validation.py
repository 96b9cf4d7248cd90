"""Input checks shared by every attribution, metric and training entry point.

Each check raises a ``ValueError`` or ``TypeError`` whose message names the
argument and says what was expected, so that a user's mistake never surfaces as
a shape error deep inside a convolution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    # Every form is range-checked before it reaches ``device``: ints in Python,
    # a tensor where it already lives, so the hot path never waits on a device.
    if isinstance(target, int):
        if num_classes is not None:
            check_target_range(target, num_classes)
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
        if num_classes is not None:
            check_target_range(target, num_classes)
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
        if num_classes is not None:
            check_target_range(target, num_classes)
        labels = torch.tensor(list(target), dtype=torch.long, device=device)
    else:
        raise TypeError(
            "`target` must be None, an int, a list of N ints or an integer tensor; "
            f"got {type(target).__name__}"
        )
    return labels.contiguous()


def check_target_range(
    labels: Tensor | int | Sequence[int], num_classes: int, name: str = "target"
) -> None:
    """Raise if any class index in ``labels`` is outside ``[0, num_classes)``.

    Args:
        labels: class indices: a tensor of any shape (an empty one passes),
            an int or a sequence of ints. Python ints are checked in Python
            and never touch a device; a tensor costs one read of its minimum
            and maximum, on the device it lives on.
        num_classes: the number of classes ``K`` of the model.
        name: the argument's name, used in the error message.

    Raises:
        ValueError: naming the first offending index found (the minimum if
            negative, else the maximum).

    Examples::

        >>> check_target_range([0, 9], 10)
        >>> check_target_range(torch.tensor([0, 10]), 10)
        Traceback (most recent call last):
        ...
        ValueError: `target` holds class index 10, out of range for a model with 10 classes ...
    """
    if isinstance(labels, Tensor):
        if labels.numel() == 0:
            return
        # One transfer for both bounds instead of one per bound.
        low, high = torch.stack(torch.aminmax(labels)).tolist()
    else:
        values = [labels] if isinstance(labels, int) else list(labels)
        if not values:
            return
        low, high = min(values), max(values)
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


#: The label of an image without one (training then uses the black box's prediction).
NO_LABEL = -1


def check_number(value: Any, name: str, low: float = 0.0, *, strict: bool = False,
                 high: float | None = None, integer: bool = False) -> None:
    """Raise unless ``value`` is a number (an int with ``integer``) in the stated range.

    Args:
        value: the value to check; a bool is not a number here.
        name: the setting's name, used in the error message.
        low: the lower bound.
        strict: ``value`` must be above ``low``, not merely at least ``low``.
        high: the upper bound (inclusive), or ``None`` for none.
        integer: ``value`` must be an int.

    Raises:
        ValueError: naming ``name``, the range and the value.

    Examples::

        >>> check_number(0.5, "alpha", high=1.0)
        >>> check_number(0, "temperature", strict=True)
        Traceback (most recent call last):
        ...
        ValueError: `temperature` must be a number > 0; got 0
    """
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool) and (
        value > low if strict else value >= low) and (high is None or value <= high)
    if not ok:
        what = "an int" if integer else "a number"
        bound = f"{'>' if strict else '>='} {low:g}" + (f" and <= {high:g}" if high is not None
                                                        else "")
        raise ValueError(f"`{name}` must be {what} {bound}; got {value!r}")


def image_size_pair(value: Any, name: str = "image_size") -> tuple[int, int] | None:
    """Read an image size given as ``None``, ``S``, ``(H, W)`` or the text ``"S"`` / ``"HxW"``.

    Args:
        value: the size; ``None`` passes through.
        name: the setting's name, used in the error message.

    Returns:
        ``(H, W)`` as positive ints, or ``None``.

    Raises:
        ValueError: for anything else, or a size below 1.

    Examples::

        >>> image_size_pair(32), image_size_pair([64, 48]), image_size_pair("64x48")
        ((32, 32), (64, 48), (64, 48))
    """
    if value is None:
        return None
    parts: Any = value
    if isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
    elif isinstance(value, int) and not isinstance(value, bool):
        parts = (value, value)
    try:
        if isinstance(value, str):
            parts = [int(p) for p in parts]
            parts = parts * 2 if len(parts) == 1 else parts
        elif any(isinstance(p, bool) or int(p) != p for p in parts):
            raise ValueError
        height, width = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be S or (H, W), e.g. 224 or 64x48; got {value!r}"
                         ) from None
    if height < 1 or width < 1:
        raise ValueError(f"`{name}` must be positive; got {value!r}")
    return height, width


#: ``RunConfig(normalization=...)`` presets: ``(mean, std)`` per channel.
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]] | None] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # The CIFAR-10 ResNets of ../shared/data were trained with ImageNet statistics.
    "cifar": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "none": None,
}


def check_jpeg_quality(quality: Any, name: str = "jpeg_quality") -> None:
    """Check a JPEG quality setting: None, Q, ``[Q]`` or ``[low, high]``, each in 1..100.

    Args:
        quality: the setting to check.
        name: the argument's name for the error message.

    Raises:
        ValueError: naming ``name``, if ``quality`` is anything else (a float,
            a bool, a value outside 1..100, ``low > high``, more than two).

    Examples::

        >>> check_jpeg_quality([50, 90])
        >>> check_jpeg_quality(0)
        Traceback (most recent call last):
        ...
        ValueError: `jpeg_quality` must be None, Q or [LOW, HIGH], ints in 1..100, LOW<=HIGH; got 0
    """
    if quality is None:
        return
    values = list(quality) if isinstance(quality, (list, tuple)) else [quality]
    ok = len(values) in (1, 2) and all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100 for v in values
    ) and values[0] <= values[-1]
    if not ok:
        raise ValueError(f"`{name}` must be None, Q or [LOW, HIGH], ints in 1..100, "
                         f"LOW<=HIGH; got {quality!r}")


def check_open_fraction(value: Any, name: str) -> None:
    """Raise unless ``value`` is a number strictly between 0 and 1 (like an area target).

    Args:
        value: the value to check.
        name: the setting's name, used in the error message.

    Raises:
        ValueError: naming ``name`` and the value.

    Examples::

        >>> check_open_fraction(0.1, "area_target")
        >>> check_open_fraction(1.0, "area_target")
        Traceback (most recent call last):
        ...
        ValueError: `area_target` must be in (0, 1); got 1.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"`{name}` must be in (0, 1); got {value!r}")


def optional_check(check: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    """The same check, but ``None`` (a setting left unset) passes.

    Args:
        check: ``check(value, name)``, raising ``ValueError`` for a bad value.

    Returns:
        A check that skips ``None``.

    Examples::

        >>> optional_check(check_flag)(None, "amp")
        >>> optional_check(check_flag)(1, "amp")
        Traceback (most recent call last):
        ...
        ValueError: `amp` must be True or False; got 1
    """
    return lambda value, name: None if value is None else check(value, name)


def one_of(options: tuple[str, ...]) -> Callable[[Any, str], None]:
    """A check that ``value`` is one of ``options``, naming them when it is not.

    Args:
        options: the valid values.

    Returns:
        ``check(value, name)``.

    Examples::

        >>> one_of(("adamw", "sgd"))("adam", "optimizer")
        Traceback (most recent call last):
        ...
        ValueError: `optimizer` must be one of ('adamw', 'sgd'); got 'adam'
    """
    def check(value: Any, name: str) -> None:
        if value not in options:
            raise ValueError(f"`{name}` must be one of {options}; got {value!r}")
    return check


def check_flag(value: Any, name: str) -> None:
    """Raise unless ``value`` is ``True`` or ``False`` (a stray 0/1 or string is a mistake).

    Args:
        value: a setting that must be a bool.
        name: what the user calls it (``"flip"``), for the message.

    Raises:
        ValueError: for anything but a bool.

    Examples::

        >>> check_flag(True, "flip")
        >>> check_flag("no", "flip")
        Traceback (most recent call last):
        ...
        ValueError: `flip` must be True or False; got 'no'
    """
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False; got {value!r}")


def check_callable(value: Any, name: str, what: str, allow_none: bool = False) -> None:
    """Raise unless ``value`` can be called (a model, a function, a wrapped black box).

    Args:
        value: the argument to check.
        name: what the user calls it (``"forward_func"``), for the message.
        what: what it should be (``"the black box"``), for the message.
        allow_none: accept ``None`` too.

    Raises:
        TypeError: for anything that is not callable.

    Examples::

        >>> check_callable(len, "forward_func", "the black box")
        >>> check_callable(3, "forward_func", "the black box")
        Traceback (most recent call last):
        ...
        TypeError: `forward_func` must be the black box (a callable); got int
    """
    if value is None and allow_none:
        return
    if not callable(value):
        alternative = " or None" if allow_none else ""
        raise TypeError(f"`{name}` must be {what} (a callable){alternative}; got "
                        f"{type(value).__name__}")


def check_normalization(value: Any, name: str) -> None:
    """Raise unless ``value`` is ``None`` or ``{"mean": [...], "std": [...]}``.

    Args:
        value: the normalisation, after :func:`read_normalization`.
        name: the setting's name, used in the error message.

    Raises:
        ValueError: naming ``name``, the accepted forms and the value.

    Examples::

        >>> check_normalization({"mean": [0.5], "std": [0.5]}, "normalization")
    """
    if value is not None and not (isinstance(value, dict) and set(value) == {"mean", "std"}):
        raise ValueError(f"`{name}` must be {{'mean': [...], 'std': [...]}}, a preset "
                         f"{tuple(NORMALIZATIONS)} or 'M,M,M/S,S,S'; got {value!r}")


def read_normalization(value: Any) -> dict[str, list[float]] | None:
    """Read a normalisation given as a preset, ``M,M,M/S,S,S`` text, a pair or a dict.

    Args:
        value: a key of :data:`NORMALIZATIONS`, ``"M,M,M/S,S,S"``, a
            ``(mean, std)`` pair, a ``{"mean", "std"}`` dict, or ``None``.

    Returns:
        ``{"mean": [...], "std": [...]}`` as floats (the form a checkpoint
        stores), ``None``, or ``value`` unchanged when it is none of these (so
        :func:`check_normalization` names it).

    Examples::

        >>> read_normalization("0.5,0.5,0.5/0.25,0.25,0.25")
        {'mean': [0.5, 0.5, 0.5], 'std': [0.25, 0.25, 0.25]}
        >>> read_normalization("none") is None
        True
    """
    if isinstance(value, str):
        if value in NORMALIZATIONS:
            value = NORMALIZATIONS[value]
        else:
            try:
                mean, std = value.split("/")
                value = ([float(v) for v in mean.split(",")], [float(v) for v in std.split(",")])
            except ValueError:
                return value  # the check names it
    if isinstance(value, (tuple, list)) and len(value) == 2:
        value = {"mean": value[0], "std": value[1]}
    if isinstance(value, Mapping) and set(value) == {"mean", "std"}:
        return {"mean": [float(v) for v in value["mean"]], "std": [float(v) for v in value["std"]]}
    return value
