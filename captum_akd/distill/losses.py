"""Training losses of both stages (design sections 3.2 and 3.3).

Stage 1 distils the black box's function into the student::

    alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y)

Stage 2 trains the explanation network's mask ``M`` against the frozen student,
with ``b`` a blurred copy of the image ``x`` and ``c`` the class explained::

    preserve  CE(student(M * x + (1 - M) * b), c)
    destroy   -log(1 - p_student(c | (1 - M) * x + M * b))
    area      lambda_a * mean(M)            (or a target fraction, see area_loss)
    smooth    lambda_tv * TV(M)

With the whole-curve objective, preserve and destroy are applied to the soft
top-k masks of :func:`soft_top_k` at several kept shares per image (drawn by
:func:`draw_budgets`) instead of to ``M`` itself, and ``TV`` to those masks.

With the RISE objective, preserve and destroy give way to :func:`rise_loss`:
minus the correlation of ``M`` with the student's scores on random smooth
masks, so ``M`` learns RISE's order of the pixels from a few masks a step.

Every function works on float32 logits; callers under autocast cast first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def hard_labels(labels: Tensor, teacher_logits: Tensor) -> Tensor:
    """Ground-truth labels where known, else the black box's prediction.

    Args:
        labels: ``N`` class indices, ``-1`` (or any negative value) for none.
        teacher_logits: ``N x K`` black-box logits.

    Returns:
        ``N`` class indices (long), on the logits' device.

    Examples::

        >>> from captum_akd.distill.losses import hard_labels
        >>> hard_labels(torch.tensor([-1, 1]), torch.tensor([[0.1, 2.0], [3.0, 0.0]]))
        tensor([1, 1])
    """
    predicted = teacher_logits.argmax(dim=1)
    return torch.where(labels >= 0, labels.to(predicted.device), predicted)


def distillation_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    r"""``T^2 * KL(softmax(z_t / T) || softmax(z_s / T))``, averaged over the batch.

    The ``T^2`` factor keeps the gradient's scale independent of ``T``
    (Hinton et al. 2015).

    Args:
        student_logits: ``N x K``.
        teacher_logits: ``N x K`` (no gradient flows into them).
        temperature: ``T > 0``.

    Returns:
        A scalar.

    Examples::

        >>> z = torch.tensor([[2.0, 0.0]])
        >>> distillation_kl(z, z, 4.0)
        tensor(0.)
    """
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
    return kl.mean() * temperature**2


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    temperature: float = 4.0,
    alpha: float = 0.9,
    labels_b: Tensor | None = None,
    lam: float = 1.0,
) -> dict[str, Tensor]:
    """Stage-1 loss: softened KL to the black box plus cross-entropy to hard labels.

    Args:
        student_logits: ``N x K`` student logits.
        teacher_logits: ``N x K`` black-box logits on the same (augmented) images.
        labels: ``N`` hard labels (see :func:`hard_labels`).
        temperature: softening temperature ``T``.
        alpha: weight of the KL term; ``1 - alpha`` weighs the cross-entropy.
        labels_b: for mixup or CutMix, the hard labels of the second image of
            each mix.
        lam: for mixup or CutMix, the weight of the first image (cross-entropy is
            ``lam * CE(z_s, y) + (1 - lam) * CE(z_s, y_b)``).

    Returns:
        ``{"loss", "kd", "ce"}`` scalars: the weighted total and its parts.

    Examples::

        >>> z_s = torch.tensor([[1.0, 0.0]]); z_t = torch.tensor([[0.0, 1.0]])
        >>> kd_loss(z_s, z_t, torch.tensor([1]), temperature=1.0, alpha=0.5)["loss"]
        tensor(0.8877)
    """
    kd = distillation_kl(student_logits, teacher_logits, temperature)
    ce = F.cross_entropy(student_logits, labels)
    if labels_b is not None and lam < 1.0:
        ce = lam * ce + (1.0 - lam) * F.cross_entropy(student_logits, labels_b)
    return {"loss": alpha * kd + (1.0 - alpha) * ce, "kd": kd, "ce": ce}


def preserve_loss(logits: Tensor, classes: Tensor) -> Tensor:
    """``CE(student(M * x + (1 - M) * b), c)``: the kept pixels must carry class ``c``.

    Args:
        logits: ``N x K`` student logits on the masked images.
        classes: ``N`` explained classes.

    Returns:
        A scalar: the cross-entropy averaged over the batch.

    Examples::

        >>> from captum_akd.distill.losses import preserve_loss
        >>> preserve_loss(torch.zeros(2, 4), torch.tensor([0, 3]))   # log(4)
        tensor(1.3863)
    """
    return F.cross_entropy(logits, classes)


def destroy_loss(logits: Tensor, classes: Tensor) -> Tensor:
    """``-log(1 - p(c | (1 - M) * x + M * b))``: removing the mask must kill class ``c``.

    Computed as ``logsumexp(z) - logsumexp(z without c)``, which is exact and
    finite even when ``p(c)`` rounds to 1.

    Args:
        logits: ``N x K`` student logits on the images with the mask removed.
        classes: ``N`` explained classes.

    Returns:
        A scalar: ``-log(1 - p(c))`` averaged over the batch.

    Examples::

        >>> from captum_akd.distill.losses import destroy_loss
        >>> destroy_loss(torch.zeros(2, 4), torch.tensor([0, 3]))   # -log(3 / 4)
        tensor(0.2877)
        >>> destroy_loss(torch.tensor([[0.0, 30.0]]), torch.tensor([1]))   # p(c) ~ 1
        tensor(30.)
    """
    others = logits.scatter(1, classes[:, None], float("-inf"))
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(others, dim=1)).mean()


def area_loss(mask: Tensor, target: float | None = None) -> Tensor:
    """Mask size penalty.

    With ``target=None`` it is ``mean(M)`` (design 3.3): every kept pixel costs.
    With a target fraction ``a`` it is the extremal-perturbation area
    constraint (Fong et al. 2019): the mean squared distance between the
    mask's sorted values and a reference of ``(1 - a) * HW`` zeros followed by
    ``a * HW`` ones. It asks each map to keep about a fraction ``a`` of the
    image and to be close to 0 or 1, which gives compact maps with a sharp
    peak instead of a faint halo over the whole object.

    Args:
        mask: ``N x 1 x H x W`` in [0, 1].
        target: fraction ``a`` in (0, 1), or ``None``.

    Returns:
        A scalar.

    Examples::

        >>> mask = torch.zeros(1, 1, 2, 2); mask[..., 0, 0] = 1
        >>> area_loss(mask), area_loss(mask, target=0.25)
        (tensor(0.2500), tensor(0.))
    """
    if target is None:
        return mask.mean()
    flat = mask.flatten(1)
    n_pixels = flat.shape[1]
    n_on = int(round(target * n_pixels))
    reference = torch.zeros(n_pixels, device=mask.device, dtype=flat.dtype)
    if n_on > 0:
        reference[n_pixels - n_on :] = 1
    return (flat.sort(dim=1).values - reference).pow(2).mean()


def draw_budgets(n: int, count: int, power: float, generator: torch.Generator) -> Tensor:
    """Kept shares for the whole-curve objective: ``count`` per image, stratified on (0, 1).

    Share ``b`` of an image is ``u ** power`` with ``u`` uniform on
    ``[b / count, (b + 1) / count)``, so every image covers the whole curve and
    ``power > 1`` puts more of the shares where insertion rises fastest.
    Shares are clipped to [0.005, 0.995].

    Args:
        n: number of images.
        count: shares per image.
        power: the exponent ``p > 0``.
        generator: a CPU generator for the draw (so it repeats).

    Returns:
        ``n x count`` shares (CPU, float32), increasing along each row.

    Examples::

        >>> from captum_akd.distill.losses import draw_budgets
        >>> shares = draw_budgets(2, 3, 1.0, torch.Generator().manual_seed(0))
        >>> shares.shape, bool((shares.diff(dim=1) > 0).all())
        (torch.Size([2, 3]), True)
    """
    strata = torch.arange(count, dtype=torch.float32)
    u = (strata + torch.rand(n, count, generator=generator)) / count
    return u.pow(power).clamp(0.005, 0.995)


def soft_top_k(mask: Tensor, budgets: Tensor, temperature: float) -> Tensor:
    """Differentiable masks keeping each map's highest-ranked share of pixels.

    For share ``a`` the threshold ``q`` is the map's own ``1 - a`` quantile
    (per image, no gradient) and the soft mask is
    ``sigmoid((M - q) / (temperature * std(M)))``: about a share ``a`` of
    the pixels is near 1, and the gradient reaches the pixels ranked near the
    threshold. Scaling by the map's spread makes the result depend on the
    map's order, not on its values' range.

    Args:
        mask: ``N x 1 x H x W`` maps.
        budgets: ``N x B`` kept shares in (0, 1).
        temperature: width of the sigmoid as a fraction of each map's std.

    Returns:
        ``N x B x H x W`` soft masks in (0, 1).

    Examples::

        >>> from captum_akd.distill.losses import soft_top_k
        >>> mask = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> kept = soft_top_k(mask, torch.tensor([[0.25, 0.5]]), temperature=0.01)
        >>> kept.shape, kept.round().sum(dim=(2, 3)).tolist()
        (torch.Size([1, 2, 4, 4]), [[4.0, 8.0]])
    """
    n, _, h, w = mask.shape
    flat = mask.flatten(1)
    ordered = flat.detach().sort(dim=1).values
    # The value with a share ``a`` of the pixels above it; the soft mask is 0.5 there.
    above = (budgets.to(flat.device) * flat.shape[1]).round().long().clamp(1, flat.shape[1])
    low = ordered.gather(1, flat.shape[1] - above)
    high = ordered.gather(1, (flat.shape[1] - above - 1).clamp_min(0))
    threshold = (low + high) / 2
    scale = temperature * flat.detach().std(dim=1, keepdim=True).clamp_min(1e-6)
    soft = torch.sigmoid((flat[:, None, :] - threshold[..., None]) / scale[..., None])
    return soft.reshape(n, budgets.shape[1], h, w)


def rise_loss(mask: Tensor, masks: Tensor, scores: Tensor) -> Tensor:
    """Minus the correlation of each map with a RISE estimate from a few random masks.

    For image ``n`` with random masks ``m_k`` and the student's probabilities
    ``y_k`` of the explained class on the masked images, the estimate is the
    covariance of score and mask at each pixel,
    ``r = mean_k (y_k - mean(y)) * (m_k - mean_k(m))``: in expectation RISE's
    map (``E[y | pixel kept]``) up to an affine map, so its order. The loss is
    ``-corr(M, r)`` over the pixels, averaged over images; the estimate is
    noisy, but ``M`` depends on the image alone, so training over many draws
    pulls ``M`` towards the order of RISE's expectation, not of one draw.

    Args:
        mask: ``N x 1 x H x W`` maps (with gradient).
        masks: ``N x K x H x W`` random masks (``K >= 2``).
        scores: ``N x K`` the student's probabilities on the masked images
            (no gradient needed).

    Returns:
        A scalar in [-1, 1].

    Examples::

        >>> from captum_akd.distill.losses import rise_loss
        >>> masks = torch.rand(1, 64, 4, 4)
        >>> scores = masks[:, :, 0, 0]                   # only the top-left pixel matters
        >>> best = torch.zeros(1, 1, 4, 4); best[..., 0, 0] = 1
        >>> bool(rise_loss(best, masks, scores) < rise_loss(1 - best, masks, scores))
        True
    """
    if masks.shape[1] < 2:
        raise ValueError(f"`masks` must hold at least 2 masks per image; got {masks.shape[1]}")
    flat = mask.flatten(1)
    spread = masks.flatten(2) - masks.flatten(2).mean(1, keepdim=True)
    estimate = ((scores - scores.mean(1, keepdim=True))[..., None] * spread).mean(1)
    centred = flat - flat.mean(1, keepdim=True)
    target = estimate - estimate.mean(1, keepdim=True)
    correlation = (centred * target).sum(1) / (
        centred.norm(dim=1) * target.norm(dim=1)).clamp_min(1e-12)
    return -correlation.mean()


def tv_loss(mask: Tensor) -> Tensor:
    """Anisotropic total variation: mean absolute difference of neighbouring pixels.

    Args:
        mask: ``N x 1 x H x W``.

    Returns:
        A scalar: the mean vertical plus the mean horizontal difference.

    Examples::

        >>> from captum_akd.distill.losses import tv_loss
        >>> mask = torch.zeros(1, 1, 2, 2); mask[..., 0, :] = 1   # top row on
        >>> tv_loss(mask)
        tensor(1.)
    """
    dy = (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean()
    dx = (mask[..., :, 1:] - mask[..., :, :-1]).abs().mean()
    return dy + dx


def explainer_loss(
    logits_preserved: Tensor,
    logits_destroyed: Tensor,
    mask: Tensor,
    classes: Tensor,
    preserve_weight: float = 1.0,
    destroy_weight: float = 1.0,
    area_weight: float = 1.0,
    tv_weight: float = 0.1,
    area_target: float | None = None,
    tv_mask: Tensor | None = None,
    probability: bool = False,
) -> dict[str, Tensor]:
    """Stage-2 loss: the weighted sum of the four terms above.

    Args:
        logits_preserved: ``N x K`` student logits on ``M * x + (1 - M) * b``
            (or ``N' x K`` on the images of any ``N'`` masks made from ``M``).
        logits_destroyed: ``N x K`` student logits on ``(1 - M) * x + M * b``
            (or on the same ``N'`` masks' inverses).
        mask: ``N x 1 x H x W`` masks in [0, 1].
        classes: ``N`` (or ``N'``) explained classes.
        preserve_weight, destroy_weight, area_weight, tv_weight: term weights.
        area_target: see :func:`area_loss`.
        tv_mask: the masks whose total variation is penalised (the soft top-k
            masks of the whole-curve objective); default ``mask``.
        probability: preserve and destroy as ``1 - p(c)`` and ``p(c)`` (the
            integrands of insertion and deletion) instead of their logs.

    Returns:
        ``{"loss", "preserve", "destroy", "area", "tv"}`` scalars (the parts
        unweighted).

    Examples::

        >>> from captum_akd.distill.losses import explainer_loss
        >>> logits, mask = torch.zeros(2, 4), torch.full((2, 1, 4, 4), 0.5)
        >>> parts = explainer_loss(logits, logits, mask, torch.tensor([0, 3]))
        >>> {name: round(value.item(), 4) for name, value in parts.items()}
        {'loss': 2.174, 'preserve': 1.3863, 'destroy': 0.2877, 'area': 0.5, 'tv': 0.0}
    """
    if probability:
        kept = F.softmax(logits_preserved, dim=1).gather(1, classes[:, None])
        removed = F.softmax(logits_destroyed, dim=1).gather(1, classes[:, None])
        terms = {"preserve": (1 - kept).mean(), "destroy": removed.mean()}
    else:
        terms = {"preserve": preserve_loss(logits_preserved, classes),
                 "destroy": destroy_loss(logits_destroyed, classes)}
    parts = {
        **terms,
        "area": area_loss(mask, area_target),
        "tv": tv_loss(mask if tv_mask is None else tv_mask),
    }
    total = (
        preserve_weight * parts["preserve"]
        + destroy_weight * parts["destroy"]
        + area_weight * parts["area"]
        + tv_weight * parts["tv"]
    )
    return {"loss": total, **parts}
