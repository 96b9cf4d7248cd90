"""The three entry points: both stages in one call, or either stage alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from captum_akd.attribution import AttentiveDistillationAttribution
from captum_akd.distill._restarts import train_restarts
from captum_akd.distill._stage1 import StudentStage
from captum_akd.distill._stage2 import ExplainerStage
from captum_akd.distill._trainer import Shared, prepare, seeded, train
from captum_akd.distill.config import DistillConfig, ExplainerConfig, RunConfig, resolve_config
from captum_akd.models import AttentiveStudent, ExplanationNet

_RUN_FIELDS = frozenset(f.name for f in dataclasses.fields(RunConfig))


@dataclass
class StudentResult:
    """What :func:`distill_student` returns.

    Attributes:
        student: the distilled student, in eval mode.
        report: the fidelity report on the held-out data: ``split``,
            ``images``, ``top1_agreement``, ``kl`` (mean
            ``KL(p_target || p_student)`` in nats), ``student_accuracy`` and
            ``target_accuracy`` (``None`` without labels).
        history: one dict of mean training losses (and held-out agreement)
            per epoch.
        peer: the second student of a mutual-transfer run, else ``None``.

    Examples::

        >>> from captum_akd.models import cifar_resnet_student
        >>> result = StudentResult(cifar_resnet_student(depth=8).eval(), report=None)
        >>> result.history, result.peer
        ([], None)
    """

    student: AttentiveStudent
    report: dict[str, Any] | None
    history: list[dict[str, float]] = field(default_factory=list)
    peer: AttentiveStudent | None = None


def _split_options(run: RunConfig | Mapping[str, Any] | None, options: Mapping[str, Any]
                   ) -> tuple[RunConfig, dict[str, Any]]:
    """Keyword arguments are run settings or stage hyper-parameters: tell them apart."""
    settings = {k: v for k, v in options.items() if k in _RUN_FIELDS}
    return (resolve_config(RunConfig, run, settings),
            {k: v for k, v in options.items() if k not in _RUN_FIELDS})


def _checked_explainer(student: Any, explainer: Any, seed: int) -> ExplanationNet:
    """The explainer must decode this student's stages, or maps would be garbage."""
    if not isinstance(student, AttentiveStudent):
        raise TypeError(f"`student` must be an AttentiveStudent; got {type(student).__name__}")
    if explainer is None:
        # Initialised from the run's seed, so the same call gives the same maps
        # whatever the caller drew from torch's global generator before.
        with seeded(seed, torch.device("cpu")):
            return ExplanationNet.for_student(student)
    if not isinstance(explainer, ExplanationNet):
        raise TypeError(f"`explainer` must be an ExplanationNet; got {type(explainer).__name__}")
    if explainer.stage_channels != student.stage_channels:
        raise ValueError(
            f"`explainer` was built for stages with {explainer.stage_channels} channels but "
            f"`student` has {student.stage_channels}; use ExplanationNet.for_student(student)")
    return explainer


def _student_stage(shared: Shared, train_data: Any, student: AttentiveStudent,
                   peer: AttentiveStudent | None, explainer: ExplanationNet,
                   config: DistillConfig) -> StudentResult:
    """Stage 1 on prepared data: the body :func:`distill` and :func:`distill_student` share."""
    stage = StudentStage(shared, student, peer, explainer, config, train_data)
    history = train(stage, shared)
    return StudentResult(student.eval(), shared.out.state.reports.get(stage.name), history,
                         peer.eval() if peer is not None else None)


def _explainer_stage(shared: Shared, student: AttentiveStudent, explainer: ExplanationNet,
                     config: ExplainerConfig) -> AttentiveDistillationAttribution:
    """Stage 2 on prepared data, wrapped as the Captum-style attribution it produces."""
    if config.restarts > 1:
        train_restarts(shared, student, explainer, config)
    else:
        train(ExplainerStage(shared, student, explainer, config), shared)
    metadata = shared.metadata()
    metadata.pop("input_size")
    metadata.pop("normalization")
    return AttentiveDistillationAttribution(
        shared.forward_func, student, explainer, input_size=shared.input_size,
        normalization=shared.run.normalization, metadata=metadata)


