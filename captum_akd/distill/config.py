"""Every setting of a training run, each written once: its default, its check and its help.

- :class:`RunConfig`: how a run is carried out (batch size, device, output
  directory, resume...), shared by both stages;
- :class:`DistillConfig`: the hyper-parameters of stage 1 (distillation);
- :class:`ExplainerConfig`: those of stage 2 (the explanation network).

Each field carries its help text and check in its metadata. The classes'
docstrings, the ``captum-akd distill`` options (see
:func:`~captum_akd.cli.add_config_arguments`) and the validation are all
generated from them, so a new setting is one field plus the code that uses it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, TypeVar

from captum_akd._validation import (
    check_flag,
    check_jpeg_quality,
    check_normalization,
    check_number,
    check_open_fraction,
    image_size_pair,
    one_of,
    optional_check,
    read_normalization,
)
from captum_akd.distill.augment import CROP_MODES

OPTIMIZERS = ("adamw", "sgd")
OTHER_CLASS_MODES = ("second", "random")
OBJECTIVES = ("area", "curve", "rise")
CURVE_TERMS = ("log", "probability")
PERTURB_CHOICES = ("both", "smooth", "scattered")
SUBSTRATE_CHOICES = ("both", "blur", "zero")
SELECTION_JUDGES = ("student", "black_box")
_POSITIVE = partial(check_number, strict=True)
_POSITIVE_INT = partial(check_number, strict=True, integer=True)
_FRACTION = partial(check_number, high=1.0)
_INT = partial(check_number, integer=True)


def _setting(default: Any, help: str, check: Callable[[Any, str], None] | None = None,
            **cli: Any) -> Any:
    """A field with its help, its check and hints for its command-line option (``flag``...)."""
    return field(default=default, metadata={"help": help, "check": check, "cli": cli})


def _describe(cls: type) -> str:
    """The field list appended to each config's docstring, from the fields themselves."""
    lines = ["", "    Fields (with their defaults):", ""]
    for f in dataclasses.fields(cls):
        lines.append(f"    - ``{f.name}`` ({_default_text(cls, f)}): {f.metadata['help']}.")
    return "\n".join(lines) + "\n"


def _default_text(cls: type, f: dataclasses.Field) -> str:
    """A default as the docs and ``--help`` show it (unset rates: their per-optimizer values)."""
    resolved = getattr(cls, f"DEFAULT_{f.name.upper()}", None)
    if f.default is None and resolved is not None:
        return ", ".join(f"{k} {v:g}" for k, v in resolved.items())
    if f.default is None:
        return "unset"
    return repr(f.default) if isinstance(f.default, str) else str(f.default)


class _Checked:
    """Runs every field's own check after ``__init__``, so bad values fail at once."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is not None:
                check(getattr(self, f.name), f.name)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (what a checkpoint stores).

        Returns:
            ``{field name: value}``.
        """
        return dataclasses.asdict(self)


@dataclass
class RunConfig(_Checked):
    """How a training run is carried out, the same for both stages.

    Pass one whole as ``run=`` to :func:`~captum_akd.distill.distill`,
    :func:`~captum_akd.distill.distill_student` or
    :func:`~captum_akd.distill.train_explainer`, or give its fields as keyword
    arguments (``batch_size=64, out="run/"``).

    Examples::

        >>> RunConfig(batch_size=64, image_size=32, normalization="cifar").image_size
        (32, 32)
        >>> RunConfig(normalization="0.5,0.5,0.5/0.25,0.25,0.25").normalization["std"]
        [0.25, 0.25, 0.25]
    """

    out: str | os.PathLike | None = _setting(
        None, "run directory: a loadable checkpoint plus training state, rewritten after "
        "every epoch", required=True, metavar="DIR", type=str)
    resume: bool = _setting(False, "continue the run saved in `out` (the same settings are "
                           "required; a missing `out` starts a new run)", check_flag)
    overwrite: bool = _setting(False, "start over in an `out` that already holds a checkpoint",
                              check_flag)
    batch_size: int = _setting(128, "images per batch and process", _POSITIVE_INT)
    image_size: tuple[int, int] | None = _setting(
        None, "resize every image to S x S or H x W; needed when images differ in size",
        type="image_size", metavar="S|HxW")
    normalization: dict[str, list[float]] | None = _setting(
        None, "the black box's input space as per-channel mean and std, recorded in the "
        "checkpoint: a preset ('imagenet', 'cifar', 'none') or M,M,M/S,S,S; explain images "
        "normalised the same way", check_normalization, flag="--normalize", type=str,
        metavar="PRESET|MEAN/STD")
    device: str | None = _setting(None, "cpu, cuda or cuda:N; unset picks CUDA when available",
                                 type=str)
    amp: bool | None = _setting(None, "mixed precision (bfloat16 autocast of the student); "
                                "unset turns it on with CUDA only", optional_check(check_flag),
                                boolean=True)
    seed: int = _setting(0, "seeds initialisation, data order, augmentation and class choices",
                        _INT)
    num_workers: int = _setting(0, "DataLoader worker processes (0: load in the main process)",
                               _INT, flag="--workers")
    quiet: bool = _setting(False, "no progress bars or log lines", check_flag)

    def __post_init__(self) -> None:
        self.image_size = image_size_pair(self.image_size)
        self.normalization = read_normalization(self.normalization)
        super().__post_init__()


