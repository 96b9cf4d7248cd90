"""Stage 2 as a stage object: the explanation network on the frozen student (design 3.3)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from captum_akd._image_ops import gaussian_blur, rise_masks
from captum_akd._validation import call_black_box
from captum_akd.distill._fidelity import explainer_curve, explainer_fidelity
from captum_akd.distill._state import load_weights, module_digest
from captum_akd.distill._trainer import Shared
from captum_akd.distill.augment import BatchAugment
from captum_akd.distill.config import ExplainerConfig
from captum_akd.distill.losses import (
    area_loss,
    draw_budgets,
    explainer_loss,
    rise_loss,
    soft_top_k,
    tv_loss,
)
from captum_akd.models import AttentiveStudent, ExplanationNet


def choose_classes(
    predicted: Tensor,
    student_logits: Tensor,
    fraction: float,
    mode: str,
    generator: torch.Generator,
) -> Tensor:
    """The class to explain per image: mostly the black box's, sometimes another."""
    n, k = student_logits.shape
    other = (torch.rand(n, generator=generator) < fraction).to(predicted.device)
    if mode == "second":
        masked = student_logits.float().scatter(1, predicted[:, None], float("-inf"))
        alternative = masked.argmax(dim=1)
    else:
        offset = torch.randint(1, k, (n,), generator=generator).to(predicted.device)
        alternative = (predicted + offset) % k
    return torch.where(other, alternative, predicted)


