"""Stage 2 as a stage object: the explanation network on the frozen student (design 3.3)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from captum_akd._image_ops import gaussian_blur
from captum_akd._validation import call_black_box
from captum_akd.distill._fidelity import explainer_fidelity
from captum_akd.distill._state import load_weights, module_digest
from captum_akd.distill._trainer import Shared
from captum_akd.distill.augment import BatchAugment
from captum_akd.distill.config import ExplainerConfig
from captum_akd.distill.losses import explainer_loss
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


class ExplainerStage:
    """Preserve/destroy/area/TV training of ``explainer`` through the frozen ``student``."""

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
        preserved = mask * images + (1 - mask) * blurred
        destroyed = (1 - mask) * images + mask * blurred
        # Eval-mode batch norm: one call on both halves equals two calls.
        with self.precision.autocast():
            logits = student(torch.cat([preserved, destroyed])).float()
        logits_preserved, logits_destroyed = logits.chunk(2)
        return explainer_loss(
            logits_preserved, logits_destroyed, mask, classes,
            config.preserve_weight, config.destroy_weight, config.area_weight,
            config.tv_weight, config.area_target,
        )

    def evaluate(self, epoch: int | None, last: bool) -> tuple[dict[str, float], dict | None]:
        if not last:
            return {}, None
        held_out = self.shared.held_out
        report = explainer_fidelity(self.student, self.explainer, held_out, self.shared.ctx,
                                    (self.config.blur_kernel, self.config.blur_sigma))
        keys = ("mask_mean", "student_retained", "student_lost")
        return {f"{held_out.split}_{k}": report[k] for k in keys}, report

    def score(self, report: dict) -> None:
        return None  # the explainer keeps its last epoch