@dataclass
class _Optimization(_Checked):
    """The fields both stages have; each stage sets its own defaults."""

    DEFAULT_LR: ClassVar[dict[str, float]] = {}
    DEFAULT_WEIGHT_DECAY: ClassVar[dict[str, float]] = {}

    epochs: int = _setting(10, "passes over the training data", _POSITIVE_INT)
    optimizer: str = _setting("adamw", "'adamw' or 'sgd' (Nesterov momentum)",
                             one_of(OPTIMIZERS), choices=OPTIMIZERS)
    lr: float | None = _setting(None, "peak learning rate, reached after warm-up and annealed "
                               "to 0 on a cosine", optional_check(_POSITIVE), type=float)
    weight_decay: float | None = _setting(
        None, "weight decay; never applied to biases, norms and attention gates",
        optional_check(check_number), type=float)
    momentum: float = _setting(0.9, "SGD momentum", check_number)
    warmup_epochs: float = _setting(0.5, "linear warm-up in epochs, may be fractional; capped at "
                                   "a fifth of the run", check_number)
    grad_clip: float | None = _setting(None, "clip the gradient norm to this value",
                                      optional_check(_POSITIVE), type=float)
    crop: str = _setting("pad", "random crop before the networks see a batch: 'pad' (pad and "
                        "crop back, for small images), 'resized' (random resized crop, for "
                        "photos) or 'none'", one_of(CROP_MODES), choices=CROP_MODES)
    padding: int | None = _setting(None, "padding of the 'pad' crop; unset is an eighth of the "
                                  "side", optional_check(_INT),
                                  type=int)
    flip: bool = _setting(True, "random horizontal flips", check_flag)
    patience: int | None = _setting(
        None, "stop once the held-out score has not improved for N epochs (the best epoch "
        "is kept either way); unset: run every epoch", optional_check(_POSITIVE_INT), type=int)

    def resolved_lr(self) -> float:
        """The peak learning rate, with ``lr=None`` resolved for the optimizer.

        Returns:
            ``lr`` if set, else this stage's default for the optimizer.
        """
        return self.lr if self.lr is not None else self.DEFAULT_LR[self.optimizer]

    def resolved_weight_decay(self) -> float:
        """The weight decay, with ``weight_decay=None`` resolved for the optimizer.

        Returns:
            ``weight_decay`` if set, else this stage's default for the optimizer.
        """
        if self.weight_decay is not None:
            return self.weight_decay
        return self.DEFAULT_WEIGHT_DECAY[self.optimizer]


