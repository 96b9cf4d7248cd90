"""Checks run before any training, so bad input fails in seconds with a clear message."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from captum_akd._validation import (
    call_black_box,
    check_channels,
    check_min_size,
    check_target_range,
)
from captum_akd.distill.batches import dataset_length, probe_batch
from captum_akd.models import AttentiveStudent


@dataclass(frozen=True)
class DataInfo:
    """What the probe learnt about the training data and the black box.

    Attributes:
        length: the number of training items, or ``None`` when the data cannot
            say.
        image_shape: ``(C, H, W)`` of the probed images (after resizing).
        num_classes: ``K``, the black box's number of logits.
        labels_digest: 16 hex digits of SHA-256 over the probed items' labels,
            so a resumed run notices other data.

    Examples::

        >>> info = preflight(net, data, None, student, None, torch.device("cpu"))
        >>> info.length, info.image_shape, info.num_classes
        (6, (3, 8, 8), 3)
    """

    length: int | None
    image_shape: tuple[int, int, int]
    num_classes: int
    labels_digest: str

    def fingerprint(self) -> dict[str, Any]:
        """The part of this information a resumed run must share with the saved one.

        Returns:
            ``{"length", "image_shape", "labels_digest"}`` as JSON-serialisable
            values.
        """
        return {"length": self.length, "image_shape": list(self.image_shape),
                "labels_digest": self.labels_digest}


def normalise_image_size(image_size: Any) -> tuple[int, int] | None:
    """Read ``None``, an int or an ``(H, W)`` pair as ``(H, W)``.

    Args:
        image_size: ``None``, an int ``s`` for ``s x s``, or a pair of ints.

    Returns:
        ``(H, W)`` as ints, or ``None``.

    Raises:
        ValueError: for anything else or a size below 1.

    Examples::

        >>> from captum_akd.distill.checks import normalise_image_size
        >>> normalise_image_size(32), normalise_image_size([64, 48]), normalise_image_size(None)
        ((32, 32), (64, 48), None)
    """
    if image_size is None:
        return None
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"`image_size` must be an int or (H, W); got {image_size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"`image_size` must be positive; got {image_size!r}")
    return height, width


def check_batch_size(batch_size: Any) -> None:
    """Raise unless ``batch_size`` is a positive int.

    Args:
        batch_size: the value to check; a bool is not accepted.

    Raises:
        ValueError: naming the value.

    Examples::

        >>> from captum_akd.distill.checks import check_batch_size
        >>> check_batch_size(0)
        Traceback (most recent call last):
        ...
        ValueError: `batch_size` must be a positive int; got 0
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int; got {batch_size!r}")


def known_labels(data: Dataset | DataLoader) -> Tensor | None:
    """Every label of a dataset that lists them (``targets``, or a ``TensorDataset``).

    Args:
        data: a dataset or a loader (its dataset is read). A
            :class:`~torch.utils.data.Subset` gives its own items' labels.

    Returns:
        A 1-D integer tensor with one label per item, or ``None`` when the
        dataset has no ``targets`` attribute (nor a second tensor of a
        ``TensorDataset``) or they are not 1-D integers.

    Examples::

        >>> from torch.utils.data import Subset, TensorDataset
        >>> from captum_akd.distill.checks import known_labels
        >>> data = TensorDataset(torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> known_labels(Subset(data, [1, 2]))
        tensor([1, 2])
    """
    dataset = data.dataset if isinstance(data, DataLoader) else data
    if isinstance(dataset, Subset):
        labels = known_labels(dataset.dataset)
        return labels[list(dataset.indices)] if labels is not None else None
    targets = getattr(dataset, "targets", None)
    if targets is None and isinstance(dataset, TensorDataset) and len(dataset.tensors) > 1:
        targets = dataset.tensors[1]
    if targets is None:
        return None
    try:
        labels = torch.as_tensor(targets)
    except (TypeError, ValueError, RuntimeError):
        return None
    if labels.dim() != 1 or labels.is_floating_point():
        return None
    return labels


def _check_probe(images: Tensor, labels: Tensor, student: AttentiveStudent, where: str) -> None:
    check_channels(images, student.in_channels, where)
    check_min_size(images, student.min_input_size, where)


def preflight(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    val_data: Dataset | DataLoader | None,
    student: AttentiveStudent,
    image_size: tuple[int, int] | None,
    device: torch.device,
) -> DataInfo:
    """Read a few images, call the black box once, and check everything fits.

    Raises a clear error for: a ``forward_func`` that is not callable or does
    not return ``N x K`` logits, a ``K`` that differs from the student's head,
    an empty dataset, images of mixed sizes (without ``image_size``), images
    with the wrong channel count or smaller than the student accepts, labels
    outside ``[0, K)``, and validation images of another size than training
    images.

    Args:
        forward_func: the black box, ``N x C x H x W -> N x K`` logits.
        train_data: the training dataset or loader.
        val_data: the held-out dataset or loader, or ``None``.
        student: the student to be distilled.
        image_size: ``(H, W)`` images will be resized to, or ``None``.
        device: where the black box is called.

    Returns:
        The :class:`DataInfo` of the training data.

    Raises:
        TypeError: if ``forward_func`` is not callable, ``student`` is not an
            :class:`~captum_akd.models.AttentiveStudent`, or the images are not
            floating point.
        ValueError: for every other mismatch listed above.

    Examples::

        >>> from torch.utils.data import TensorDataset
        >>> from captum_akd.distill.checks import preflight
        >>> from captum_akd.models import cifar_resnet_student
        >>> data = TensorDataset(torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> preflight(net, data, None, student, None, torch.device("cpu")).num_classes
        3
    """
    if not callable(forward_func):
        raise TypeError(
            f"`forward_func` must be callable (images -> logits); got {type(forward_func).__name__}"
        )
    if not isinstance(student, AttentiveStudent):
        raise TypeError(f"`student` must be an AttentiveStudent; got {type(student).__name__}")
    images, labels = probe_batch(train_data, image_size, "train_data")
    _check_probe(images, labels, student, "train_data")
    logits = call_black_box(forward_func, images.to(device))
    k = logits.shape[1]
    if k != student.num_classes:
        raise ValueError(
            f"`forward_func` returns {k} logits per image but `student` has a head of "
            f"{student.num_classes} classes; build the student with num_classes={k}"
        )
    check_target_range(labels[labels >= 0], k, "train_data labels")
    every = known_labels(train_data)
    if every is not None:
        check_target_range(every[every >= 0], k, "train_data labels")
    if val_data is not None:
        val_images, val_labels = probe_batch(val_data, image_size, "val_data")
        _check_probe(val_images, val_labels, student, "val_data")
        if val_images.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"`val_data` images are {tuple(val_images.shape[1:])} but `train_data` images "
                f"are {tuple(images.shape[1:])}; pass `image_size` to resize both"
            )
        check_target_range(val_labels[val_labels >= 0], k, "val_data labels")
    digest = hashlib.sha256(labels.numpy().astype("<i8").tobytes()).hexdigest()[:16]
    return DataInfo(dataset_length(train_data), tuple(images.shape[1:]), k, digest)
