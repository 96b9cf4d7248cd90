"""RISE baseline: randomised input sampling (Petsiuk, Das, Saenko, BMVC 2018)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from captum.attr import PerturbationAttribution
from torch import Tensor, nn
from tqdm import tqdm

from captum_akd._base import ImageAttribution, check_labels_against_logits
from captum_akd._image_ops import rise_masks
from captum_akd._validation import (
    call_black_box,
    check_callable,
    check_positive_int,
    check_same_device,
)

# Masks are built this many at a time: the upsampled (s + 1) * cell grids are
# larger than the images, and building all N of them at once would need
# several times the memory of the cached masks.
_MASK_CHUNK = 256


class RISE(ImageAttribution, PerturbationAttribution):
    r"""RISE: saliency from the black box's scores on randomly masked images.

    Randomised Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC
    2018) needs nothing but calls of the model. It draws ``n_masks`` smooth
    random masks :math:`M_i \in [0, 1]^{H \times W}`, scores every masked
    image :math:`x \odot M_i` with the black box and returns, for class
    :math:`c`,

    .. math::

        S_c = \frac{1}{N \, p_1} \sum_{i=1}^{N} P(c \mid x \odot M_i) \, M_i ,

    the expected softmax score of :math:`c` given that a pixel is kept.
    ``P`` is the softmax of the black box's logits. Each mask is made as in
    the paper: an ``s x s`` grid (``s = grid``) of independent Bernoulli
    cells that are 1 with probability ``p1`` is upsampled bilinearly to
    ``(s + 1) * cell`` pixels on each side, where ``cell = ceil(H / s)``
    (``ceil(W / s)`` across), shifted by a random offset of less than one
    cell in each direction and cropped to ``H x W``.

    The masks depend only on the input size, ``seed`` and the constructor's
    arguments: they are drawn once per ``(H, W, device, dtype)`` from a
    :class:`torch.Generator` on the CPU (so CPU and CUDA runs use the same
    masks), cached, and reused by later calls. The cache holds
    ``n_masks * H * W`` floats per size (64 MB for 4000 masks at 64 x 64,
    800 MB at 224 x 224); :meth:`clear_cache` frees it.

    The black box is only called under :func:`torch.no_grad` on masked input
    tensors. Each call receives at most ``perturbations_per_eval`` masked
    images, so memory stays bounded whatever ``n_masks`` and the batch size.
    The masks multiply the images in the black box's own input space: a
    masked-out pixel becomes 0 there (the dataset mean for a normalised
    input).

    This class is a :class:`captum.attr.PerturbationAttribution` and an
    :class:`~captum_akd._base.ImageAttribution` (the project's common
    contract: target forms, tuple inputs, chunking, ``expand_to_input``).

    Args:
        forward_func: the black box, ``N x C x H x W -> N x K`` logits.
        n_masks: number of random masks ``N`` (the paper uses 4000 for
            ImageNet; fewer give noisier maps).
        grid: cells per side ``s`` of the coarse binary grid (7 in the paper).
        p1: probability that a grid cell keeps its pixels, in (0, 1].
        seed: seed of the generator that draws the masks; the same seed, size
            and arguments always give the same masks and maps.
        perturbations_per_eval: the most masked images given to one call of
            ``forward_func``. When it is at least ``n_masks``, several images
            of a batch are scored in one call; otherwise the masks of one
            image are split over several calls.
        show_progress: show a tqdm bar over the black-box calls.

    Returns:
        From :meth:`attribute`: ``N x 1 x H x W`` maps (``N x C x H x W`` with
        ``expand_to_input``) on the inputs' device, detached. Values are the
        expected class probability given that a pixel is kept, so they lie
        around [0, 1] but are not normalised; min-max normalise them for
        display.

    Examples::

        >>> from captum_akd.baselines import RISE
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
        >>> rise = RISE(model, n_masks=16, grid=4, p1=0.5, perturbations_per_eval=32)
        >>> images = torch.rand(2, 3, 16, 16)
        >>> maps = rise.attribute(images, target=[0, 2])
        >>> maps.shape
        torch.Size([2, 1, 16, 16])
        >>> rise.generate_masks((16, 16)).shape         # the cached masks
        torch.Size([16, 1, 16, 16])
        >>> again = RISE(model, n_masks=16, grid=4, seed=0, perturbations_per_eval=32)
        >>> torch.equal(maps, again.attribute(images, target=[0, 2]))   # seeded
        True
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        n_masks: int = 4000,
        grid: int = 7,
        p1: float = 0.5,
        seed: int = 0,
        perturbations_per_eval: int = 100,
        show_progress: bool = False,
    ) -> None:
        check_callable(forward_func, "forward_func", "the black box")
        check_positive_int(n_masks, "n_masks")
        check_positive_int(grid, "grid")
        check_positive_int(perturbations_per_eval, "perturbations_per_eval")
        if isinstance(p1, bool) or not isinstance(p1, (int, float)) or not 0 < p1 <= 1:
            raise ValueError(f"`p1` must be a probability in (0, 1]; got {p1!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"`seed` must be an int; got {type(seed).__name__}")
        super().__init__(forward_func)
        self.n_masks = n_masks
        self.grid = grid
        self.p1 = float(p1)
        self.seed = seed
        self.perturbations_per_eval = perturbations_per_eval
        self.show_progress = bool(show_progress)
        self._masks: dict[tuple, Tensor] = {}

    def clear_cache(self) -> None:
        """Forget the cached masks (they are rebuilt, identically, when needed)."""
        self._masks.clear()

    def generate_masks(
        self,
        size: tuple[int, int],
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """The ``n_masks x 1 x H x W`` masks used for inputs of ``size``.

        Drawn on the first request for ``(H, W, device, dtype)`` and cached;
        later requests return the cached tensor.

        Args:
            size: ``(H, W)`` of the inputs.
            device: where the masks live (default CPU).
            dtype: floating-point dtype of the masks.

        Returns:
            Masks with values in [0, 1] whose mean is ``p1`` in expectation.
        """
        height, width = (int(s) for s in size)
        check_positive_int(height, "size[0]")
        check_positive_int(width, "size[1]")
        device = torch.device(device) if device is not None else torch.device("cpu")
        key = (height, width, device, dtype)
        if key not in self._masks:
            self._masks[key] = self._draw_masks(height, width).to(device=device, dtype=dtype)
        return self._masks[key]

    def _draw_masks(self, height: int, width: int) -> Tensor:
        # A fresh generator per size makes the masks for a size independent of
        # which sizes were requested before.
        gen = torch.Generator().manual_seed(self.seed)
        return rise_masks(self.n_masks, height, width, self.grid, self.p1, gen, _MASK_CHUNK)

    def _check_inputs(self, images: Tensor) -> None:
        if isinstance(self.forward_func, nn.Module):
            check_same_device(images, self.forward_func, "forward_func")

    def _attribute_batch(
        self, images: Tensor, labels: Tensor, additional_forward_args: Any
    ) -> Tensor:
        n, _, height, width = images.shape
        masks = self.generate_masks((height, width), images.device, images.dtype)
        n_masks, per_call = self.n_masks, self.perturbations_per_eval
        flat_masks = masks.flatten(1)
        saliency = torch.zeros(n, height * width, device=images.device, dtype=images.dtype)
        # Work items are (image, range of masks). Each image's masks are always
        # split at the same places, so a map does not depend on the batch it
        # came in (internal_batch_size gives the same result).
        if per_call >= n_masks:
            images_per_call = per_call // n_masks
            calls = [
                (list(range(i, min(i + images_per_call, n))), 0, n_masks)
                for i in range(0, n, images_per_call)
            ]
        else:
            calls = [
                ([i], start, min(start + per_call, n_masks))
                for i in range(n)
                for start in range(0, n_masks, per_call)
            ]
        progress = tqdm(total=len(calls), desc="RISE", disable=not self.show_progress)
        checked = False
        for idx, start, stop in calls:
            chunk = masks[start:stop]
            masked = (images[idx, None] * chunk[None]).flatten(0, 1)
            logits = call_black_box(self.forward_func, masked, additional_forward_args)
            if not checked:
                check_labels_against_logits(labels, logits)
                checked = True
            probs = logits.softmax(dim=1).view(len(idx), stop - start, -1)
            scores = probs.gather(2, labels[idx].view(-1, 1, 1).expand(-1, stop - start, 1))
            saliency[idx] += scores.squeeze(2).to(images.dtype) @ flat_masks[start:stop]
            progress.update()
        progress.close()
        saliency /= n_masks * self.p1
        return saliency.view(n, 1, height, width)
