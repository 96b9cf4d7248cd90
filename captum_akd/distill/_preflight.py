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
from captum_akd.data._batches import dataset_length, probe_batch
from captum_akd.models import AttentiveStudent


@dataclass(frozen=True)
class DataInfo:
    """What the probe learnt about the training data and the black box."""

    length: int | None
    image_shape: tuple[int, int, int]
    num_classes: int
    labels_digest: str

    def fingerprint(self) -> dict[str, Any]:
        """The part of this information a resumed run must share with the saved one."""
        return {"length": self.length, "image_shape": list(self.image_shape),
                "labels_digest": self.labels_digest}






def known_labels(data: Dataset | DataLoader) -> Tensor | None:
    """Every label of a dataset that lists them (``targets``, or a ``TensorDataset``)."""
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
    """Read a few images, call the black box once, and check everything fits."""
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
