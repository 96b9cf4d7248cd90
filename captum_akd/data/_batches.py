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

from captum_akd._validation import NO_LABEL, check_finite
from captum_akd.distill._distributed import DistContext

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
    """Read one dataset item as ``(image C x H x W, label or -1)``."""
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
    """Stack dataset items into ``(images, labels)``, resizing when asked."""

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
    """Read a collated batch from any loader as ``(images N x C x H x W, labels N)``."""
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
    """A 63-bit seed that depends only on its arguments (stable across runs)."""
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
    """Batches of ``(images, labels)`` for one epoch at a time, seeded by epoch."""

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
        """Fix this epoch's order (and the workers' seeds) from ``(seed, epoch)``."""
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
    """Number of items, or ``None`` when the data cannot say."""
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
    """A few images and labels read before training, to check the data early."""
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
