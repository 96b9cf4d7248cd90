"""Images from a folder on disk, labelled by sub-folder or by file name.

:class:`ImageFolderDataset` covers the two common layouts (``root/<class>/*``
and a flat folder of images); :func:`imagenet_sample` reads a flat folder of
``<wnid>_<name>.JPEG`` files, one per ImageNet class, with ImageNet labels.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from captum_akd.data.cifar_zip import IMAGE_EXTENSIONS

#: ImageNet-1k class indices of the 118 dog breeds (Chihuahua ... Mexican
#: hairless), the fine-grained slice of the imagenet-sample benchmark.
DOG_CLASSES = range(151, 269)

UNLABELED = -1

_WNID = re.compile(r"^(n\d{8})_")


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _size_pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        pair = (image_size, image_size)
    elif (
        isinstance(image_size, Sequence)
        and len(image_size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in image_size)
    ):
        pair = (image_size[0], image_size[1])
    else:
        raise ValueError(
            f"`image_size` must be an int or a (height, width) pair of ints; got {image_size!r}"
        )
    if min(pair) < 1:
        raise ValueError(f"`image_size` must be positive; got {image_size!r}")
    return pair


def resize_and_center_crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale ``image`` to cover ``size``, keeping its aspect ratio, then crop the centre.

    Args:
        image: a PIL image of any size.
        size: the output ``(height, width)``.

    Returns:
        A PIL image of exactly ``size`` (PIL reports it as ``(width, height)``),
        bilinearly resized.

    Examples::

        >>> from PIL import Image
        >>> from captum_akd.data.image_folder import resize_and_center_crop
        >>> photo = Image.new("RGB", (300, 200))          # width 300, height 200
        >>> resize_and_center_crop(photo, (64, 48)).size  # (width, height)
        (48, 64)
    """
    height, width = size
    scale = max(height / image.height, width / image.width)
    # Round up so the scaled image is never a pixel short of the crop.
    new_h = max(height, round(image.height * scale))
    new_w = max(width, round(image.width * scale))
    image = TF.resize(image, [new_h, new_w], interpolation=TF.InterpolationMode.BILINEAR)
    return TF.center_crop(image, [height, width])


def pil_to_tensor(image: Image.Image) -> Tensor:
    """Convert a PIL image to an RGB ``3 x H x W`` float tensor in [0, 1].

    Args:
        image: a PIL image in any mode; it is converted to RGB first.

    Returns:
        A ``3 x H x W`` float32 tensor, pixel values divided by 255.

    Examples::

        >>> from PIL import Image
        >>> from captum_akd.data.image_folder import pil_to_tensor
        >>> image = pil_to_tensor(Image.new("RGB", (300, 200), (255, 0, 0)))
        >>> image.shape, image[:, 0, 0]
        (torch.Size([3, 200, 300]), tensor([1., 0., 0.]))
    """
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


