"""Stage 1 as a stage object: distil the black box into the student (design 3.2, 3.4)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from captum_akd._image_ops import perturb
from captum_akd._validation import call_black_box, check_target_range
from captum_akd.data._batches import probe_batch
from captum_akd.distill._fidelity import student_fidelity
from captum_akd.distill._state import load_weights
from captum_akd.distill._trainer import Shared
from captum_akd.distill.augment import BatchAugment
from captum_akd.distill.config import DistillConfig
from captum_akd.distill.losses import hard_labels, kd_loss
from captum_akd.distill.mutual import local_attention_loss, mutual_kl
from captum_akd.models import AttentiveStudent, ExplanationNet


class StudentPair(nn.Module):
    """Two students run on the same batch (one module, so DDP syncs both)."""

    def __init__(self, student: AttentiveStudent, peer: AttentiveStudent) -> None:
        super().__init__()
        self.student = student
        self.peer = peer

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
        """Run both students on ``images``."""
        out_a = self.student.forward_features(images)
        out_b = self.peer.forward_features(images)
        return out_a.logits, out_b.logits, out_a.attention, out_b.attention


def check_peer(student: AttentiveStudent, peer: AttentiveStudent) -> None:
    """Raise unless ``peer`` can be trained with ``student`` by mutual transfer."""
    if not isinstance(peer, AttentiveStudent):
        raise TypeError(f"`peer` must be an AttentiveStudent; got {type(peer).__name__}")
    if peer is student:
        raise ValueError("`peer` must be a second student, not `student` itself")
    if peer.num_classes != student.num_classes:
        raise ValueError(
            f"`peer` has {peer.num_classes} classes but `student` has {student.num_classes}"
        )
    if len(peer.stage_channels) != len(student.stage_channels):
        raise ValueError(
            f"`peer` has {len(peer.stage_channels)} stages but `student` has "
            f"{len(student.stage_channels)}; mutual transfer pairs the stages one to one"
        )


class StudentStage:
    """KD of ``student`` (with a ``peer``: mutual transfer); the black box labels every view."""

    name = "student"

    def __init__(self, shared: Shared, student: AttentiveStudent, peer: AttentiveStudent | None,
                 explainer: ExplanationNet, config: DistillConfig, train_data: Any) -> None:
        if peer is not None:
            check_peer(student, peer)
            if peer.num_classes != shared.info.num_classes:
                raise ValueError(f"`peer` has {peer.num_classes} classes; the black box gives "
                                 f"{shared.info.num_classes}")
        self.shared = shared
        self.config = config = config.resolved(getattr(student, "pretrained", False))
        self.student = student.to(shared.ctx.device)
        self.peer = peer.to(shared.ctx.device) if peer is not None else None
        self.explainer = explainer
        self.module = StudentPair(student, peer) if peer is not None else student
        self.trained = self.module
        self.augment = BatchAugment(config.crop, config.padding, flip=config.flip,
                                    mixup=config.mixup, cutmix=config.cutmix,
                                    jpeg_quality=config.jpeg_quality,
                                    normalization=shared.run.normalization)
        both = ("smooth", "scattered"), ("blur", "zero")
        self.perturb_kinds = tuple(
            kinds if choice == "both" else (choice,)
            for kinds, choice in zip(both, (config.perturb_masks, config.perturb_substrates),
                                     strict=True))
        if config.jpeg_quality is not None:
            # JPEG needs pixels: a few images show now, not at the first step, if they are not.
            self.augment(probe_batch(train_data, shared.run.image_size, "train_data")[0],
                         torch.Generator().manual_seed(0))

    def fingerprint(self) -> dict[str, Any]:
        return {"student": self.student.config,
                "peer": self.peer.config if self.peer is not None else None}

    def load(self, resumed: Any) -> None:
        load_weights(self.student, resumed.student, "student")
        if self.peer is not None:
            if resumed.peer is None:
                raise ValueError(f"`out`: {str(self.shared.out.path)!r} holds no peer student "
                                 "to resume")
            load_weights(self.peer, resumed.peer, "peer")

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        # before_epoch may freeze the backbone; the caller gets its flags back as they were.
        params = [p for s in filter(None, (self.student, self.peer)) for p in s.parameters()]
        flags = [p.requires_grad for p in params]
        try:
            yield
        finally:
            for param, flag in zip(params, flags, strict=True):
                param.requires_grad_(flag)

    def before_epoch(self, epoch: int) -> None:
        # A pretrained backbone first waits while the new attention blocks and head settle.
        moving = epoch >= self.config.freeze_backbone_epochs
        for student in filter(None, (self.student, self.peer)):
            for part in (student.stem, student.stages):
                part.train(moving).requires_grad_(moving)
                if self.config.freeze_batchnorm:
                    for module in part.modules():
                        if isinstance(module, nn.modules.batchnorm._BatchNorm):
                            module.eval()

    @property
    def unused_parameters(self) -> bool:
        return self.config.freeze_backbone_epochs > 0

    def step(self, images: Tensor, labels: Tensor, generator: torch.Generator
             ) -> dict[str, Tensor]:
        config, device = self.config, self.shared.ctx.device
        # Labels are still on the CPU here, so this costs no device sync.
        check_target_range(labels[labels >= 0], self.shared.info.num_classes,
                           "train_data labels")
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        images, mix = self.augment(images, generator)
        partners = None if mix is None else labels[mix.perm]
        if config.perturb_share > 0:
            images, labels, partners = self._with_perturbed(images, labels, partners, generator)
        # The black box sees exactly what the student sees, without gradients.
        teacher = call_black_box(self.shared.forward_func, images).float()
        labels_a = hard_labels(labels, teacher)
        labels_b, lam = None, 1.0
        if mix is not None:
            labels_b, lam = hard_labels(partners, teacher), mix.lam
        loss: Callable[[Tensor], dict[str, Tensor]] = lambda logits: kd_loss(  # noqa: E731
            logits.float(), teacher, labels_a, config.temperature, config.alpha, labels_b, lam)
        with self.precision.autocast():
            output = self.trained(images)
        if self.peer is None:
            return loss(output)
        logits_a, logits_b, attention_a, attention_b = output
        loss_a, loss_b = loss(logits_a), loss(logits_b)
        mutual = mutual_kl(logits_a.float(), logits_b.float(), config.temperature)
        local = local_attention_loss(attention_a, attention_b, config.attention_grid)
        total = (loss_a["loss"] + loss_b["loss"] + config.mutual_weight * mutual
                 + config.attention_weight * local)
        return {"loss": total, "kd": loss_a["kd"], "ce": loss_a["ce"],
                "peer_kd": loss_b["kd"], "mutual_kl": mutual, "local_attention": local}

    def _with_perturbed(self, images: Tensor, labels: Tensor, partners: Tensor | None,
                        generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor | None]:
        """The batch with partly removed copies of its first images, in their place or added.

        A copy's class is the black box's answer (label -1): with much of the
        image gone, the dataset's label may no longer be what the black box sees.
        """
        k = round(self.config.perturb_share * images.shape[0])
        copies = perturb(images[:k], generator, *self.perturb_kinds)
        unknown = labels.new_full((k,), -1)

        def joined(copied: Tensor, batch: Tensor) -> Tensor:
            if self.config.perturb_append:
                return torch.cat([batch, copied])
            return torch.cat([copied, batch[k:]])

        return (joined(copies, images), joined(unknown, labels),
                None if partners is None else joined(unknown, partners))

    def evaluate(self, epoch: int | None, last: bool) -> tuple[dict[str, float], dict | None]:
        every = self.config.eval_every
        if epoch is not None and not (last or (every and (epoch + 1) % every == 0)):
            return {}, None
        held_out = self.shared.held_out
        report = {**student_fidelity(self.student, held_out, self.shared.ctx),
                  "epoch": 0 if epoch is None else epoch + 1}
        extra = {f"{held_out.split}_agreement": report["top1_agreement"],
                 f"{held_out.split}_kl": report["kl"]}
        return extra, report

    def complete(self, report: dict) -> tuple[dict[str, float], dict]:
        # Every epoch's report is already the whole one.
        return {}, report

    def score(self, report: dict) -> tuple[float, ...]:
        # Best by agreement, ties broken by the lower KL; when the student is also taught
        # partly removed images, by the mean of its agreement on clean and removed ones.
        if self.config.perturb_share > 0:
            return ((report["top1_agreement"] + report["perturbed_top1_agreement"]) / 2,
                    -(report["kl"] + report["perturbed_kl"]) / 2)
        return report["top1_agreement"], -report["kl"]
