"""Stage 2: train the explanation network on the frozen student (design 3.3)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from captum_akd._image_ops import gaussian_blur
from captum_akd._validation import call_black_box
from captum_akd.attribution import AttentiveDistillationAttribution
from captum_akd.distill.augment import BatchAugment
from captum_akd.distill.batches import EpochLoader
from captum_akd.distill.checks import check_batch_size, normalise_image_size, preflight
from captum_akd.distill.config import ExplainerConfig, resolve_config
from captum_akd.distill.distributed import DistContext, broadcast_buffers, setup, wrap
from captum_akd.distill.fidelity import explainer_fidelity
from captum_akd.distill.loop import RunSettings, format_stats, log, run_epochs
from captum_akd.distill.losses import explainer_loss
from captum_akd.distill.optim import Precision, build_optimizer, cosine_schedule
from captum_akd.distill.stage1 import checkpoint_metadata, held_out_set
from captum_akd.distill.state import RunDir, load_weights, module_digest, normalise_json
from captum_akd.models import AttentiveStudent, ExplanationNet, StudentOutput

STAGE = "explainer"


def choose_classes(
    predicted: Tensor,
    student_logits: Tensor,
    fraction: float,
    mode: str,
    generator: torch.Generator,
) -> Tensor:
    """The class to explain per image: mostly the black box's, sometimes another.

    Args:
        predicted: ``N`` classes predicted by the black box.
        student_logits: ``N x K`` student logits on the same images.
        fraction: share of images explained for another class.
        mode: ``"second"``: the student's most likely class other than the
            prediction (the hardest class to tell apart, which is where a map
            that ignores its class would be wrong); ``"random"``: any other.
        generator: draws which images get another class.

    Returns:
        ``N`` class indices: ``predicted[i]``, or for a share ``fraction`` of
        the images (drawn independently) the alternative class.

    Examples::

        >>> from captum_akd.distill.stage2 import choose_classes
        >>> predicted = torch.tensor([0, 1, 2])
        >>> logits = torch.tensor([[3.0, 2.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 3.0]])
        >>> generator = torch.Generator().manual_seed(0)
        >>> choose_classes(predicted, logits, 1.0, "second", generator)   # always the other
        tensor([1, 2, 0])
        >>> choose_classes(predicted, logits, 0.0, "second", generator)   # never
        tensor([0, 1, 2])
    """
    n, k = student_logits.shape
    other = (torch.rand(n, generator=generator) < fraction).to(predicted.device)
    if mode == "second":
        masked = student_logits.float().scatter(1, predicted[:, None], float("-inf"))
        alternative = masked.argmax(dim=1)
    else:
        offset = torch.randint(1, k, (n,), generator=generator).to(predicted.device)
        alternative = (predicted + offset) % k
    return torch.where(other, alternative, predicted)


class _MaskHead(nn.Module):
    """The explainer as one module taking plain tensors, so DDP can wrap it."""

    def __init__(self, explainer: ExplanationNet) -> None:
        super().__init__()
        self.explainer = explainer

    def forward(
        self,
        features: list[Tensor],
        attention: list[Tensor],
        cam: Tensor,
        class_vectors: Tensor,
        size: tuple[int, int],
    ) -> Tensor:
        output = StudentOutput(logits=cam.new_empty(0), features=features,
                               attention=attention, pooled=cam.new_empty(0))
        return self.explainer(output, cam, class_vectors, size)


def _train_explainer(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    val_data: Dataset | DataLoader | None,
    student: AttentiveStudent,
    explainer: ExplanationNet | None,
    config: ExplainerConfig,
    settings: RunSettings,
    run: RunDir,
    ctx: DistContext,
) -> AttentiveDistillationAttribution:
    if not isinstance(student, AttentiveStudent):
        raise TypeError(f"`student` must be an AttentiveStudent; got {type(student).__name__}")
    if explainer is None:
        explainer = ExplanationNet.for_student(student)
    if not isinstance(explainer, ExplanationNet):
        raise TypeError(f"`explainer` must be an ExplanationNet; got {type(explainer).__name__}")
    if explainer.stage_channels != student.stage_channels:
        raise ValueError(
            f"`explainer` was built for stages with {explainer.stage_channels} channels but "
            f"`student` has {student.stage_channels}; use ExplanationNet.for_student(student)"
        )
    device = ctx.device
    student.to(device)
    explainer.to(device)
    precision = Precision(device, settings.amp)
    info = preflight(forward_func, train_data, val_data, student, settings.image_size, device)
    input_size = settings.image_size or info.image_shape[1:]
    fingerprint = normalise_json({
        "config": config.to_dict(),
        "student": student.config,
        "student_sha256": module_digest(student),
        "explainer": explainer.config,
        "num_classes": info.num_classes,
        "train_data": info.fingerprint(),
        "val_data": val_data is not None,
        **settings.fingerprint(ctx, precision),
    })
    run.check_fingerprint(STAGE, fingerprint)
    status = run.stage_status(STAGE)
    held_out = held_out_set(forward_func, train_data, val_data, settings, ctx)

    def attribution() -> AttentiveDistillationAttribution:
        metadata = checkpoint_metadata(run.state, settings, input_size)
        metadata.pop("input_size")
        metadata.pop("normalization")
        return AttentiveDistillationAttribution(
            forward_func, student, explainer, input_size=input_size,
            normalization=settings.normalization, metadata=metadata,
        )

    if status == "complete":
        load_weights(explainer, run.load().explainer, "explainer")
        log(f"stage 2 ({STAGE}) already complete in {str(run.path)!r}; skipped", ctx,
            settings.quiet)
        return attribution()

    requires_grad = [p.requires_grad for p in student.parameters()]
    student.eval().requires_grad_(False)
    head = _MaskHead(explainer)
    trained = wrap(head, ctx)
    loader = EpochLoader(train_data, settings.batch_size, ctx, settings.seed, shuffle=True,
                         image_size=settings.image_size, num_workers=settings.num_workers)
    optimizer = build_optimizer([explainer], config.optimizer, config.resolved_lr(),
                                config.resolved_weight_decay(), config.momentum)
    steps = max(len(loader), 1)
    scheduler = cosine_schedule(optimizer, config.epochs * steps,
                                round(config.warmup_epochs * steps))
    start_epoch = 0
    if status == "partial":
        resumed = run.load()
        load_weights(explainer, resumed.explainer, "explainer")
        optimizer.load_state_dict(resumed.optimizer)
        scheduler.load_state_dict(resumed.scheduler)
        if resumed.scaler is not None:
            precision.scaler.load_state_dict(resumed.scaler)
        start_epoch = run.state.epoch
        log(f"resuming stage 2 ({STAGE}) after epoch {start_epoch}/{config.epochs}", ctx,
            settings.quiet)
    else:
        # Stage 1's fingerprint, history and report (if any) stay in the record.
        run.state.history[STAGE] = []
        run.state.reports.pop(STAGE, None)
    run.state.fingerprints[STAGE] = fingerprint
    history = run.state.history[STAGE]
    side = max(input_size)
    padding = config.padding if config.padding is not None else side // 16
    augment = BatchAugment(config.crop, padding, flip=config.flip)

    def step(images: Tensor, labels: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        images = images.to(device, non_blocking=True)
        images, _ = augment(images, generator)
        teacher = call_black_box(forward_func, images)
        with torch.no_grad(), precision.autocast():
            output = student.forward_features(images)
            classes = choose_classes(teacher.argmax(1), output.logits,
                                     config.other_class_fraction, config.other_class, generator)
            cam = student.class_activation_map(output.features[-1], classes)
            class_vectors = student.fc.weight[classes]
        with precision.autocast():
            mask = trained(output.features, output.attention, cam, class_vectors,
                           tuple(images.shape[-2:]))
        mask = mask.float()
        blurred = gaussian_blur(images, config.blur_kernel, config.blur_sigma)
        preserved = mask * images + (1 - mask) * blurred
        destroyed = (1 - mask) * images + mask * blurred
        # Eval-mode batch norm: one call on both halves equals two calls.
        with precision.autocast():
            logits = student(torch.cat([preserved, destroyed])).float()
        logits_preserved, logits_destroyed = logits.chunk(2)
        return explainer_loss(
            logits_preserved, logits_destroyed, mask, classes,
            config.preserve_weight, config.destroy_weight, config.area_weight,
            config.tv_weight, config.area_target,
        )

    def end_of_epoch(epoch: int, stats: dict[str, float]) -> None:
        broadcast_buffers(explainer, ctx)
        last = epoch + 1 == config.epochs
        record = {"epoch": epoch + 1, **stats}
        if last:
            report = explainer_fidelity(student, explainer, held_out, ctx,
                                        config.blur_kernel, config.blur_sigma)
            run.state.reports[STAGE] = report
            record.update({f"{held_out.split}_{k}": report[k]
                           for k in ("mask_mean", "student_retained", "student_lost")})
        history.append(record)
        run.state.stage = STAGE
        run.state.epoch = epoch + 1
        run.state.complete = last
        log(f"stage 2 epoch {epoch + 1}/{config.epochs}: "
            f"{format_stats({k: v for k, v in record.items() if k != 'epoch'})}",
            ctx, settings.quiet)
        run.save(student, explainer, checkpoint_metadata(run.state, settings, input_size),
                 optimizer, scheduler, precision.scaler)

    try:
        run_epochs(stage=STAGE, epochs=config.epochs, start_epoch=start_epoch, loader=loader,
                   step=step, optimizer=optimizer, scheduler=scheduler, precision=precision,
                   trained=[head], grad_clip=config.grad_clip, seed=settings.seed, ctx=ctx,
                   quiet=settings.quiet, end_of_epoch=end_of_epoch)
    finally:
        for param, flag in zip(student.parameters(), requires_grad, strict=True):
            param.requires_grad_(flag)
    return attribution()


def train_explainer(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    *,
    student: AttentiveStudent,
    explainer: ExplanationNet | None = None,
    val_data: Dataset | DataLoader | None = None,
    config: ExplainerConfig | Mapping[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    batch_size: int = 128,
    image_size: int | tuple[int, int] | None = None,
    normalization: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    seed: int = 0,
    num_workers: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    **options: Any,
) -> AttentiveDistillationAttribution:
    r"""Stage 2: train the explanation network of a distilled student.

    The student is frozen (eval mode, no gradients to its weights). For each
    image the class ``c`` is the black box's prediction, or for a share of
    images (``other_class_fraction``) another class, so maps stay
    class-specific. The explainer's map ``M`` is trained with the student as
    the differentiable stand-in for the black box, ``b`` a Gaussian blur of
    the image:

    - preserve: ``CE(student(M * x + (1 - M) * b), c)``
    - destroy: ``-log(1 - p_student(c | (1 - M) * x + M * b))``
    - area: ``area_weight * mean(M)``, or with ``area_target=a`` the
      extremal-perturbation constraint that keeps a fraction ``a`` (default)
    - smoothness: ``tv_weight * TV(M)``

    Call it alone to re-run stage 2 on a student distilled before. Same
    distributed, checkpoint and resume behaviour as
    :func:`~captum_akd.distill.distill_student`.

    Args:
        forward_func (Callable): the black box (gives the classes to explain).
        train_data (Dataset or DataLoader): as for ``distill_student``.
        student (AttentiveStudent): the distilled student.
        explainer (ExplanationNet, optional): the network to train; default
            ``ExplanationNet.for_student(student)``.
        val_data (Dataset or DataLoader, optional): data for the report.
        config (ExplainerConfig or dict, optional): stage-2 hyper-parameters.
        out: as for ``distill_student``; so are ``batch_size``, ``image_size``,
            ``normalization``, ``device``, ``amp``, ``seed``, ``num_workers``,
            ``resume``, ``overwrite`` and ``quiet``.
        **options: fields of :class:`ExplainerConfig` (``epochs=5``).

    Returns:
        AttentiveDistillationAttribution: ready to ``attribute``; its
        ``metadata["fidelity"]["explainer"]`` holds the report (see
        :func:`~captum_akd.distill.fidelity.explainer_fidelity`).

    Examples::

        >>> from captum_akd.distill import train_explainer
        >>> attr = train_explainer(black_box, train_set, student=result.student, epochs=10)
        >>> maps = attr.attribute(images, target=labels)   # N x 1 x H x W
    """
    cfg = resolve_config(ExplainerConfig, config, options)
    check_batch_size(batch_size)
    ctx = setup(device)
    settings = RunSettings(batch_size, normalise_image_size(image_size),
                           dict(normalization) if normalization else None, amp, seed,
                           num_workers, quiet)
    run = RunDir(out, resume, overwrite, ctx)
    return _train_explainer(forward_func, train_data, val_data, student, explainer, cfg,
                            settings, run, ctx)
