"""Tables, figures and JSON for a :class:`~captum_akd.evaluation.Comparison`.

The demo and the benchmark harness both report through these functions, so
their tables read the same: laid out like the method paper's, one row per
method (controls marked) plus the black box's plain inference as the speed
reference, every cell a mean with its 95 % bootstrap interval
(:func:`markdown_table`); each method against AKD by the paired per-image
difference and its verdict (:func:`paired_table`); the goals
(:func:`goals_table`), the surrogate ceiling (:func:`ceiling_table`) and the
black-box queries (:func:`queries_table`); the JSON of every figure and
per-image score (:func:`comparison_to_dict`); the maps and curves as PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from torch import Tensor

from captum_akd._image_ops import minmax_normalize
from captum_akd.evaluation import (
    AKD_LABEL,
    FAITHFULNESS,
    METRICS,
    RISE_STUDENT_NOTE,
    Comparison,
    MethodResult,
    bootstrap_cells,
    paired_differences,
)
from captum_akd.metrics import BootstrapInterval, PairedComparison, ThroughputResult

#: The metrics of the full table, in order (keys of :data:`~captum_akd.evaluation.METRICS`).
ALL_METRICS = tuple(METRICS)


def display_name(result: MethodResult) -> str:
    """A method's label as tables and figures show it: controls say so.

    Args:
        result: one method's result.

    Returns:
        ``result.name``, with ``" (control)"`` appended for a control whose
        name does not already say it.

    Examples::

        >>> from captum_akd.evaluation import compare_methods
        >>> from captum_akd.metrics import CentreGaussianControl
        >>> from captum_akd.report import display_name
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2)).eval()
        >>> comparison = compare_methods(model, {"Centre": CentreGaussianControl(model)},
        ...                              torch.rand(2, 3, 8, 8), road_images=0, progress=False)
        >>> display_name(comparison["Centre"])
        'Centre (control)'
    """
    if result.control and "control" not in result.name.lower():
        return f"{result.name} (control)"
    return result.name


def _row(cells: Sequence[str]) -> str:
    """One Markdown table row (every table here is built from these)."""
    return "| " + " | ".join(cells) + " |"


def _head(titles: Sequence[str]) -> list[str]:
    """A Markdown table's header and separator lines."""
    return [_row(titles), "|" + "---|" * len(titles)]


def _signed(interval: Any, digits: int) -> str:
    """``"+0.012 [-0.003, +0.027]"``: a difference with its interval, signs shown."""
    return (f"{interval.difference:+.{digits}f} [{interval.low:+.{digits}f}, "
            f"{interval.high:+.{digits}f}]")


