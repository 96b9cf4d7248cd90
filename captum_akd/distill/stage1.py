"""Stage 1: distil the black box into the attentive student (design 3.2 and 3.4)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from captum_akd._validation import call_black_box, check_target_range
from captum_akd.distill.augment import BatchAugment
from captum_akd.distill.batches import EpochLoader, probe_batch
from captum_akd.distill.checks import check_batch_size, normalise_image_size, preflight
from captum_akd.distill.config import DistillConfig, resolve_config
from captum_akd.distill.distributed import DistContext, broadcast_buffers, setup, wrap
from captum_akd.distill.fidelity import HeldOut, student_fidelity
from captum_akd.distill.loop import RunSettings, format_stats, log, run_epochs
from captum_akd.distill.losses import hard_labels, kd_loss
from captum_akd.distill.mutual import StudentPair, check_peer, local_attention_loss, mutual_kl
from captum_akd.distill.optim import Precision, build_optimizer, cosine_schedule
from captum_akd.distill.state import RunDir, TrainingState, load_weights, normalise_json
from captum_akd.models import AttentiveStudent, ExplanationNet

STAGE = "student"
# Without val_data, fidelity is measured on this many training images.
TRAIN_REPORT_IMAGES = 1024


@dataclass
class StudentResult:
    """What :func:`distill_student` returns.

    Attributes:
        student: the distilled student, in eval mode.
        report: the fidelity report (see
            :func:`~captum_akd.distill.fidelity.student_fidelity`).
        history: one dict of mean training losses (and validation agreement)
            per epoch.
        peer: the second student of a mutual-transfer run, else ``None``.

    Examples::

        >>> from torch.utils.data import TensorDataset
        >>> from captum_akd.distill import distill_student
        >>> from captum_akd.models import cifar_resnet_student
        >>> target = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
        >>> data = TensorDataset(torch.randn(16, 3, 16, 16), torch.arange(16) % 3)
        >>> result = distill_student(target.eval(), data, epochs=1, batch_size=8, quiet=True,
        ...                          student=cifar_resnet_student(depth=8, num_classes=3))
        >>> result.student.training, sorted(result.history[0])
        (False, ['ce', 'epoch', 'kd', 'loss', 'train_agreement', 'train_kl'])
        >>> result.report["split"], result.report["images"], result.peer
        ('train', 16, None)
    """

    student: AttentiveStudent
    report: dict[str, Any] | None
    history: list[dict[str, float]] = field(default_factory=list)
    peer: AttentiveStudent | None = None


def held_out_set(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    val_data: Dataset | DataLoader | None,
    settings: RunSettings,
    ctx: DistContext,
) -> HeldOut:
    """The data for fidelity reports: ``val_data``, or the first training images.

    Args:
        forward_func: the black box.
        train_data: the training dataset or loader.
        val_data: the held-out dataset or loader, or ``None``.
        settings: batch size, image size, seed and workers of the run.
        ctx: the process's distributed context.

    Returns:
        A :class:`~captum_akd.distill.fidelity.HeldOut` over ``val_data``
        (split ``"val"``, every image), or without it over the first 1024
        training images in all (split ``"train"``; each process reads its share).

    Examples::

        >>> from torch.utils.data import TensorDataset
        >>> from captum_akd.distill.distributed import setup
        >>> from captum_akd.distill.loop import RunSettings
        >>> from captum_akd.distill.stage1 import held_out_set
        >>> target = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
        >>> data = TensorDataset(torch.randn(8, 3, 16, 16), torch.arange(8) % 3)
        >>> held_out = held_out_set(target, data, None, RunSettings(batch_size=4), setup("cpu"))
        >>> held_out.split, held_out.limit
        ('train', 1024)
    """
    data = val_data if val_data is not None else train_data
    loader = EpochLoader(data, settings.batch_size, ctx, settings.seed, shuffle=False,
                         image_size=settings.image_size, num_workers=settings.num_workers,
                         where="val_data" if val_data is not None else "train_data")
    limit = None if val_data is not None else -(-TRAIN_REPORT_IMAGES // ctx.world_size)
    return HeldOut(loader, forward_func, ctx.device, limit,
                   "val" if val_data is not None else "train")


def checkpoint_metadata(
    state: TrainingState, settings: RunSettings, input_size: tuple[int, int]
) -> dict[str, Any]:
    """The checkpoint's JSON metadata: fidelity reports and how the run was made.

    Args:
        state: the run's training state (stage, epochs done, reports,
            fingerprints).
        settings: the run's settings (for the normalization).
        input_size: ``(H, W)`` the networks were trained at.

    Returns:
        A JSON-serialisable dict with ``"input_size"``, ``"normalization"``,
        ``"fidelity"``, ``"training"``, ``"stage"``, ``"epochs_done"`` and
        ``"complete"``.

    Examples::

        >>> from captum_akd.distill.loop import RunSettings
        >>> from captum_akd.distill.stage1 import checkpoint_metadata
        >>> from captum_akd.distill.state import TrainingState
        >>> meta = checkpoint_metadata(TrainingState(epoch=2), RunSettings(), (32, 32))
        >>> meta["input_size"], meta["stage"], meta["epochs_done"], meta["complete"]
        ([32, 32], 'student', 2, False)
    """
    return {
        "input_size": list(input_size),
        "normalization": settings.normalization,
        "fidelity": state.reports,
        "training": state.fingerprints,
        "stage": state.stage,
        "epochs_done": state.epoch,
        "complete": state.complete,
    }


def _distill_student(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    val_data: Dataset | DataLoader | None,
    student: AttentiveStudent,
    peer: AttentiveStudent | None,
    config: DistillConfig,
    settings: RunSettings,
    run: RunDir,
    ctx: DistContext,
    explainer: ExplanationNet | None = None,
) -> StudentResult:
    if peer is not None:
        check_peer(student, peer)
    device = ctx.device
    student.to(device)
    if peer is not None:
        peer.to(device)
    precision = Precision(device, settings.amp)
    info = preflight(forward_func, train_data, val_data, student, settings.image_size, device)
    if peer is not None and peer.num_classes != info.num_classes:
        raise ValueError(f"`peer` has {peer.num_classes} classes; the black box gives "
                         f"{info.num_classes}")
    input_size = settings.image_size or info.image_shape[1:]
    augment = BatchAugment(config.crop, config.padding, flip=config.flip, mixup=config.mixup,
                           cutmix=config.cutmix,
                           jpeg_quality=config.jpeg_quality, normalization=settings.normalization)
    if config.jpeg_quality is not None:
        # JPEG needs pixels: a few images show now, not at the first step, if they are not.
        augment(probe_batch(train_data, settings.image_size, "train_data")[0],
                torch.Generator().manual_seed(0))
    fingerprint = {
        "config": config.to_dict(),
        "student": student.config,
        "peer": peer.config if peer is not None else None,
        "num_classes": info.num_classes,
        "train_data": info.fingerprint(),
        "val_data": val_data is not None,
        **settings.fingerprint(ctx, precision),
    }
    run.check_fingerprint(STAGE, fingerprint)
    status = run.stage_status(STAGE)
    if explainer is None:
        explainer = ExplanationNet.for_student(student)

    if status == "complete":
        resumed = run.load()
        load_weights(student, resumed.student, "student")
        if peer is not None and resumed.peer is not None:
            load_weights(peer, resumed.peer, "peer")
        log(f"stage 1 ({STAGE}) already complete in {str(run.path)!r}; skipped", ctx,
            settings.quiet)
        return StudentResult(student.eval(), run.state.reports.get(STAGE),
                             list(run.state.history.get(STAGE, [])),
                             peer.eval() if peer is not None else None)

    loader = EpochLoader(train_data, settings.batch_size, ctx, settings.seed, shuffle=True,
                         image_size=settings.image_size, num_workers=settings.num_workers)
    held_out = held_out_set(forward_func, train_data, val_data, settings, ctx)
    model = StudentPair(student, peer) if peer is not None else student
    trained = wrap(model, ctx)
    optimizer = build_optimizer([model], config.optimizer, config.resolved_lr(),
                                config.resolved_weight_decay(), config.momentum)
    steps = max(len(loader), 1)
    scheduler = cosine_schedule(optimizer, config.epochs * steps,
                                round(config.warmup_epochs * steps))
    start_epoch = 0
    if status == "partial":
        resumed = run.load()
        load_weights(student, resumed.student, "student")
        if peer is not None:
            if resumed.peer is None:
                raise ValueError(f"`out`: {str(run.path)!r} holds no peer student to resume")
            load_weights(peer, resumed.peer, "peer")
        optimizer.load_state_dict(resumed.optimizer)
        scheduler.load_state_dict(resumed.scheduler)
        if resumed.scaler is not None:
            precision.scaler.load_state_dict(resumed.scaler)
        start_epoch = run.state.epoch
        log(f"resuming stage 1 ({STAGE}) after epoch {start_epoch}/{config.epochs}", ctx,
            settings.quiet)
    else:
        run.state = TrainingState(stage=STAGE, history={STAGE: []})
    run.state.fingerprints[STAGE] = normalise_json(fingerprint)
    history = run.state.history.setdefault(STAGE, [])

    def step(images: Tensor, labels: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        # Labels are still on the CPU here, so this costs no device sync.
        check_target_range(labels[labels >= 0], info.num_classes, "train_data labels")
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        images, mix = augment(images, generator)
        # The black box sees exactly what the student sees, without gradients.
        teacher = call_black_box(forward_func, images).float()
        labels_a = hard_labels(labels, teacher)
        labels_b, lam = None, 1.0
        if mix is not None:
            labels_b, lam = hard_labels(labels[mix.perm], teacher), mix.lam
        with precision.autocast():
            output = trained(images)
        if peer is None:
            return kd_loss(output.float(), teacher, labels_a, config.temperature, config.alpha,
                           labels_b, lam)
        logits_a, logits_b, attention_a, attention_b = output
        loss_a = kd_loss(logits_a.float(), teacher, labels_a, config.temperature,
                         config.alpha, labels_b, lam)
        loss_b = kd_loss(logits_b.float(), teacher, labels_a, config.temperature,
                         config.alpha, labels_b, lam)
        mutual = mutual_kl(logits_a.float(), logits_b.float(), config.temperature)
        local = local_attention_loss(attention_a, attention_b, config.attention_grid)
        total = (loss_a["loss"] + loss_b["loss"] + config.mutual_weight * mutual
                 + config.attention_weight * local)
        return {"loss": total, "kd": loss_a["kd"], "ce": loss_a["ce"],
                "peer_kd": loss_b["kd"], "mutual_kl": mutual, "local_attention": local}

    report_box: dict[str, Any] = {}

    def end_of_epoch(epoch: int, stats: dict[str, float]) -> None:
        broadcast_buffers(model, ctx)
        last = epoch + 1 == config.epochs
        record = {"epoch": epoch + 1, **stats}
        due = config.eval_every and (epoch + 1) % config.eval_every == 0
        if last or due:
            fidelity = student_fidelity(student, held_out, ctx)
            record[f"{held_out.split}_agreement"] = fidelity["top1_agreement"]
            record[f"{held_out.split}_kl"] = fidelity["kl"]
            if last:
                report_box["report"] = fidelity
                run.state.reports[STAGE] = fidelity
        history.append(record)
        run.state.stage = STAGE
        run.state.epoch = epoch + 1
        run.state.complete = last
        log(f"stage 1 epoch {epoch + 1}/{config.epochs}: "
            f"{format_stats({k: v for k, v in record.items() if k != 'epoch'})}",
            ctx, settings.quiet)
        run.save(student, explainer, checkpoint_metadata(run.state, settings, input_size),
                 optimizer, scheduler, precision.scaler, peer)

    run_epochs(stage=STAGE, epochs=config.epochs, start_epoch=start_epoch, loader=loader,
               step=step, optimizer=optimizer, scheduler=scheduler, precision=precision,
               trained=[model], grad_clip=config.grad_clip, seed=settings.seed, ctx=ctx,
               quiet=settings.quiet, end_of_epoch=end_of_epoch)
    report = report_box.get("report", run.state.reports.get(STAGE))
    return StudentResult(student.eval(), report, list(history),
                         peer.eval() if peer is not None else None)


def distill_student(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    *,
    student: AttentiveStudent,
    val_data: Dataset | DataLoader | None = None,
    peer: AttentiveStudent | None = None,
    config: DistillConfig | Mapping[str, Any] | None = None,
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
) -> StudentResult:
    r"""Stage 1: distil a black-box classifier into an attentive student.

    The black box is only called, under :func:`torch.no_grad`, on input
    tensors; its parameters, gradients and internals are never read. Every
    batch is augmented (crop, flip, optionally JPEG and mixup or CutMix) before *both* models see
    it, and the student minimises
    ``alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y)``
    with ``y`` the dataset's label where there is one, else the black box's
    prediction. With a ``peer`` the two students are trained together by
    mutual transfer of local attention (Cheng et al. 2022): Pearson
    correlation of each stage's attention in a ``k x k`` grid, plus mutual KL.

    Runs unchanged under ``torchrun --nproc_per_node=N`` (DDP, one shard of
    the data per process, ``batch_size`` per process). With ``out`` a
    checkpoint is written after every epoch, and ``resume=True`` continues an
    interrupted run to the same result as an uninterrupted one.

    Args:
        forward_func (Callable): the black box, ``N x C x H x W`` images (in its
            own input space, on ``device``) to ``N x K`` logits.
        train_data (Dataset or DataLoader): images, ``(image, label)`` pairs or
            dicts with ``"image"`` and optional ``"label"`` (``-1`` or ``None``:
            no label), in the black box's input space. A ``DataLoader`` with
            the default sampler is re-read with a seeded shuffle keeping its
            batch size, workers and collate function.
        student (AttentiveStudent): the student to train (in place), with a
            head of ``K`` classes.
        val_data (Dataset or DataLoader, optional): held-out data for the
            fidelity report; without it the report uses 1024 training images.
        peer (AttentiveStudent, optional): a second student for mutual transfer.
        config (DistillConfig or dict, optional): stage-1 hyper-parameters.
        out (str or Path, optional): run directory for per-epoch checkpoints.
        batch_size (int): images per batch (per process). Default: 128.
        image_size (int or (H, W), optional): resize every image to this size;
            needed when the data holds images of several sizes.
        normalization (dict, optional): ``{"mean": [...], "std": [...]}`` of
            the black box's input space, stored in the checkpoint.
        device (str or torch.device, optional): default CUDA if available.
        amp (bool, optional): mixed precision (bfloat16 autocast); default
            on for CUDA, ``True`` turns it on for the CPU too.
        seed (int): seeds data order, augmentation and everything random.
        num_workers (int): DataLoader workers for a ``Dataset``.
        resume (bool): continue the run in ``out`` (a missing ``out`` starts
            a new one); the configuration must be the same.
        overwrite (bool): start over in an ``out`` that holds a checkpoint.
        quiet (bool): no progress bars or log lines.
        **options: fields of :class:`DistillConfig` (``epochs=5, lr=1e-3``).

    Returns:
        StudentResult: the student (eval mode), the fidelity report, the
        per-epoch history, and the peer.

    Examples::

        >>> from captum_akd.distill import distill_student
        >>> from captum_akd.models import cifar_resnet_student
        >>> result = distill_student(black_box, train_set, student=cifar_resnet_student(20),
        ...                          val_data=test_set, epochs=30, out="run/")
        >>> result.report["top1_agreement"]
        0.93
    """
    cfg = resolve_config(DistillConfig, config, options)
    check_batch_size(batch_size)
    ctx = setup(device)
    settings = RunSettings(batch_size, normalise_image_size(image_size),
                           dict(normalization) if normalization else None, amp, seed,
                           num_workers, quiet)
    run = RunDir(out, resume, overwrite, ctx)
    return _distill_student(forward_func, train_data, val_data, student, peer, cfg, settings,
                            run, ctx)
