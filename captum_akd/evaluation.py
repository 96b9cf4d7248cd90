"""Run several saliency methods on the same images and score them on the black box.

This is the measuring core shared by ``captum-akd demo`` and the benchmark
harness: every number comes from :mod:`captum_akd.metrics`, computed with the
black-box model (never a surrogate), on one set of images, one class per image
(the model's prediction unless given) and one device. Per-image scores are
kept, so that every figure has a bootstrap interval and every method can be
compared with AKD image by image (``../design.md`` section 5):

- :func:`build_methods` and :func:`compare_methods`: the methods (and the
  three controls), their maps and every metric;
- :func:`bootstrap_cells`, :func:`paired_differences`, :func:`paired_goal`,
  :func:`combined_goal`, :func:`control_goals` and :func:`baseline_goals`: the
  intervals, the paired comparisons with AKD and the rule every goal follows
  (:data:`GOALS_RULE`);
  :meth:`Comparison.select` restricts all of it to a slice of the images;
- :func:`surrogate_ceiling`: RISE on the black box, RISE on the student and
  AKD, all judged by the black box;
- :func:`query_accounting` and :func:`break_even`: black-box images per
  explained image and when AKD's one-off distillation pays off.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from captum_akd._validation import call_black_box, check_images, resolve_target
from captum_akd.metrics import (
    BootstrapInterval,
    CausalMetricResult,
    ControlAttribution,
    PairedComparison,
    ROADResult,
    ThroughputResult,
    bootstrap_interval,
    confidence_change,
    deletion,
    energy_pointing_game,
    insertion,
    mean_pixel_intensity,
    paired_comparison,
    pointing_game,
    road,
    throughput,
)

if TYPE_CHECKING:
    from captum_akd.attribution import AttentiveDistillationAttribution
    from captum_akd.blackbox import CountingBlackBox

#: Method key (as ``--methods`` spells it) -> its label in every table.
METHOD_LABELS = {
    "akd": "AKD (ours)",
    "layercam": "Layer-wise CAM",
    "gradcam": "Grad-CAM",
    "rise": "RISE",
    "lime": "LIME",
    "rise-student": "RISE on student",
}
#: Control key -> label; "(control)" marks the row in every table and figure.
CONTROL_LABELS = {
    "noise": "Uniform noise (control)",
    "centre": "Centre Gaussian (control)",
    "edges": "Sobel edges (control)",
}
AKD_LABEL = METHOD_LABELS["akd"]
RISE_LABEL = METHOD_LABELS["rise"]
RISE_STUDENT_LABEL = METHOD_LABELS["rise-student"]
#: The caveat every table with Grad-CAM carries: it is the one white-box method.
GRADCAM_NOTE = "Grad-CAM reads the target's gradients (white-box access); the others do not."
#: What the surrogate-ceiling row is, for captions.
RISE_STUDENT_NOTE = (
    "RISE on student is RISE with the distilled student as its model (no black-box call), "
    "its maps judged by the black box like every other row: the surrogate ceiling."
)


@dataclass(frozen=True)
class Metric:
    """How one metric reads in tables and which way is better.

    Attributes:
        key: its key in :meth:`MethodResult.summary` and
            :meth:`MethodResult.per_image`.
        title: its column title.
        higher_is_better: ``True``/``False``, or ``None`` for a metric that
            has no better direction (mean intensity) and is never compared.
        digits: digits after the decimal point in tables.

    Examples::

        >>> from captum_akd.evaluation import METRICS
        >>> METRICS["deletion_blur"].higher_is_better, METRICS["insertion"].title
        (False, 'Insertion ↑')
    """

    key: str
    title: str
    higher_is_better: bool | None
    digits: int


#: Every per-image metric, in table order.
METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("insertion", "Insertion ↑", True, 4),
    Metric("deletion", "Deletion to 0 ↓", False, 4),
    Metric("deletion_blur", "Deletion to blur ↓", False, 4),
    Metric("road_morf", "ROAD MoRF ↓", False, 4),
    Metric("road_lerf", "ROAD LeRF ↑", True, 4),
    Metric("road_combined", "ROAD combined ↑", True, 4),
    Metric("mean_pixel_intensity", "Mean intensity", None, 3),
    Metric("average_drop", "Avg drop % ↓", False, 1),
    Metric("increase_in_confidence", "Increase % ↑", True, 1),
    Metric("pointing_game", "Pointing % ↑", True, 1),
    Metric("energy_pointing_game", "Energy PG % ↑", True, 1),
)}
#: The faithfulness metrics: the paired comparison with AKD reports these.
FAITHFULNESS = ("insertion", "deletion", "deletion_blur", "road_morf", "road_lerf",
                "road_combined")
#: The metrics of the surrogate ceiling (design 5; issue 22 measured these).
CEILING_METRICS = ("insertion", "deletion", "deletion_blur")


def build_methods(
    model: Any,
    attr: AttentiveDistillationAttribution,
    gradcam_layer: nn.Module,
    methods: Sequence[str] = tuple(METHOD_LABELS),
    *,
    controls: bool = True,
    rise_masks: int = 4000,
    rise_grid: int = 7,
    rise_p1: float = 0.5,
    lime_samples: int = 1000,
    perturbations_per_eval: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """The attributions to compare on one black box, labelled as in the tables.

    AKD and layer-wise surrogate CAM explain through the distilled student;
    Grad-CAM reads ``model``'s gradients at ``gradcam_layer`` (white box);
    RISE and LIME only call ``model``. "RISE on student" is RISE with the
    student as its model (the same masks, seed and settings as RISE): its
    maps, judged by the black box, are the surrogate ceiling of design 5. The
    three controls (:data:`CONTROL_LABELS`) follow the methods. The result is
    what :func:`compare_methods` takes.

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits, in eval mode;
            a :class:`~captum_akd.blackbox.CountingBlackBox` around it counts
            the methods' queries.
        attr: the distilled :class:`~captum_akd.AttentiveDistillationAttribution`
            (its student drives layer-wise CAM and RISE on student).
        gradcam_layer: the layer of ``model`` Grad-CAM explains (the last
            convolutional block, as a rule).
        methods: keys of :data:`METHOD_LABELS` (``"akd"``, ``"layercam"``,
            ``"gradcam"``, ``"rise"``, ``"lime"``, ``"rise-student"``), in the
            order wanted.
        controls: append the three controls (uniform noise seeded with
            ``seed``, centre Gaussian, Sobel edges).
        rise_masks: RISE's number of masks (4000 in the method paper).
        rise_grid: RISE's grid size ``s``.
        rise_p1: RISE's probability of keeping a grid cell.
        lime_samples: LIME's number of perturbed samples.
        perturbations_per_eval: perturbed images per black-box call of RISE
            and LIME; ``None`` keeps each method's own default.
        seed: seeds RISE's masks, LIME's samples and the noise control.
        progress: show RISE's progress bar over its black-box calls.

    Returns:
        Label -> attribution, in the order of ``methods``, then the controls.

    Raises:
        ValueError: a key of ``methods`` is not in :data:`METHOD_LABELS`.

    Examples::

        >>> from captum_akd import AttentiveDistillationAttribution
        >>> from captum_akd.evaluation import build_methods
        >>> from captum_akd.models import ExplanationNet, cifar_resnet_student
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> student = cifar_resnet_student(depth=8, num_classes=10)
        >>> attr = AttentiveDistillationAttribution(model, student,
        ...                                         ExplanationNet.for_student(student))
        >>> list(build_methods(model, attr, model.layer3, controls=False))
        ['AKD (ours)', 'Layer-wise CAM', 'Grad-CAM', 'RISE', 'LIME', 'RISE on student']
        >>> methods = build_methods(model, attr, model.layer3, ["rise", "akd"], rise_masks=50)
        >>> list(methods)
        ['RISE', 'AKD (ours)', 'Uniform noise (control)', 'Centre Gaussian (control)',
         'Sobel edges (control)']
        >>> methods["RISE"].n_masks
        50
    """
    from captum_akd.baselines import RISE, GradCAM, LayerwiseSurrogateCAM, LimeImage
    from captum_akd.metrics import CentreGaussianControl, SobelEdgeControl, UniformNoiseControl

    unknown = [key for key in methods if key not in METHOD_LABELS]
    if unknown:
        raise ValueError(f"`methods`: unknown {unknown}; choose from {', '.join(METHOD_LABELS)}")
    chunk = {} if perturbations_per_eval is None else {
        "perturbations_per_eval": perturbations_per_eval}
    rise = {"n_masks": rise_masks, "grid": rise_grid, "p1": rise_p1, "seed": seed,
            "show_progress": progress, **chunk}
    # A method left out is never built, so its settings are not checked either.
    makers = {
        "akd": lambda: attr,
        "layercam": lambda: LayerwiseSurrogateCAM(attr.student, forward_func=model),
        "gradcam": lambda: GradCAM(model, gradcam_layer),
        "rise": lambda: RISE(model, **rise),
        "lime": lambda: LimeImage(model, n_samples=lime_samples, seed=seed, **chunk),
        "rise-student": lambda: RISE(attr.student, **rise),
    }
    built = {METHOD_LABELS[key]: makers[key]() for key in methods}
    if controls:
        built[CONTROL_LABELS["noise"]] = UniformNoiseControl(model, seed=seed)
        built[CONTROL_LABELS["centre"]] = CentreGaussianControl(model)
        built[CONTROL_LABELS["edges"]] = SobelEdgeControl(model)
    return built


@dataclass
class MethodResult:
    """Every metric of one method on the evaluation images.

    A method may have been run on the first ``k`` images only (RISE on the
    student, ``method_images`` of :func:`compare_methods`), and ROAD on the
    first ones of those: every per-image tensor covers a prefix of the same
    images, so that methods are paired image by image on the prefix they share.

    Attributes:
        name: the method's label in tables.
        maps: ``N x 1 x H x W`` maps (on the CPU).
        insertion: insertion curves and areas (higher is better).
        deletion: deletion to 0 (the paper's), curves and areas (lower is better).
        mean_pixel_intensity: ``N`` values (lower is a more compact map).
        average_drop: average drop % (lower is better).
        increase_in_confidence: increase in confidence % (higher is better).
        drops: ``N`` per-image drops %.
        pointing_hits: ``N`` pointing-game hits, or ``None`` without masks.
        energy: ``N`` energy-pointing-game shares, or ``None`` without masks.
        speed: throughput of the method (images explained per second), or
            ``None`` where it was not timed.
        attribute_seconds: wall time of explaining all ``N`` images once.
        deletion_blur: deletion to blur, curves and areas (lower is better).
        road: ROAD on the first images (all tensors CPU), or ``None``.
        increases: ``N`` booleans, the masked score above the original.
        control: whether the row is a control
            (:class:`~captum_akd.metrics.ControlAttribution`).
        black_box_calls: black-box calls while explaining the ``N`` images,
            or ``None`` where nothing was counted.
        black_box_images: images passed through the black box meanwhile.

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> images = torch.randn(4, 3, 32, 32)
        >>> result = compare_methods(model, {"Grad-CAM": GradCAM(model, model.layer3)}, images,
        ...                          road_images=2, progress=False)["Grad-CAM"]
        >>> result.maps.shape, result.insertion.auc.shape, result.road.combined.shape
        (torch.Size([4, 1, 32, 32]), torch.Size([4]), torch.Size([2]))
        >>> result.summary()["insertion"] == result.insertion.mean
        True
        >>> sorted(result.per_image())[:4]
        ['average_drop', 'deletion', 'deletion_blur', 'increase_in_confidence']
    """

    name: str
    maps: Tensor
    insertion: CausalMetricResult
    deletion: CausalMetricResult
    mean_pixel_intensity: Tensor
    average_drop: float
    increase_in_confidence: float
    drops: Tensor
    pointing_hits: Tensor | None
    energy: Tensor | None
    speed: ThroughputResult | None
    attribute_seconds: float
    deletion_blur: CausalMetricResult | None = None
    road: ROADResult | None = None
    increases: Tensor | None = None
    control: bool = False
    black_box_calls: int | None = None
    black_box_images: int | None = None

    @property
    def n_images(self) -> int:
        """How many images the method explained."""
        return int(self.maps.shape[0])

    def per_image(self) -> dict[str, Tensor]:
        """Per-image scores of every metric measured, in the units of the tables.

        Returns:
            Metric key (of :data:`METRICS`) -> float tensor (CPU) of one score
            per image: areas and ROAD scores as they are, average drop,
            increase, pointing and energy in percent (an image's increase is 0
            or 100, so its mean is the share). Metrics not measured (ROAD,
            pointing without masks) are left out; ROAD's tensors are shorter
            when it ran on the first images only.
        """
        scores = {"insertion": self.insertion.auc, "deletion": self.deletion.auc}
        if self.deletion_blur is not None:
            scores["deletion_blur"] = self.deletion_blur.auc
        if self.road is not None:
            scores.update(road_morf=self.road.morf, road_lerf=self.road.lerf,
                          road_combined=self.road.combined)
        scores["mean_pixel_intensity"] = self.mean_pixel_intensity
        scores["average_drop"] = self.drops
        if self.increases is not None:
            scores["increase_in_confidence"] = self.increases.float() * 100
        if self.pointing_hits is not None:
            scores["pointing_game"] = self.pointing_hits.float() * 100
        if self.energy is not None:
            scores["energy_pointing_game"] = self.energy.float() * 100
        return {key: value.detach().float().cpu() for key, value in scores.items()}

    def summary(self) -> dict[str, Any]:
        """The headline numbers as a flat dict (what tables show).

        Returns:
            A dict with the mean of every metric of :data:`METRICS`
            (``"insertion"``, ``"deletion"``, ``"deletion_blur"``,
            ``"road_morf"``, ``"road_lerf"``, ``"road_combined"``,
            ``"mean_pixel_intensity"``, ``"average_drop"`` and
            ``"increase_in_confidence"`` in percent, ``"pointing_game"`` and
            ``"energy_pointing_game"`` in percent) and ``"images_per_second"``;
            every value a float, or ``None`` where it was not measured.
        """
        row: dict[str, Any] = {key: None for key in METRICS}
        row.update({key: float(scores.mean()) for key, scores in self.per_image().items()
                    if scores.numel()})
        # The metrics' own means, so that a table matches what they report.
        row["insertion"] = self.insertion.mean
        row["deletion"] = self.deletion.mean
        row["average_drop"] = self.average_drop
        row["increase_in_confidence"] = self.increase_in_confidence
        row["images_per_second"] = None if self.speed is None else self.speed.images_per_second
        return row

    def select(self, index: Tensor) -> MethodResult:
        """The same result restricted to some of its images (a slice of the data).

        Args:
            index: increasing positions among the evaluation images; those
                beyond the images this method (or its ROAD run) covered are
                skipped, so every method of a comparison can take one index.

        Returns:
            A :class:`MethodResult` of the selected images, with the means
            recomputed and the same speed and query counts (measured once,
            on all images).
        """
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        own = index[index < self.n_images]
        drops = self.drops[own]
        increases = None if self.increases is None else self.increases[own]
        share = math.nan
        if increases is None:  # not kept per image: the full run's share is all there is
            share = self.increase_in_confidence
        elif own.numel():
            share = float(increases.float().mean()) * 100
        return dataclasses.replace(
            self,
            maps=self.maps[own],
            insertion=_select_causal(self.insertion, own),
            deletion=_select_causal(self.deletion, own),
            deletion_blur=(None if self.deletion_blur is None
                           else _select_causal(self.deletion_blur, own)),
            road=None if self.road is None else _select_road(self.road, index),
            mean_pixel_intensity=self.mean_pixel_intensity[own],
            average_drop=float(drops.mean()) if own.numel() else math.nan,
            increase_in_confidence=share,
            drops=drops,
            increases=increases,
            pointing_hits=None if self.pointing_hits is None else self.pointing_hits[own],
            energy=None if self.energy is None else self.energy[own],
        )


def _select_causal(result: CausalMetricResult, own: Tensor) -> CausalMetricResult:
    """Insertion or deletion of some images: a frozen result rebuilt, mean included."""
    auc = result.auc[own]
    return dataclasses.replace(result, curves=result.curves[own], auc=auc,
                               target=result.target[own],
                               mean=float(auc.mean()) if own.numel() else math.nan)


def _select_road(result: ROADResult, index: Tensor) -> ROADResult:
    """ROAD of the selected images among the first ones it ran on."""
    own = index[index < result.combined.numel()]
    return dataclasses.replace(
        result, morf_curves=result.morf_curves[own], lerf_curves=result.lerf_curves[own],
        morf=result.morf[own], lerf=result.lerf[own], combined=result.combined[own],
        original=result.original[own], target=result.target[own])


def _cpu(result: Any) -> Any:
    """A metric's frozen result with its tensors on the CPU, for tables, JSON and slices."""
    moved = {f.name: getattr(result, f.name).cpu() for f in dataclasses.fields(result)
             if isinstance(getattr(result, f.name), Tensor)}
    return dataclasses.replace(result, **moved)


@dataclass
class Comparison:
    """Results of :func:`compare_methods`.

    Index it by method name (``comparison["RISE"]``) to get that method's
    :class:`MethodResult`; an unknown name raises ``KeyError``.

    Attributes:
        methods: one :class:`MethodResult` per method, in the order given.
        labels: ``N`` classes explained (the model's prediction unless given).
        inference: the black box's plain inference throughput, same images,
            batch and device: the reference row of speed tables.
        settings: the parameters of the run (step, batch size, ...).

    Examples::

        >>> from captum_akd.baselines import RISE
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> comparison = compare_methods(model, {"RISE": RISE(model, n_masks=64)},
        ...                              torch.randn(4, 3, 32, 32), progress=False)
        >>> [result.name for result in comparison.methods]
        ['RISE']
        >>> comparison.labels.shape, comparison.settings["image_size"]
        (torch.Size([4]), [32, 32])
        >>> comparison["RISE"].speed.images_per_second < comparison.inference.images_per_second
        True
        >>> comparison.select(torch.tensor([0, 2]))["RISE"].insertion.auc.shape
        torch.Size([2])
    """

    methods: list[MethodResult]
    labels: Tensor
    inference: ThroughputResult
    settings: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> MethodResult:
        for result in self.methods:
            if result.name == name:
                return result
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(result.name == name for result in self.methods)

    def select(self, index: Tensor) -> Comparison:
        """The comparison restricted to some of its images (see :meth:`MethodResult.select`).

        Args:
            index: increasing positions among the evaluation images.

        Returns:
            A :class:`Comparison` of those images; speeds are the full run's.
        """
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        methods = [r.select(index) for r in self.methods]
        return Comparison(methods, self.labels[index], self.inference,
                          {**self.settings, "n_images": int(index.numel()),
                           **_method_settings(methods)})

    def join(self, other: Comparison, order: Sequence[str] | None = None) -> Comparison:
        """This comparison's methods and ``other``'s, on the same images, as one.

        How a run adds slow methods on a few images to fast ones scored on
        more: ``fast.select(first_k).join(slow)``.

        Args:
            other: a comparison of the same images and classes (methods this
                one already has are taken from this one).
            order: method names in the order wanted; ``None``: this
                comparison's methods, then ``other``'s new ones.

        Returns:
            A :class:`Comparison` whose ``inference`` reference and settings
            are this one's, with the per-method settings of every method.

        Raises:
            ValueError: if the two explained other classes (other images,
                or a black box that is not deterministic).

        Examples::

            >>> from captum_akd.baselines import RISE
            >>> from captum_akd.metrics import UniformNoiseControl
            >>> from captum_akd.zoo import cifar_resnet20
            >>> model, x = cifar_resnet20().eval(), torch.randn(4, 3, 32, 32)
            >>> fast = compare_methods(model, {"Noise": UniformNoiseControl(model)}, x,
            ...                        progress=False)
            >>> slow = compare_methods(model, {"RISE": RISE(model, n_masks=32)}, x[:2],
            ...                        progress=False)
            >>> both = fast.select(torch.arange(2)).join(slow, order=["RISE", "Noise"])
            >>> [r.name for r in both.methods], both.settings["method_images"]
            (['RISE', 'Noise'], {'RISE': 2, 'Noise': 2})
        """
        if not torch.equal(self.labels, other.labels):
            raise ValueError("`other` explained other classes: join comparisons of the same "
                             "images and a deterministic black box")
        by_name = {r.name: r for r in (*other.methods, *self.methods)}
        if order is None:
            order = [*(r.name for r in self.methods),
                     *(r.name for r in other.methods if r.name not in self)]
        methods = [by_name[name] for name in order if name in by_name]
        return Comparison(methods, self.labels, self.inference,
                          {**self.settings, **_method_settings(methods)})


def _method_settings(results: Sequence[MethodResult]) -> dict[str, dict[str, Any]]:
    """The per-method entries of a comparison's settings, read from its results."""
    return {
        "speed_images": {r.name: None if r.speed is None else r.speed.n_images
                         for r in results},
        "method_images": {r.name: r.n_images for r in results},
        "road_images": {r.name: 0 if r.road is None else int(r.road.combined.numel())
                        for r in results},
    }


def compare_methods(
    model: Any,
    methods: Mapping[str, Any],
    images: Tensor,
    *,
    target: Any = None,
    masks: Tensor | None = None,
    step: int | None = None,
    batch_size: int = 64,
    speed_images: Mapping[str, int] | None = None,
    method_images: Mapping[str, int] | None = None,
    road_images: int | None = None,
    road_threads: int = 1,
    counter: CountingBlackBox | None = None,
    tolerance: float = 15,
    reference_size: int = 224,
    progress: bool = True,
) -> Comparison:
    """Explain ``images`` with every method and compute every metric on ``model``.

    The metrics (design 5): insertion, deletion to 0 (the paper's) and to
    blur, ROAD most and least relevant first and combined, average drop,
    increase in confidence, mean pixel intensity, the pointing games where
    ``masks`` are given, and throughput; all per image, all on ``model``.

    Args:
        model: the black box, ``N x C x H x W -> N x K`` logits, in eval mode.
            The metrics call it directly (not through ``counter``).
        methods: name -> attribution (anything with ``attribute(inputs,
            target=...)`` returning ``N x 1 x H x W`` or input-shaped maps).
            :class:`~captum_akd.metrics.ControlAttribution` rows are marked
            as controls.
        images: ``N x C x H x W`` in the model's input space.
        target: classes to explain (Captum forms); ``None`` takes the model's
            prediction, so every method explains the same class.
        masks: optional ``N x 1 x H x W`` ground-truth masks for the pointing
            games.
        step: pixels per insertion/deletion step (``None``: one row).
        batch_size: images per call for attributions, metrics and timing.
        speed_images: name -> how many of the images to time that method on
            (default: all), right after its attribution pass (which serves as
            the warm-up); slow perturbation methods may use fewer, and 0
            leaves a method untimed (``speed`` is ``None``).
        method_images: name -> explain and score only the first ``k`` images
            with that method (default: all), for a slow diagnostic row.
        road_images: run ROAD on the first ``k`` images only (``None``: all;
            0: no ROAD). It solves ``2 x 9`` sparse systems per image and map,
            about 20 ms at 32 x 32 px and 1.4-1.9 s at 224 x 224 on one core.
        road_threads: threads solving ROAD's imputations (results do not
            depend on it).
        counter: the :class:`~captum_akd.blackbox.CountingBlackBox` the
            methods were built on; each method's calls and images through it
            while explaining are recorded (timing runs are not counted).
        tolerance: pointing-game tolerance in pixels at ``reference_size``.
        reference_size: image size at which ``tolerance`` holds.
        progress: show a progress bar over methods.

    Returns:
        A :class:`Comparison`: per method the ``N x 1 x H x W`` maps (CPU) and
        every metric, plus the ``N`` labels explained and the black box's own
        inference speed.

    Examples::

        >>> from captum_akd.baselines import RISE, GradCAM
        >>> from captum_akd.blackbox import CountingBlackBox
        >>> from captum_akd.evaluation import compare_methods
        >>> from captum_akd.metrics import SobelEdgeControl
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> counted = CountingBlackBox(model)
        >>> images = torch.randn(4, 3, 32, 32)
        >>> methods = {"Grad-CAM": GradCAM(model, model.layer3),
        ...            "RISE": RISE(counted, n_masks=64), "Edges": SobelEdgeControl(model)}
        >>> comparison = compare_methods(model, methods, images, counter=counted,
        ...                              method_images={"RISE": 2}, road_images=1,
        ...                              progress=False)
        >>> comparison["RISE"].maps.shape, comparison.settings["step"]
        (torch.Size([2, 1, 32, 32]), 32)
        >>> comparison["RISE"].black_box_images, comparison["Edges"].control
        (128, True)
    """
    check_images(images, "images")
    n = images.shape[0]
    if target is None:
        labels = call_black_box(model, images, batch_size=batch_size).argmax(dim=1)
    else:
        labels = resolve_target(target, n, None, images.device)
    inference = throughput(model, images, batch_size=batch_size)
    speed_images = dict(speed_images or {})
    method_images = dict(method_images or {})
    results = []
    bar = tqdm(methods.items(), desc="methods", disable=not progress)
    for name, method in bar:
        bar.set_postfix_str(name)
        k = max(1, min(method_images.get(name, n), n))
        x, y = images[:k], labels[:k]
        counted = (counter.calls, counter.images) if counter is not None else None
        started = time.perf_counter()
        maps = method.attribute(x, target=y, internal_batch_size=batch_size)
        seconds = time.perf_counter() - started
        if counter is not None:
            calls, queried = counter.calls - counted[0], counter.images - counted[1]
        else:
            calls = queried = None
        if isinstance(maps, tuple):
            maps = maps[0]
        maps = maps.detach()
        if maps.shape[1] != 1:
            maps = maps.mean(dim=1, keepdim=True)
        ins = insertion(model, x, maps, y, step=step, batch_size=batch_size)
        dele = deletion(model, x, maps, y, step=step, batch_size=batch_size)
        blur = deletion(model, x, maps, y, step=step, batch_size=batch_size, substrate="blur")
        conf = confidence_change(model, x, maps, y, batch_size=batch_size)
        k_road = k if road_images is None else min(road_images, k)
        removed = None
        if k_road > 0:
            removed = _cpu(road(model, x[:k_road], maps[:k_road], y[:k_road],
                                batch_size=batch_size, num_threads=road_threads))
        hits = energy = None
        if masks is not None:
            hits = pointing_game(maps, masks[:k], tolerance, reference_size).cpu()
            energy = energy_pointing_game(maps, masks[:k]).cpu()
        timed = min(speed_images.get(name, k), k)
        speed = None
        if timed > 0:
            # The attribution pass above, same batches and device, was the warm-up
            # (a separate one would cost RISE thousands of model calls more).
            speed = throughput(method, x[:timed], target=y[:timed], batch_size=batch_size,
                               warmup=0, repeats=1 if timed < n else 2)
        results.append(
            MethodResult(
                name=name,
                maps=maps.cpu(),
                insertion=_cpu(ins),
                deletion=_cpu(dele),
                mean_pixel_intensity=mean_pixel_intensity(maps).cpu(),
                average_drop=conf.average_drop,
                increase_in_confidence=conf.increase_in_confidence,
                drops=conf.drops.cpu(),
                pointing_hits=hits,
                energy=energy,
                speed=speed,
                attribute_seconds=seconds,
                deletion_blur=_cpu(blur),
                road=removed,
                increases=(conf.masked_scores > conf.original_scores).cpu(),
                control=isinstance(method, ControlAttribution),
                black_box_calls=calls,
                black_box_images=queried,
            )
        )
    settings = {
        "n_images": n,
        "image_size": list(images.shape[-2:]),
        "step": results[0].insertion.step if results else step,
        "batch_size": batch_size,
        **_method_settings(results),
        "road_percentiles": next((list(r.road.percentiles) for r in results if r.road), None),
        "threads": torch.get_num_threads(),
        "device": str(images.device),
        "pointing_tolerance_px": tolerance * min(images.shape[-2:]) / reference_size,
    }
    return Comparison(results, labels.cpu(), inference, settings)


# ------------------------------------------------------------------ statistics


def bootstrap_cells(
    comparison: Comparison,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, dict[str, BootstrapInterval]]:
    """Every table cell of a comparison: the mean with its bootstrap interval.

    Args:
        comparison: what :func:`compare_methods` returned.
        confidence: the intervals' coverage.
        n_resamples: bootstrap resamples per cell (10,000 in the benchmarks).
        seed: seed of every cell's resamples.

    Returns:
        Method name -> metric key -> :class:`~captum_akd.metrics.BootstrapInterval`
        of its per-image scores (:meth:`MethodResult.per_image`).

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.evaluation import bootstrap_cells, compare_methods
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> comparison = compare_methods(model, {"Grad-CAM": GradCAM(model, model.layer3)},
        ...                              torch.randn(4, 3, 32, 32), road_images=0,
        ...                              progress=False)
        >>> cell = bootstrap_cells(comparison, n_resamples=500)["Grad-CAM"]["insertion"]
        >>> cell.low <= cell.mean <= cell.high, cell.n
        (True, 4)
    """
    return {
        r.name: {key: bootstrap_interval(scores, confidence, n_resamples, seed)
                 for key, scores in r.per_image().items() if scores.numel()}
        for r in comparison.methods
    }


def paired_differences(
    comparison: Comparison,
    reference: str = AKD_LABEL,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, dict[str, PairedComparison]]:
    """Every method against ``reference`` by the paired per-image difference.

    For each method and metric, :func:`~captum_akd.metrics.paired_comparison`
    of the method's scores with the reference's on the images both were
    scored on (the prefix they share), in the metric's direction
    (:data:`METRICS`): the verdict is the method's, relative to the reference.

    Args:
        comparison: what :func:`compare_methods` returned.
        reference: the method every other is compared with (AKD).
        metrics: metric keys (default: every metric with a direction both have).
        confidence: the intervals' coverage.
        n_resamples: bootstrap resamples (10,000 in the benchmarks).
        seed: seed of the resamples.

    Returns:
        Method name (every one but ``reference``) -> metric key ->
        :class:`~captum_akd.metrics.PairedComparison`; empty when
        ``reference`` is not in the comparison.

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.evaluation import compare_methods, paired_differences
        >>> from captum_akd.metrics import UniformNoiseControl
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> methods = {"Grad-CAM": GradCAM(model, model.layer3),
        ...            "Noise": UniformNoiseControl(model)}
        >>> comparison = compare_methods(model, methods, torch.randn(4, 3, 32, 32),
        ...                              road_images=0, progress=False)
        >>> paired = paired_differences(comparison, "Grad-CAM", n_resamples=500)
        >>> list(paired), paired["Noise"]["deletion"].higher_is_better
        (['Noise'], False)
    """
    if reference not in comparison:
        return {}
    ref = comparison[reference].per_image()
    out: dict[str, dict[str, PairedComparison]] = {}
    for r in comparison.methods:
        if r.name == reference:
            continue
        mine = r.per_image()
        keys = metrics if metrics is not None else [
            k for k, m in METRICS.items() if m.higher_is_better is not None]
        out[r.name] = {}
        for key in keys:
            if key not in mine or key not in ref:
                continue
            k = min(mine[key].numel(), ref[key].numel())
            if k == 0:
                continue
            out[r.name][key] = paired_comparison(
                mine[key][:k], ref[key][:k], METRICS[key].higher_is_better, confidence,
                n_resamples, seed)
    return out


#: The rule every goal follows, as table captions state it.
GOALS_RULE = (
    "A goal comparing AKD with another method (or with a threshold) is decided by the paired "
    "per-image difference and its 95 % bootstrap interval (seeded resamples): the "
    "verdict is 'better' or 'worse' only where the interval excludes 0, else 'tie'. A goal "
    "'at least as good' (>=, <=) holds when the verdict is better or tie; a goal 'better "
    "than' (beats) holds only when it is better. The verdict is in every row. Goals on one "
    "measurement (accuracy, agreement, speed) compare that number directly (no verdict)."
)


def paired_goal(
    goal: str,
    scores: Any,
    reference: Any,
    higher_is_better: bool,
    *,
    strict: bool = False,
    digits: int = 4,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Decide one goal "AKD is at least as good as X" (or "better than X") by the interval.

    The rule of :data:`GOALS_RULE`: the paired per-image difference
    ``scores - reference`` and its bootstrap interval give a verdict
    (:func:`~captum_akd.metrics.paired_comparison`); the goal holds when it
    is ``"better"``, or ``"tie"`` unless ``strict``.

    Args:
        goal: the goal's text, e.g. ``"AKD deletion <= Grad-CAM"``.
        scores: per-image scores of the method the goal is about (AKD).
        reference: per-image scores of the other method on the same images,
            or one number (a threshold every image is compared with).
        higher_is_better: the metric's direction.
        strict: the goal is "better than" (a tie does not hold).
        digits: digits of the numbers in ``"measured"``.
        confidence: the interval's coverage.
        n_resamples: bootstrap resamples (10,000 in the benchmarks).
        seed: seed of the resamples.

    Returns:
        ``{"goal", "holds", "verdict", "rule", "measured", "difference",
        "low", "high", "images"}``; ``"measured"`` reads like
        ``"0.9245 vs 0.9481: difference -0.0236 [-0.0410, -0.0080], worse"``.

    Examples::

        >>> from captum_akd.evaluation import paired_goal
        >>> akd, gradcam = [0.10, 0.30, 0.12, 0.28], [0.20, 0.20, 0.20, 0.20]
        >>> row = paired_goal("AKD deletion <= Grad-CAM", akd, gradcam, False,
        ...                   n_resamples=1000)
        >>> row["verdict"], row["holds"]
        ('tie', True)
        >>> paired_goal("AKD deletion < Grad-CAM", akd, gradcam, False, strict=True,
        ...             n_resamples=1000)["holds"]
        False
        >>> paired_goal("AKD pointing >= 90 %", [100.0, 100.0, 100.0], 90.0, True,
        ...             digits=1, n_resamples=1000)["measured"]
        '100.0 vs 90.0: difference +10.0 [+10.0, +10.0], better'
    """
    a = torch.as_tensor(scores, dtype=torch.float64).flatten()
    if isinstance(reference, (int, float)):
        b = torch.full_like(a, float(reference))
    else:
        b = torch.as_tensor(reference, dtype=torch.float64).flatten()
    k = min(a.numel(), b.numel())
    result = paired_comparison(a[:k], b[:k], higher_is_better, confidence, n_resamples, seed)
    holds = result.verdict == "better" or (result.verdict == "tie" and not strict)
    d = digits
    return {
        "goal": goal,
        "holds": holds,
        "verdict": result.verdict,
        "rule": "better" if strict else "better or tie",
        "measured": f"{float(a[:k].mean()):.{d}f} vs {float(b[:k].mean()):.{d}f}: difference "
                    f"{result.difference:+.{d}f} [{result.low:+.{d}f}, {result.high:+.{d}f}], "
                    f"{result.verdict}",
        "difference": result.difference,
        "low": result.low,
        "high": result.high,
        "images": k,
    }


def combined_goal(goal: str, parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One goal against several methods at once ("beats every control"): all must hold.

    Args:
        goal: the goal's text.
        parts: other method's name -> its :func:`paired_goal` row.

    Returns:
        A row like :func:`paired_goal`'s: ``"holds"`` only when every part
        holds, ``"verdict"`` and ``"measured"`` naming each part, and the
        parts under ``"parts"``.

    Examples::

        >>> from captum_akd.evaluation import combined_goal, paired_goal
        >>> akd = [0.9, 0.8, 0.85]
        >>> parts = {name: paired_goal("", akd, other, True, strict=True, n_resamples=500)
        ...          for name, other in {"noise": [0.5, 0.4, 0.45], "edges": [0.9, 0.8, 0.86]}
        ...          .items()}
        >>> row = combined_goal("AKD beats every control on insertion", parts)
        >>> row["holds"], row["verdict"]
        (False, 'better vs noise; tie vs edges')
    """
    return {
        "goal": goal,
        "holds": all(p["holds"] for p in parts.values()),
        "verdict": "; ".join(f"{p['verdict']} vs {name}" for name, p in parts.items()),
        "rule": next((p["rule"] for p in parts.values()), None),
        "measured": "; ".join(f"{name}: {p['measured']}" for name, p in parts.items()),
        "images": min((p["images"] for p in parts.values()), default=None),
        "parts": {name: dict(p) for name, p in parts.items()},
    }


#: The metrics on which a method must beat every control to be called useful.
CONTROL_GOAL_METRICS = ("insertion", "deletion_blur", "road_combined")
#: The four metrics AKD's claim against a baseline is made on: both deletions
#: and ROAD, so that a map cannot win on the paper's deletion alone by scattered
#: pixels.
CLAIM_METRICS = ("insertion", "deletion", "deletion_blur", "road_combined")


def _goal_label(metric: Metric) -> str:
    """A metric's name inside a goal's text ("deletion to blur", "ROAD combined")."""
    return metric.title.rstrip(" ↑↓").lower().replace("road", "ROAD")


def control_goals(
    comparison: Comparison,
    reference: str = AKD_LABEL,
    metrics: Sequence[str] = CONTROL_GOAL_METRICS,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The goals "AKD beats every control on X": a method is useful only where it does.

    For each metric, AKD must be "better" (strictly: a tie does not do) than
    each control row of the comparison by the paired interval
    (:func:`paired_goal`, :func:`combined_goal`).

    Args:
        comparison: what :func:`compare_methods` returned, with control rows.
        reference: the method judged (AKD).
        metrics: metric keys (default: insertion, deletion to blur and ROAD's
            combined score, the ones the controls do not game).
        confidence: the intervals' coverage.
        n_resamples: bootstrap resamples (10,000 in the benchmarks).
        seed: seed of the resamples.

    Returns:
        One :func:`combined_goal` row per metric both AKD and the controls
        have; none without AKD or controls.

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.evaluation import compare_methods, control_goals
        >>> from captum_akd.metrics import CentreGaussianControl, UniformNoiseControl
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> methods = {"AKD (ours)": GradCAM(model, model.layer3),    # stands in for AKD
        ...            "Noise": UniformNoiseControl(model), "Centre": CentreGaussianControl(model)}
        >>> comparison = compare_methods(model, methods, torch.randn(3, 3, 32, 32),
        ...                              road_images=0, progress=False)
        >>> [row["goal"] for row in control_goals(comparison, n_resamples=500)]
        ['AKD beats every control on insertion', 'AKD beats every control on deletion to blur']
    """
    controls = [r for r in comparison.methods if r.control]
    if reference not in comparison or not controls:
        return []
    mine = comparison[reference].per_image()
    goals = []
    for key in metrics:
        if key not in mine or not all(key in r.per_image() for r in controls):
            continue
        metric = METRICS[key]
        parts = {r.name: paired_goal("", mine[key], r.per_image()[key],
                                     bool(metric.higher_is_better), strict=True,
                                     digits=metric.digits, confidence=confidence,
                                     n_resamples=n_resamples, seed=seed)
                 for r in controls}
        label = _goal_label(metric)
        goals.append(combined_goal(f"AKD beats every control on {label}", parts))
    return goals


def baseline_goals(
    comparison: Comparison,
    baseline: str,
    reference: str = AKD_LABEL,
    metrics: Sequence[str] = CLAIM_METRICS,
    better_on: int = 2,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The goals of AKD's claim against one baseline: never worse, better on some.

    One row per metric, "AKD <metric> >= <baseline>" (``<=`` where lower is
    better), which holds unless the paired interval says AKD is worse
    (:func:`paired_goal`); then one row "AKD better than <baseline> on at
    least ``better_on`` of them", which holds when that many of those rows
    have the verdict "better". Both are decided on the images both methods
    were scored on.

    Args:
        comparison: what :func:`compare_methods` returned.
        baseline: the row AKD is compared with (e.g. ``"Grad-CAM"``).
        reference: the method judged (AKD).
        metrics: metric keys (default :data:`CLAIM_METRICS`: insertion, both
            deletions and ROAD combined).
        better_on: how many of ``metrics`` need a "better" verdict (``0``:
            no such row).
        confidence: the intervals' coverage.
        n_resamples: bootstrap resamples (10,000 in the benchmarks).
        seed: seed of the resamples.

    Returns:
        ``len(metrics)`` :func:`paired_goal` rows (metrics either method lacks
        are skipped), then the "better on at least" row, whose ``"parts"``
        are the per-metric rows; ``[]`` when either method is missing.

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.evaluation import baseline_goals, compare_methods
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> methods = {"AKD (ours)": GradCAM(model, model.layer3),    # stands in for AKD
        ...            "Grad-CAM": GradCAM(model, model.layer2)}
        >>> comparison = compare_methods(model, methods, torch.randn(3, 3, 32, 32),
        ...                              road_images=0, progress=False)
        >>> for row in baseline_goals(comparison, "Grad-CAM", n_resamples=500):
        ...     print(row["goal"])
        AKD insertion >= Grad-CAM
        AKD deletion to 0 <= Grad-CAM
        AKD deletion to blur <= Grad-CAM
        AKD better than Grad-CAM on at least 2 of these 3
    """
    if reference not in comparison or baseline not in comparison:
        return []
    mine, theirs = comparison[reference].per_image(), comparison[baseline].per_image()
    rows = {}
    for key in metrics:
        if key not in mine or key not in theirs:
            continue
        metric = METRICS[key]
        label = _goal_label(metric)
        sign = ">=" if metric.higher_is_better else "<="
        rows[label] = paired_goal(f"AKD {label} {sign} {baseline}", mine[key], theirs[key],
                                  bool(metric.higher_is_better), digits=metric.digits,
                                  confidence=confidence, n_resamples=n_resamples, seed=seed)
    goals = list(rows.values())
    if better_on and rows:
        better = [label for label, row in rows.items() if row["verdict"] == "better"]
        goals.append({
            "goal": f"AKD better than {baseline} on at least {better_on} of these {len(rows)}",
            "holds": len(better) >= better_on,
            "verdict": "; ".join(f"{row['verdict']} on {label}" for label, row in rows.items()),
            "rule": f"'better' on at least {better_on}",
            "measured": f"better on {len(better)}" + (f" ({', '.join(better)})" if better
                                                      else ""),
            "images": min(row["images"] for row in rows.values()),
            "parts": {label: dict(row) for label, row in rows.items()},
        })
    return goals


def surrogate_ceiling(
    comparison: Comparison,
    *,
    black_box_rise: str = RISE_LABEL,
    student_rise: str = RISE_STUDENT_LABEL,
    reference: str = AKD_LABEL,
    metrics: Sequence[str] = CEILING_METRICS,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """How much of RISE's quality survives the surrogate, and how much AKD keeps of that.

    RISE on the black box, RISE on the student and AKD are all judged by the
    black box on the images all three explained (the prefix they share). Per
    metric: the **transfer loss**, RISE on the black box minus RISE on the
    student, which no explainer of this student can recover; and the
    **explainer's own gap**, RISE on the student minus AKD. Both are paired
    per-image differences with their intervals, in the metric's own units
    (for deletion, where lower is better, a loss is negative); each verdict
    is the first method's against the second (``"better"``: the loss or gap
    is real).

    Args:
        comparison: what :func:`compare_methods` returned.
        black_box_rise: the label of RISE on the black box.
        student_rise: the label of RISE on the student.
        reference: the label of AKD.
        metrics: metric keys to report.
        confidence: the intervals' coverage.
        n_resamples: bootstrap resamples (10,000 in the benchmarks).
        seed: seed of the resamples.

    Returns:
        ``None`` unless all three ran; else ``{"images", "metrics": {key:
        {"rise_black_box", "rise_student", "akd", "transfer_loss",
        "explainer_gap"}}}`` with the three means and, for each gap,
        ``{"difference", "low", "high", "verdict"}``.

    Examples::

        >>> from captum_akd.baselines import RISE
        >>> from captum_akd.evaluation import compare_methods, surrogate_ceiling
        >>> from captum_akd.metrics import CentreGaussianControl
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
        >>> student = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 4))
        >>> methods = {"AKD (ours)": CentreGaussianControl(net),   # stands in for AKD
        ...            "RISE": RISE(net, n_masks=32), "RISE on student": RISE(student, n_masks=32)}
        >>> comparison = compare_methods(net, methods, torch.rand(3, 3, 16, 16), road_images=0,
        ...                              progress=False)
        >>> ceiling = surrogate_ceiling(comparison, n_resamples=500)
        >>> ceiling["images"], sorted(ceiling["metrics"]["insertion"])
        (3, ['akd', 'explainer_gap', 'rise_black_box', 'rise_student', 'transfer_loss'])
    """
    if not all(name in comparison for name in (black_box_rise, student_rise, reference)):
        return None
    rows = [comparison[name].per_image() for name in (black_box_rise, student_rise, reference)]
    out: dict[str, Any] = {"images": None, "metrics": {}}
    for key in metrics:
        if not all(key in row for row in rows):
            continue
        k = min(row[key].numel() for row in rows)
        bb, st, akd = (row[key][:k] for row in rows)
        stats = (bool(METRICS[key].higher_is_better), confidence, n_resamples, seed)
        out["images"] = k if out["images"] is None else min(out["images"], k)
        out["metrics"][key] = {
            "rise_black_box": float(bb.mean()), "rise_student": float(st.mean()),
            "akd": float(akd.mean()), "transfer_loss": _gap(bb, st, *stats),
            "explainer_gap": _gap(st, akd, *stats),
        }
    return out


def _gap(a: Tensor, b: Tensor, higher_is_better: bool, confidence: float, n_resamples: int,
         seed: int) -> dict[str, Any]:
    """A paired difference as JSON-ready numbers, the form results.json keeps."""
    p = paired_comparison(a, b, higher_is_better, confidence, n_resamples, seed)
    return {"difference": p.difference, "low": p.low, "high": p.high, "verdict": p.verdict}


# ------------------------------------------------------------ black-box queries


def break_even(one_off: float, per_image: float, other_per_image: float) -> int | None:
    """After how many explained images a one-off cost has paid for itself.

    A method that costs ``one_off`` queries up front and ``per_image`` per
    explained image has used fewer queries than one that costs
    ``other_per_image`` per image from ``n`` images on: the smallest ``n``
    with ``one_off + per_image * n < other_per_image * n``.

    Args:
        one_off: the up-front cost (AKD's distillation: black-box images).
        per_image: the cost per explained image of the same method (AKD: 0).
        other_per_image: the other method's cost per explained image.

    Returns:
        That ``n`` (at least 1), or ``None`` when the other method is never
        more expensive per image.

    Examples::

        >>> from captum_akd.evaluation import break_even
        >>> break_even(50_000, 0, 4000)      # 12 x 4000 = 48,000; 13 x 4000 = 52,000
        13
        >>> break_even(48_000, 0, 4000)      # equal at 12 is not fewer
        13
        >>> break_even(100, 1, 1) is None
        True
    """
    if other_per_image <= per_image:
        return None
    return max(1, math.floor(one_off / (other_per_image - per_image)) + 1)


def query_accounting(
    comparison: Comparison,
    one_off: Mapping[str, Any] | None,
    reference: str = AKD_LABEL,
) -> dict[str, Any]:
    """Black-box images and calls per explained image, AKD's one-off, the break-even points.

    Args:
        comparison: what :func:`compare_methods` returned with ``counter``.
        one_off: what ``reference`` cost before explaining anything (AKD's
            distillation): ``{"images", "calls"}`` (other keys are kept, e.g.
            what the count covers), or ``None`` where it was not counted.
        reference: the method with the one-off cost.

    Returns:
        ``{"one_off", "reference", "methods": {name: {"explained", "calls",
        "images", "calls_per_image", "images_per_image", "control"}},
        "break_even": {name: n or None}}``: the break-even number of
        explained images after which ``reference`` has passed fewer images
        through the black box than each method that queries it more per
        image (``None`` entries: never; no entry without a one-off count).

    Examples::

        >>> from captum_akd.baselines import RISE
        >>> from captum_akd.blackbox import CountingBlackBox
        >>> from captum_akd.evaluation import compare_methods, query_accounting
        >>> from captum_akd.metrics import CentreGaussianControl
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
        >>> counted = CountingBlackBox(net)
        >>> methods = {"AKD (ours)": CentreGaussianControl(counted),   # stands in for AKD
        ...            "RISE": RISE(counted, n_masks=50, grid=2)}
        >>> comparison = compare_methods(net, methods, torch.rand(2, 3, 8, 8), counter=counted,
        ...                              road_images=0, progress=False)
        >>> queries = query_accounting(comparison, {"images": 1000, "calls": 10})
        >>> queries["methods"]["RISE"]["images_per_image"], queries["break_even"]
        (50.0, {'RISE': 21})
    """
    rows: dict[str, Any] = {}
    for r in comparison.methods:
        n = r.n_images
        rows[r.name] = {
            "explained": n, "calls": r.black_box_calls, "images": r.black_box_images,
            "calls_per_image": None if r.black_box_calls is None else r.black_box_calls / n,
            "images_per_image": None if r.black_box_images is None else r.black_box_images / n,
            "control": r.control,
        }
    points: dict[str, int | None] = {}
    mine = rows.get(reference, {}).get("images_per_image")
    if one_off is not None and one_off.get("images") is not None and mine is not None:
        for name, row in rows.items():
            if name != reference and not row["control"] and row["images_per_image"]:
                if row["images_per_image"] > mine:
                    points[name] = break_even(one_off["images"], mine, row["images_per_image"])
    return {"one_off": None if one_off is None else dict(one_off), "reference": reference,
            "methods": rows, "break_even": points}