class ImageFolderDataset(Dataset):
    r"""Images in a folder, with labels from sub-folder names or file names.

    Layouts, decided by what ``root`` holds:

    - **sub-folders** ``root/<class>/.../<image>``: the label of an image is the
      position of its class folder in the sorted list of class folders (as
      ``torchvision.datasets.ImageFolder``); images below a class folder are
      found recursively. Images lying directly in ``root`` next to class
      folders are an error, since they would have no class.
    - **flat** ``root/<image>``: every label is ``-1`` (unlabeled) and
      :attr:`classes` is empty, unless ``label_fn`` names the label from the
      file name.

    Hidden files and folders (starting with ``.``) and files that are not
    images (by extension) are skipped. Images are returned in sorted path order.

    Sizes: with neither ``image_size`` nor ``preprocess``, images are returned
    at their own size, so they must all share one size to be batched; that is
    checked here by reading every file's header (no decoding), and mixed sizes
    raise a ``ValueError`` naming two files. Pass ``image_size`` or
    ``preprocess`` for photos of mixed sizes.

    Args:
        root: the folder.
        image_size: resize every image to this size: an int ``s`` for
            ``s x s`` or a ``(height, width)`` pair. The image is scaled, keeping
            its aspect ratio, to cover the size and its centre is cut out.
            Default: None (the image's own size).
        preprocess: a callable taking an RGB ``PIL.Image`` and returning the
            ``C x H x W`` tensor to hand out (e.g. a model's own preprocessing,
            such as :func:`captum_akd.zoo.efficientnet_lite_preprocess`).
            Replaces the default conversion to a float tensor in [0, 1];
            cannot be combined with ``image_size``. Default: None.
        label_fn: a callable taking a file name (no folder) and returning its
            int label, for flat folders whose file names carry the class.
            Default: None.
        classes: the class names of a flat folder labelled by ``label_fn``
            (stored as :attr:`classes`). Default: None.
        check_sizes: read every header to check that images without
            ``image_size`` / ``preprocess`` share one size. Default: True.

    Attributes:
        classes (list[str]): class names, ``classes[label]`` naming a label;
            empty for an unlabeled folder.
        samples (list[tuple[str, int]]): ``(path, label)`` per image.
        targets (list[int]): the label of each image (``-1`` if unlabeled).

    Returns (``dataset[i]``):
        ``(image, label)``: a ``3 x H x W`` float tensor in [0, 1] (or what
        ``preprocess`` returns) and an int label.

    Examples::

        >>> import os
        >>> from PIL import Image
        >>> from captum_akd.data import ImageFolderDataset
        >>> for name, size in [("cat", (40, 30)), ("dog", (50, 60))]:  # root/<class>/*.png
        ...     os.makedirs(f"photos/{name}")
        ...     Image.new("RGB", size, (255, 0, 0)).save(f"photos/{name}/0.png")
        >>> ds = ImageFolderDataset("photos/", image_size=24)
        >>> len(ds), ds.classes, ds.targets
        (2, ['cat', 'dog'], [0, 1])
        >>> image, label = ds[1]
        >>> image.shape, label, image[:, 0, 0]
        (torch.Size([3, 24, 24]), 1, tensor([1., 0., 0.]))
    """

    def __init__(
        self,
        root: str | os.PathLike,
        image_size: int | Sequence[int] | None = None,
        preprocess: Callable[[Image.Image], Tensor] | None = None,
        label_fn: Callable[[str], int] | None = None,
        classes: Sequence[str] | None = None,
        check_sizes: bool = True,
    ) -> None:
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"`root`: no folder at {self.root!r}")
        if image_size is not None and preprocess is not None:
            raise ValueError(
                "give `image_size` or `preprocess`, not both: `preprocess` decides the "
                "output size itself"
            )
        if preprocess is not None and not callable(preprocess):
            raise TypeError(f"`preprocess` must be callable; got {type(preprocess).__name__}")
        self.image_size = None if image_size is None else _size_pair(image_size)
        self.preprocess = preprocess

        entries = sorted(os.listdir(self.root))
        folders = [
            e
            for e in entries
            if not e.startswith(".") and os.path.isdir(os.path.join(self.root, e))
        ]
        loose = [e for e in entries if _is_image(e) and os.path.isfile(os.path.join(self.root, e))]
        if folders and label_fn is None:
            if loose:
                raise ValueError(
                    f"`root`: {self.root!r} holds class folders and also images outside "
                    f"them (e.g. {loose[0]!r}), which would have no class; move them into "
                    f"a class folder or remove them"
                )
            self.classes = folders
            samples = []
            for label, folder in enumerate(folders):
                found = self._walk(os.path.join(self.root, folder))
                if not found:
                    raise ValueError(
                        f"`root`: class folder {folder!r} in {self.root!r} holds no images"
                    )
                samples += [(p, label) for p in found]
        else:
            if not loose:
                raise ValueError(f"`root`: {self.root!r} holds no images")
            self.classes = list(classes) if classes is not None else []
            samples = []
            for name in loose:
                label = UNLABELED if label_fn is None else int(label_fn(name))
                samples.append((os.path.join(self.root, name), label))
        self.samples: list[tuple[str, int]] = samples
        self.targets: list[int] = [label for _, label in samples]
        if check_sizes and self.image_size is None and self.preprocess is None:
            self._check_one_size()

    @staticmethod
    def _walk(folder: str) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [os.path.join(dirpath, f) for f in sorted(filenames) if _is_image(f)]
        return found

    def _check_one_size(self) -> None:
        first_path, first_size = None, None
        for path, _ in self.samples:
            with Image.open(path) as image:  # reads the header only
                size = image.size
            if first_size is None:
                first_path, first_size = path, size
            elif size != first_size:
                raise ValueError(
                    f"images of mixed sizes cannot be batched: {first_path!r} is "
                    f"{first_size[0]} x {first_size[1]} (W x H) but {path!r} is "
                    f"{size[0]} x {size[1]}; pass `image_size=` or `preprocess=` to resize"
                )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")
        if self.preprocess is not None:
            return self.preprocess(image), label
        if self.image_size is not None:
            image = resize_and_center_crop(image, self.image_size)
        return pil_to_tensor(image), label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={self.root!r}, images={len(self)}, "
            f"classes={len(self.classes)})"
        )