@dataclass
class DistillConfig(_Optimization):
    """Stage 1: distilling the black box into the student (design 3.2).

    Stored in the checkpoint's JSON; a resumed run must use the same values.

    Examples::

        >>> DistillConfig(epochs=5, lr=1e-3).resolved_lr()
        0.001
        >>> DistillConfig(optimizer="sgd").resolved_lr()
        0.05
    """

    DEFAULT_LR: ClassVar[dict[str, float]] = {"adamw": 2e-3, "sgd": 0.05}
    DEFAULT_WEIGHT_DECAY: ClassVar[dict[str, float]] = {"adamw": 0.05, "sgd": 5e-4}
    #: What a fine-tuning run resolves unset settings to (measured: docs, "Fine-tuning").
    FINETUNE: ClassVar[dict[str, Any]] = {
        "lr": {"adamw": 2e-4, "sgd": 5e-3}, "warmup_epochs": 0.0, "freeze_backbone_epochs": 1}

    epochs: int = _setting(30, "passes over the training data", _POSITIVE_INT)
    warmup_epochs: float | None = _setting(
        None, "linear warm-up in epochs, may be fractional; capped at a fifth of the run; "
        "unset: 1 from scratch, 0 when fine-tuning", optional_check(check_number), type=float)
    finetune: bool | None = _setting(
        None, "fine-tuning defaults for a student that starts from trained weights: a tenth "
        "of the from-scratch learning rate, no warm-up, and the backbone frozen (only the "
        "attention blocks and head train) for the first epoch; explicit settings still win; "
        "unset: on when the student was built from weights or loaded from a checkpoint",
        optional_check(check_flag), boolean=True)
    freeze_backbone_epochs: int | None = _setting(
        None, "epochs at the start in which the backbone (stem and stages, batch-norm "
        "statistics included) stays as it is and only the attention blocks and the head "
        "train; unset: 1 when fine-tuning, else 0", optional_check(_INT),
        type=int)
    freeze_batchnorm: bool = _setting(
        False, "keep the backbone's batch-norm statistics as they are while its weights train "
        "(its batch-norm layers stay in eval mode), for fine-tuning on small, augmented "
        "batches: measured, it keeps held-out KL down over long fine-tuning runs at a low "
        "learning rate but costs agreement at the fine-tuning default rate", check_flag)
    perturb_share: float = _setting(
        0.0, "share of each batch replaced by partly removed copies (smooth or scattered masks "
        "over the blurred image or zeros, as insertion, deletion and ROAD show the black "
        "box), which the black box labels like any other view (its answer is also their "
        "hard label); 0 disables", _FRACTION)
    perturb_append: bool = _setting(
        False, "add the perturbed copies to each batch (it grows by perturb_share; every "
        "clean image stays) instead of replacing that share of its images", check_flag)
    perturb_masks: str = _setting("both", "mask kinds of those copies: 'smooth' (upsampled "
                                  "grids), 'scattered' (single pixels) or 'both'",
                                  one_of(PERTURB_CHOICES), choices=PERTURB_CHOICES)
    perturb_substrates: str = _setting("both", "what their removed pixels become: 'blur', "
                                       "'zero' or 'both'", one_of(SUBSTRATE_CHOICES),
                                       choices=SUBSTRATE_CHOICES)
    mixup: float = _setting(0.0, "mixup Beta parameter, 0 to disable", check_number)
    cutmix: float = _setting(0.0, "CutMix Beta parameter, 0 to disable: a box from another "
                            "image of the batch is pasted in and the black box labels the "
                            "result; with mixup too, each batch gets one of the two",
                            check_number)
    jpeg_quality: int | list[int] | None = _setting(
        None, "re-encode each augmented image as a JPEG of quality Q, or of one drawn per "
        "image from LOW HIGH, before both models see it (for data that are JPEGs already)",
        type=int, nargs="+", metavar="Q")
    temperature: float = _setting(4.0, "distillation temperature T", _POSITIVE)
    alpha: float = _setting(0.9, "weight of T^2 * KL(target || student) against (1 - alpha) "
                           "* cross-entropy on hard labels", _FRACTION)
    mutual_weight: float = _setting(1.0, "with a peer: weight of the mutual KL", check_number)
    attention_weight: float = _setting(1.0, "with a peer: weight of the local-attention "
                                      "Pearson loss", check_number)
    attention_grid: int = _setting(2, "with a peer: attention maps are cut into a k x k grid "
                                  "of local maps", _POSITIVE_INT)
    eval_every: int = _setting(1, "measure agreement on the held-out data every N epochs "
                              "(0: only after the last)", _INT)

    def __post_init__(self) -> None:
        check_jpeg_quality(self.jpeg_quality)
        # One form per setting, as the checkpoint's JSON stores it: Q or [LOW, HIGH].
        if isinstance(self.jpeg_quality, (list, tuple)):
            low, high = self.jpeg_quality[0], self.jpeg_quality[-1]
            self.jpeg_quality = low if len(self.jpeg_quality) == 1 else [low, high]
        super().__post_init__()

    def resolved(self, pretrained: bool) -> DistillConfig:
        """This config with every unset setting filled for a student that is or is not pretrained.

        Args:
            pretrained: whether the student starts from trained weights (its
                ``pretrained`` attribute); used when ``finetune`` is unset.

        Returns:
            A copy with ``finetune``, ``lr``, ``warmup_epochs`` and
            ``freeze_backbone_epochs`` set (explicit values are kept).

        Examples::

            >>> config = DistillConfig().resolved(pretrained=True)
            >>> config.finetune, config.lr, config.warmup_epochs, config.freeze_backbone_epochs
            (True, 0.0002, 0.0, 1)
            >>> DistillConfig(lr=1e-3).resolved(pretrained=False).lr
            0.001
        """
        finetune = pretrained if self.finetune is None else self.finetune
        base = self.FINETUNE if finetune else {
            "lr": self.DEFAULT_LR, "warmup_epochs": 1.0, "freeze_backbone_epochs": 0}
        lr = self.lr if self.lr is not None else base["lr"][self.optimizer]
        return dataclasses.replace(
            self, finetune=finetune, lr=lr,
            warmup_epochs=_first_set(self.warmup_epochs, base["warmup_epochs"]),
            freeze_backbone_epochs=_first_set(self.freeze_backbone_epochs,
                                              base["freeze_backbone_epochs"]))


