"""Fidelity reports: how faithfully the student and its maps stand in for the black box.

After stage 1: top-1 agreement between student and black box, and the mean
``KL(p_target || p_student)``, on held-out data. After stage 2: for the black
box's predicted class ``c``, how much of the student's (and the black box's)
score the masked image ``M * x + (1 - M) * b`` retains and how much the inverse
``(1 - M) * x + M * b`` loses, and the mean mask value.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_akd._image_ops import gaussian_blur
from captum_akd._validation import call_black_box
from captum_akd.distill.batches import EpochLoader
from captum_akd.distill.distributed import DistContext, all_reduce_sum
from captum_akd.models import AttentiveStudent, ExplanationNet

# Target logits of a validation set are cached when they fit in this many floats.
CACHE_LIMIT = 50_000_000


class HeldOut:
    """Held-out batches with the black box's logits computed once and cached.

    The logits of the first pass are kept on the CPU when they fit in
    ``CACHE_LIMIT`` floats, so later reports call the black box only on
    masked images.

    Args:
        loader: an unshuffled :class:`EpochLoader` (each process reads a shard).
        forward_func: the black box.
        device: where batches go.
        limit: use at most this many images per process.
        split: how to name the data in reports (``"val"`` or ``"train"``).

    Examples::

        >>> from torch.utils.data import TensorDataset
        >>> from captum_akd.distill.batches import EpochLoader
        >>> from captum_akd.distill.distributed import setup
        >>> from captum_akd.distill.fidelity import HeldOut
        >>> ctx = setup("cpu")
        >>> target = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
        >>> data = TensorDataset(torch.randn(8, 3, 16, 16), torch.arange(8) % 3)
        >>> held_out = HeldOut(EpochLoader(data, 4, ctx, shuffle=False), target.eval(), ctx.device)
        >>> [tuple(logits.shape) for images, labels, logits in held_out.batches()]
        [(4, 3), (4, 3)]
    """

    def __init__(
        self,
        loader: EpochLoader,
        forward_func: Callable[..., Tensor],
        device: torch.device,
        limit: int | None = None,
        split: str = "val",
    ) -> None:
        self.loader = loader
        self.forward_func = forward_func
        self.device = device
        self.limit = limit
        self.split = split
        self._cache: list[Tensor] | None = None

    def batches(self):
        """Iterate over the held-out data with the black box's logits.

        Every pass reads the same batches in the same order (epoch 0 of the
        loader), cut to ``limit`` images.

        Yields:
            ``(images, labels, target_logits)`` on the device: ``n x C x H x W``
            images, ``n`` labels (``-1`` for none) and the black box's ``n x K``
            float32 logits.
        """
        cached = self._cache
        fill: list[Tensor] | None = [] if cached is None else None
        seen, stored = 0, 0
        self.loader.set_epoch(0)
        for index, (images, labels) in enumerate(self.loader):
            if self.limit is not None:
                if seen >= self.limit:
                    break
                images, labels = images[: self.limit - seen], labels[: self.limit - seen]
            seen += images.shape[0]
            images = images.to(self.device)
            labels = labels.to(self.device)
            if cached is not None:
                logits = cached[index].to(self.device)
            else:
                logits = call_black_box(self.forward_func, images).float()
                if fill is not None:
                    stored += logits.numel()
                    if stored <= CACHE_LIMIT:
                        fill.append(logits.cpu())
                    else:
                        fill = None
            yield images, labels, logits
        if fill is not None:
            self._cache = fill


@torch.no_grad()
def student_fidelity(
    student: AttentiveStudent, held_out: HeldOut, ctx: DistContext
) -> dict[str, float | int | str | None]:
    """Top-1 agreement and KL between the student and the black box.

    The student is evaluated in eval mode (its mode is restored after); the
    sums are reduced over all processes.

    Args:
        student: the distilled student.
        held_out: the held-out data and the black box's cached logits.
        ctx: the process's distributed context.

    Returns:
        ``{"split", "images", "top1_agreement", "kl", "student_accuracy",
        "target_accuracy"}``; ``kl`` is the mean ``KL(p_target || p_student)``
        at temperature 1 in nats; the accuracies use the data's labels and
        are ``None`` without them.

    Examples::

        >>> from captum_akd.distill.fidelity import student_fidelity
        >>> from captum_akd.models import cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3)
        >>> report = student_fidelity(student, held_out, ctx)   # from HeldOut's example
        >>> report["split"], report["images"], 0 <= report["top1_agreement"] <= 1
        ('val', 8, True)
    """
    was_training = student.training
    student.eval()
    sums = torch.zeros(6, dtype=torch.float64, device=held_out.device)
    for images, labels, teacher in held_out.batches():
        logits = student(images).float()
        log_p_s = F.log_softmax(logits, dim=1)
        log_p_t = F.log_softmax(teacher, dim=1)
        pred_s, pred_t = logits.argmax(1), teacher.argmax(1)
        labelled = labels >= 0
        sums += torch.stack([
            torch.tensor(float(images.shape[0]), device=sums.device),
            (pred_s == pred_t).sum().double(),
            (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).sum().double(),
            labelled.sum().double(),
            ((pred_s == labels) & labelled).sum().double(),
            ((pred_t == labels) & labelled).sum().double(),
        ])
    student.train(was_training)
    n, agree, kl, n_lab, correct_s, correct_t = all_reduce_sum(sums, ctx).tolist()
    return {
        "split": held_out.split,
        "images": int(n),
        "top1_agreement": agree / max(n, 1),
        "kl": kl / max(n, 1),
        "student_accuracy": correct_s / n_lab if n_lab else None,
        "target_accuracy": correct_t / n_lab if n_lab else None,
    }


def _probability(logits: Tensor, classes: Tensor) -> Tensor:
    return F.softmax(logits.float(), dim=1).gather(1, classes[:, None])[:, 0]


@torch.no_grad()
def explainer_fidelity(
    student: AttentiveStudent,
    explainer: ExplanationNet,
    held_out: HeldOut,
    ctx: DistContext,
    blur_kernel: int = 11,
    blur_sigma: float = 5.0,
) -> dict[str, float | int | str]:
    """How much class score the maps keep and remove, for the black box's class.

    ``M`` is the explainer's map for the black box's predicted class ``c``
    and ``b`` the Gaussian-blurred image. Both networks are evaluated in
    eval mode (their modes are restored after); the sums are reduced over
    all processes.

    Args:
        student: the distilled student.
        explainer: the explanation network trained on it.
        held_out: the held-out data and the black box's cached logits.
        ctx: the process's distributed context.
        blur_kernel: size of the Gaussian kernel of ``b``.
        blur_sigma: its standard deviation.

    Returns:
        ``{"split", "images", "mask_mean", "student_score",
        "student_score_preserved", "student_score_deleted", "student_retained",
        "student_lost", "target_score", "target_score_preserved",
        "target_score_deleted", "target_retained", "target_lost"}``:
        mean softmax scores of class ``c`` on the image, on
        ``M * x + (1 - M) * b`` and on ``(1 - M) * x + M * b``; ``retained`` is
        preserved / original and ``lost`` is 1 - deleted / original (ratios of
        the means).

    Examples::

        >>> from captum_akd.distill.fidelity import explainer_fidelity
        >>> from captum_akd.models import ExplanationNet
        >>> explainer = ExplanationNet.for_student(student, width=8)
        >>> report = explainer_fidelity(student, explainer, held_out, ctx)
        >>> report["images"], 0 <= report["mask_mean"] <= 1
        (8, True)
    """
    was_training = student.training, explainer.training
    student.eval()
    explainer.eval()
    sums = torch.zeros(8, dtype=torch.float64, device=held_out.device)
    for images, _, teacher in held_out.batches():
        classes = teacher.argmax(1)
        mask = explainer.explain(student, images, classes).float()
        blurred = gaussian_blur(images, blur_kernel, blur_sigma)
        kept = mask * images + (1 - mask) * blurred
        removed = (1 - mask) * images + mask * blurred
        scores = student(torch.cat([images, kept, removed]))
        s_orig, s_kept, s_removed = _probability(scores, classes.repeat(3)).chunk(3)
        t_kept = call_black_box(held_out.forward_func, kept).float()
        t_removed = call_black_box(held_out.forward_func, removed).float()
        sums += torch.stack([
            torch.tensor(float(images.shape[0]), device=sums.device),
            mask.mean(dim=(1, 2, 3)).sum().double(),
            s_orig.sum().double(), s_kept.sum().double(), s_removed.sum().double(),
            _probability(teacher, classes).sum().double(),
            _probability(t_kept, classes).sum().double(),
            _probability(t_removed, classes).sum().double(),
        ])
    student.train(was_training[0])
    explainer.train(was_training[1])
    n, mask_sum, s0, s1, s2, t0, t1, t2 = all_reduce_sum(sums, ctx).tolist()
    n = max(n, 1)
    return {
        "split": held_out.split,
        "images": int(n),
        "mask_mean": mask_sum / n,
        "student_score": s0 / n,
        "student_score_preserved": s1 / n,
        "student_score_deleted": s2 / n,
        "student_retained": s1 / max(s0, 1e-12),
        "student_lost": 1 - s2 / max(s0, 1e-12),
        "target_score": t0 / n,
        "target_score_preserved": t1 / n,
        "target_score_deleted": t2 / n,
        "target_retained": t1 / max(t0, 1e-12),
        "target_lost": 1 - t2 / max(t0, 1e-12),
    }
