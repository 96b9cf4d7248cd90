"""CIFAR-style image classification data read straight from a zip archive.

The archive holds one image per entry, ``<split>/<class>/<name>.<ext>``
(e.g. ``train/airplane/0001.jpg``), the layout of the CIFAR-10 JPEG archives
the benchmarks use. Nothing is unpacked: entries are decoded on access, or all
at once into one ``uint8`` tensor with ``preload=True``.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def decode_image_bytes(data: bytes, where: str) -> Tensor:
    """Decode an encoded image into a ``3 x H x W`` ``uint8`` RGB tensor.

    Any format PIL reads works; greyscale, palette and RGBA images are converted
    to RGB.

    Args:
        data: the encoded file's bytes (JPEG, PNG, ...).
        where: where the bytes come from, for the error message (e.g.
            ``"'train/cat/0001.jpg' in 'cifar10-train.zip'"``).

    Returns:
        A contiguous ``3 x H x W`` ``uint8`` tensor.

    Raises:
        ValueError: if PIL cannot decode ``data``.

    Examples::

        >>> import io
        >>> from PIL import Image
        >>> from captum_akd.data.cifar_zip import decode_image_bytes
        >>> buffer = io.BytesIO()
        >>> Image.new("L", (40, 30), 128).save(buffer, format="PNG")
        >>> image = decode_image_bytes(buffer.getvalue(), "in memory")
        >>> image.shape, image.dtype
        (torch.Size([3, 30, 40]), torch.uint8)
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            array = np.asarray(image.convert("RGB"))
    except Exception as err:  # PIL raises several types for corrupt data
        raise ValueError(f"cannot decode the image {where}: {err}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _stratified_subset(
    labels: list[int], num_classes: int, limit: int, seed: int | None
) -> list[int]:
    """Indices of a class-balanced subset of ``limit`` items, in their original order."""
    per_class: list[list[int]] = [[] for _ in range(num_classes)]
    for index, label in enumerate(labels):
        per_class[label].append(index)
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        per_class = [
            [members[i] for i in torch.randperm(len(members), generator=generator).tolist()]
            for members in per_class
        ]
    # Hand out the quota one image per class at a time, so classes smaller
    # than limit / num_classes give their spare share to the others.
    quota = [0] * num_classes
    remaining = limit
    while remaining > 0:
        progressed = False
        for label in range(num_classes):
            if remaining and quota[label] < len(per_class[label]):
                quota[label] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    chosen = [i for label in range(num_classes) for i in per_class[label][: quota[label]]]
    return sorted(chosen)