def distill(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    *,
    student: AttentiveStudent,
    explainer: ExplanationNet | None = None,
    peer: AttentiveStudent | None = None,
    val_data: Dataset | DataLoader | None = None,
    epochs: int | None = None,
    explainer_epochs: int | None = None,
    student_config: DistillConfig | Mapping[str, Any] | None = None,
    explainer_config: ExplainerConfig | Mapping[str, Any] | None = None,
    run: RunConfig | Mapping[str, Any] | None = None,
    **settings: Any,
) -> AttentiveDistillationAttribution:
    r"""Explain a black-box classifier: distil it, then train the explanation network.

    Stage 1 (see :func:`distill_student`) distils the black box into
    ``student``; stage 2 (see :func:`train_explainer`) trains ``explainer``
    on the frozen student. The black box is only ever called under
    :func:`torch.no_grad` on input tensors. The data are checked (one
    black-box call) and the held-out set with the black box's logits on it is
    built once, for both stages. Fidelity reports of both stages end up in
    the result's ``metadata["fidelity"]`` and in the checkpoint's
    ``config.json``. Checkpoints, resume (in either stage) and ``torchrun``
    work as for :func:`distill_student`; the checkpoint in ``out`` is loadable
    with :meth:`AttentiveDistillationAttribution.load`.

    Args:
        forward_func (Callable): the black box, ``N x C x H x W`` images in its
            own input space (on the run's device) to ``N x K`` logits.
        train_data (Dataset or DataLoader): images, ``(image, label)`` pairs,
            or dicts with ``"image"`` and an optional ``"label"``; labels are
            optional (``-1``/``None`` for none; the black box's prediction is
            used instead).
        student (AttentiveStudent): the student, with a head of ``K`` classes
            (e.g. :func:`~captum_akd.models.cifar_resnet_student`).
        val_data (Dataset or DataLoader, optional): held-out data for the
            fidelity reports (otherwise 1024 training images are used).
        explainer (ExplanationNet, optional): default
            ``ExplanationNet.for_student(student)``, initialised from the
            run's ``seed``.
        peer (AttentiveStudent, optional): a second student: stage 1 then
            trains both by mutual transfer of local attention (design 3.4).
        epochs (int, optional): stage-1 epochs (overrides ``student_config``).
        explainer_epochs (int, optional): stage-2 epochs (overrides
            ``explainer_config``).
        student_config (DistillConfig or dict, optional): stage-1
            hyper-parameters.
        explainer_config (ExplainerConfig or dict, optional): stage-2
            hyper-parameters.
        run (RunConfig or dict, optional): how the run is carried out.
        **settings: fields of :class:`RunConfig` (``out``, ``batch_size``,
            ``image_size``, ``normalization``, ``device``, ``amp``, ``seed``,
            ``num_workers``, ``resume``, ``overwrite``, ``quiet``), overriding
            ``run``.

    Returns:
        AttentiveDistillationAttribution: ready to ``attribute``.

    Examples::

        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> import captum_akd
        >>> from captum_akd.models import cifar_resnet_student
        >>> target = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
        >>> data = TensorDataset(torch.randn(16, 3, 16, 16))
        >>> attr = captum_akd.distill(target.eval(), data, epochs=1, explainer_epochs=1,
        ...                           student=cifar_resnet_student(depth=8, num_classes=3),
        ...                           batch_size=8, quiet=True)
        >>> sorted(attr.metadata["fidelity"])
        ['explainer', 'student']
        >>> attr.attribute(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 1, 16, 16])
    """
    run_config, unknown = _split_options(run, settings)
    if unknown:
        raise TypeError(f"unknown distill option(s) {sorted(unknown)}; valid: stage options go "
                        f"in student_config/explainer_config, run settings are "
                        f"{sorted(_RUN_FIELDS)}")
    cfg1 = resolve_config(DistillConfig, student_config,
                          {"epochs": epochs} if epochs is not None else {})
    cfg2 = resolve_config(ExplainerConfig, explainer_config,
                          {"epochs": explainer_epochs} if explainer_epochs is not None else {})
    explainer = _checked_explainer(student, explainer, run_config.seed)
    shared = prepare(forward_func, train_data, val_data, student, run_config)
    result = _student_stage(shared, train_data, student, peer, explainer, cfg1)
    return _explainer_stage(shared, result.student, explainer, cfg2)