def rise_scorer(student: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The frozen student that scores the RISE term's masked copies.

    Those ``rise_masks`` forward passes per image are most of a ``rise``
    step. On the CPU a channels-last copy of the student ran them about
    1.3 x faster (``benchmarks/stage2_speed.py``: batch 2048, 64 px, two threads),
    so the term uses one; the student itself, which is saved, keeps its
    memory format. Elsewhere the student is used as it is (not measured).

    Args:
        student: the frozen student.
        device: the device stage 2 runs on.

    Returns:
        An eval-mode, gradient-free channels-last copy of ``student`` on the
        CPU, else ``student`` itself.

    Examples::

        >>> from captum_akd.models import cifar_resnet_student
        >>> student = cifar_resnet_student(depth=8, num_classes=3).eval()
        >>> scorer = rise_scorer(student, torch.device("cpu"))
        >>> images = torch.randn(2, 3, 16, 16)
        >>> scorer is student, torch.allclose(scorer(images), student(images), atol=1e-5)
        (False, True)
    """
    if device.type != "cpu":
        return student
    scorer = copy.deepcopy(student).eval().requires_grad_(False)
    return scorer.to(memory_format=torch.channels_last)


class ExplainerStage:
    """Preserve/destroy/area/TV training of ``explainer`` through the frozen ``student``.

    With ``objective="curve"`` the preserve and destroy terms see the map's soft
    top-k masks at shares drawn per image; with ``objective="rise"`` they give
    way to the map's correlation with the student's scores on random smooth
    masks (see :mod:`captum_akd.distill.losses`); ``rise_weight`` adds that
    correlation term to the other two objectives instead.
    """

    name = "explainer"
    peer = None

    def __init__(self, shared: Shared, student: AttentiveStudent, explainer: ExplanationNet,
                 config: ExplainerConfig) -> None:
        self.shared, self.config = shared, config
        self.student = student.to(shared.ctx.device)
        self.explainer = self.module = self.trained = explainer.to(shared.ctx.device)
        side = max(shared.input_size)
        padding = config.padding if config.padding is not None else side // 16
        self.augment = BatchAugment(config.crop, padding, flip=config.flip)
        uses_rise = config.objective == "rise" or bool(config.rise_weight)
        self.scorer = rise_scorer(self.student, shared.ctx.device) if uses_rise else None

    def fingerprint(self) -> dict[str, Any]:
        return {"student": self.student.config, "student_sha256": module_digest(self.student),
                "explainer": self.explainer.config}

    def load(self, resumed: Any) -> None:
        load_weights(self.explainer, resumed.explainer, "explainer")

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        requires_grad = [p.requires_grad for p in self.student.parameters()]
        self.student.eval().requires_grad_(False)
        try:
            yield
        finally:
            for param, flag in zip(self.student.parameters(), requires_grad, strict=True):
                param.requires_grad_(flag)

    def before_epoch(self, epoch: int) -> None:
        pass

    unused_parameters = False

    def step(self, images: Tensor, labels: Tensor, generator: torch.Generator
             ) -> dict[str, Tensor]:
        config, student = self.config, self.student
        images = images.to(self.shared.ctx.device, non_blocking=True)
        images, _ = self.augment(images, generator)
        teacher = call_black_box(self.shared.forward_func, images)
        with torch.no_grad(), self.precision.autocast():
            output = student.forward_features(images)
            classes = choose_classes(teacher.argmax(1), output.logits,
                                     config.other_class_fraction, config.other_class, generator)
            cam = student.class_activation_map(output.features[-1], classes)
            class_vectors = student.fc.weight[classes]
        with self.precision.autocast():
            mask = self.trained(output.features, output.attention, cam, class_vectors,
                                tuple(images.shape[-2:]))
        mask = mask.float()
        blurred = gaussian_blur(images, config.blur_kernel, config.blur_sigma)
        if config.objective == "rise":
            parts = {"rise": self._rise_term(images, blurred, mask, classes, generator),
                     "area": area_loss(mask, config.area_target), "tv": tv_loss(mask)}
            loss = (parts["rise"] + config.area_weight * parts["area"]
                    + config.tv_weight * parts["tv"])
            return {"loss": loss, **parts}
        rise = None
        if config.rise_weight:
            # Drawn before the curve's budgets, from the unrepeated images.
            rise = self._rise_term(images, blurred, mask, classes, generator)
        kept, repeat, curve = mask, 1, config.objective == "curve"
        if curve:
            repeat = config.budgets
            budgets = draw_budgets(len(mask), repeat, config.budget_power, generator)
            kept = soft_top_k(mask, budgets, config.topk_temperature).flatten(0, 1)[:, None]
            images, blurred = images.repeat_interleave(repeat, 0), blurred.repeat_interleave(
                repeat, 0)
        preserved = kept * images + (1 - kept) * blurred
        destroyed = (1 - kept) * images + kept * self._substrate(blurred, generator)
        # Eval-mode batch norm: one call on both halves equals two calls.
        with self.precision.autocast():
            logits = student(torch.cat([preserved, destroyed])).float()
        logits_preserved, logits_destroyed = logits.chunk(2)
        parts = explainer_loss(
            logits_preserved, logits_destroyed, mask, classes.repeat_interleave(repeat),
            config.preserve_weight, config.destroy_weight, config.area_weight,
            config.tv_weight, config.area_target, kept if curve else None,
            probability=curve and config.curve_terms == "probability",
        )
        if rise is not None:
            parts = {**parts, "loss": parts["loss"] + config.rise_weight * rise, "rise": rise}
        return parts

    def _rise_term(self, images: Tensor, blurred: Tensor, mask: Tensor, classes: Tensor,
                   generator: torch.Generator) -> Tensor:
        """The RISE term: the student scores masked copies, no gradient reaches it."""
        config = self.config
        n, k = len(images), config.rise_masks
        h, w = images.shape[-2:]
        masks = rise_masks(n * k, h, w, config.rise_grid, config.rise_p1, generator).to(
            images.device)
        images, blurred = images.repeat_interleave(k, 0), blurred.repeat_interleave(k, 0)
        with torch.no_grad(), self.precision.autocast():
            masked = masks * images + (1 - masks) * self._substrate(blurred, generator)
            logits = self.scorer(masked).float()
        scores = logits.softmax(1).gather(1, classes.repeat_interleave(k)[:, None])
        return rise_loss(mask, masks.view(n, k, h, w), scores.view(n, k))

    def _substrate(self, blurred: Tensor, generator: torch.Generator) -> Tensor:
        """What the destroy term's removed pixels become, per mask."""
        choice = self.config.destroy_substrate
        if choice != "both":
            return blurred if choice == "blur" else torch.zeros_like(blurred)
        use_blur = torch.rand(len(blurred), generator=generator) < 0.5
        return torch.where(use_blur.to(blurred.device)[:, None, None, None], blurred, 0.0)

    def curve(self, judges: tuple[str, ...]) -> dict[str, float]:
        """The held-out curve score of today's maps as each of ``judges`` reads it."""
        config = self.config
        substrates = ("blur", "zero") if config.destroy_substrate == "both" else (
            config.destroy_substrate,)
        limit = config.select_images
        per_rank = None if limit is None else -(-limit // self.shared.ctx.world_size)
        return explainer_curve(self.student, self.explainer, self.shared.held_out,
                               self.shared.ctx, (config.blur_kernel, config.blur_sigma),
                               substrates, judges, per_rank)

    def evaluate(self, epoch: int | None, last: bool) -> tuple[dict[str, float], dict | None]:
        judges = ("student",) if self.config.select_on == "student" else ("student",
                                                                           "black_box")
        report: dict = {**self.curve(judges), "epoch": 0 if epoch is None else epoch + 1}
        split = self.shared.held_out.split
        extra = {f"{split}_{j}_{k}": report[f"{j}_{k}"]
                 for j in judges for k in ("insertion", "deletion")}
        return extra, report

    def complete(self, report: dict) -> tuple[dict[str, float], dict]:
        # The final report adds the one-mask figures, measured only on the weights kept.
        held_out, config = self.shared.held_out, self.config
        report = {**explainer_fidelity(self.student, self.explainer, held_out, self.shared.ctx,
                                       (config.blur_kernel, config.blur_sigma)), **report}
        keys = ("mask_mean", "student_retained", "student_lost")
        return {f"{held_out.split}_{k}": report[k] for k in keys}, report

    def score(self, report: dict) -> tuple[float, ...]:
        # Coarse insertion minus deletion on held-out maps, read from the model `select_on`
        # names (by default the student: the black box sees no masked image for selection).
        judge = self.config.select_on
        return (report[f"{judge}_insertion"] - report[f"{judge}_deletion"],)
