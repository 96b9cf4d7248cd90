"""Black boxes as users have them: a callable that answers images with logits.

:class:`CountingBlackBox` wraps any such callable (a module, a function, a
remote model's client) and counts what passes through it: calls and images.
That is the cost a user of a paid or rate-limited model pays, and what the
demo and the benchmarks report per method (``../design.md`` section 5,
"Black-box queries").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class CountingBlackBox:
    """A black box that counts its calls and the images passed to it.

    Calling the wrapper calls ``forward_func`` with the same arguments and
    returns its result unchanged: no :func:`torch.no_grad`, no device or dtype
    change, so gradients flow where the wrapped model allows them (Grad-CAM
    through a counted model still works). Before each call, :attr:`calls`
    grows by one and :attr:`images` by the length of the first positional
    argument (the batch of images, ``N x C x H x W``); a call that then
    raises is still counted, as a request sent to a remote model would be
    billed. Counts are exact under concurrent calls from several threads.

    Give the wrapper wherever the black box goes (:func:`captum_akd.distill`,
    a baseline's ``forward_func``) and read the counts, or their difference
    around one piece of work, afterwards.

    Args:
        forward_func: the black box, ``images -> logits`` (any callable).

    Attributes:
        forward_func: the wrapped callable.
        calls: how many times the black box was called.
        images: how many images were passed to it, over all calls.

    Raises:
        TypeError: if ``forward_func`` is not callable; from a call, if it
            has no positional argument or the first has no length.

    Examples::

        >>> import torch
        >>> from captum_akd.baselines import RISE
        >>> from captum_akd.blackbox import CountingBlackBox
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
        >>> black_box = CountingBlackBox(model)
        >>> logits = black_box(torch.rand(5, 3, 8, 8))
        >>> black_box.calls, black_box.images
        (1, 5)
        >>> black_box.reset()
        >>> rise = RISE(black_box, n_masks=40, grid=2, perturbations_per_eval=16)
        >>> maps = rise.attribute(torch.rand(2, 3, 8, 8), target=[0, 3])
        >>> black_box.calls, black_box.images   # 3 calls of 16, 16, 8 masked copies per image
        (6, 80)
    """

    def __init__(self, forward_func: Callable[..., Any]) -> None:
        if not callable(forward_func):
            raise TypeError(
                f"`forward_func` must be callable (images -> logits); got "
                f"{type(forward_func).__name__}"
            )
        self.forward_func = forward_func
        self.calls = 0
        self.images = 0
        # ROAD and data loaders may call from worker threads; += is not atomic.
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Count the call and its images, then call the black box.

        Args:
            *args: passed on unchanged; the first is the batch of images.
            **kwargs: passed on unchanged.

        Returns:
            What ``forward_func(*args, **kwargs)`` returns.
        """
        if not args:
            raise TypeError("a black box is called with a batch of images as first argument")
        try:
            n = len(args[0])
        except TypeError:
            raise TypeError(
                f"the first argument of a black-box call must be a batch of images; got "
                f"{type(args[0]).__name__}"
            ) from None
        with self._lock:
            self.calls += 1
            self.images += n
        return self.forward_func(*args, **kwargs)

    def reset(self) -> None:
        """Set both counts back to 0.

        Examples::

            >>> from captum_akd.blackbox import CountingBlackBox
            >>> black_box = CountingBlackBox(lambda x: x)
            >>> _ = black_box([1, 2, 3])
            >>> black_box.reset()
            >>> black_box.calls, black_box.images
            (0, 0)
        """
        with self._lock:
            self.calls = 0
            self.images = 0

    def __repr__(self) -> str:
        return (f"CountingBlackBox({self.forward_func!r}, calls={self.calls}, "
                f"images={self.images})")
