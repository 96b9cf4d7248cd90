"""Target models for the benchmarks: the black boxes that get explained.

EfficientNet-Lite0 and -Lite2 need the optional ``efficientnet`` extra; their packages are
imported only when :func:`efficientnet_lite0_target` or
:func:`efficientnet_lite2_target` is called.
"""

from captum_akd.zoo.cifar_resnet import (
    CifarResNet,
    cifar_resnet20,
    cifar_resnet56,
    load_cifar_resnet,
    normalize_cifar,
)
from captum_akd.zoo.efficientnet_lite import (
    EFFICIENTNET_LITE2_RESIZE,
    EFFICIENTNET_LITE2_SIZE,
    EFFICIENTNET_LITE_GRADCAM_LAYER,
    efficientnet_lite0_target,
    efficientnet_lite2_target,
    efficientnet_lite_normalize,
    efficientnet_lite_preprocess,
    efficientnet_lite_unnormalize,
)

__all__ = [
    "EFFICIENTNET_LITE2_RESIZE",
    "EFFICIENTNET_LITE2_SIZE",
    "EFFICIENTNET_LITE_GRADCAM_LAYER",
    "CifarResNet",
    "cifar_resnet20",
    "cifar_resnet56",
    "efficientnet_lite0_target",
    "efficientnet_lite2_target",
    "efficientnet_lite_normalize",
    "efficientnet_lite_preprocess",
    "efficientnet_lite_unnormalize",
    "load_cifar_resnet",
    "normalize_cifar",
]