class CifarZip(Dataset):
    r"""Images and labels of a zip archive laid out as ``<split>/<class>/<file>``.

    The label of an image is the position of its class folder in the sorted
    list of class folders, as in ``torchvision.datasets.ImageFolder``; for the
    CIFAR-10 archives that is airplane = 0, automobile = 1, ..., truck = 9.

    The archive is opened lazily, once per process: a ``zipfile.ZipFile``
    handle shares one file position between its users, so a handle inherited
    by a forked ``DataLoader`` worker would read garbage. Each worker opens its
    own on first access, and pickling the dataset drops the handle.

    Args:
        path: the ``.zip`` file.
        transform: optional callable applied to each ``3 x H x W`` float
            image in [0, 1] (e.g. ``torchvision.transforms.v2`` augmentations
            or :func:`~captum_akd.zoo.normalize_cifar` wrappers). Default: None.
        limit: keep at most this many images, balanced over classes: each class
            gets ``limit // num_classes`` images, the first ``limit % num_classes``
            classes (in label order) one more, and a class with too few images
            passes its share on. ``None`` keeps every image. Default: None.
        seed: how ``limit`` picks images within a class: an int draws them at
            random with that seed (the same subset on every machine); ``None``
            takes the first ones in file-name order. Default: 0.
        split: the top-level folder to read (``"train"`` or ``"test"``).
            ``None`` requires the archive to have exactly one. Default: None.
        preload: decode every selected image into one ``N x 3 x H x W``
            ``uint8`` tensor (:attr:`data`) up front. The 50,000 CIFAR-10
            training images take 150 MB and a few seconds, after which an epoch
            costs no decoding. All images must then have the same size.
            Default: False.

    Attributes:
        classes (list[str]): the sorted class names; ``classes[label]`` names a label.
        class_to_idx (dict[str, int]): class name to label.
        samples (list[tuple[str, int]]): ``(entry name, label)`` per image, in
            dataset order (sorted by entry name).
        targets (list[int]): the label of each image.
        data (Tensor or None): the preloaded ``N x 3 x H x W`` ``uint8`` images.

    Returns (``dataset[i]``):
        ``(image, label)``: the image as a ``3 x H x W`` float tensor in [0, 1]
        (``3 x 32 x 32`` for CIFAR; whatever ``transform`` returns if given)
        and its label as an int.

    Examples::

        >>> from captum_akd.data import CifarZip
        >>> test = CifarZip("../shared/data/cifar10/cifar10-test.zip")
        >>> len(test), test.classes[:2]
        (10000, ['airplane', 'automobile'])
        >>> image, label = test[0]
        >>> image.shape, image.dtype
        (torch.Size([3, 32, 32]), torch.float32)
        >>> small = CifarZip("../shared/data/cifar10/cifar10-test.zip", limit=64, preload=True)
        >>> loader = torch.utils.data.DataLoader(small, batch_size=16, shuffle=True)
        >>> images, labels = next(iter(loader))
        >>> small.data.shape, images.shape, labels.shape
        (torch.Size([64, 3, 32, 32]), torch.Size([16, 3, 32, 32]), torch.Size([16]))
    """

    def __init__(
        self,
        path: str | os.PathLike,
        transform: Callable[[Tensor], Tensor] | None = None,
        limit: int | None = None,
        seed: int | None = 0,
        split: str | None = None,
        preload: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"`path`: no zip archive at {self.path!r}")
        if not zipfile.is_zipfile(self.path):
            raise ValueError(f"`path`: {self.path!r} is not a zip archive")
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
        ):
            raise ValueError(f"`limit` must be a positive int or None; got {limit!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"`transform` must be callable; got {type(transform).__name__}")
        self.transform = transform
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None

        with zipfile.ZipFile(self.path) as archive:
            names = archive.namelist()
        self.split, entries = self._scan(names, split)
        self.classes = sorted({cls for cls, _ in entries})
        self.class_to_idx = {cls: i for i, cls in enumerate(self.classes)}
        samples = [(name, self.class_to_idx[cls]) for cls, name in entries]
        samples.sort()
        if limit is not None:
            keep = _stratified_subset([s[1] for s in samples], len(self.classes), limit, seed)
            samples = [samples[i] for i in keep]
        self.samples: list[tuple[str, int]] = samples
        self.targets: list[int] = [label for _, label in samples]
        self.data: Tensor | None = self._preload() if preload else None

    def _scan(self, names: list[str], split: str | None) -> tuple[str, list[tuple[str, str]]]:
        """Return the split and ``(class, entry name)`` of every image entry."""
        images = [n for n in names if not n.endswith("/") and n.lower().endswith(IMAGE_EXTENSIONS)]
        # Archives made on macOS carry resource forks that are not images.
        images = [n for n in images if not n.startswith("__MACOSX/")]
        layout = "entries '<split>/<class>/<file>' such as 'train/airplane/0001.jpg'"
        if not images:
            raise ValueError(f"`path`: {self.path!r} holds no image files; expected {layout}")
        misplaced = [n for n in images if n.count("/") != 2]
        if misplaced:
            raise ValueError(
                f"`path`: {self.path!r} is not laid out as {layout}: "
                f"{len(misplaced)} image(s) sit elsewhere, e.g. {misplaced[0]!r}"
            )
        splits = sorted({n.split("/", 1)[0] for n in images})
        if split is None:
            if len(splits) != 1:
                raise ValueError(
                    f"`path`: {self.path!r} holds several splits {splits}; choose one with `split=`"
                )
            split = splits[0]
        elif split not in splits:
            raise ValueError(f"`split`: {split!r} is not in {self.path!r}; it holds {splits}")
        entries = [(n.split("/")[1], n) for n in images if n.split("/", 1)[0] == split]
        return split, entries

    def _archive(self) -> zipfile.ZipFile:
        """This process's handle on the archive, opened on first use."""
        pid = os.getpid()
        if self._zip is None or self._zip_pid != pid:
            # A handle inherited from the parent is left alone, not closed:
            # closing it would move the parent's file position too.
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = pid
        return self._zip

    def _decode(self, index: int) -> Tensor:
        name = self.samples[index][0]
        return decode_image_bytes(self._archive().read(name), f"{name!r} in {self.path!r}")

    def _preload(self) -> Tensor:
        if not self.samples:
            return torch.empty(0, 3, 0, 0, dtype=torch.uint8)
        first = self._decode(0)
        data = torch.empty((len(self.samples), *first.shape), dtype=torch.uint8)
        data[0] = first
        for index in range(1, len(self.samples)):
            image = self._decode(index)
            if image.shape != first.shape:
                raise ValueError(
                    f"`preload=True` needs images of one size: {self.samples[0][0]!r} is "
                    f"{tuple(first.shape[1:])} but {self.samples[index][0]!r} is "
                    f"{tuple(image.shape[1:])}"
                )
            data[index] = image
        # Every access now reads `data`; a handle kept open would only be
        # inherited, unused, by DataLoader workers.
        self.close()
        return data

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} images")
        index = index % len(self)
        raw = self.data[index] if self.data is not None else self._decode(index)
        image = raw.float().div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_zip"] = None
        state["_zip_pid"] = None
        return state

    def close(self) -> None:
        """Close this process's handle on the archive (it reopens on next access).

        Returns:
            None.

        Examples::

            >>> test = CifarZip("../shared/data/cifar10/cifar10-test.zip")
            >>> image, label = test[0]
            >>> test.close()
        """
        if self._zip is not None and self._zip_pid == os.getpid():
            self._zip.close()
        self._zip = None
        self._zip_pid = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, split={self.split!r}, "
            f"images={len(self)}, classes={len(self.classes)}, "
            f"preloaded={self.data is not None})"
        )
