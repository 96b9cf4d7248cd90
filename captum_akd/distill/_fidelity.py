"""Fidelity reports: how faithfully the student and its maps stand in for the black box.

Stage 1: top-1 agreement and ``KL(p_target || p_student)`` on held-out data.
Stage 2: how much score of the black box's class ``c`` the masked image
``M * x + (1 - M) * b`` keeps and its inverse removes, and the mean mask value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_akd._image_ops import gaussian_blur, perturb
from captum_akd._validation import call_black_box
from captum_akd.data._batches import EpochLoader, epoch_seed
from captum_akd.distill._distributed import DistContext, all_reduce_sum
from captum_akd.models import AttentiveStudent, ExplanationNet

# Target logits of a validation set are cached when they fit in this many floats.
CACHE_LIMIT = 50_000_000


@dataclass
class HeldOut:
    """Held-out batches with the black box's logits computed once and cached."""

    loader: EpochLoader
    forward_func: Callable[..., Tensor]
    device: torch.device
    limit: int | None = None
    split: str = "val"
    rank: int = 0
    _cache: dict[bool, list[Tensor]] = field(default_factory=dict, repr=False)

    def batches(self, perturbed: bool = False):
        """Held-out batches (or their fixed, partly removed copies) with the black box's logits."""
        cached = self._cache.get(perturbed)
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
            if perturbed:
                generator = torch.Generator().manual_seed(epoch_seed(0, "held-out", index,
                                                                     self.rank))
                images = perturb(images, generator)
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
            self._cache[perturbed] = fill


@contextlib.contextmanager
def _evaluating(*modules: torch.nn.Module) -> Iterator[None]:
    """Eval mode for a report, each module's own mode back afterwards."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


@torch.no_grad()
def student_fidelity(
    student: AttentiveStudent, held_out: HeldOut, ctx: DistContext
) -> dict[str, float | int | str | None]:
    """Top-1 agreement and KL between the student and the black box, clean and perturbed."""
    report = _agreement(student, held_out, ctx, perturbed=False)
    perturbed = _agreement(student, held_out, ctx, perturbed=True)
    report.update({f"perturbed_{k}": perturbed[k] for k in ("top1_agreement", "kl")})
    return report


def _agreement(student: AttentiveStudent, held_out: HeldOut, ctx: DistContext,
               perturbed: bool) -> dict[str, float | int | str | None]:
    """One pass of :func:`student_fidelity`: on the images as they are, or their copies."""
    with _evaluating(student):
        sums = torch.zeros(6, dtype=torch.float64, device=held_out.device)
        for images, labels, teacher in held_out.batches(perturbed):
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
    blur: tuple[int, float] = (11, 5.0),
) -> dict[str, float | int | str]:
    """How much class score the maps keep and remove, for the black box's class."""
    with _evaluating(student, explainer):
        sums = torch.zeros(8, dtype=torch.float64, device=held_out.device)
        for images, _, teacher in held_out.batches():
            classes = teacher.argmax(1)
            mask = explainer.explain(student, images, classes).float()
            blurred = gaussian_blur(images, *blur)
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
    n, mask_sum, *scores = all_reduce_sum(sums, ctx).tolist()
    n = max(n, 1)
    report: dict[str, float | int | str] = {"split": held_out.split, "images": int(n),
                                            "mask_mean": mask_sum / n}
    for model, (whole, kept, deleted) in zip(("student", "target"), (scores[:3], scores[3:]),
                                             strict=True):
        report.update({f"{model}_score": whole / n, f"{model}_score_preserved": kept / n,
                       f"{model}_score_deleted": deleted / n,
                       f"{model}_retained": kept / max(whole, 1e-12),
                       f"{model}_lost": 1 - deleted / max(whole, 1e-12)})
    return report


#: Kept shares at which the held-out curve score reads the student (a coarse insertion/deletion).
CURVE_SHARES = (0.05, 0.15, 0.3, 0.5, 0.7)


@torch.no_grad()
def explainer_curve(
    student: AttentiveStudent,
    explainer: ExplanationNet,
    held_out: HeldOut,
    ctx: DistContext,
    blur: tuple[int, float] = (11, 5.0),
    substrates: tuple[str, ...] = ("blur",),
    judges: tuple[str, ...] = ("student",),
    black_box_images: int | None = None,
) -> dict[str, float]:
    """Each judge's class score with each map's top pixels kept, and with them removed.

    A coarse insertion and deletion (the mean over :data:`CURVE_SHARES` of
    ``p(c)``) for choosing the best epoch, as ``{judge}_insertion`` and
    ``{judge}_deletion`` for each of ``judges``: ``"student"`` (no black-box
    query on a masked image) and ``"black_box"``
    (``len(CURVE_SHARES) * (1 + len(substrates))`` queries per held-out
    image, on the first ``black_box_images`` of this rank's held-out images
    only when that is set: the same images at every call). The maps and
    masked copies are made once for all judges; ``{judge}_images`` counts
    the images each judge saw.
    """
    models = {"student": student,
              "black_box": lambda x: call_black_box(held_out.forward_func, x).float()}
    limits = {"student": None, "black_box": black_box_images}
    with _evaluating(student, explainer):
        sums = torch.zeros(3 * len(judges), dtype=torch.float64, device=held_out.device)
        seen = 0
        for images, _, teacher in held_out.batches():
            classes = teacher.argmax(1)
            mask = explainer.explain(student, images, classes).float().flatten(1)
            ranks = mask.argsort(1).argsort(1).reshape(images.shape[0], 1, *images.shape[-2:])
            blurred = gaussian_blur(images, *blur)
            bases = {"blur": blurred, "zero": torch.zeros_like(images)}
            # Rows each judge reads from this batch: all, or what is left of its limit.
            takes = [images.shape[0] if limits[j] is None
                     else max(0, min(images.shape[0], limits[j] - seen)) for j in judges]
            seen += images.shape[0]
            zero = torch.zeros((), dtype=torch.float64, device=sums.device)
            kept, removed = [zero] * len(judges), [zero] * len(judges)
            for share in CURVE_SHARES:
                top = (ranks >= mask.shape[1] - round(share * mask.shape[1])).to(images)
                insertion_view = top * images + (1 - top) * blurred
                deletion_views = [(1 - top) * images + top * bases[name] for name in substrates]
                for i, (judge, take) in enumerate(zip(judges, takes, strict=True)):
                    if take == 0:
                        continue
                    model, wanted = models[judge], classes[:take]
                    kept[i] = kept[i] + _probability(model(insertion_view[:take]),
                                                     wanted).sum().double()
                    for view in deletion_views:
                        removed[i] = removed[i] + _probability(model(view[:take]),
                                                               wanted).sum().double()
            sums += torch.stack([*(torch.tensor(float(t), dtype=torch.float64,
                                                device=sums.device) for t in takes),
                                 *(k / len(CURVE_SHARES) for k in kept),
                                 *(r / (len(CURVE_SHARES) * len(substrates)) for r in removed)])
    totals = all_reduce_sum(sums, ctx).tolist()
    report = {}
    for i, judge in enumerate(judges):
        n = max(totals[i], 1)
        report[f"{judge}_images"] = int(totals[i])
        report[f"{judge}_insertion"] = totals[len(judges) + i] / n
        report[f"{judge}_deletion"] = totals[2 * len(judges) + i] / n
    return report
