"""The common face of the control "attributions": maps that never look at the model."""

from __future__ import annotations

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

    reads_target = False
