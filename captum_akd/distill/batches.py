"""Turning a user's dataset or data loader into seeded batches of (images, labels).

Training data may be a :class:`torch.utils.data.Dataset` or a
:class:`~torch.utils.data.DataLoader` whose items are image tensors,
``(image, label)`` pairs (longer tuples keep their first two entries) or dicts
with an ``"image"`` and an optional ``"label"`` key. A missing label, ``None``
or ``-1`` means "no label": training then uses the black box's prediction.

Batches come out as ``(images, labels)``: ``N x C x H x W`` floats and an
``N`` long tensor with ``-1`` where an image has no label. The order of an
epoch depends only on ``(seed, epoch)``, which is what makes an interrupted
run resume to the same result.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
)

from captum_akd._validation import check_finite
from captum_akd.distill.distributed import DistContext

NO_LABEL = -1
IMAGE_KEYS = ("image", "images", "input", "inputs", "pixel_values")
LABEL_KEYS = ("label", "labels", "target", "targets")


def _image_of(item: Any, where: str) -> Tensor:
    if isinstance(item, Tensor):
        return item
    kind = type(item).__name__
    hint = " (a PIL image: convert it with a transform such as ToTensor())" if hasattr(
        item, "getpixel") else ""
    raise TypeError(f"{where}: expected an image tensor C x H x W; got {kind}{hint}")


def _label_of(value: Any, where: str) -> int:
    if value is None:
        return NO_LABEL
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{where}: a label must be one class index; got a tensor of shape "
                f"{tuple(value.shape)}"
            )
        if value.is_floating_point():
            raise TypeError(f"{where}: a label must be an integer class index; got {value}")
        return int(value.item())
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{where}: a label must be an int class index (or -1 / None for none); "
            f"got {type(value).__name__}"
        )
    return value


def _find_key(item: Mapping, keys: Sequence[str]) -> Any:
    for key in keys:
        if key in item:
            return key
    return None


def split_item(item: Any, where: str = "train_data") -> tuple[Tensor, int]:
    """Read one dataset item as ``(image C x H x W, label or -1)``.

    Args:
        item: an image tensor; an ``(image, label, ...)`` tuple or list (only
            the first two entries are used); or a dict with an image key
            (``"image"``, ``"images"``, ``"input"``, ``"inputs"`` or
            ``"pixel_values"``) and an optional label key (``"label"``,
            ``"labels"``, ``"target"`` or ``"targets"``).
        where: the argument's name for error messages.

    Returns:
        ``(image, label)``: the image tensor as given (checked later) and the
        label as an int, ``-1`` when there is none (missing or ``None``).

    Raises:
        TypeError: if the image is not a tensor (e.g. a PIL image) or the label
            is not an integer.
        ValueError: for a dict without an image key, an empty tuple, or a
            label tensor with more than one element.

    Examples::

        >>> from captum_akd.distill.batches import split_item
        >>> image = torch.zeros(3, 8, 8)
        >>> split_item((image, 2))[1], split_item({"image": image})[1], split_item(image)[1]
        (2, -1, -1)
    """
    if isinstance(item, Mapping):
        key = _find_key(item, IMAGE_KEYS)
        if key is None:
            raise ValueError(
                f"{where}: a dict item needs an 'image' key (and optionally 'label'); "
                f"got keys {sorted(map(str, item))}"
            )
        label_key = _find_key(item, LABEL_KEYS)
        label = item[label_key] if label_key is not None else None
        return _image_of(item[key], where), _label_of(label, where)
    if isinstance(item, (tuple, list)):
        if not item:
            raise ValueError(f"{where}: an item is an empty {type(item).__name__}")
        label = item[1] if len(item) > 1 else None
        return _image_of(item[0], where), _label_of(label, where)
    return _image_of(item, where), NO_LABEL


def _resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(
        image[None], size=size, mode="bilinear", align_corners=False, antialias=True
    )[0]


def _check_image(image: Tensor, where: str) -> None:
    if image.dim() != 3:
        raise ValueError(
            f"{where}: each image must be a C x H x W tensor; got shape {tuple(image.shape)}"
        )
    if not image.is_floating_point():
        raise TypeError(
            f"{where}: images must be floating-point tensors in the black box's input space "
            f"(e.g. float32 in [0, 1], normalised); got dtype {image.dtype}"
        )


def _mixed_sizes_error(where: str, first: Sequence[int], other: Sequence[int]) -> ValueError:
    return ValueError(
        f"{where}: images have different sizes ({'x'.join(map(str, first))} and "
        f"{'x'.join(map(str, other))}); pass `image_size=(H, W)` (--image-size on the "
        "command line) to resize every image to one size"
    )


class Collate:
    """Stack dataset items into ``(images, labels)``, resizing when asked.

    Items take any form :func:`split_item` reads. Images are resized
    bilinearly (with antialiasing) to ``image_size`` when it is given;
    otherwise they must all have one size.

    Args:
        image_size: ``(H, W)`` to resize every image to, or ``None`` to
            require equal sizes.
        where: the argument's name for error messages.

    Returns (``collate(items)``):
        ``(images, labels)``: ``N x C x H x W`` floats and an ``N`` long tensor
        with ``-1`` for items without a label.

    Examples::

        >>> from captum_akd.distill.batches import Collate
        >>> collate = Collate(image_size=(16, 16))
        >>> images, labels = collate([(torch.zeros(3, 8, 8), 1), (torch.zeros(3, 12, 12), None)])
        >>> images.shape, labels
        (torch.Size([2, 3, 16, 16]), tensor([ 1, -1]))
    """

    def __init__(self, image_size: tuple[int, int] | None = None, where: str = "train_data"):
        self.image_size = image_size
        self.where = where

    def __call__(self, items: Sequence[Any]) -> tuple[Tensor, Tensor]:
        images, labels = [], []
        for item in items:
            image, label = split_item(item, self.where)
            _check_image(image, self.where)
            if self.image_size is not None:
                image = _resize(image, self.image_size)
            elif images and image.shape != images[0].shape:
                raise _mixed_sizes_error(self.where, images[0].shape, image.shape)
            images.append(image)
            labels.append(label)
        return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def split_batch(
    batch: Any, image_size: tuple[int, int] | None = None, where: str = "train_data"
) -> tuple[Tensor, Tensor]:
    """Read a collated batch from any loader as ``(images N x C x H x W, labels N)``.

    Accepts what :class:`Collate` returns and what PyTorch's default collate
    makes of the item forms :func:`split_item` reads: a tensor,
    ``[images, labels]`` or a dict.

    Args:
        batch: the collated batch.
        image_size: ``(H, W)`` to resize the images to (bilinear, antialiased),
            or ``None`` to keep their size.
        where: the argument's name for error messages.

    Returns:
        ``(images, labels)``: ``N x C x H x W`` floats and an ``N`` long tensor,
        ``-1`` where an image has no label.

    Raises:
        TypeError: if the images are not floating point.
        ValueError: if the images are not 4-D, or the labels are not ``N``
            integer class indices.

    Examples::

        >>> from captum_akd.distill.batches import split_batch
        >>> images, labels = split_batch({"image": torch.zeros(4, 3, 8, 8)}, image_size=(16, 16))
        >>> images.shape, labels
        (torch.Size([4, 3, 16, 16]), tensor([-1, -1, -1, -1]))
    """
    if isinstance(batch, Mapping):
        key = _find_key(batch, IMAGE_KEYS)
        if key is None:
            raise ValueError(
                f"{where}: a dict batch needs an 'image' key; got keys {sorted(map(str, batch))}"
            )
        label_key = _find_key(batch, LABEL_KEYS)
        images, labels = batch[key], batch[label_key] if label_key is not None else None
    elif isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError(f"{where}: a batch is empty")
        images, labels = batch[0], batch[1] if len(batch) > 1 else None
    else:
        images, labels = batch, None
    if not isinstance(images, Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{where}: a batch of images must be N x C x H x W; got {shape}")
    if not images.is_floating_point():
        raise TypeError(
            f"{where}: images must be floating-point (the black box's input space); "
            f"got dtype {images.dtype}"
        )
    n = images.shape[0]
    if labels is None:
        labels = torch.full((n,), NO_LABEL, dtype=torch.long)
    else:
        if not isinstance(labels, Tensor):
            labels = torch.tensor(
                [NO_LABEL if v is None else _label_of(v, where) for v in labels],
                dtype=torch.long,
            )
        if labels.is_floating_point() or labels.numel() != n:
            raise ValueError(
                f"{where}: labels must be N = {n} integer class indices; got "
                f"{labels.dtype} of shape {tuple(labels.shape)}"
            )
        labels = labels.reshape(n).long()
    if image_size is not None and tuple(images.shape[-2:]) != tuple(image_size):
        images = F.interpolate(
            images, size=image_size, mode="bilinear", align_corners=False, antialias=True
        )
    return images, labels


def epoch_seed(seed: int, stage: str, epoch: int, rank: int = 0) -> int:
    """A 63-bit seed that depends only on its arguments (stable across runs).

    Derived from SHA-256, unlike Python's ``hash``, so it is the same in every
    process and on every machine.

    Args:
        seed: the run's seed.
        stage: what the seed is for, e.g. ``"student"`` or
            ``"student/augment"``.
        epoch: the epoch (0-based).
        rank: the process's rank.

    Returns:
        A non-negative int below ``2**63``.

    Examples::

        >>> from captum_akd.distill.batches import epoch_seed
        >>> epoch_seed(0, "student", 0) == epoch_seed(0, "student", 0)
        True
        >>> epoch_seed(0, "student", 0) == epoch_seed(0, "student", 1)
        False
    """
    key = f"{seed}/{stage}/{epoch}/{rank}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


class _ShardSampler(torch.utils.data.Sampler):
    """Every ``world``-th index starting at ``rank``, in order (for evaluation)."""

    def __init__(self, length: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, length, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class EpochLoader:
    """Batches of ``(images, labels)`` for one epoch at a time, seeded by epoch.

    A :class:`~torch.utils.data.Dataset` (or a ``DataLoader`` with the default
    sequential or random sampler, whose dataset, batch size, workers and
    collate function are kept) is read through a
    :class:`~torch.utils.data.DistributedSampler` whose permutation depends on
    ``(seed, epoch)`` only; with one process that is a plain seeded shuffle.
    When this loader shuffles a dataset itself, a final batch of a single
    image is dropped (batch norm cannot train on it). A ``DataLoader`` with
    its own sampler is used as it is (it must be a ``DistributedSampler``
    under ``torchrun``); its epoch is set when it has ``set_epoch``.

    Args:
        data: the dataset or loader.
        batch_size: images per batch and process (ignored for a loader).
        ctx: the process's distributed context.
        seed: the run's seed.
        shuffle: shuffle each epoch (training) or keep the order (evaluation,
            where each process reads a disjoint shard).
        image_size: resize every image to this ``(H, W)``.
        num_workers: loader worker processes (ignored for a loader).
        where: the argument's name for error messages.

    Returns (iterating):
        ``(images, labels)`` per batch, as :func:`split_batch` returns them.

    Examples::

        >>> from torch.utils.data import TensorDataset
        >>> from captum_akd.distill.batches import EpochLoader
        >>> from captum_akd.distill.distributed import setup
        >>> data = TensorDataset(torch.randn(10, 3, 8, 8), torch.arange(10) % 3)
        >>> loader = EpochLoader(data, batch_size=4, ctx=setup("cpu"), seed=0)
        >>> loader.set_epoch(0)
        >>> [tuple(images.shape) for images, labels in loader]
        [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)]
    """

    def __init__(
        self,
        data: Dataset | DataLoader,
        batch_size: int,
        ctx: DistContext,
        seed: int = 0,
        shuffle: bool = True,
        image_size: tuple[int, int] | None = None,
        num_workers: int = 0,
        where: str = "train_data",
    ) -> None:
        self.ctx = ctx
        self.seed = seed
        self.shuffle = shuffle
        self.image_size = image_size
        self.where = where
        self.generator = torch.Generator()
        self.sampler = None
        if isinstance(data, DataLoader):
            self.dataset = data.dataset
            rebuild = isinstance(data.sampler, (SequentialSampler, RandomSampler)) and (
                data.batch_size is not None
            )
            if rebuild and not isinstance(self.dataset, IterableDataset):
                self.loader = self._build(
                    data.batch_size, data.num_workers, data.collate_fn, data.pin_memory,
                    default_collate=_uses_default_collate(data),
                )
            else:
                self._check_user_loader(data)
                self.loader = data
                self.sampler = getattr(data, "sampler", None)
        elif isinstance(data, Dataset):
            self.dataset = data
            if isinstance(data, IterableDataset):
                if ctx.distributed:
                    raise ValueError(
                        f"`{where}`: an IterableDataset cannot be sharded across processes "
                        "here; give a map-style Dataset or a DataLoader with a "
                        "DistributedSampler"
                    )
                self.loader = DataLoader(
                    data, batch_size=batch_size, num_workers=num_workers,
                    collate_fn=Collate(image_size, where),
                )
            else:
                self.loader = self._build(batch_size, num_workers, None, False, True)
        else:
            raise TypeError(
                f"`{where}` must be a torch Dataset or DataLoader; got {type(data).__name__}"
            )

    def _check_user_loader(self, loader: DataLoader) -> None:
        if self.ctx.distributed and not isinstance(loader.sampler, DistributedSampler) and not (
            isinstance(getattr(loader, "batch_sampler", None), torch.utils.data.BatchSampler)
            and isinstance(loader.batch_sampler.sampler, DistributedSampler)
        ):
            raise ValueError(
                f"`{self.where}`: under torchrun a DataLoader with its own sampler must use "
                "a DistributedSampler; or pass the Dataset and let distill shard it"
            )

    def _build(
        self, batch_size: int, num_workers: int, collate_fn, pin_memory: bool,
        default_collate: bool,
    ) -> DataLoader:
        length = len(self.dataset)
        if self.shuffle:
            self.sampler = DistributedSampler(
                self.dataset, num_replicas=self.ctx.world_size, rank=self.ctx.rank,
                shuffle=True, seed=self.seed, drop_last=False,
            )
            per_rank = len(self.sampler)
            # A final batch of one image would break batch norm in training.
            drop_last = per_rank > batch_size and per_rank % batch_size == 1
        else:
            self.sampler = _ShardSampler(length, self.ctx.rank, self.ctx.world_size)
            drop_last = False
        return DataLoader(
            self.dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=num_workers,
            collate_fn=Collate(self.image_size, self.where) if default_collate else collate_fn,
            pin_memory=pin_memory,
            drop_last=drop_last,
            generator=self.generator,
            persistent_workers=False,
        )

    def set_epoch(self, epoch: int) -> None:
        """Fix this epoch's order (and the workers' seeds) from ``(seed, epoch)``.

        Args:
            epoch: the epoch about to be read; the same epoch always gives the
                same batches.
        """
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        self.generator.manual_seed(epoch_seed(self.seed, "loader", epoch, self.ctx.rank))

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for batch in self.loader:
            yield split_batch(batch, self.image_size, self.where)


def _uses_default_collate(loader: DataLoader) -> bool:
    from torch.utils.data._utils.collate import default_collate

    return loader.collate_fn is default_collate


def dataset_length(data: Dataset | DataLoader) -> int | None:
    """Number of items, or ``None`` when the data cannot say.

    Args:
        data: a dataset, or a loader (its dataset is measured).

    Returns:
        ``len`` of the dataset, or ``None`` for one without ``__len__`` (an
        iterable dataset).

    Examples::

        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from captum_akd.distill.batches import dataset_length
        >>> data = TensorDataset(torch.zeros(10, 3, 8, 8))
        >>> dataset_length(data), dataset_length(DataLoader(data, batch_size=4))
        (10, 10)
    """
    dataset = data.dataset if isinstance(data, DataLoader) else data
    try:
        return len(dataset)
    except TypeError:
        return None


def probe_batch(
    data: Dataset | DataLoader,
    image_size: tuple[int, int] | None,
    where: str,
    max_items: int = 8,
    spread: int = 24,
) -> tuple[Tensor, Tensor]:
    """A few images and labels read before training, to check the data early.

    Reads the first ``max_items`` items and, for a map-style dataset without
    ``image_size``, up to ``spread`` more spaced evenly through it, so a
    folder of mixed image sizes fails here rather than in the middle of an
    epoch.

    Args:
        data: the training or validation dataset or loader.
        image_size: ``(H, W)`` the images will be resized to, or ``None``.
        where: the argument's name for error messages.
        max_items: how many items to return.
        spread: how many further items to check the size of.

    Returns:
        ``(images, labels)`` of the first items (at most ``max_items``):
        ``n x C x H x W`` floats and ``n`` labels (``-1`` for none).

    Raises:
        ValueError: if the data is empty, images differ in size without
            ``image_size``, or hold NaN or infinite values.
        TypeError: for items that are not image tensors.

    Examples::

        >>> from torch.utils.data import TensorDataset
        >>> from captum_akd.distill.batches import probe_batch
        >>> data = TensorDataset(torch.randn(10, 3, 8, 8), torch.arange(10) % 3)
        >>> images, labels = probe_batch(data, None, "train_data", max_items=4)
        >>> images.shape, labels
        (torch.Size([4, 3, 8, 8]), tensor([0, 1, 2, 0]))
    """
    length = dataset_length(data)
    if length == 0:
        raise ValueError(f"`{where}` is empty: it holds no images")
    dataset = data.dataset if isinstance(data, DataLoader) else data
    if isinstance(dataset, IterableDataset) or length is None:
        if isinstance(data, DataLoader):
            iterator = iter(data)
            try:
                batch = next(iterator)
            except StopIteration:
                raise ValueError(f"`{where}` is empty: it holds no images") from None
            images, labels = split_batch(batch, image_size, where)
            return images[:max_items], labels[:max_items]
        items = []
        for item in dataset:
            items.append(item)
            if len(items) >= max_items:
                break
        if not items:
            raise ValueError(f"`{where}` is empty: it holds no images")
        return Collate(image_size, where)(items)
    first = [dataset[i] for i in range(min(max_items, length))]
    if isinstance(data, DataLoader) and not _uses_default_collate(data):
        images, labels = split_batch(data.collate_fn(first), image_size, where)
    else:
        images, labels = Collate(image_size, where)(first)
    if image_size is None and spread > 0 and length > max_items:
        step = max(1, math.ceil((length - max_items) / spread))
        for index in range(max_items, length, step):
            image, _ = split_item(dataset[index], where)
            if tuple(image.shape) != tuple(images.shape[1:]):
                raise _mixed_sizes_error(where, images.shape[1:], image.shape)
    check_finite(images, where)
    return images, labels