def _first_set(value: Any, default: Any) -> Any:
    """An explicit setting wins over the mode's default."""
    return default if value is None else value


@dataclass
class ExplainerConfig(_Optimization):
    """Stage 2: training the explanation network on the frozen student (design 3.3).

    Stored in the checkpoint's JSON; a resumed run must use the same values.

    Examples::

        >>> config = ExplainerConfig(epochs=5, optimizer="sgd")
        >>> config.resolved_lr(), config.resolved_weight_decay()
        (0.02, 0.0005)
    """

    DEFAULT_LR: ClassVar[dict[str, float]] = {"adamw": 2e-3, "sgd": 0.02}
    DEFAULT_WEIGHT_DECAY: ClassVar[dict[str, float]] = {"adamw": 1e-4, "sgd": 5e-4}

    padding: int | None = _setting(None, "padding of the 'pad' crop; unset is a sixteenth of "
                                  "the side", optional_check(_INT),
                                  type=int)
    objective: str = _setting(
        "area", "what the masks are trained on: 'area' (one mask per image, kept near "
        "area_target) or 'curve' (the map's soft top-k masks at `budgets` shares drawn per "
        "image, each preserving and destroying the class, so the order of every pixel is "
        "trained, as insertion, deletion and ROAD read it) or 'rise' (the map's correlation "
        "with the student's scores on `rise_masks` random smooth masks per image, so it "
        "learns the order RISE run on the student would give)", one_of(OBJECTIVES),
        choices=OBJECTIVES)
    curve_terms: str = _setting(
        "log", "with 'curve': how preserve and destroy read the student's probability p of "
        "the class: 'log' (-log p and -log(1 - p)) or 'probability' (1 - p and p, the "
        "integrands of insertion and deletion, so no share dominates the loss)",
        one_of(CURVE_TERMS), choices=CURVE_TERMS)
    budgets: int = _setting(3, "with 'curve': kept shares per image, stratified on (0, 1)",
                           _POSITIVE_INT)
    budget_power: float = _setting(2.0, "with 'curve': each share is u ** p for its stratified "
                                  "u; p > 1 draws more small shares", _POSITIVE)
    topk_temperature: float = _setting(
        0.1, "with 'curve': the soft top-k mask is sigmoid((M - q) / (t * std(M))) around "
        "the map's per-image quantile q; t is this fraction", _POSITIVE)
    rise_masks: int = _setting(16, "with 'rise' or a rise_weight: random smooth masks per "
                               "image and step; each costs one student forward pass without "
                               "gradient", _POSITIVE_INT)
    rise_weight: float = _setting(
        0.0, "with 'area' or 'curve': weight of the RISE term (minus the map's correlation "
        "with the student's scores on `rise_masks` random smooth masks) added to their loss; "
        "0 leaves it out", check_number)
    rise_grid: int = _setting(7, "with 'rise' or a rise_weight: cells per side of each mask's "
                              "Bernoulli grid (as RISE's `grid`)", _POSITIVE_INT)
    rise_p1: float = _setting(0.5, "with 'rise' or a rise_weight: probability that a grid "
                              "cell is kept (as RISE's `p1`)", check_open_fraction)
    destroy_substrate: str = _setting(
        "blur", "what removed pixels become in the destroy term (with 'rise' or a "
        "rise_weight, also under each random mask): 'blur' (the blurred image), 'zero' "
        "(0 in the input space, as the paper's deletion and RISE) or 'both' (drawn per "
        "mask)",
        one_of(SUBSTRATE_CHOICES), choices=SUBSTRATE_CHOICES)
    preserve_weight: float = _setting(1.0, "weight of CE(student(M*x + (1-M)*b), c): the kept "
                                     "pixels must carry the class", check_number)
    destroy_weight: float = _setting(1.0, "weight of -log(1 - p(c | (1-M)*x + M*b)): removing "
                                    "the map must kill the class", check_number)
    area_weight: float = _setting(2.0, "weight of the area term", check_number)
    area_target: float | None = _setting(
        0.1, "share of the image a map should keep (smaller gives tighter, more peaked maps), "
        "or none for the plain mean(M) penalty",
        optional_check(check_open_fraction), type="optional_float",
        metavar="FRACTION|none")
    tv_weight: float = _setting(0.05, "weight of the total variation of M", check_number)
    other_class_fraction: float = _setting(0.25, "share of images explained for a class other "
                                          "than the black box's prediction, so maps stay "
                                          "class-specific", _FRACTION)
    other_class: str = _setting("second", "that other class: the student's second most likely "
                               "('second') or a random one ('random')",
                               one_of(OTHER_CLASS_MODES), choices=OTHER_CLASS_MODES)
    blur_kernel: int = _setting(11, "Gaussian kernel of the blurred image b that removed pixels "
                               "are replaced with (odd)", _POSITIVE_INT)
    blur_sigma: float = _setting(5.0, "standard deviation of that blur (5: as the insertion "
                                "metric)", _POSITIVE)
    select_on: str = _setting(
        "student", "whose answers choose the best epoch: 'student' (its coarse insertion minus "
        "deletion on held-out maps; the black box sees no masked image) or 'black_box' (the "
        "same read from the black box: 5 x (1 + substrates) queries per held-out image and "
        "epoch; the explainer is still trained only through the student)",
        one_of(SELECTION_JUDGES), choices=SELECTION_JUDGES)
    select_images: int | None = _setting(
        None, "with select_on='black_box' or restarts > 1: the black box judges only N "
        "held-out images (the first of each process's share, the same at every evaluation), "
        "so selection costs at most 5 x (1 + substrates) x N queries per epoch or restart; "
        "unset: every held-out image",
        optional_check(_POSITIVE_INT), type=int)
    restarts: int = _setting(
        1, "train the explainer this many times, restart r from seed `seed + r` (restart 0 "
        "as given, later ones freshly initialised), each keeping its best epoch, and keep "
        "the restart whose maps score best on the black box (coarse held-out insertion "
        "minus deletion, on `select_images` images when set: 5 x (1 + substrates) queries "
        "per image and restart); the explainer is still trained only through the student",
        _POSITIVE_INT)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.blur_kernel % 2 == 0:
            raise ValueError(f"`blur_kernel` must be a positive odd int; got {self.blur_kernel!r}")
        if self.objective == "rise" and self.rise_weight:
            raise ValueError("`rise_weight` adds the RISE term to the 'area' or 'curve' "
                             f"objective; with objective='rise' it must be 0, got "
                             f"{self.rise_weight!r}")


