"""The one base class every saliency method of the project builds on.

It owns the Captum contract of ``../design.md`` section 4 (input forms, target
forms, chunking, output form and range checks) so that a method only writes
:meth:`ImageAttribution._attribute_batch`: images and class indices in, an
``N x 1 x H x W`` map out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from captum.attr import Attribution
from captum.log import log_usage
from torch import Tensor

from captum_akd._validation import (
    call_black_box,
    check_positive_int,
    check_target_range,
    format_image_inputs,
    resolve_target,
)


class ImageAttribution(Attribution):
    """Captum attribution for image classifiers that returns one map per image.

    Subclasses implement :meth:`_attribute_batch` and may override
    :meth:`_check_inputs` (channels, size, device) and :attr:`num_classes`
    (used to check targets before any work is done). Methods that need
    autograd (Grad-CAM, layer-wise CAM) set ``requires_grad = True``; all
    others run under :func:`torch.no_grad`. Maps that do not depend on the
    class (the controls) set ``reads_target = False``: ``target=None`` then
    costs no black-box call.

    Args:
        forward_func: the black-box classifier, ``N x C x H x W -> N x K`` logits.
            It is only called on input tensors; may be ``None`` when every call
            to :meth:`attribute` gives ``target``.

    Examples::

        >>> from captum_akd._base import ImageAttribution
        >>> class Brightness(ImageAttribution):
        ...     def _attribute_batch(self, images, labels, additional_forward_args):
        ...         return images.mean(dim=1, keepdim=True)
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
        >>> Brightness(net).attribute(torch.rand(2, 3, 8, 8), target=0).shape
        torch.Size([2, 1, 8, 8])
    """

    requires_grad: bool = False
    reads_target: bool = True

    def __init__(self, forward_func: Callable[..., Tensor] | None) -> None:
        super().__init__(forward_func)

    @property
    def num_classes(self) -> int | None:
        """Number of classes targets must lie in, or ``None`` when only known later."""
        return None

    @property
    def multiplies_by_inputs(self) -> bool:
        """``False``: the maps are not multiplied by the inputs (Captum's flag)."""
        return False

    def has_convergence_delta(self) -> bool:
        """Whether :meth:`attribute` can return a convergence delta.

        Returns:
            ``False``: these methods have no completeness axiom to check.
        """
        return False

    def _check_inputs(self, images: Tensor) -> None:
        """Hook for method-specific checks (channels, minimum size, device)."""

    def _attribute_batch(
        self, images: Tensor, labels: Tensor, additional_forward_args: Any
    ) -> Tensor:
        """Return ``N x 1 x H x W`` maps for ``images`` and class ``labels`` (``N``)."""
        raise NotImplementedError

    @log_usage()
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor],
        target: Any = None,
        additional_forward_args: Any = None,
        internal_batch_size: int | None = None,
        expand_to_input: bool = False,
    ) -> Tensor | tuple[Tensor]:
        """Saliency maps for ``inputs`` and class ``target``.

        Args:
            inputs: ``N x C x H x W`` images in the black box's input space, or
                a 1-tuple holding them. The output comes back in the same form.
            target: the class to explain: ``None`` (the black box's own
                prediction, from one no-grad call), an int, a list of ``N``
                ints, or a 0-d / length-``N`` integer tensor.
            additional_forward_args: extra positional arguments for the black
                box, passed after the images.
            internal_batch_size: process at most this many images at a time
                (results are identical to one batch).
            expand_to_input: return maps broadcast to the input's shape
                ``N x C x H x W`` (what ``captum.metrics.infidelity`` needs)
                instead of ``N x 1 x H x W``.

        Returns:
            ``N x 1 x H x W`` (or ``N x C x H x W``) maps on the inputs' device,
            detached from autograd; a tensor or a 1-tuple like ``inputs``.
        """
        images, was_tuple = format_image_inputs(inputs)
        check_positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
        self._check_inputs(images)
        n = images.shape[0]
        if target is None and not self.reads_target:
            labels = torch.zeros(n, dtype=torch.long, device=images.device)
        elif target is None:
            logits = call_black_box(
                self.forward_func, images, additional_forward_args, internal_batch_size
            )
            labels = logits.argmax(dim=1)
            if self.num_classes is not None and logits.shape[1] != self.num_classes:
                raise ValueError(
                    f"`forward_func` returns {logits.shape[1]} logits but this attribution "
                    f"explains {self.num_classes} classes"
                )
        else:
            labels = resolve_target(target, n, self.num_classes, images.device)
        step = internal_batch_size or n
        grad_mode = torch.enable_grad() if self.requires_grad else torch.no_grad()
        maps = []
        with grad_mode:
            for start in range(0, n, step):
                chunk = images[start : start + step]
                out = self._attribute_batch(
                    chunk, labels[start : start + step], additional_forward_args
                )
                maps.append(out.detach())
        result = torch.cat(maps)
        if expand_to_input:
            result = result.expand(-1, images.shape[1], -1, -1).contiguous()
        return (result,) if was_tuple else result


def check_labels_against_logits(labels: Tensor, logits: Tensor) -> None:
    """Raise if a class index does not exist in the black box's ``N x K`` logits.

    Args:
        labels: ``N`` class indices.
        logits: the black box's ``N x K`` logits.

    Raises:
        ValueError: if an index is negative or ``>= K``.

    Examples::

        >>> from captum_akd._base import check_labels_against_logits
        >>> check_labels_against_logits(torch.tensor([0, 4]), torch.zeros(2, 5))
        >>> check_labels_against_logits(torch.tensor([5]), torch.zeros(1, 5))
        Traceback (most recent call last):
        ...
        ValueError: `target` holds class index 5, out of range for a model with 5 classes ...
    """
    check_target_range(labels, logits.shape[1])

