"""The common face of the control "attributions": maps that never look at the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from captum_akd._base import ImageAttribution


class ControlAttribution(ImageAttribution):
    """Base class of the controls: model-free maps scored like explanation methods.

    A control answers "what would a map that knows nothing about the model
    score?". The benchmarks score each control exactly like a method and show
    it as a control row; a method is useful only where it beats all of them
    (``../design.md`` section 5). A control takes ``forward_func`` like every
    method, so that it drops into the same comparison loop, but never calls
    it: not even for ``target=None``, since its maps do not depend on the
    class. ``target`` is still checked for its form (an int, a list of ``N``
    ints or an integer tensor).

    Everything else is :class:`~captum_akd._base.ImageAttribution`'s contract:
    ``N x C x H x W`` inputs or a 1-tuple of them, ``internal_batch_size``
    chunks, ``expand_to_input``, maps detached and on the inputs' device.
    ``isinstance(method, ControlAttribution)`` tells a harness which rows are
    controls.

    Args:
        forward_func: the black box, ``N x C x H x W -> N x K`` logits. Stored
            (Captum's :class:`~captum.attr.Attribution` keeps it) but never
            called; may be ``None``.

    Examples::

        >>> import torch
        >>> from captum_akd.metrics import ControlAttribution
        >>> class Brightness(ControlAttribution):
        ...     def _attribute_batch(self, images, labels, additional_forward_args):
        ...         return images.mean(dim=1, keepdim=True)
        >>> def black_box(x):
        ...     raise AssertionError("a control never calls the model")
        >>> Brightness(black_box).attribute(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, forward_func: Callable[..., Tensor] | None) -> None:
        super().__init__(forward_func)

    def attribute(
        self,
        inputs: Tensor | tuple[Tensor],
        target: Any = None,
        additional_forward_args: Any = None,
        internal_batch_size: int | None = None,
        expand_to_input: bool = False,
    ) -> Tensor | tuple[Tensor]:
        """Control maps for ``inputs``; ``target`` is accepted and ignored.

        Args:
            inputs: ``N x C x H x W`` images in the black box's input space, or
                a 1-tuple holding them. The output comes back in the same form.
            target: ignored (the map does not depend on the class), but checked
                like any target: ``None``, an int, a list of ``N`` ints or a
                0-d / length-``N`` integer tensor. ``None`` does not call the
                black box.
            additional_forward_args: ignored; accepted for the common face.
            internal_batch_size: process at most this many images at a time
                (results are identical to one batch).
            expand_to_input: return maps broadcast to ``N x C x H x W``.

        Returns:
            ``N x 1 x H x W`` (or ``N x C x H x W``) maps in [0, 1] on the
            inputs' device, detached; a tensor or a 1-tuple like ``inputs``.
        """
        # The base class resolves target=None by calling the black box; any
        # valid class stands in for it, since no control reads the labels.
        return super().attribute(
            inputs,
            0 if target is None else target,
            additional_forward_args,
            internal_batch_size,
            expand_to_input,
        )
