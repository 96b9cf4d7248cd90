"""``captum_akd.distill``: both stages in one call."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from captum_akd.attribution import AttentiveDistillationAttribution
from captum_akd.distill.checks import check_batch_size, normalise_image_size
from captum_akd.distill.config import DistillConfig, ExplainerConfig, resolve_config
from captum_akd.distill.distributed import setup
from captum_akd.distill.loop import RunSettings
from captum_akd.distill.stage1 import _distill_student
from captum_akd.distill.stage2 import _train_explainer
from captum_akd.distill.state import RunDir
from captum_akd.models import AttentiveStudent, ExplanationNet


def distill(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    *,
    student: AttentiveStudent,
    val_data: Dataset | DataLoader | None = None,
    explainer: ExplanationNet | None = None,
    out: str | os.PathLike | None = None,
    epochs: int | None = None,
    explainer_epochs: int | None = None,
    student_config: DistillConfig | Mapping[str, Any] | None = None,
    explainer_config: ExplainerConfig | Mapping[str, Any] | None = None,
    peer: AttentiveStudent | None = None,
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
) -> AttentiveDistillationAttribution:
    r"""Explain a black-box classifier: distil it, then train the explanation network.

    Stage 1 (:func:`~captum_akd.distill.distill_student`) distils the black
    box into ``student``; stage 2 (:func:`~captum_akd.distill.train_explainer`)
    trains ``explainer`` on the frozen student. The black box is only ever
    called under :func:`torch.no_grad` on input tensors. Fidelity reports of
    both stages end up in the result's ``metadata["fidelity"]`` and in the
    checkpoint's ``config.json``.

    With ``out``, a checkpoint (loadable with
    :meth:`AttentiveDistillationAttribution.load`) plus training state is
    written after every epoch of either stage; ``resume=True`` continues an
    interrupted run (in either stage) to the same weights an uninterrupted run
    gives. Runs under ``torchrun --nproc_per_node=N`` with DDP unchanged.

    Args:
        forward_func (Callable): the black box, ``N x C x H x W`` images in its
            own input space (on ``device``) to ``N x K`` logits.
        train_data (Dataset or DataLoader): images, ``(image, label)`` pairs,
            or dicts with ``"image"`` and an optional ``"label"``; labels are
            optional (``-1``/``None`` for none; the black box's prediction is
            used instead).
        student (AttentiveStudent): the student, with a head of ``K`` classes
            (e.g. :func:`~captum_akd.models.cifar_resnet_student`).
        val_data (Dataset or DataLoader, optional): held-out data for the
            fidelity reports (otherwise 1024 training images are used).
        explainer (ExplanationNet, optional): default
            ``ExplanationNet.for_student(student)``.
        out (str or Path, optional): run directory, written every epoch.
        epochs (int, optional): stage-1 epochs (overrides ``student_config``;
            default 30).
        explainer_epochs (int, optional): stage-2 epochs (overrides
            ``explainer_config``; default 10).
        student_config (DistillConfig or dict, optional): stage-1
            hyper-parameters (temperature, alpha, optimizer, augmentation...).
        explainer_config (ExplainerConfig or dict, optional): stage-2
            hyper-parameters (loss weights, area target, other-class share...).
        peer (AttentiveStudent, optional): a second student: stage 1 then
            trains both by mutual transfer of local attention (design 3.4).
        batch_size (int): images per batch and process. Default: 128.
        image_size (int or (H, W), optional): resize every image to this size.
        normalization (dict, optional): ``{"mean": [...], "std": [...]}`` of
            the black box's input space, stored with the checkpoint.
        device (str or torch.device, optional): default CUDA when available.
        amp (bool, optional): mixed precision (bfloat16 autocast), default on
            for CUDA; ``True`` turns it on for the CPU too.
        seed (int): seeds everything random. Default: 0.
        num_workers (int): DataLoader worker processes. Default: 0.
        resume (bool): continue the run in ``out``. Default: False.
        overwrite (bool): start over in an ``out`` holding a checkpoint.
        quiet (bool): no progress bars or log lines.

    Returns:
        AttentiveDistillationAttribution: ready to ``attribute``.

    Examples::

        >>> import captum_akd
        >>> from captum_akd.models import cifar_resnet_student
        >>> attr = captum_akd.distill(model, train_set, student=cifar_resnet_student(20),
        ...                           val_data=test_set, out="akd-ckpt/")
        >>> attr.metadata["fidelity"]["student"]["top1_agreement"]
        0.93
        >>> maps = attr.attribute(images)          # N x 1 x H x W, the black box's classes
    """
    stage1 = dict(epochs=epochs) if epochs is not None else {}
    stage2 = dict(epochs=explainer_epochs) if explainer_epochs is not None else {}
    cfg1 = resolve_config(DistillConfig, student_config, stage1)
    cfg2 = resolve_config(ExplainerConfig, explainer_config, stage2)
    check_batch_size(batch_size)
    if explainer is not None and not isinstance(explainer, ExplanationNet):
        raise TypeError(f"`explainer` must be an ExplanationNet; got {type(explainer).__name__}")
    if explainer is not None and isinstance(student, AttentiveStudent) and (
        explainer.stage_channels != student.stage_channels
    ):
        raise ValueError(
            f"`explainer` was built for stages with {explainer.stage_channels} channels but "
            f"`student` has {student.stage_channels}; use ExplanationNet.for_student(student)"
        )
    ctx = setup(device)
    settings = RunSettings(batch_size, normalise_image_size(image_size),
                           dict(normalization) if normalization else None, amp, seed,
                           num_workers, quiet)
    run = RunDir(out, resume, overwrite, ctx)
    if explainer is None and isinstance(student, AttentiveStudent):
        explainer = ExplanationNet.for_student(student)
    result = _distill_student(forward_func, train_data, val_data, student, peer, cfg1,
                              settings, run, ctx, explainer)
    return _train_explainer(forward_func, train_data, val_data, result.student, explainer,
                            cfg2, settings, run, ctx)
