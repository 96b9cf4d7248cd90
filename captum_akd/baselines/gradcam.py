"""Grad-CAM baseline: Captum's ``LayerGradCam`` upsampled to the input size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from captum.attr import LayerAttribution, LayerGradCam
from torch import Tensor, nn

from captum_akd._base import ImageAttribution, check_labels_against_logits
from captum_akd._validation import check_callable, check_logits, check_same_device
from captum_akd.blackbox import check_differentiable


class GradCAM(ImageAttribution):
    r"""Grad-CAM (Selvaraju et al., ICCV 2017) with the project's Captum face.

    A thin adapter over :class:`captum.attr.LayerGradCam`: the gradients of the
    class-``c`` logit with respect to the output of ``layer`` are averaged over
    space to give one weight per channel, the weighted sum of the channels is
    passed through a ReLU (``relu=True``), and the resulting ``h x w`` map is
    upsampled bilinearly to the input's ``H x W`` with
    :meth:`captum.attr.LayerAttribution.interpolate`. The numbers are exactly
    Captum's; this class only adds the common contract of
    :class:`~captum_akd._base.ImageAttribution` (target forms, tuple inputs,
    chunking, ``expand_to_input``, a clear error for an out-of-range target).

    .. note::
        Grad-CAM is a **white-box** baseline: it runs a backward pass through
        ``forward_func`` and reads the activations and gradients of one of its
        layers. It is here to be compared against, not to explain a model that
        may only be called. The model's parameter gradients (``.grad``) are
        not modified, but it must be an ``nn.Module`` with ``layer`` inside it,
        in eval mode (batch norm in training mode makes a map depend on the
        rest of its batch). A black box that may only be called, such as
        :class:`~captum_akd.blackbox.OnnxBlackBox` or
        :class:`~captum_akd.blackbox.ArrayBlackBox` (anything that declares
        ``differentiable = False``, see
        :func:`~captum_akd.blackbox.is_differentiable`), is refused when the
        Grad-CAM is built: explain it with AKD, RISE, LIME or layer-wise CAM
        on the distilled student instead.

    Args:
        forward_func: the classifier, ``N x C x H x W -> N x K`` logits.
            Usually the ``nn.Module`` itself; any callable whose computation
            runs through ``layer`` works.
        layer: the module whose output is explained, typically the last
            convolutional stage (e.g. ``model.layer3`` of a CIFAR ResNet,
            ``model.layer4`` of a torchvision ResNet). Its output must be a
            single ``N x C_l x h x w`` tensor.
        relu: apply the ReLU of the Grad-CAM paper (keep only evidence *for*
            the class). ``False`` gives Captum's signed map.

    Returns:
        From :meth:`attribute`: ``N x 1 x H x W`` maps (``N x C x H x W``
        with ``expand_to_input``) on the inputs' device, detached, in the
        layer's activation units: not
        normalised (non-negative when ``relu=True``; a map is all zero when
        no channel has positive evidence). Min-max normalise them for display
        or for the metrics that expect [0, 1].

    Raises:
        TypeError: if ``forward_func`` is not callable or is not
            differentiable (an ONNX Runtime session, a function on NumPy
            arrays: the message names the methods that work), or if
            ``layer`` is not an ``nn.Module``.

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.zoo.cifar_resnet import cifar_resnet56
        >>> model = cifar_resnet56().eval()
        >>> gradcam = GradCAM(model, model.layer3)
        >>> images = torch.randn(4, 3, 32, 32)
        >>> maps = gradcam.attribute(images, target=[0, 1, 2, 3])
        >>> maps.shape                      # layer3 is 8 x 8, upsampled to 32 x 32
        torch.Size([4, 1, 32, 32])
        >>> maps = gradcam.attribute(images)  # target None: the model's prediction
    """

    requires_grad = True

    def __init__(
        self, forward_func: Callable[..., Tensor], layer: nn.Module, relu: bool = True
    ) -> None:
        check_callable(forward_func, "forward_func", "the classifier")
        # Refused here rather than deep in autograd, which would only say that
        # the logits do not require grad.
        check_differentiable(forward_func, "Grad-CAM")
        if not isinstance(layer, nn.Module):
            raise TypeError(f"`layer` must be an nn.Module; got {type(layer).__name__}")
        super().__init__(forward_func)
        self.layer = layer
        self.relu = bool(relu)

    def _check_inputs(self, images: Tensor) -> None:
        if isinstance(self.forward_func, nn.Module):
            check_same_device(images, self.forward_func, "forward_func")

    def _attribute_batch(
        self, images: Tensor, labels: Tensor, additional_forward_args: Any
    ) -> Tensor:
        def checked_forward(*args: Any) -> Tensor:
            # Captum would fail in `gather` with an index error; checking the
            # logits between forward and backward gives the user's own words.
            logits = check_logits(self.forward_func(*args), args[0].shape[0])
            check_labels_against_logits(labels, logits)
            return logits

        layer_maps = LayerGradCam(checked_forward, self.layer).attribute(
            images,
            target=labels,
            additional_forward_args=additional_forward_args,
            relu_attributions=self.relu,
        )
        if not isinstance(layer_maps, Tensor) or layer_maps.dim() != 4:
            raise ValueError(
                "`layer` must output one N x C x h x w tensor for Grad-CAM; got "
                f"{_describe(layer_maps)}"
            )
        return LayerAttribution.interpolate(layer_maps, tuple(images.shape[-2:]), "bilinear")


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"