for _cls in (RunConfig, DistillConfig, ExplainerConfig):
    _cls.__doc__ += _describe(_cls)

ConfigT = TypeVar("ConfigT", RunConfig, DistillConfig, ExplainerConfig)


def resolve_config(
    cls: type[ConfigT], config: ConfigT | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> ConfigT:
    """Build a config from a config object or dict plus keyword overrides.

    Args:
        cls: :class:`RunConfig`, :class:`DistillConfig` or :class:`ExplainerConfig`.
        config: an instance of ``cls``, a dict of its fields, or ``None`` for
            the defaults.
        overrides: fields that replace those of ``config``.

    Returns:
        A new, validated ``cls`` instance.

    Raises:
        TypeError: for a ``config`` of another type, or an unknown field
            (the message lists the valid ones).
        ValueError: for an invalid value (from the field's own check).

    Examples::

        >>> config = resolve_config(DistillConfig, {"epochs": 5}, {"lr": 1e-3})
        >>> config.epochs, config.lr
        (5, 0.001)
    """
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, cls):
        base = {f.name: getattr(config, f.name) for f in dataclasses.fields(cls)}
    elif isinstance(config, Mapping):
        base = dict(config)
    else:
        raise TypeError(
            f"`config` must be a {cls.__name__}, a dict or None; got {type(config).__name__}"
        )
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((set(base) | set(overrides)) - names)
    if unknown:
        raise TypeError(
            f"unknown {cls.__name__} option(s) {unknown}; valid options: {sorted(names)}"
        )
    base.update(overrides)
    return cls(**base)