def distill_student(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    *,
    student: AttentiveStudent,
    val_data: Dataset | DataLoader | None = None,
    peer: AttentiveStudent | None = None,
    config: DistillConfig | Mapping[str, Any] | None = None,
    run: RunConfig | Mapping[str, Any] | None = None,
    **options: Any,
) -> StudentResult:
    r"""Stage 1: distil a black-box classifier into an attentive student.

    The black box is only called, under :func:`torch.no_grad`, on input
    tensors; its parameters, gradients and internals are never read. Every
    batch is augmented (crop, flip, optionally JPEG and mixup or CutMix)
    before *both* models see it, and the student minimises
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
            own input space, on the run's device) to ``N x K`` logits.
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
        run (RunConfig or dict, optional): how the run is carried out.
        **options: fields of :class:`DistillConfig` (``epochs=5, lr=1e-3``)
            and of :class:`RunConfig` (``batch_size=64, out="run/"``).

    Returns:
        StudentResult: the student (eval mode), the fidelity report, the
        per-epoch history, and the peer.

    Examples::

        >>> import torch
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
    run_config, stage_options = _split_options(run, options)
    cfg = resolve_config(DistillConfig, config, stage_options)
    shared = prepare(forward_func, train_data, val_data, student, run_config)
    return _student_stage(shared, train_data, student, peer,
                          _checked_explainer(student, None, run_config.seed), cfg)


def train_explainer(
    forward_func: Callable[..., Tensor],
    train_data: Dataset | DataLoader,
    *,
    student: AttentiveStudent,
    explainer: ExplanationNet | None = None,
    val_data: Dataset | DataLoader | None = None,
    config: ExplainerConfig | Mapping[str, Any] | None = None,
    run: RunConfig | Mapping[str, Any] | None = None,
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

    With ``objective="curve"`` preserve and destroy act on the map's soft
    top-k masks at ``budgets`` kept shares drawn per image instead of on
    ``M`` (destroy over the blur, zeros or both: ``destroy_substrate``), so
    the order of every pixel is trained, as insertion, deletion and ROAD read
    it. Before the first epoch and after each, a student-only curve score of
    the held-out maps (coarse insertion minus deletion) is measured and the
    best epoch is kept; ``patience`` stops a run that no longer improves.
    With ``restarts=R`` the stage runs from seeds ``seed`` to
    ``seed + R - 1`` and keeps the explainer whose held-out maps the black
    box scores best (the report's ``"restarts"`` lists each one's figures).

    Call it alone to re-run stage 2 on a student distilled before. Same
    distributed, checkpoint and resume behaviour as :func:`distill_student`.

    Args:
        forward_func (Callable): the black box (gives the classes to explain).
        train_data (Dataset or DataLoader): as for :func:`distill_student`.
        student (AttentiveStudent): the distilled student.
        explainer (ExplanationNet, optional): the network to train; default
            ``ExplanationNet.for_student(student)``, initialised from the
            run's ``seed``.
        val_data (Dataset or DataLoader, optional): data for the report.
        config (ExplainerConfig or dict, optional): stage-2 hyper-parameters.
        run (RunConfig or dict, optional): how the run is carried out.
        **options: fields of :class:`ExplainerConfig` (``epochs=5``) and of
            :class:`RunConfig` (``batch_size=64, out="run/"``).

    Returns:
        AttentiveDistillationAttribution: ready to ``attribute``; its
        ``metadata["fidelity"]["explainer"]`` holds the report: the mean mask
        value and how much of the student's and the black box's score of
        ``c`` the map keeps (``*_retained``) and removes (``*_lost``).

    Examples::

        >>> import torch
        >>> from captum_akd.distill import train_explainer
        >>> from captum_akd.models import cifar_resnet_student
        >>> target = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
        ...                              torch.nn.Linear(12, 3))
        >>> data = torch.utils.data.TensorDataset(torch.randn(16, 3, 16, 16))
        >>> student = cifar_resnet_student(depth=8, num_classes=3).eval()
        >>> attr = train_explainer(target.eval(), data, student=student, epochs=1,
        ...                        batch_size=8, quiet=True)
        >>> attr.attribute(torch.randn(2, 3, 16, 16), target=[0, 2]).shape
        torch.Size([2, 1, 16, 16])
    """
    run_config, stage_options = _split_options(run, options)
    cfg = resolve_config(ExplainerConfig, config, stage_options)
    explainer = _checked_explainer(student, explainer, run_config.seed)
    shared = prepare(forward_func, train_data, val_data, student, run_config)
    return _explainer_stage(shared, student, explainer, cfg)
