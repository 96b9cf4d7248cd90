"""Hyper-parameters of the two training stages, with their tested defaults.

Both are plain dataclasses: pass one as ``config=`` or give single fields as
keyword arguments to :func:`~captum_akd.distill.distill_student` and
:func:`~captum_akd.distill.train_explainer` (``epochs=5, lr=1e-3``). They are
stored in the checkpoint's JSON, and a resumed run must use the same values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from captum_akd.distill.augment import CROP_MODES, check_jpeg_quality

OPTIMIZERS = ("adamw", "sgd")
OTHER_CLASS_MODES = ("second", "random")


def _positive(value: Any, name: str, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise ValueError(f"`{name}` must be a positive {'int' if integer else 'number'}; "
                         f"got {value!r}")


def _non_negative(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"`{name}` must be a number >= 0; got {value!r}")


def _fraction(value: Any, name: str, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        0 < value < 1 if open_low else 0 <= value <= 1
    )
    if not ok:
        interval = "(0, 1)" if open_low else "[0, 1]"
        raise ValueError(f"`{name}` must be in {interval}; got {value!r}")


@dataclass
class _Optimization:
    epochs: int
    optimizer: str = "adamw"
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    warmup_epochs: float = 0.0
    grad_clip: float | None = None
    crop: str = "pad"
    padding: int | None = None
    flip: bool = True

    def __post_init__(self) -> None:
        _positive(self.epochs, "epochs", integer=True)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}; got {self.optimizer!r}")
        if self.lr is not None:
            _positive(self.lr, "lr")
        if self.weight_decay is not None:
            _non_negative(self.weight_decay, "weight_decay")
        _non_negative(self.momentum, "momentum")
        _non_negative(self.warmup_epochs, "warmup_epochs")
        if self.grad_clip is not None:
            _positive(self.grad_clip, "grad_clip")
        if self.crop not in CROP_MODES:
            raise ValueError(f"`crop` must be one of {CROP_MODES}; got {self.crop!r}")

    def resolved_lr(self) -> float:
        raise NotImplementedError

    def resolved_weight_decay(self) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return 0.05 if self.optimizer == "adamw" else 5e-4

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class DistillConfig(_Optimization):
    """Stage 1: distilling the black box into the student (design 3.2).

    Args:
        epochs: passes over the training data. Default: 30.
        optimizer: ``"adamw"`` or ``"sgd"`` (with Nesterov momentum).
            Default: ``"adamw"``.
        lr: peak learning rate, reached after warm-up and annealed to 0 on a
            cosine; ``None`` is 2e-3 for AdamW and 0.05 for SGD (batch 128).
        weight_decay: ``None`` is 0.05 for AdamW and 5e-4 for SGD; never
            applied to biases, batch-norm and attention gates.
        momentum: SGD momentum. Default: 0.9.
        warmup_epochs: linear warm-up length, may be fractional; capped at a
            fifth of the run. Default: 1.
        grad_clip: clip the gradient norm to this value, or ``None``.
        crop: ``"pad"`` (pad-and-crop, for small images), ``"resized"``
            (random resized crop, for large ones) or ``"none"``. Default: ``"pad"``.
        padding: padding of ``"pad"``; ``None`` is an eighth of the side.
        flip: random horizontal flips. Default: True.
        mixup: mixup Beta parameter, 0 to disable. Default: 0.
        cutmix: CutMix Beta parameter, 0 to disable; with ``mixup`` too, each
            batch gets one of the two (see
            :class:`~captum_akd.distill.BatchAugment`). Default: 0.
        jpeg_quality: re-encode each augmented image as a JPEG of this
            quality (an int or ``[q]``), or of one drawn per image from
            ``[low, high]`` (see
            :class:`~captum_akd.distill.BatchAugment`); ``None`` disables it.
            Default: None.
        temperature: softening temperature ``T``. Default: 4.
        alpha: weight of the KL term against the cross-entropy on hard labels.
            Default: 0.9.
        mutual_weight: weight of the mutual KL between the two students
            (only with a ``peer``). Default: 1.
        attention_weight: weight of the local-attention Pearson loss (only
            with a ``peer``). Default: 1.
        attention_grid: ``k``: attention maps are cut into ``k x k`` local
            maps. Default: 2.
        eval_every: measure agreement on ``val_data`` every this many epochs
            (0: only after the last). Default: 1.

    Examples::

        >>> DistillConfig(epochs=5, lr=1e-3).resolved_lr()
        0.001
    """

    epochs: int = 30
    warmup_epochs: float = 1.0
    mixup: float = 0.0
    cutmix: float = 0.0
    jpeg_quality: int | list[int] | None = None
    temperature: float = 4.0
    alpha: float = 0.9
    mutual_weight: float = 1.0
    attention_weight: float = 1.0
    attention_grid: int = 2
    eval_every: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative(self.mixup, "mixup")
        _non_negative(self.cutmix, "cutmix")
        check_jpeg_quality(self.jpeg_quality)
        # One form per setting, as the checkpoint's JSON stores it: Q or [LOW, HIGH].
        if isinstance(self.jpeg_quality, (list, tuple)):
            low, high = self.jpeg_quality[0], self.jpeg_quality[-1]
            self.jpeg_quality = low if len(self.jpeg_quality) == 1 else [low, high]
        _positive(self.temperature, "temperature")
        _fraction(self.alpha, "alpha")
        _non_negative(self.mutual_weight, "mutual_weight")
        _non_negative(self.attention_weight, "attention_weight")
        _positive(self.attention_grid, "attention_grid", integer=True)
        if isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int) or (
            self.eval_every < 0
        ):
            raise ValueError(f"`eval_every` must be an int >= 0; got {self.eval_every!r}")

    def resolved_lr(self) -> float:
        """The peak learning rate, with ``lr=None`` resolved for the optimizer.

        Returns:
            ``lr`` if set, else 2e-3 for AdamW and 0.05 for SGD.
        """
        if self.lr is not None:
            return self.lr
        return 2e-3 if self.optimizer == "adamw" else 0.05


@dataclass
class ExplainerConfig(_Optimization):
    """Stage 2: training the explanation network on the frozen student (design 3.3).

    Args:
        epochs: passes over the training data. Default: 10.
        optimizer, lr, weight_decay, momentum, warmup_epochs, grad_clip: as in
            :class:`DistillConfig`; ``lr=None`` is 2e-3 for AdamW, 0.02 for SGD;
            ``weight_decay=None`` is 1e-4 for AdamW, 5e-4 for SGD.
        crop, padding, flip: augmentation; default a small pad-and-crop
            (``padding=None`` is a sixteenth of the side) and flips.
        preserve_weight: weight of the preserve term. Default: 1.
        destroy_weight: weight of the destroy term. Default: 1.
        area_weight: weight ``lambda_a`` of the area term. Default: 2.
        area_target: fraction of the image a map should keep (the
            extremal-perturbation area constraint, see
            :func:`~captum_akd.distill.losses.area_loss`), or ``None`` for the
            plain ``mean(M)`` penalty. Smaller values give tighter, more peaked
            maps; use about the share of the image that the evidence covers.
            Default: 0.1.
        tv_weight: weight ``lambda_tv`` of the total variation. Default: 0.05.
        other_class_fraction: share of samples explained for a class other
            than the black box's prediction, so maps stay class-specific.
            Default: 0.25.
        other_class: which other class: ``"second"`` (the student's most
            likely class after the prediction) or ``"random"``. Default: ``"second"``.
        blur_kernel: Gaussian kernel of the blurred baseline ``b``. Default: 11.
        blur_sigma: its standard deviation. Default: 5 (as the insertion metric).

    Examples::

        >>> config = ExplainerConfig(epochs=5, optimizer="sgd")
        >>> config.resolved_lr(), config.resolved_weight_decay()
        (0.02, 0.0005)
    """

    epochs: int = 10
    warmup_epochs: float = 0.5
    preserve_weight: float = 1.0
    destroy_weight: float = 1.0
    area_weight: float = 2.0
    area_target: float | None = 0.1
    tv_weight: float = 0.05
    other_class_fraction: float = 0.25
    other_class: str = "second"
    blur_kernel: int = 11
    blur_sigma: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("preserve_weight", "destroy_weight", "area_weight", "tv_weight"):
            _non_negative(getattr(self, name), name)
        if self.area_target is not None:
            _fraction(self.area_target, "area_target", open_low=True)
        _fraction(self.other_class_fraction, "other_class_fraction")
        if self.other_class not in OTHER_CLASS_MODES:
            raise ValueError(
                f"`other_class` must be one of {OTHER_CLASS_MODES}; got {self.other_class!r}"
            )
        if not isinstance(self.blur_kernel, int) or self.blur_kernel < 1 or (
            self.blur_kernel % 2 == 0
        ):
            raise ValueError(f"`blur_kernel` must be a positive odd int; got {self.blur_kernel!r}")
        _positive(self.blur_sigma, "blur_sigma")

    def resolved_lr(self) -> float:
        """The peak learning rate, with ``lr=None`` resolved for the optimizer.

        Returns:
            ``lr`` if set, else 2e-3 for AdamW and 0.02 for SGD.
        """
        if self.lr is not None:
            return self.lr
        return 2e-3 if self.optimizer == "adamw" else 0.02

    def resolved_weight_decay(self) -> float:
        """The weight decay, with ``weight_decay=None`` resolved for the optimizer.

        Returns:
            ``weight_decay`` if set, else 1e-4 for AdamW and 5e-4 for SGD.
        """
        if self.weight_decay is not None:
            return self.weight_decay
        return 1e-4 if self.optimizer == "adamw" else 5e-4


ConfigT = TypeVar("ConfigT", DistillConfig, ExplainerConfig)


def resolve_config(
    cls: type[ConfigT], config: ConfigT | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> ConfigT:
    """Build a config from a config object or dict plus keyword overrides.

    Args:
        cls: :class:`DistillConfig` or :class:`ExplainerConfig`.
        config: an instance of ``cls``, a dict of its fields, or ``None`` for
            the defaults.
        overrides: fields that replace those of ``config``.

    Returns:
        A new, validated ``cls`` instance.

    Raises:
        TypeError: for a ``config`` of another type, or an unknown field
            (the message lists the valid ones).
        ValueError: for an invalid value (from the config's own checks).

    Examples::

        >>> from captum_akd.distill.config import DistillConfig, resolve_config
        >>> config = resolve_config(DistillConfig, {"epochs": 5}, {"lr": 1e-3})
        >>> config.epochs, config.lr
        (5, 0.001)
    """
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, cls):
        base = config.to_dict()
    elif isinstance(config, Mapping):
        base = dict(config)
    else:
        raise TypeError(
            f"`config` must be a {cls.__name__}, a dict or None; got {type(config).__name__}"
        )
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((set(base) | set(overrides)) - fields)
    if unknown:
        raise TypeError(
            f"unknown {cls.__name__} option(s) {unknown}; valid options: {sorted(fields)}"
        )
    base.update(overrides)
    return cls(**base)