def imagenet_sample(
    root: str | os.PathLike,
    image_size: int | Sequence[int] | None = None,
    preprocess: Callable[[Image.Image], Tensor] | None = None,
    wnids: Sequence[str] | None = None,
) -> ImageFolderDataset:
    r"""A flat folder of ImageNet photos named ``<wnid>_<name>.<ext>``, with labels.

    The label of ``n01440764_tench.JPEG`` is the position of ``n01440764`` in
    the sorted list of WordNet ids: by default the ids found in the folder,
    which is the standard ImageNet-1k order when the folder holds all 1000
    classes (as ``../shared/data/imagenet-sample`` does). For a folder with
    fewer classes pass the full list as ``wnids``, or the labels will not be
    ImageNet indices (a warning says so).

    Args:
        root: the folder.
        image_size: as in :class:`ImageFolderDataset`. Default: None.
        preprocess: as in :class:`ImageFolderDataset`, e.g.
            :func:`captum_akd.zoo.efficientnet_lite_preprocess`. Default: None.
        wnids: all class ids, in any order (they are sorted). Default: None
            (the ids in the folder).

    Returns:
        An :class:`ImageFolderDataset` whose :attr:`classes` are the sorted
        wnids and whose ``names`` attribute maps each wnid to the name in its
        file (e.g. ``"tench"``).

    Examples::

        >>> from captum_akd.data import DOG_CLASSES, imagenet_sample
        >>> from captum_akd.zoo import efficientnet_lite_preprocess
        >>> ds = imagenet_sample("../shared/data/imagenet-sample",
        ...                      preprocess=efficientnet_lite_preprocess)
        >>> image, label = ds[0]          # n01440764_tench.JPEG
        >>> image.shape, label
        (torch.Size([3, 224, 224]), 0)
        >>> dogs = [i for i, y in enumerate(ds.targets) if y in DOG_CLASSES]
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"`root`: no folder at {root!r}")
    files = [f for f in sorted(os.listdir(root)) if _is_image(f)]
    names: dict[str, str] = {}
    for f in files:
        match = _WNID.match(f)
        if match is None:
            raise ValueError(
                f"`root`: {f!r} in {root!r} is not named '<wnid>_<name>.<ext>' "
                f"(e.g. 'n01440764_tench.JPEG')"
            )
        names[match.group(1)] = os.path.splitext(f)[0][len(match.group(1)) + 1 :]
    if wnids is None:
        classes = sorted(names)
        if len(classes) != 1000:
            warnings.warn(
                f"{root!r} holds {len(classes)} ImageNet classes, not 1000: labels are "
                f"positions among these, not ImageNet-1k indices; pass `wnids=` (all 1000) "
                f"for ImageNet labels",
                stacklevel=2,
            )
    else:
        classes = sorted(wnids)
        missing = sorted(set(names) - set(classes))
        if missing:
            raise ValueError(f"`wnids` lacks {len(missing)} id(s) found in {root!r}: {missing[:5]}")
    index = {wnid: i for i, wnid in enumerate(classes)}
    dataset = ImageFolderDataset(
        root,
        image_size=image_size,
        preprocess=preprocess,
        label_fn=lambda name: index[_WNID.match(name).group(1)],
        classes=classes,
    )
    dataset.names = names
    return dataset
