"""Training losses of both stages (design sections 3.2 and 3.3).

Stage 1 distils the black box's function into the student::

    alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y)

Stage 2 trains the explanation network's mask ``M`` against the frozen student,
with ``b`` a blurred copy of the image ``x`` and ``c`` the class explained::

    preserve  CE(student(M * x + (1 - M) * b), c)
    destroy   -log(1 - p_student(c | (1 - M) * x + M * b))
    area      lambda_a * mean(M)            (or a target fraction, see area_loss)
    smooth    lambda_tv * TV(M)

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
) -> dict[str, Tensor]:
    """Stage-2 loss: the weighted sum of the four terms above.

    Args:
        logits_preserved: ``N x K`` student logits on ``M * x + (1 - M) * b``.
        logits_destroyed: ``N x K`` student logits on ``(1 - M) * x + M * b``.
        mask: ``N x 1 x H x W`` masks in [0, 1].
        classes: ``N`` explained classes.
        preserve_weight, destroy_weight, area_weight, tv_weight: term weights.
        area_target: see :func:`area_loss`.

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
    parts = {
        "preserve": preserve_loss(logits_preserved, classes),
        "destroy": destroy_loss(logits_destroyed, classes),
        "area": area_loss(mask, area_target),
        "tv": tv_loss(mask),
    }
    total = (
        preserve_weight * parts["preserve"]
        + destroy_weight * parts["destroy"]
        + area_weight * parts["area"]
        + tv_weight * parts["tv"]
    )
    return {"loss": total, **parts}
