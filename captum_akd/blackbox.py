"""Black boxes as users have them: a callable that answers images with logits.

:class:`CountingBlackBox` wraps any such callable (a module, a function, a
remote model's client) and counts what passes through it: calls and images.
That is the cost a user of a paid or rate-limited model pays, and what the
demo and the benchmarks report per method (``../design.md`` section 5,
"Black-box queries").

A deployed model is often not a PyTorch module at all. Two adapters turn one
into a black box every method of the library can call, counting like
:class:`CountingBlackBox`:

- :class:`OnnxBlackBox`: an ONNX Runtime session (or the path of a ``.onnx``
  file), on the CPU or on the CUDA provider where it is installed;
- :class:`ArrayBlackBox`: any function from an ``N x C x H x W`` NumPy array
  to ``N x K`` logits or probabilities.

Gradients cannot flow through either, so they declare ``differentiable =
False``; :func:`is_differentiable` reads that flag (a user's own wrapper can
set it too) and :func:`check_differentiable` is how a gradient method such as
:class:`~captum_akd.baselines.GradCAM` refuses such a black box with a
message that names the methods that work.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from captum_akd._validation import check_images, check_positive_int

#: The methods that only *call* the black box, named by the refusal of a
#: gradient method (see :func:`check_differentiable`).
CALL_ONLY_METHODS = (
    "AKD (captum_akd.AttentiveDistillationAttribution, returned by captum_akd.distill), "
    "RISE (captum_akd.baselines.RISE), LIME (captum_akd.baselines.LimeImage) or "
    "layer-wise CAM on the distilled student (captum_akd.LayerwiseSurrogateCAM)"
)
#: The two kinds of output an adapter accepts (its ``outputs`` argument).
OUTPUT_KINDS = ("logits", "probabilities")
#: Rows of probabilities may miss 1, and values [0, 1], by this much by default
#: (float16 outputs and softmax over thousands of classes round this far).
DEFAULT_TOLERANCE = 1e-3
#: Images per backend run when ``batch_size`` is not given.
DEFAULT_BATCH_SIZE = 64
# A probability of exactly 0 would become a logit of -inf, and 0 * -inf is NaN
# in a KL divergence; the smallest normal float32 keeps softmax(log p) = p to
# within 1e-38 while every logit stays finite (log of it is about -87.3).
_SMALLEST_PROBABILITY = float(np.finfo(np.float32).tiny)
# ONNX element types an image input may have, and the NumPy dtype fed to it.
_ONNX_FLOAT_INPUTS = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}
_ONNX_INSTALL_HINT = "pip install captum-akd[onnx]"


def is_differentiable(forward_func: Any) -> bool:
    """Whether gradients can flow from ``forward_func``'s logits to its input images.

    A black box says it is not differentiable with an attribute
    ``differentiable = False`` (a class attribute, or set on the object).
    :class:`OnnxBlackBox` and :class:`ArrayBlackBox` do so;
    :class:`CountingBlackBox` reports the flag of what it wraps. Anything
    without the attribute (an ``nn.Module``, a function of tensors) is taken
    to be differentiable, which is what autograd will find out anyway.

    Args:
        forward_func: a black box, ``images -> logits``.

    Returns:
        ``False`` if ``forward_func.differentiable`` is false, else ``True``.

    Examples::

        >>> import numpy as np
        >>> from captum_akd.blackbox import ArrayBlackBox, CountingBlackBox, is_differentiable
        >>> is_differentiable(torch.nn.Linear(4, 2))
        True
        >>> black_box = ArrayBlackBox(lambda x: x.mean(axis=(2, 3)))
        >>> is_differentiable(black_box), is_differentiable(CountingBlackBox(black_box))
        (False, False)
        >>> def remote_model(images):        # a user's own wrapper of a web service
        ...     return torch.zeros(len(images), 10)
        >>> remote_model.differentiable = False
        >>> is_differentiable(remote_model)
        False
    """
    return bool(getattr(forward_func, "differentiable", True))


def check_differentiable(forward_func: Any, method: str) -> None:
    """Raise unless gradients can flow through ``forward_func`` (see :func:`is_differentiable`).

    Gradient methods call this where they are built, so that a black box that
    may only be called is refused at once, with the methods that work on it.

    Args:
        forward_func: the black box the method would back-propagate through.
        method: the method's name for the message, e.g. ``"Grad-CAM"``.

    Raises:
        TypeError: if ``forward_func`` declares ``differentiable = False``;
            the message names the methods that only call the black box: AKD,
            RISE, LIME and layer-wise CAM on the distilled student.

    Examples::

        >>> from captum_akd.blackbox import ArrayBlackBox, check_differentiable
        >>> check_differentiable(torch.nn.Linear(4, 2), "Grad-CAM")
        >>> check_differentiable(ArrayBlackBox(lambda x: x.mean(axis=(2, 3))), "Grad-CAM")
        Traceback (most recent call last):
        ...
        TypeError: Grad-CAM back-propagates through `forward_func`, but ArrayBlackBox ...
    """
    if not is_differentiable(forward_func):
        raise TypeError(
            f"{method} back-propagates through `forward_func`, but "
            f"{type(forward_func).__name__} is not differentiable (differentiable = False): "
            "gradients cannot flow through an ONNX Runtime session or a function on NumPy "
            f"arrays. Explain it with a method that only calls it: {CALL_ONLY_METHODS}"
        )


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

    @property
    def differentiable(self) -> bool:
        """Whether gradients flow through the wrapped black box (:func:`is_differentiable`)."""
        return is_differentiable(self.forward_func)

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
        self._count(n)
        return self.forward_func(*args, **kwargs)

    def _count(self, n: int) -> None:
        with self._lock:
            self.calls += 1
            self.images += n

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


class ArrayBlackBox(CountingBlackBox):
    r"""Any function on NumPy arrays as a black box: tensors in, checked logits out.

    The library calls black boxes with ``N x C x H x W`` image tensors and
    reads ``N x K`` logit tensors. This adapter lets a model that lives
    outside PyTorch (a NumPy pipeline, a TensorFlow or JAX model behind a
    function, a client of a web service) play that part. On each call it

    1. checks the images: a 4-D floating-point tensor with ``N >= 1``, finite
       values and, when ``in_channels`` is given, that many channels;
    2. converts them to one float32, C-contiguous NumPy array on the CPU
       (detached from autograd);
    3. calls ``fn`` on consecutive slices of at most ``batch_size`` images;
    4. checks every answer (below), turns probabilities into
       log-probabilities, and concatenates the answers in order;
    5. returns an ``N x K`` float32 tensor on the images' device.

    Each answer of ``fn`` for a slice of ``n`` images must be an array (or
    anything :func:`numpy.asarray` reads, such as a list) of shape
    ``n x K``, of a floating-point dtype, with finite values, and with the
    same ``K`` as ``num_classes`` (when given) or else as the first answer
    ever returned (:attr:`num_classes` then records it).

    With ``outputs="probabilities"`` every value must lie in [0, 1] and every
    row must sum to 1, each within ``tolerance``; the adapter returns
    :math:`\log p` (probabilities below the smallest normal float32 are
    raised to it first, so that no logit is :math:`-\infty`). Every method
    of the library expects logits and reads them only through a softmax
    (distillation targets, RISE and LIME scores) or an argmax (the predicted
    class), and :math:`\mathrm{softmax}(\log p)_k = p_k / \sum_j p_j = p_k`:
    class ranking, predicted class and distillation targets are exactly those
    of the probabilities. (A softmax at temperature :math:`T` sees
    :math:`p_k^{1/T}` normalised, which is what it sees of the logits the
    probabilities came from.)

    Counting is :class:`CountingBlackBox`'s: :attr:`calls` counts calls of
    the adapter by the library (one call may hold many images) and
    :attr:`images` the images they held, whatever ``batch_size`` is;
    :attr:`runs` counts the calls of ``fn`` itself, ``ceil(N / batch_size)``
    per call. A call whose images fail the input checks never reaches ``fn``
    and is not counted; a call whose answer fails a check is (as a request
    sent to a remote model would be billed).

    Gradients cannot flow through a NumPy function: the adapter declares
    ``differentiable = False`` (see :func:`is_differentiable`), the tensor it
    returns has no autograd history, and
    :class:`~captum_akd.baselines.GradCAM` refuses it when built. Every
    method that only calls the black box works: AKD after
    :func:`captum_akd.distill`, RISE, LIME and layer-wise CAM on the student.

    Args:
        fn: the model, a callable taking an ``n x C x H x W`` float32 NumPy
            array (C-contiguous, a fresh copy it may modify) and returning
            ``n x K`` logits or probabilities. Extra positional and keyword
            arguments of a call (Captum's ``additional_forward_args``) are
            passed on unchanged to every call of ``fn``.
        outputs: ``"logits"`` or ``"probabilities"``: what ``fn`` returns.
        batch_size: the most images given to one call of ``fn``; ``None``
            means 64.
        num_classes: the number of classes ``K`` every answer must have;
            ``None`` takes it from the first answer.
        in_channels: the number of channels ``C`` the model takes, checked
            before ``fn`` is called; ``None`` does not check.
        tolerance: with ``outputs="probabilities"``, how far values may lie
            outside [0, 1] and row sums away from 1.

    Returns:
        From a call ``black_box(images)``: ``N x K`` float32 logits (for
        probabilities, their logarithm) on ``images``' device, without
        autograd history.

    Attributes:
        forward_func: ``fn``.
        calls: how many times the adapter was called.
        images: how many images those calls held.
        runs: how many times ``fn`` was called.
        num_classes: ``K``, once known (``None`` before).
        differentiable: ``False``.

    Raises:
        TypeError: if ``fn`` is not callable or ``batch_size``,
            ``num_classes``, ``in_channels`` or ``tolerance`` has the wrong
            type. From a call: if the images are not a floating-point
            tensor, or ``fn`` answers with something that is not a
            floating-point array.
        ValueError: for an unknown ``outputs`` or a non-positive
            ``batch_size``, ``num_classes`` or ``in_channels``. From a call:
            for images that are not ``N x C x H x W`` with ``N >= 1``, have
            another channel count than ``in_channels`` or hold NaN or
            infinite values; for an answer that is not ``n x K`` for ``n``
            images, has another ``K`` than expected, holds NaN or infinite
            values, or (probabilities) has values outside [0, 1] or rows not
            summing to 1.

    Examples::

        >>> import numpy as np
        >>> from captum_akd.baselines import RISE
        >>> from captum_akd.blackbox import ArrayBlackBox
        >>> weights = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
        >>> def model(x):                    # N x 3 x H x W array -> N x 4 logits
        ...     return x.mean(axis=(2, 3)) @ weights
        >>> black_box = ArrayBlackBox(model, batch_size=16, in_channels=3)
        >>> logits = black_box(torch.rand(40, 3, 8, 8))
        >>> logits.shape, logits.dtype, black_box.num_classes
        (torch.Size([40, 4]), torch.float32, 4)
        >>> black_box.calls, black_box.images, black_box.runs   # 40 images in 16 + 16 + 8
        (1, 40, 3)
        >>> maps = RISE(black_box, n_masks=32, grid=2).attribute(torch.rand(2, 3, 8, 8))
        >>> maps.shape
        torch.Size([2, 1, 8, 8])
        >>> def softmax_model(x):            # a model that answers with probabilities
        ...     z = model(x)
        ...     e = np.exp(z - z.max(axis=1, keepdims=True))
        ...     return e / e.sum(axis=1, keepdims=True)
        >>> probs_box = ArrayBlackBox(softmax_model, outputs="probabilities")
        >>> images = torch.rand(5, 3, 8, 8)
        >>> torch.allclose(probs_box(images).softmax(1), black_box(images).softmax(1), atol=1e-6)
        True
        >>> ArrayBlackBox(lambda x: np.ones((len(x), 4)), outputs="probabilities")(images)
        Traceback (most recent call last):
        ...
        ValueError: outputs='probabilities' but `fn`'s rows must sum to 1 ...
    """

    differentiable = False

    def __init__(
        self,
        fn: Callable[..., Any],
        outputs: str = "logits",
        batch_size: int | None = None,
        num_classes: int | None = None,
        *,
        in_channels: int | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        if not callable(fn):
            raise TypeError(
                f"`fn` must be callable (an N x C x H x W float32 array -> N x K logits or "
                f"probabilities); got {type(fn).__name__}"
            )
        if outputs not in OUTPUT_KINDS:
            raise ValueError(f"`outputs` must be one of {OUTPUT_KINDS}; got {outputs!r}")
        for value, name in ((batch_size, "batch_size"), (num_classes, "num_classes"),
                            (in_channels, "in_channels")):
            _check_optional_count(value, name)
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
            raise TypeError(f"`tolerance` must be a number; got {type(tolerance).__name__}")
        if not 0 <= tolerance < 1:
            raise ValueError(f"`tolerance` must be in [0, 1); got {tolerance!r}")
        super().__init__(fn)
        self.outputs = outputs
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE
        self.num_classes = num_classes
        self.tolerance = float(tolerance)
        self.runs = 0
        # What the input must look like, N x C x H x W, None where anything goes.
        # An ONNX model fills in what its graph fixes.
        self._input_dims: tuple[int | None, ...] = (None, in_channels, None, None)
        # How answers are named in error messages.
        self._source = "`fn`"

    @property
    def in_channels(self) -> int | None:
        """The number of channels the images must have, or ``None`` (not checked)."""
        return self._input_dims[1]

    def __call__(self, images: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """Check ``images``, run the model in batches, check its answers, return logits.

        Args:
            images: ``N x C x H x W`` floating-point tensor, on any device.
            *args: passed on unchanged to every call of the model.
            **kwargs: passed on unchanged to every call of the model.

        Returns:
            ``N x K`` float32 logits on ``images``' device (log-probabilities
            for ``outputs="probabilities"``).
        """
        batch = self._to_array(images)
        n = batch.shape[0]
        self._count(n)
        answers = []
        for start in range(0, n, self.batch_size):
            chunk = batch[start : start + self.batch_size]
            with self._lock:
                self.runs += 1
            answer = self.forward_func(chunk, *args, **kwargs)
            answers.append(self._checked_logits(answer, len(chunk)))
        return torch.from_numpy(np.concatenate(answers)).to(images.device)

    def _to_array(self, images: Any) -> np.ndarray:
        name = type(self).__name__
        if not isinstance(images, Tensor):
            raise TypeError(
                f"{name} is called with a torch.Tensor of images N x C x H x W; got "
                f"{type(images).__name__}"
            )
        check_images(images, "images")
        # The batch size is the batching's business; only C, H and W are checked.
        for axis, what in ((1, "C (channels)"), (2, "H (height)"), (3, "W (width)")):
            want = self._input_dims[axis]
            if want is not None and images.shape[axis] != want:
                raise ValueError(
                    f"this {name} takes `images` N x C x H x W with {what} = {want}; got "
                    f"shape {tuple(images.shape)}"
                )
        # One copy for the whole call; slices of a C-contiguous array along N
        # stay C-contiguous, which ONNX Runtime and most array code want.
        return np.ascontiguousarray(images.detach().to("cpu", torch.float32).numpy())

    def _checked_logits(self, answer: Any, n: int) -> np.ndarray:
        source = self._source
        try:
            array = np.asarray(answer)
        except (TypeError, ValueError) as err:  # e.g. a ragged list of rows
            raise TypeError(
                f"{source} must return an N x K array; got {type(answer).__name__} ({err})"
            ) from None
        if array.ndim != 2 or array.shape[0] != n:
            raise ValueError(
                f"{source} must return an N x K = {n} x K array of {self.outputs} for a batch "
                f"of {n} images; got shape {array.shape}"
            )
        if array.dtype.kind != "f":
            raise TypeError(
                f"{source} must return floating-point {self.outputs}; got dtype {array.dtype}"
            )
        k = array.shape[1]
        if self.num_classes is None:
            self.num_classes = k
        elif k != self.num_classes:
            raise ValueError(
                f"{source} returned {k} classes but {self.num_classes} were expected "
                "(`num_classes`, or the first answer's K); every answer must have the same K"
            )
        if not np.isfinite(array).all():
            n_bad = int((~np.isfinite(array)).sum())
            raise ValueError(f"{source} returned {n_bad} NaN or infinite value(s)")
        if self.outputs == "logits":
            return array.astype(np.float32)
        return np.log(self._checked_probabilities(array)).astype(np.float32)

    def _checked_probabilities(self, array: np.ndarray) -> np.ndarray:
        source, tol = self._source, self.tolerance
        probs = array.astype(np.float64)
        low, high = float(probs.min()), float(probs.max())
        if low < -tol or high > 1 + tol:
            raise ValueError(
                f"outputs='probabilities' but {source} returned values in [{low:.4g}, "
                f"{high:.4g}], outside [0, 1] (tolerance {tol:g}); if it returns logits, "
                "pass outputs='logits'"
            )
        sums = probs.sum(axis=1)
        worst = int(np.abs(sums - 1).argmax())
        if abs(sums[worst] - 1) > tol:
            raise ValueError(
                f"outputs='probabilities' but {source}'s rows must sum to 1 (tolerance "
                f"{tol:g}); row {worst} sums to {sums[worst]:.6g}"
            )
        return np.clip(probs, _SMALLEST_PROBABILITY, None)

    def reset(self) -> None:
        """Set :attr:`calls`, :attr:`images` and :attr:`runs` back to 0.

        Examples::

            >>> from captum_akd.blackbox import ArrayBlackBox
            >>> black_box = ArrayBlackBox(lambda x: x.mean(axis=(2, 3)), batch_size=2)
            >>> _ = black_box(torch.rand(5, 3, 4, 4))
            >>> black_box.runs
            3
            >>> black_box.reset()
            >>> black_box.calls, black_box.images, black_box.runs
            (0, 0, 0)
        """
        super().reset()
        with self._lock:
            self.runs = 0

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.forward_func!r}, outputs={self.outputs!r}, "
                f"batch_size={self.batch_size}, calls={self.calls}, images={self.images}, "
                f"runs={self.runs})")


class OnnxBlackBox(ArrayBlackBox):
    r"""An ONNX Runtime session as a black box: explain a deployed model.

    The model is run by ONNX Runtime, from a ``.onnx`` file (or its bytes) or
    from an :class:`onnxruntime.InferenceSession` you built; the library
    calls it like any black box, with ``N x C x H x W`` image tensors, and
    gets ``N x K`` float32 logits on the images' device. Everything else is
    :class:`ArrayBlackBox`'s, whose subclass this is: the images are checked
    and converted to one contiguous NumPy array on the CPU (in the element
    type the model's input takes: float32, float64 or float16), the session
    is run on slices of at most ``batch_size`` images, each answer is checked
    (``n x K``, floating point, finite, the same ``K`` every time;
    probabilities in [0, 1] summing to 1 with ``outputs="probabilities"``,
    turned into log-probabilities, whose softmax is the probabilities), and
    the counts are kept: :attr:`calls` and :attr:`images` as
    :class:`CountingBlackBox` counts them (calls of the adapter by the
    library, and their images), :attr:`runs` the ``session.run`` calls.

    What the graph fixes is checked before anything runs: an input whose
    channels, height or width are fixed numbers refuses other images with a
    clear message, and a fixed ``K`` in the output becomes
    :attr:`num_classes`. A model exported with a fixed batch size ``B``
    (``torch.onnx.export`` without ``dynamic_axes``) is run on exactly ``B``
    images at a time: ``batch_size`` defaults to ``B``, and a last, shorter
    slice is padded with copies of its last image, whose answers are
    dropped. Export with a dynamic batch axis to avoid that work.

    Gradients cannot flow through an ONNX Runtime session:
    ``differentiable = False``, and :class:`~captum_akd.baselines.GradCAM`
    refuses it. AKD (:func:`captum_akd.distill`, which only calls the black
    box under :func:`torch.no_grad`), RISE, LIME and layer-wise CAM on the
    distilled student work.

    Args:
        path_or_session: the model: the path of a ``.onnx`` file, its
            contents as ``bytes``, or a ready
            :class:`onnxruntime.InferenceSession` (anything with its
            ``run``, ``get_inputs`` and ``get_outputs``).
        input_name: the graph input the images are fed to; ``None`` takes
            the only input (a model with several must name one).
        output_name: the graph output read as logits (or probabilities);
            ``None`` takes the first output.
        batch_size: the most images per ``session.run``; ``None`` means the
            model's fixed batch size if it has one, else 64. With a fixed
            batch size, no other value is accepted.
        providers: ONNX Runtime execution providers for a session built from
            a path or bytes, e.g. ``["CPUExecutionProvider"]``; ``None``
            takes ``CUDAExecutionProvider`` (where the installed
            ``onnxruntime-gpu`` has it) then ``CPUExecutionProvider``. Must
            be ``None`` with a ready session.
        outputs: ``"logits"`` or ``"probabilities"``: what the output holds
            (a model exported with its softmax gives probabilities).
        num_classes: the number of classes ``K`` every answer must have;
            ``None`` takes it from the graph or the first answer.
        threads: ONNX Runtime intra-op threads for a session built here;
            ``None`` leaves ONNX Runtime's default (all cores).
        tolerance: with ``outputs="probabilities"``, how far values may lie
            outside [0, 1] and row sums away from 1.

    Returns:
        From a call ``black_box(images)``: ``N x K`` float32 logits (for
        probabilities, their logarithm) on ``images``' device, without
        autograd history.

    Attributes:
        session: the ONNX Runtime session.
        input_name: the input fed with the images.
        output_name: the output read.
        calls: how many times the adapter was called.
        images: how many images those calls held.
        runs: how many times ``session.run`` was called.
        num_classes: ``K``, once known (``None`` before).
        differentiable: ``False``.

    Raises:
        ImportError: if ``onnxruntime`` is not installed and a path or bytes
            is given; the message says ``pip install captum-akd[onnx]``.
        FileNotFoundError: if the path does not exist.
        TypeError: for a ``path_or_session`` of another type, an image input
            that is not floating point, or (from a call) images or answers of
            the wrong type, as in :class:`ArrayBlackBox`.
        ValueError: for an ``input_name`` or ``output_name`` the graph does
            not have (the message lists those it has), no ``input_name`` for
            a model with several inputs, ``providers`` or ``threads`` with a
            ready session, a ``batch_size`` other than a fixed one, a
            ``num_classes`` other than the graph's, and every bad input or
            answer :class:`ArrayBlackBox` refuses.

    Examples::

        >>> from captum_akd.blackbox import OnnxBlackBox
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
        ...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        ...                             torch.nn.Linear(8, 5)).eval()
        >>> images = torch.rand(10, 3, 16, 16)
        >>> torch.onnx.export(model, (images[:1],), "model.onnx", dynamo=False,
        ...                   input_names=["images"], output_names=["logits"],
        ...                   dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}})
        >>> black_box = OnnxBlackBox("model.onnx", batch_size=4, threads=1)
        >>> black_box.input_name, black_box.output_name, black_box.num_classes
        ('images', 'logits', 5)
        >>> logits = black_box(images)
        >>> logits.shape, torch.allclose(logits, model(images), atol=1e-5)
        (torch.Size([10, 5]), True)
        >>> black_box.calls, black_box.images, black_box.runs   # 10 images in 4 + 4 + 2
        (1, 10, 3)
        >>> OnnxBlackBox("model.onnx", input_name="pixels")
        Traceback (most recent call last):
        ...
        ValueError: `input_name` 'pixels' is not an input of the ONNX model; its inputs: ['images']
    """

    def __init__(
        self,
        path_or_session: str | os.PathLike | bytes | Any,
        input_name: str | None = None,
        output_name: str | None = None,
        batch_size: int | None = None,
        providers: Sequence[Any] | None = None,
        outputs: str = "logits",
        *,
        num_classes: int | None = None,
        threads: int | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        for value, name in ((batch_size, "batch_size"), (num_classes, "num_classes"),
                            (threads, "threads")):
            _check_optional_count(value, name)
        self.session = _open_session(path_or_session, providers, threads)
        graph_input = _pick(self.session.get_inputs(), input_name, "input_name", "inputs")
        graph_output = _pick(self.session.get_outputs(), output_name, "output_name", "outputs")
        dims = _fixed_dims(graph_input.shape, 4)
        if graph_input.shape is not None and len(graph_input.shape) != 4:
            raise ValueError(
                f"the ONNX input {graph_input.name!r} has shape {graph_input.shape}; "
                "OnnxBlackBox feeds it images N x C x H x W, so it must have 4 dimensions"
            )
        if graph_input.type not in _ONNX_FLOAT_INPUTS:
            raise TypeError(
                f"the ONNX input {graph_input.name!r} takes {graph_input.type}; OnnxBlackBox "
                f"feeds it images, so it must take one of {sorted(_ONNX_FLOAT_INPUTS)}"
            )
        self._fixed_batch = dims[0]
        if self._fixed_batch is not None and batch_size not in (None, self._fixed_batch):
            raise ValueError(
                f"`batch_size` must be the ONNX model's fixed batch size {self._fixed_batch} "
                f"(its input {graph_input.name!r} has shape {graph_input.shape}); got "
                f"{batch_size!r}. Export with a dynamic batch axis to choose another"
            )
        graph_k = _fixed_dims(graph_output.shape, 2)[1]
        if graph_k is not None and num_classes is not None and num_classes != graph_k:
            raise ValueError(
                f"`num_classes` is {num_classes} but the ONNX output {graph_output.name!r} has "
                f"shape {graph_output.shape}, so K = {graph_k}"
            )
        super().__init__(self._run_session, outputs, batch_size or self._fixed_batch,
                         num_classes or graph_k, tolerance=tolerance)
        self.input_name = graph_input.name
        self.output_name = graph_output.name
        self._input_dtype = _ONNX_FLOAT_INPUTS[graph_input.type]
        self._input_dims = dims
        self._source = f"the ONNX model's output {self.output_name!r}"

    def __call__(self, images: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """Check ``images``, run the session in batches, check its answers, return logits.

        Args:
            images: ``N x C x H x W`` floating-point tensor, on any device.
            *args: not accepted: the graph is fed the images only.
            **kwargs: not accepted.

        Returns:
            ``N x K`` float32 logits on ``images``' device (log-probabilities
            for ``outputs="probabilities"``).
        """
        if args or kwargs:
            # Refused before counting: nothing reaches the model.
            raise TypeError(
                "OnnxBlackBox feeds only the images to the ONNX model; it takes no "
                "additional_forward_args"
            )
        return super().__call__(images)

    def _run_session(self, batch: np.ndarray) -> Any:
        """Run the session on one slice of images, padding it to a fixed batch size."""
        n = batch.shape[0]
        feed = batch.astype(self._input_dtype, copy=False)
        padded = self._fixed_batch is not None and n < self._fixed_batch
        if padded:
            extra = np.repeat(feed[-1:], self._fixed_batch - n, axis=0)
            feed = np.concatenate([feed, extra])
        answer = self.session.run([self.output_name], {self.input_name: feed})[0]
        if padded and getattr(answer, "shape", ())[:1] == (self._fixed_batch,):
            answer = answer[:n]
        return answer

    def __repr__(self) -> str:
        return (f"OnnxBlackBox(input_name={self.input_name!r}, "
                f"output_name={self.output_name!r}, outputs={self.outputs!r}, "
                f"batch_size={self.batch_size}, calls={self.calls}, images={self.images}, "
                f"runs={self.runs})")


def _check_optional_count(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"`{name}` must be a positive int or None; got {type(value).__name__}")
    check_positive_int(value, name, allow_none=True)


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            f"OnnxBlackBox needs ONNX Runtime, which is not installed ({err}); install the "
            f"optional dependencies with `{_ONNX_INSTALL_HINT}` (or `pip install onnxruntime`, "
            "`onnxruntime-gpu` for CUDA)"
        ) from err
    return onnxruntime


def _open_session(source: Any, providers: Sequence[Any] | None, threads: int | None) -> Any:
    if all(hasattr(source, name) for name in ("run", "get_inputs", "get_outputs")):
        if providers is not None or threads is not None:
            raise ValueError(
                "`providers` and `threads` configure a session built from a path; with a "
                "ready InferenceSession, set them when building it"
            )
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"`path_or_session`: no ONNX model file at {path!r}")
        model: str | bytes = path
    elif isinstance(source, bytes):
        model = source
    else:
        raise TypeError(
            "`path_or_session` must be the path of a .onnx file, its bytes, or an "
            f"onnxruntime.InferenceSession; got {type(source).__name__}"
        )
    ort = _import_onnxruntime()
    if providers is None:
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in available] or available
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model, sess_options=options, providers=list(providers))


def _pick(nodes: Sequence[Any], name: str | None, argument: str, kind: str) -> Any:
    """The graph input or output called ``name``, or the default one."""
    names = [node.name for node in nodes]
    if name is None:
        if not nodes:
            raise ValueError(f"the ONNX model has no {kind}")
        if kind == "inputs" and len(nodes) > 1:
            raise ValueError(
                f"the ONNX model has several inputs {names}; pass `{argument}` to say which "
                "one takes the images"
            )
        return nodes[0]
    if name not in names:
        raise ValueError(
            f"`{argument}` {name!r} is not an input of the ONNX model; its inputs: {names}"
            if kind == "inputs" else
            f"`{argument}` {name!r} is not an output of the ONNX model; its outputs: {names}"
        )
    return nodes[names.index(name)]


def _fixed_dims(shape: Any, rank: int) -> tuple[int | None, ...]:
    """The graph's fixed sizes of a ``rank``-dimensional value, ``None`` where free."""
    if not isinstance(shape, (list, tuple)) or len(shape) != rank:
        return (None,) * rank
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)
