"""Layer-wise surrogate CAM: Grad-CAM at every stage of the distilled student."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from captum_akd._base import ImageAttribution
from captum_akd._image_ops import minmax_normalize, resize_maps
from captum_akd._validation import (
    check_callable,
    check_channels,
    check_min_size,
    check_same_device,
)


class LayerwiseSurrogateCAM(ImageAttribution):
    r"""Grad-CAM on every stage of the distilled student, summed pixel-wise.

    The method of "Visual Explanation of Black-box Models Using Layer-wise
    Class Activation Maps from Approximating Neural Networks" (2021): the black
    box is approximated by a white-box student (here the attentive student of
    :func:`captum_akd.distill`), and class activation maps of the student at
    every depth are combined, so that shallow stages add spatial detail and
    deep stages add class evidence. For class :math:`c` and every stage
    :math:`l` with attended features :math:`F_l \in \mathbb{R}^{C_l \times
    h_l \times w_l}` (``student.forward_features(x).features``, shallow to
    deep):

    .. math::

        \alpha_l^k = \frac{1}{h_l w_l} \sum_{i,j}
            \frac{\partial z^{\mathrm{student}}_c}{\partial F_l^k[i, j]}, \qquad
        G_l = \mathrm{ReLU}\Big(\sum_k \alpha_l^k F_l^k\Big),

    each :math:`G_l` is upsampled bilinearly to ``H x W`` and min-max
    normalised to [0, 1] (so every stage weighs the same whatever its
    activation scale), the :math:`L` maps are summed, and the sum is min-max
    normalised once more so that maps are in [0, 1] like the other
    attributions of the library. A stage whose map is all zero (no positive
    evidence) adds nothing.

    Gradients are those of the **student**, taken with one forward and one
    backward pass (:func:`torch.autograd.grad` on the features the student
    returns, so no hooks and no ``.grad`` of any parameter is touched). The
    black box is never differentiated: it is only called, under
    :func:`torch.no_grad`, when ``target`` is ``None``, to read its
    prediction. The student is put in eval mode (batch norm in training mode
    would make a map depend on its batch); a frozen student
    (``requires_grad=False`` parameters) works.

    Args:
        student: the distilled :class:`~captum_akd.models.AttentiveStudent`,
            or any module with ``forward_features(x)`` returning an object with
            ``.logits`` (``N x K``) and ``.features`` (list of
            ``N x C_l x h_l x w_l``), and attributes ``num_classes``,
            ``in_channels`` and ``min_input_size``.
        forward_func: the black box whose prediction is explained when
            ``target`` is ``None``; defaults to the student itself (then
            ``target=None`` explains the student's prediction).

    Returns:
        From :meth:`attribute`: ``N x 1 x H x W`` maps in [0, 1]
        (``N x C x H x W`` with ``expand_to_input``) on the inputs' device,
        detached; all zero for an image where no stage has positive evidence
        for the class.

    Examples::

        >>> from captum_akd import LayerwiseSurrogateCAM
        >>> from captum_akd.models import cifar_resnet_student
        >>> black_box = torch.nn.Sequential(torch.nn.Flatten(),
        ...                                 torch.nn.Linear(3 * 16 * 16, 3))
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> attr = LayerwiseSurrogateCAM(student, forward_func=black_box)
        >>> images = torch.randn(4, 3, 16, 16)
        >>> maps = attr.attribute(images)                 # classes the black box predicts
        >>> maps.shape, float(maps.min()) >= 0, float(maps.max()) <= 1
        (torch.Size([4, 1, 16, 16]), True, True)
        >>> attr.stage_maps(images, torch.tensor([0, 1, 2, 0])).shape  # L x N x 1 x H x W
        torch.Size([3, 4, 1, 16, 16])
    """

    requires_grad = True

    def __init__(
        self, student: nn.Module, forward_func: Callable[..., Tensor] | None = None
    ) -> None:
        missing = [
            name
            for name in ("forward_features", "num_classes", "in_channels", "min_input_size")
            if not hasattr(student, name)
        ]
        if not isinstance(student, nn.Module) or missing:
            raise TypeError(
                "`student` must be an AttentiveStudent (an nn.Module with forward_features, "
                f"num_classes, in_channels and min_input_size); {type(student).__name__} "
                f"lacks {missing or 'nn.Module'}"
            )
        check_callable(forward_func, "forward_func", "the black box", allow_none=True)
        super().__init__(forward_func if forward_func is not None else student)
        self.student = student

    @property
    def num_classes(self) -> int:
        """The student's number of classes ``K``; targets must lie in ``[0, K)``."""
        return self.student.num_classes

    def _check_inputs(self, images: Tensor) -> None:
        check_channels(images, self.student.in_channels)
        check_min_size(images, self.student.min_input_size)
        check_same_device(images, self.student, "student")

    def stage_maps(self, images: Tensor, labels: Tensor) -> Tensor:
        """Per-stage Grad-CAM maps, each upsampled and min-max normalised.

        Args:
            images: ``N x C x H x W`` inputs.
            labels: ``N`` class indices.

        Returns:
            ``L x N x 1 x H x W`` maps in [0, 1], shallow stage first, detached.
        """
        if self.student.training:
            self.student.eval()
        with torch.enable_grad():
            # A graph through the input exists even when the student is frozen.
            x = images.detach().requires_grad_(True)
            out = self.student.forward_features(x)
            score = out.logits.gather(1, labels.view(-1, 1)).sum()
            # Images are independent in eval mode, so the gradient of the
            # summed scores holds each image's own gradient.
            grads = torch.autograd.grad(score, out.features, allow_unused=True)
        size = tuple(images.shape[-2:])
        maps = []
        for feature, grad in zip(out.features, grads, strict=True):
            if grad is None:
                grad = torch.zeros_like(feature)
            weights = grad.mean(dim=(2, 3), keepdim=True)
            cam = (weights * feature).sum(dim=1, keepdim=True).clamp_min(0).detach()
            maps.append(minmax_normalize(resize_maps(cam, size)))
        return torch.stack(maps)

    def _attribute_batch(
        self, images: Tensor, labels: Tensor, additional_forward_args: Any
    ) -> Tensor:
        return minmax_normalize(self.stage_maps(images, labels).sum(dim=0))