def markdown_table(
    comparison: Comparison,
    metrics: Sequence[str] | None = None,
    *,
    speed: bool = True,
    cells: Mapping[str, Mapping[str, BootstrapInterval]] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> str:
    """A Markdown table: one row per method, each cell a mean with its 95 % interval.

    Each metric cell is ``mean [low, high]``, the mean over images and its
    percentile-bootstrap interval (:func:`~captum_akd.evaluation.bootstrap_cells`,
    seeded). Columns without data (the pointing games without masks, ROAD
    where it did not run) are left out; control rows are marked ``(control)``.
    When methods were scored on different numbers of images (RISE on student
    on a subset, ROAD on the first images) an ``Images`` column says how many.
    With ``speed``, the last columns are each method's images per second
    (one measurement, no interval; ``–`` where not timed) and its ratio to
    the black box's plain inference on the same images, batch and device,
    and the final row is that inference itself.

    Args:
        comparison: what :func:`~captum_akd.evaluation.compare_methods` returned.
        metrics: metric keys, in column order (default: every one of
            :data:`~captum_akd.evaluation.METRICS`).
        speed: add the speed columns and the inference row.
        cells: intervals already computed by
            :func:`~captum_akd.evaluation.bootstrap_cells` (else computed here).
        confidence: the intervals' coverage.
        n_resamples: bootstrap resamples per cell.
        seed: seed of the resamples.

    Returns:
        The table as one string of newline-separated lines: a header, a
        separator and one row per method (plus the inference row with ``speed``).

    Examples::

        >>> from captum_akd.baselines import RISE
        >>> from captum_akd.evaluation import compare_methods
        >>> from captum_akd.metrics import UniformNoiseControl
        >>> from captum_akd.report import markdown_table
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.AdaptiveAvgPool2d(1),
        ...                             torch.nn.Flatten()).eval()
        >>> methods = {"RISE": RISE(model, n_masks=32), "Noise": UniformNoiseControl(model)}
        >>> comparison = compare_methods(model, methods, torch.rand(2, 3, 16, 16),
        ...                              road_images=0, progress=False)
        >>> table = markdown_table(comparison, n_resamples=200).splitlines()
        >>> print(table[0])
        | Method | Insertion ↑ | Deletion to 0 ↓ | Deletion to blur ↓ | ... | × inference |
        >>> [row.split(" | ")[0] for row in table[2:]]
        ['| RISE', '| Noise (control)', '| Normal inference']
        >>> print(markdown_table(comparison, ["insertion"], speed=False,
        ...                      n_resamples=200).splitlines()[2])
        | RISE | 0... [0..., 0...] |
    """
    cells = cells or bootstrap_cells(comparison, confidence, n_resamples, seed)
    keys = [k for k in (metrics or ALL_METRICS)
            if any(k in cells.get(r.name, {}) for r in comparison.methods)]
    with_road = any(k.startswith("road_") for k in keys)
    counts = {r.name: _images_text(r, with_road) for r in comparison.methods}
    n = comparison.labels.numel()
    uneven = any(text != str(n) for text in counts.values())
    head = ["Method"] + (["Images"] if uneven else []) + [METRICS[k].title for k in keys]
    if speed:
        head += ["Images/s ↑", "× inference"]
    reference = comparison.inference.images_per_second
    lines = _head(head)
    for result in comparison.methods:
        row = [display_name(result)] + ([counts[result.name]] if uneven else [])
        for key in keys:
            cell = cells.get(result.name, {}).get(key)
            row.append("–" if cell is None else cell.format(METRICS[key].digits))
        if speed:
            ips = None if result.speed is None else result.speed.images_per_second
            row += ["–", "–"] if ips is None else [f"{ips:.1f}", f"{ips / reference:.3g}"]
        lines.append(_row(row))
    if speed:
        blank = ["–"] * (len(head) - 3)
        lines.append(_row(["Normal inference"] + blank + [f"{reference:.1f}", "1"]))
    return "\n".join(lines)


def _images_text(result: MethodResult, with_road: bool) -> str:
    """How many images a row covers, ROAD's share too when it is shown and ran on fewer."""
    road = None if result.road is None else int(result.road.combined.numel())
    text = str(result.n_images)
    if with_road and road is not None and road != result.n_images:
        text += f" (ROAD {road})"
    return text


#: The caption of every paired table (the rule of design 5).
PAIRED_RULE = (
    "Each cell: the method's score minus AKD's, averaged over the images both were scored on, "
    "with its 95 % paired bootstrap interval (seeded resamples), then the verdict for "
    "the method against AKD: 'better' or 'worse' only where the interval excludes 0, else "
    "'tie'. Lower is better for deletion (both substrates), ROAD MoRF and average drop; "
    "higher for the others."
)


def paired_table(
    comparison: Comparison,
    reference: str = AKD_LABEL,
    metrics: Sequence[str] = FAITHFULNESS + ("pointing_game", "energy_pointing_game"),
    *,
    paired: Mapping[str, Mapping[str, PairedComparison]] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> str:
    """A Markdown table of every method against ``reference``, image by image.

    Each cell is the paired per-image difference (method minus reference)
    with its bootstrap interval and the verdict
    (:func:`~captum_akd.evaluation.paired_differences`): ``+0.0123 [-0.0050,
    +0.0300] tie``. The verdict respects each metric's direction, so on
    deletion a negative difference is ``better``. Caption it with
    :data:`PAIRED_RULE`.

    Args:
        comparison: what :func:`~captum_akd.evaluation.compare_methods` returned.
        reference: the method the others are compared with (AKD).
        metrics: metric keys, in column order; those not measured are left out.
        paired: comparisons already computed by
            :func:`~captum_akd.evaluation.paired_differences` (else computed here).
        confidence: the intervals' coverage.
        n_resamples: bootstrap resamples.
        seed: seed of the resamples.

    Returns:
        The table (header, separator, one row per other method), or ``""``
        when ``reference`` is not in the comparison or no other method is.

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.evaluation import compare_methods
        >>> from captum_akd.metrics import SobelEdgeControl
        >>> from captum_akd.report import paired_table
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model = cifar_resnet20().eval()
        >>> methods = {"Grad-CAM": GradCAM(model, model.layer3), "Edges": SobelEdgeControl(model)}
        >>> comparison = compare_methods(model, methods, torch.randn(3, 3, 32, 32),
        ...                              road_images=0, progress=False)
        >>> table = paired_table(comparison, "Grad-CAM", ["insertion"], n_resamples=200)
        >>> print(table.splitlines()[0])
        | Method | Insertion ↑ |
        >>> table.splitlines()[2].startswith("| Edges (control) | ")
        True
    """
    if reference not in comparison or len(comparison.methods) < 2:
        return ""
    paired = paired or paired_differences(comparison, reference, None, confidence,
                                          n_resamples, seed)
    keys = [k for k in metrics if any(k in row for row in paired.values())]
    lines = _head(["Method"] + [METRICS[k].title for k in keys])
    for result in comparison.methods:
        if result.name == reference:
            continue
        row = [display_name(result)]
        for key in keys:
            p = paired.get(result.name, {}).get(key)
            row.append("–" if p is None else
                       f"{_signed(p, METRICS[key].digits)} {p.verdict}")
        lines.append(_row(row))
    return "\n".join(lines)


def goals_table(goals: Sequence[Mapping[str, Any]]) -> str:
    """The goals of a run as a Markdown table: goal, measured, verdict, whether it holds.

    Caption it with :data:`~captum_akd.evaluation.GOALS_RULE`.

    Args:
        goals: ``{"goal", "measured", "holds"}`` dicts, with ``"verdict"``
            where a paired interval decided them
            (:func:`~captum_akd.evaluation.paired_goal`); ``holds`` may be
            ``None`` (stated, not measured).

    Returns:
        The table: header, separator and one row per goal.

    Examples::

        >>> from captum_akd.report import goals_table
        >>> print(goals_table([{"goal": "AKD insertion >= Grad-CAM", "holds": True,
        ...                     "verdict": "tie", "measured": "0.93 vs 0.94"},
        ...                    {"goal": "accuracy >= 95 %", "holds": False,
        ...                     "measured": "90.0 %"}]))
        | Goal | Measured | Verdict | Holds |
        |---|---|---|---|
        | AKD insertion >= Grad-CAM | 0.93 vs 0.94 | tie | yes |
        | accuracy >= 95 % | 90.0 % | – | no |
    """
    lines = _head(["Goal", "Measured", "Verdict", "Holds"])
    for g in goals:
        holds = {True: "yes", False: "no", None: "stated / not measured"}[g.get("holds")]
        lines.append(_row([g["goal"], g["measured"], g.get("verdict") or "–", holds]))
    return "\n".join(lines)


def ceiling_table(ceiling: Mapping[str, Any] | None) -> str:
    """The surrogate ceiling as a Markdown table: one row per metric.

    Args:
        ceiling: what :func:`~captum_akd.evaluation.surrogate_ceiling` returned.

    Returns:
        Columns: the metric, the means of RISE on the black box, RISE on the
        student and AKD, the transfer loss (RISE on the black box minus RISE
        on the student) and the explainer's own gap (RISE on the student
        minus AKD), each with its paired interval and verdict; ``""`` for
        ``None``.

    Examples::

        >>> from captum_akd.report import ceiling_table
        >>> gap = {"difference": 0.01, "low": -0.01, "high": 0.03, "verdict": "tie"}
        >>> row = {"rise_black_box": 0.95, "rise_student": 0.94, "akd": 0.9,
        ...        "transfer_loss": gap, "explainer_gap": {"difference": 0.04, "low": 0.02,
        ...                                                "high": 0.06, "verdict": "better"}}
        >>> print(ceiling_table({"images": 24, "metrics": {"insertion": row}}).splitlines()[2])
        | Insertion ↑ | 0.9500 | 0.9400 | 0.9000 | +0.0100 [-0.0100, +0.0300] tie |
          +0.0400 [+0.0200, +0.0600] better |
    """
    if not ceiling:
        return ""
    lines = _head(["Metric (judged by the black box)", "RISE on black box", "RISE on student",
                   "AKD", "Transfer loss: RISE black box - RISE student",
                   "Explainer's gap: RISE student - AKD"])
    for key, row in ceiling["metrics"].items():
        d = METRICS[key].digits
        cells = [METRICS[key].title] + [f"{row[k]:.{d}f}" for k in
                                        ("rise_black_box", "rise_student", "akd")]
        for part in ("transfer_loss", "explainer_gap"):
            gap = SimpleNamespace(**row[part])
            cells.append(f"{_signed(gap, d)} {gap.verdict}")
        lines.append(_row(cells))
    return "\n".join(lines)


def ceiling_caption(ceiling: Mapping[str, Any] | None, n_resamples: int = 10_000) -> str:
    """The sentence under :func:`ceiling_table`: what each gap means and its sign.

    Args:
        ceiling: what :func:`~captum_akd.evaluation.surrogate_ceiling` returned.
        n_resamples: the bootstrap resamples it was computed with.

    Returns:
        One paragraph (``""`` for ``None``).

    Examples::

        >>> from captum_akd.report import ceiling_caption
        >>> ceiling_caption({"images": 8, "metrics": {}}).split(";")[0]
        'Surrogate ceiling on the 8 images all three explained'
    """
    if not ceiling:
        return ""
    return (
        f"Surrogate ceiling on the {ceiling['images']} images all three explained; "
        f"{RISE_STUDENT_NOTE} The transfer loss is what no explainer of this student can "
        "recover; the explainer's gap is AKD's own. Differences are paired per image, in "
        f"the metric's units, with 95 % bootstrap intervals ({n_resamples} seeded resamples); the "
        "verdict is the first method's against the second ('better': the loss or gap is "
        "real, 'tie': the interval includes 0). On deletion lower is better, so a real loss "
        "there is a negative difference."
    )


def queries_table(accounting: Mapping[str, Any]) -> str:
    """Black-box queries as a Markdown table: the one-off, per explained image, break-even.

    Args:
        accounting: what :func:`~captum_akd.evaluation.query_accounting` returned.

    Returns:
        A first row for the reference's one-off cost (AKD's distillation),
        then one row per counted method (controls left out): images
        explained, black-box calls and images while explaining them, images
        and calls per explained image, and the break-even number of
        explained images after which AKD has passed fewer images through the
        black box than that method.

    Examples::

        >>> from captum_akd.report import queries_table
        >>> rows = {"AKD (ours)": {"explained": 8, "calls": 0, "images": 0, "calls_per_image": 0.0,
        ...                        "images_per_image": 0.0, "control": False},
        ...         "RISE": {"explained": 8, "calls": 40, "images": 4000, "calls_per_image": 5.0,
        ...                  "images_per_image": 500.0, "control": False}}
        >>> table = queries_table({"one_off": {"images": 6000, "calls": 50},
        ...                        "reference": "AKD (ours)", "methods": rows,
        ...                        "break_even": {"RISE": 13}})
        >>> print(table.splitlines()[2])
        | AKD (ours): distillation, once | – | 50 | 6000 | – | – | – |
        >>> print(table.splitlines()[4])
        | RISE | 8 | 40 | 4000 | 5 | 500 | 13 |
    """
    one_off = accounting.get("one_off") or {}
    reference = accounting["reference"]
    lines = _head(["Method", "Images explained", "Black-box calls", "Black-box images",
                   "Calls per explained image", "Images per explained image",
                   f"Break-even: explained images after which {reference} used fewer"])

    def count(value: Any) -> str:
        return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    lines.append(_row([f"{reference}: distillation, once", "–", count(one_off.get("calls")),
                       count(one_off.get("images")), "–", "–", "–"]))
    mine = (accounting["methods"].get(reference) or {}).get("images_per_image")
    for name, row in accounting["methods"].items():
        if row["control"] or row["images"] is None:
            continue
        if name == reference or mine is None or row["images_per_image"] <= mine:
            mark = "–"
        elif name not in accounting["break_even"]:
            mark = "one-off not counted"
        else:
            point = accounting["break_even"][name]
            mark = "never" if point is None else str(point)
        lines.append(_row([name, str(row["explained"]), count(row["calls"]), count(row["images"]),
                           count(row["calls_per_image"]), count(row["images_per_image"]), mark]))
    return "\n".join(lines)


def queries_caption(accounting: Mapping[str, Any]) -> str:
    """The paragraph under :func:`queries_table`: what was counted and how to read it.

    Args:
        accounting: what :func:`~captum_akd.evaluation.query_accounting` returned.

    Returns:
        One paragraph, naming what the one-off count covers (or that it was
        not counted).

    Examples::

        >>> from captum_akd.report import queries_caption
        >>> queries_caption({"one_off": None, "reference": "AKD (ours)"}).split(":")[1]
        " AKD (ours)'s distillation once (not counted"
    """
    one_off = accounting.get("one_off") or {}
    covers = one_off.get("covers") or (
        "counted" if one_off.get("images") is not None
        else "not counted: a checkpoint without a record of it")
    return (
        "Images passed through the black box, counted by "
        f"`CountingBlackBox`: {accounting['reference']}'s distillation once ({covers}), then "
        "each method while explaining its images (timing runs not counted). AKD and "
        "layer-wise CAM explain through the student and call the black box only to pick the "
        "class when none is given (one image per explained image; here the class is given); "
        "Grad-CAM needs one forward and backward pass through it (white box); RISE on student "
        "and the controls never call it. The break-even point is the number of explained "
        f"images from which {accounting['reference']}'s one-off plus its per-image queries are "
        "fewer than the other method's."
    )


def speed_ratios(comparison: Comparison, method: str) -> dict[str, float]:
    """How many times faster ``method`` is than every other timed method.

    Args:
        comparison: what :func:`~captum_akd.evaluation.compare_methods` returned.
        method: the name of one of its methods (timed).

    Returns:
        ``{other method's name: images per second of method / of other}``
        for every other method that was timed (values above 1 mean
        ``method`` is faster).

    Raises:
        KeyError: if ``method`` is not in ``comparison``.

    Examples::

        >>> from captum_akd.baselines import RISE, GradCAM
        >>> from captum_akd.evaluation import compare_methods
        >>> from captum_akd.report import speed_ratios
        >>> from captum_akd.zoo import cifar_resnet20
        >>> net = cifar_resnet20().eval()
        >>> both = {"Grad-CAM": GradCAM(net, net.layer3), "RISE": RISE(net, n_masks=64)}
        >>> ratios = speed_ratios(compare_methods(net, both, torch.randn(2, 3, 32, 32),
        ...                                       road_images=0, progress=False), "Grad-CAM")
        >>> list(ratios), ratios["RISE"] > 0
        (['RISE'], True)
    """
    mine = comparison[method].speed.images_per_second
    return {
        r.name: mine / r.speed.images_per_second
        for r in comparison.methods
        if r.name != method and r.speed is not None
    }


def comparison_to_dict(
    comparison: Comparison,
    per_image: bool = True,
    *,
    reference: str | None = AKD_LABEL,
    cells: Mapping[str, Mapping[str, BootstrapInterval]] | None = None,
    paired: Mapping[str, Mapping[str, PairedComparison]] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every figure of a comparison as JSON-serialisable data.

    Args:
        comparison: what :func:`~captum_akd.evaluation.compare_methods` returned.
        per_image: include per-image values (areas, ROAD scores, drops, hits)
            and the mean curves.
        reference: the method every other is paired with (AKD); ``None`` or
            a name not in the comparison: no ``"paired"`` entries.
        cells: intervals already computed by
            :func:`~captum_akd.evaluation.bootstrap_cells` (else computed here).
        paired: paired comparisons already computed by
            :func:`~captum_akd.evaluation.paired_differences`.
        confidence: the intervals' coverage.
        n_resamples: bootstrap resamples.
        seed: seed of the resamples.

    Returns:
        ``{"settings", "inference", "labels", "reference", "bootstrap",
        "methods": {name: {...}}}``: each method holds ``"summary"`` (see
        :meth:`~captum_akd.evaluation.MethodResult.summary`), ``"control"``,
        ``"n_images"``, ``"intervals"`` (metric -> mean, low, high),
        ``"paired"`` (metric -> difference, low, high, verdict against the
        reference), ``"black_box"`` (calls and images while explaining),
        ``"speed"`` and ``"attribute_seconds"``, and with ``per_image`` also
        ``"per_image"`` (lists of per-image values) and ``"mean_curves"``.

    Examples::

        >>> import json
        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.evaluation import compare_methods
        >>> from captum_akd.report import comparison_to_dict
        >>> conv = torch.nn.Conv2d(3, 4, 3)
        >>> model = torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> comparison = compare_methods(model.eval(), {"Grad-CAM": GradCAM(model, conv)},
        ...                              torch.rand(3, 3, 16, 16), road_images=2, progress=False)
        >>> data = comparison_to_dict(comparison, n_resamples=200)
        >>> entry = data["methods"]["Grad-CAM"]
        >>> sorted(entry)
        ['attribute_seconds', 'black_box', 'control', 'intervals', 'mean_curves', 'n_images',
         'paired', 'per_image', 'speed', 'summary']
        >>> len(entry["per_image"]["insertion_auc"]), len(entry["per_image"]["road_combined"])
        (3, 2)
        >>> text = json.dumps(data)
    """
    cells = cells or bootstrap_cells(comparison, confidence, n_resamples, seed)
    if reference is not None and reference in comparison:
        paired = paired or paired_differences(comparison, reference, None, confidence,
                                              n_resamples, seed)
    else:
        paired = {}

    def speed(result: ThroughputResult | None) -> dict[str, Any] | None:
        if result is None:
            return None
        return {
            "images_per_second": result.images_per_second,
            "seconds": result.seconds,
            "n_images": result.n_images,
            "batch_size": result.batch_size,
            "threads": result.threads,
            "device": result.device,
            "device_name": result.device_name,
        }

    def listed(values: Tensor | None) -> list[Any] | None:
        return None if values is None else values.tolist()

    methods = {}
    for r in comparison.methods:
        entry: dict[str, Any] = {
            "summary": r.summary(), "control": r.control, "n_images": r.n_images,
            "intervals": {k: {"mean": c.mean, "low": c.low, "high": c.high}
                          for k, c in cells.get(r.name, {}).items()},
            "paired": {k: {"difference": p.difference, "low": p.low, "high": p.high,
                           "verdict": p.verdict, "images": p.n}
                       for k, p in paired.get(r.name, {}).items()},
            "black_box": {"calls": r.black_box_calls, "images": r.black_box_images},
            "speed": speed(r.speed), "attribute_seconds": r.attribute_seconds,
        }
        if per_image:
            blur, removed = r.deletion_blur, r.road
            entry["per_image"] = {
                "insertion_auc": r.insertion.auc.tolist(),
                "deletion_auc": r.deletion.auc.tolist(),
                "deletion_blur_auc": None if blur is None else blur.auc.tolist(),
                "road_morf": None if removed is None else removed.morf.tolist(),
                "road_lerf": None if removed is None else removed.lerf.tolist(),
                "road_combined": None if removed is None else removed.combined.tolist(),
                "mean_pixel_intensity": r.mean_pixel_intensity.tolist(),
                "drop_percent": r.drops.tolist(),
                "increase": listed(r.increases),
                "pointing_hit": listed(r.pointing_hits),
                "energy": listed(r.energy),
            }
            entry["mean_curves"] = {
                "fractions": r.insertion.fractions.tolist(),
                "insertion": r.insertion.curves.mean(0).tolist(),
                "deletion": r.deletion.curves.mean(0).tolist(),
                "deletion_blur": None if blur is None else blur.curves.mean(0).tolist(),
                "road_percentiles": None if removed is None else list(removed.percentiles),
                "road_morf": None if removed is None else removed.morf_curves.mean(0).tolist(),
                "road_lerf": None if removed is None else removed.lerf_curves.mean(0).tolist(),
            }
        methods[r.name] = entry
    return {
        "settings": comparison.settings,
        "inference": speed(comparison.inference),
        "labels": comparison.labels.tolist(),
        "reference": reference if paired else None,
        "bootstrap": {"confidence": confidence, "n_resamples": n_resamples, "seed": seed},
        "methods": methods,
    }


def save_maps_grid(
    path: str | Path,
    images: Tensor,
    comparison: Comparison | Mapping[str, Tensor],
    masks: Tensor | None = None,
    n: int = 8,
    titles: Sequence[str] | None = None,
) -> Path:
    """Save a PNG grid: one row per image, columns image, mask, each method.

    Each map is min-max scaled and drawn over its image with the ``jet``
    colour map; masks are drawn in green. The maps are a comparison's, one
    column per method, or any others given by column (a sanity check's maps
    before and after randomising the model, say). A method that explained
    only the first images (RISE on fewer images than the others) shows
    "not run" in the rows after them.

    Args:
        path: destination PNG.
        images: ``N x 3 x H x W`` images for display, in [0, 1] (clamped).
        comparison: what :func:`~captum_akd.evaluation.compare_methods`
            returned, or column title -> ``N x C x H x W`` maps of the same
            images (the first channel is drawn).
        masks: optional ``N x 1 x H x W`` ground-truth masks (a column).
        n: number of images (rows) shown, at most ``N``.
        titles: optional per-image row titles (e.g. class names).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Examples::

        >>> from captum_akd.baselines import GradCAM
        >>> from captum_akd.evaluation import compare_methods
        >>> from captum_akd.report import save_maps_grid
        >>> from captum_akd.zoo import cifar_resnet20
        >>> model, images = cifar_resnet20().eval(), torch.rand(2, 3, 32, 32)
        >>> comparison = compare_methods(model, {"Grad-CAM": GradCAM(model, model.layer2)},
        ...                              images, progress=False)
        >>> save_maps_grid("maps.png", images, comparison, n=2, titles=["a", "b"])
        PosixPath('maps.png')
        >>> save_maps_grid("columns.png", images, {"brightness": images.mean(1, True)})
        PosixPath('columns.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ({display_name(r): r.maps for r in comparison.methods}
               if isinstance(comparison, Comparison) else dict(comparison))
    n = min(n, images.shape[0])
    names = ["image"] + (["ground truth"] if masks is not None else []) + list(columns)
    fig, axes = plt.subplots(n, len(names), figsize=(1.6 * len(names), 1.6 * n),
                             squeeze=False)
    pictures = images[:n].detach().cpu().clamp(0, 1).permute(0, 2, 3, 1).numpy()
    for i in range(n):
        col = 0
        axes[i, col].imshow(pictures[i])
        if titles is not None:
            axes[i, col].set_ylabel(titles[i], fontsize=7)
        col += 1
        if masks is not None:
            axes[i, col].imshow(pictures[i])
            axes[i, col].imshow(masks[i, 0].cpu().float().numpy(), cmap="Greens", alpha=0.6,
                                vmin=0, vmax=1)
            col += 1
        for maps in columns.values():
            if i < maps.shape[0]:
                heat = minmax_normalize(maps[i : i + 1, :1].detach().float().cpu())[0, 0]
                axes[i, col].imshow(pictures[i])
                axes[i, col].imshow(heat.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
            else:
                axes[i, col].text(0.5, 0.5, "not run", ha="center", va="center", fontsize=7,
                                  transform=axes[i, col].transAxes)
            col += 1
    for j, title in enumerate(names):
        axes[0, j].set_title(title, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_curves(path: str | Path, comparison: Comparison) -> Path:
    """Save a PNG of the mean insertion and both deletion curves of every method.

    Three panels, insertion, deletion to 0 and deletion to blur, with one
    curve per method (mean over images of the black box's probability of the
    class against the fraction of pixels inserted or deleted); the legend
    gives each method's mean area. Controls are dashed and marked
    ``(control)``.

    Args:
        path: destination PNG.
        comparison: what :func:`~captum_akd.evaluation.compare_methods` returned.

    Returns:
        The written PNG's ``path``, as a :class:`~pathlib.Path`.

    Examples::

        >>> from torch import nn
        >>> from captum_akd.baselines import RISE
        >>> from captum_akd.evaluation import compare_methods
        >>> from captum_akd.metrics import CentreGaussianControl
        >>> from captum_akd.report import save_curves
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
        >>> methods = {"RISE": RISE(model, n_masks=16, grid=2),
        ...            "Centre": CentreGaussianControl(model)}
        >>> comparison = compare_methods(model, methods, torch.rand(3, 3, 8, 8), step=16,
        ...                              road_images=0, progress=False)
        >>> save_curves("curves.png", comparison)
        PosixPath('curves.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (
        ("insertion", "Insertion (higher is better)", "fraction of pixels inserted"),
        ("deletion", "Deletion to 0 (lower is better)", "fraction of pixels deleted"),
        ("deletion_blur", "Deletion to blur (lower is better)", "fraction of pixels blurred"),
    )
    for ax, (key, title, xlabel) in zip(axes, panels, strict=True):
        for r in comparison.methods:
            curve = getattr(r, key)
            if curve is None:
                continue
            ax.plot(curve.fractions.numpy(), curve.curves.mean(0).numpy(),
                    linestyle="--" if r.control else "-",
                    label=f"{display_name(r)} ({curve.mean:.3f})")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("black-box probability of the class")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
