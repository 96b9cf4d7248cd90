"""LIME baseline: superpixel surrogates from the ``lime`` package or Captum."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import Lime
from torch import Tensor, nn

from captum_akd._base import ImageAttribution, check_labels_against_logits
from captum_akd._image_ops import minmax_normalize
from captum_akd._validation import (
    call_black_box,
    check_callable,
    check_positive_int,
    check_same_device,
)

ENGINES = ("lime", "captum")
SEGMENTATIONS = ("quickshift", "slic")

# Quickshift with lime's defaults gives 27-36 superpixels on 224 x 224
# photos but only 1-2 on 32 x 32 CIFAR images, so small inputs get a smaller
# kernel and merge distance (12-29 superpixels on CIFAR-10). SLIC takes a
# target count, which gives 26-39 superpixels at both sizes.
SMALL_INPUT = 128
DEFAULT_SEGMENTATION_KWARGS = {
    "quickshift": {"kernel_size": 4, "max_dist": 200, "ratio": 0.2},
    "quickshift_small": {"kernel_size": 1, "max_dist": 4, "ratio": 0.2},
    "slic": {"n_segments": 50, "compactness": 10.0},
}


class LimeImage(ImageAttribution):
    r"""LIME (Ribeiro, Singh & Guestrin, KDD 2016) on superpixels, as a map.

    Each image is cut into superpixels with scikit-image (``quickshift`` or
    ``slic``). ``n_samples`` random subsets of superpixels are kept (each
    superpixel on with probability 1/2) and the others replaced by
    ``hide_color``; the black box scores every perturbed image (softmax of its
    logits, class ``c``), and a ridge regression on the binary on/off vectors,
    weighted by an exponential kernel of width ``kernel_width`` on their cosine
    distance to the all-on vector, gives one weight per superpixel. The map
    fills each superpixel with its weight where the weight is positive and 0
    elsewhere: evidence *for* class ``c``.

    Two engines compute the same estimator:

    - ``engine="lime"`` (default): :class:`lime.lime_image.LimeImageExplainer`
      of the ``lime`` package. The image goes to it channels-last in the black
      box's own input space (normalised values, not display pixels), and the
      perturbed numpy batches are turned back into tensors for the black box.
    - ``engine="captum"``: :class:`captum.attr.Lime` with the superpixels as
      its ``feature_mask``, :class:`~captum._utils.models.linear_model.SkLearnRidge`
      (alpha 1, as the ``lime`` package) as the interpretable model and the
      same kernel on the same cosine distance in the interpretable space.
      The two engines draw different random samples, so their maps agree in
      expectation, not number for number.

    Superpixels are computed on the image min-max scaled to [0, 1] (the input
    space of a normalised model is not a colour space scikit-image can read;
    scaling keeps the colour balance); images with other than three channels
    are averaged to grey and repeated to RGB for the segmentation only.

    Replacement (``hide_color``): ``"mean"`` (default) replaces a switched-off
    superpixel by the image's per-channel mean, a flat colour that carries no
    structure and is meaningful in any input space. A number (e.g. ``0.0``,
    the dataset mean for a normalised input) or a per-channel sequence sets
    that value in the black box's input space. ``None`` is the ``lime``
    package's default, each superpixel's own mean colour; it keeps a blurred
    copy of the image and removes less.

    Every image is explained with its own generator seeded by ``seed``, so
    results are reproducible and do not depend on the batch an image comes in.
    The black box is only called under :func:`torch.no_grad`.

    Args:
        forward_func: the black box, ``N x C x H x W -> N x K`` logits.
        n_samples: number of perturbed images per explained image.
        segmentation: ``"quickshift"`` or ``"slic"``; ``None`` picks
            ``"quickshift"`` for the ``lime`` engine (its own default) and
            ``"slic"`` for the Captum engine.
        engine: ``"lime"`` or ``"captum"``.
        seed: seed for sampling (and for quickshift's tie-breaking).
        hide_color: what replaces a switched-off superpixel (see above).
        kernel_width: width of the exponential kernel on the cosine distance
            (the ``lime`` package's default 0.25).
        segmentation_kwargs: keyword arguments for
            :func:`skimage.segmentation.quickshift` or
            :func:`skimage.segmentation.slic`, overriding the defaults.
            Quickshift: ``kernel_size=4, max_dist=200, ratio=0.2`` (lime's,
            about 30 superpixels on a 224 x 224 photo) for inputs of at
            least 128 pixels a side, ``kernel_size=1, max_dist=4, ratio=0.2``
            below (lime's give 1 or 2 superpixels on a 32 x 32 image; these
            give 12 to 29 on CIFAR-10). SLIC: ``n_segments=50,
            compactness=10`` (about 30 superpixels at either size).
        perturbations_per_eval: the most perturbed images given to one call of
            ``forward_func``.
        show_progress: show a progress bar over the samples.

    Returns:
        From :meth:`attribute`: ``N x 1 x H x W`` maps (``N x C x H x W`` with
        ``expand_to_input``) on the inputs' device, detached, non-negative and
        constant on each superpixel; values are regression weights in units of
        class probability (not normalised).

    Examples::

        >>> from captum_akd.baselines import LimeImage
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
        >>> lime = LimeImage(model, n_samples=32, segmentation="quickshift")
        >>> # Two images of 2 x 2 flat 8-pixel blocks: four superpixels each.
        >>> images = torch.rand(2, 3, 2, 2).repeat_interleave(8, 2).repeat_interleave(8, 3)
        >>> maps = lime.attribute(images, target=[0, 2])
        >>> maps.shape, bool(maps.min() >= 0)
        (torch.Size([2, 1, 16, 16]), True)
        >>> segments = lime.segments(images)          # N x H x W superpixel labels
        >>> segments.shape, [int(s.max()) + 1 for s in segments]
        (torch.Size([2, 16, 16]), [4, 4])
        >>> torch.equal(maps, LimeImage(model, n_samples=32).attribute(images, target=[0, 2]))
        True
        >>> # SLIC superpixels and captum.attr.Lime:
        >>> captum_lime = LimeImage(model, n_samples=32, engine="captum")
        >>> captum_lime.attribute(images).shape       # target None: the model's prediction
        torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        n_samples: int = 1000,
        segmentation: str | None = None,
        engine: str = "lime",
        seed: int = 0,
        hide_color: str | float | Sequence[float] | None = "mean",
        kernel_width: float = 0.25,
        segmentation_kwargs: dict[str, Any] | None = None,
        perturbations_per_eval: int = 64,
        show_progress: bool = False,
    ) -> None:
        check_callable(forward_func, "forward_func", "the black box")
        check_positive_int(n_samples, "n_samples")
        check_positive_int(perturbations_per_eval, "perturbations_per_eval")
        if engine not in ENGINES:
            raise ValueError(f"`engine` must be one of {ENGINES}; got {engine!r}")
        if segmentation is None:
            segmentation = "quickshift" if engine == "lime" else "slic"
        if segmentation not in SEGMENTATIONS:
            raise ValueError(
                f"`segmentation` must be one of {SEGMENTATIONS}; got {segmentation!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative int; got {seed!r}")
        if isinstance(hide_color, str) and hide_color != "mean":
            raise ValueError(
                f"`hide_color` must be 'mean', None, a number or one number per channel; "
                f"got {hide_color!r}"
            )
        if not kernel_width > 0:
            raise ValueError(f"`kernel_width` must be positive; got {kernel_width!r}")
        super().__init__(forward_func)
        self.n_samples = n_samples
        self.segmentation = segmentation
        self.engine = engine
        self.seed = seed
        self.hide_color = hide_color
        self.kernel_width = float(kernel_width)
        self.segmentation_kwargs = dict(segmentation_kwargs or {})
        self.perturbations_per_eval = perturbations_per_eval
        self.show_progress = bool(show_progress)

    def _check_inputs(self, images: Tensor) -> None:
        if isinstance(self.forward_func, nn.Module):
            check_same_device(images, self.forward_func, "forward_func")
        if self.hide_color is not None and not isinstance(self.hide_color, str):
            n_values = torch.as_tensor(self.hide_color).numel()
            if n_values not in (1, images.shape[1]):
                raise ValueError(
                    f"`hide_color` has {n_values} values but `inputs` have "
                    f"{images.shape[1]} channels (give one value, or one per channel)"
                )
        if self.hide_color is None and self.engine == "lime" and images.shape[1] != 3:
            raise ValueError(
                "`hide_color=None` (lime's per-superpixel mean) needs 3-channel inputs with "
                f"the lime engine; got {images.shape[1]} channels. Use 'mean' or a number"
            )

    def segments(self, images: Tensor) -> Tensor:
        """Superpixel labels ``0..S_i - 1`` of each image, ``N x H x W`` (long, CPU).

        Each image is min-max scaled to [0, 1] (averaged to grey and repeated to
        three channels unless it has three) and segmented with
        ``self.segmentation``; labels are renumbered without gaps.

        Args:
            images: ``N x C x H x W`` images in the black box's input space.

        Returns:
            An ``N x H x W`` int64 CPU tensor; image ``i`` uses labels
            ``0..S_i - 1`` for its ``S_i`` superpixels.
        """
        from skimage.segmentation import quickshift, slic

        scaled = minmax_normalize(images.detach().double()).cpu()
        if scaled.shape[1] != 3:
            scaled = scaled.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
        name = self.segmentation
        if name == "quickshift" and min(images.shape[-2:]) < SMALL_INPUT:
            name = "quickshift_small"
        kwargs = {**DEFAULT_SEGMENTATION_KWARGS[name], **self.segmentation_kwargs}
        out = []
        for image in scaled.permute(0, 2, 3, 1).numpy():
            if self.segmentation == "quickshift":
                labels = quickshift(image, rng=self.seed, **kwargs)
            else:
                labels = slic(image, start_label=0, **kwargs)
            # lime and Captum both index features 0..S-1 with no gaps.
            _, dense = np.unique(labels, return_inverse=True)
            out.append(torch.from_numpy(dense.reshape(labels.shape).astype(np.int64)))
        return torch.stack(out)

    def _replacement(self, image: Tensor, segments: Tensor) -> Tensor:
        """The ``C x H x W`` image that switched-off superpixels are taken from."""
        if self.hide_color == "mean":
            return image.mean(dim=(1, 2), keepdim=True).expand_as(image)
        if self.hide_color is None:
            flat_seg = segments.to(image.device).flatten()
            n_seg = int(flat_seg.max()) + 1
            sums = torch.zeros(image.shape[0], n_seg, device=image.device, dtype=image.dtype)
            sums.index_add_(1, flat_seg, image.flatten(1))
            counts = torch.bincount(flat_seg, minlength=n_seg).to(image.dtype)
            return (sums / counts)[:, flat_seg].view_as(image)
        value = torch.as_tensor(self.hide_color, device=image.device, dtype=image.dtype)
        return value.reshape(-1, 1, 1).expand_as(image)

    def _attribute_batch(
        self, images: Tensor, labels: Tensor, additional_forward_args: Any
    ) -> Tensor:
        segments = self.segments(images)
        explain = self._explain_lime if self.engine == "lime" else self._explain_captum
        maps = []
        for image, label, seg in zip(images, labels, segments, strict=True):
            weights = explain(image, label, seg, additional_forward_args)
            heat = weights.clamp_min(0)[seg.to(weights.device)]
            maps.append(heat.to(device=images.device, dtype=images.dtype))
        return torch.stack(maps).unsqueeze(1)

    def _probabilities(
        self, batch: Tensor, label: Tensor, additional_forward_args: Any
    ) -> Tensor:
        logits = call_black_box(self.forward_func, batch, additional_forward_args)
        check_labels_against_logits(label.view(1), logits)
        return logits.softmax(dim=1)

    def _explain_lime(
        self, image: Tensor, label: Tensor, segments: Tensor, additional_forward_args: Any
    ) -> Tensor:
        from lime import lime_image

        device, dtype = image.device, image.dtype
        c = int(label)

        def classifier_fn(batch: np.ndarray) -> np.ndarray:
            tensor = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
            tensor = tensor.to(device=device, dtype=dtype).contiguous()
            probs = self._probabilities(tensor, label, additional_forward_args)
            return probs.double().cpu().numpy()

        hide = self.hide_color
        if hide is not None:
            # lime assigns hide_color to every pixel of its replacement image;
            # a per-channel vector broadcasts over the channels-last array.
            hide = self._replacement(image, segments)[:, 0, 0].cpu().numpy()
        seg_np = segments.numpy()
        explainer = lime_image.LimeImageExplainer(
            kernel_width=self.kernel_width, feature_selection="none", random_state=self.seed
        )
        with _lime_progress(lime_image, self.show_progress):
            explanation = explainer.explain_instance(
                image.detach().permute(1, 2, 0).cpu().numpy(),
                classifier_fn,
                labels=(c,),
                hide_color=hide,
                top_labels=None,
                num_features=int(seg_np.max()) + 1,
                num_samples=self.n_samples,
                batch_size=self.perturbations_per_eval,
                segmentation_fn=lambda _: seg_np,
                random_seed=self.seed,
            )
        weights = torch.zeros(int(seg_np.max()) + 1, dtype=torch.float64)
        for feature, weight in explanation.local_exp[c]:
            weights[feature] = weight
        return weights

    def _explain_captum(
        self, image: Tensor, label: Tensor, segments: Tensor, additional_forward_args: Any
    ) -> Tensor:
        n_features = int(segments.max()) + 1
        width = self.kernel_width

        def probabilities(batch: Tensor, *extra: Any) -> Tensor:
            return self._probabilities(batch, label, extra or None)

        def similarity(original: Any, perturbed: Any, interpretable: Tensor, **_: Any) -> float:
            # lime's kernel: cosine distance between the on/off vector and the
            # all-on vector, which is 1 - sqrt(k / S) for k superpixels kept.
            kept = float(interpretable.sum())
            distance = 1.0 - (kept / n_features) ** 0.5
            return float(np.exp(-(distance**2) / (2 * width**2)))

        lime = Lime(probabilities, interpretable_model=SkLearnRidge(alpha=1.0),
                    similarity_func=similarity)
        with torch.random.fork_rng(devices=[]):
            # Captum draws its on/off vectors from torch's global CPU generator.
            torch.manual_seed(self.seed)
            coefs = lime.attribute(
                image.unsqueeze(0),
                baselines=self._replacement(image, segments).unsqueeze(0),
                target=int(label),
                additional_forward_args=additional_forward_args,
                feature_mask=segments.to(image.device).view(1, 1, *segments.shape),
                n_samples=self.n_samples,
                perturbations_per_eval=self.perturbations_per_eval,
                return_input_shape=False,
                show_progress=self.show_progress,
            )
        return coefs.detach().reshape(-1).double().cpu()


@contextlib.contextmanager
def _lime_progress(module: Any, show: bool) -> Iterator[None]:
    """Let lime's per-sample tqdm bar show only when asked.

    lime 0.2.0.1 always wraps its sampling loop in ``tqdm`` with no switch, so
    the module's ``tqdm`` name is pointed at a disabled bar for the call.
    """
    original = module.tqdm
    module.tqdm = functools.partial(original, disable=not show)
    try:
        yield
    finally:
        module.tqdm = original
