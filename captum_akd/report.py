"""Tables, figures and JSON for a :class:`~captum_akd.evaluation.Comparison`.

The demo and the benchmark harness both report through these functions, so
their tables read the same: laid out like the method paper's, one row per
method plus the black box's plain inference as the speed reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from captum_akd._image_ops import minmax_normalize
from captum_akd.evaluation import Comparison

# (key in MethodResult.summary(), column title, format)
_COLUMNS = [
    ("insertion", "Insertion ↑", "{:.4f}"),
    ("deletion", "Deletion ↓", "{:.4f}"),
    ("mean_pixel_intensity", "Mean intensity", "{:.3f}"),
    ("average_drop", "Avg drop % ↓", "{:.1f}"),
    ("increase_in_confidence", "Increase % ↑", "{:.1f}"),
    ("pointing_game", "Pointing % ↑", "{:.1f}"),
    ("energy_pointing_game", "Energy PG % ↑", "{:.1f}"),
    ("images_per_second", "Images/s ↑", "{:.1f}"),
]


def _fmt(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return pattern.format(value)


def markdown_table(comparison: Comparison) -> str:
    """A Markdown table: one row per method with every metric, then plain inference.

    Columns without data (the pointing games without masks) are left out.
    The last column is each method's speed relative to the black box's plain
    inference on the same images, batch and device; the final row is that
    inference itself.

    Args:
        comparison: what :func:`~captum_akd.evaluation.compare_methods` returned.

    Returns:
        The table as one string of newline-separated lines: a header, a
        separator and ``len(comparison.methods) + 1`` rows.

    Examples::

        >>> from captum_akd.report import markdown_table
        >>> print(markdown_table(comparison))  # from compare_methods; timings vary
        | Method | Insertion ↑ | Deletion ↓ | Mean intensity | Avg drop % ↓ | Increase % ↑ | ...
        |---|---|---|---|---|---|---|---|
        | Grad-CAM | 0.6173 | 0.9361 | 0.341 | 59.6 | 0.0 | 506.8 | 0.731 |
        | RISE | 0.9257 | 0.7977 | 0.415 | 8.4 | 0.0 | 9.5 | 0.0137 |
        | Normal inference | – | – | – | – | – | 693.0 | 1 |
    """
    rows = [r.summary() for r in comparison.methods]
    columns = [c for c in _COLUMNS if any(row[c[0]] is not None for row in rows)]
    reference = comparison.inference.images_per_second
    head = ["Method"] + [title for _, title, _ in columns] + ["× inference"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result, row in zip(comparison.methods, rows, strict=True):
        cells = [result.name] + [_fmt(row[key], fmt) for key, _, fmt in columns]
        cells.append(f"{row['images_per_second'] / reference:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    blank = ["–"] * (len(columns) - 1)
    lines.append("| " + " | ".join(["Normal inference"] + blank + [f"{reference:.1f}", "1"]) + " |")
    return "\n".join(lines)


def speed_ratios(comparison: Comparison, method: str) -> dict[str, float]:
    """How many times faster ``method`` is than every other method.

    Args:
        comparison: what :func:`~captum_akd.evaluation.compare_methods` returned.
        method: the name of one of its methods.

    Returns:
        ``{other method's name: images per second of method / of other}``
        for every other method (values above 1 mean ``method`` is faster).

    Raises:
        KeyError: if ``method`` is not in ``comparison``.

    Examples::

        >>> from captum_akd.report import speed_ratios
        >>> speed_ratios(comparison, "Grad-CAM")   # from compare_methods
        {'RISE': 53.3...}
    """
    mine = comparison[method].speed.images_per_second
    return {
        r.name: mine / r.speed.images_per_second
        for r in comparison.methods
        if r.name != method
    }


def comparison_to_dict(comparison: Comparison, per_image: bool = True) -> dict[str, Any]:
    """Every figure of a comparison as JSON-serialisable data.

    Args:
        comparison: what :func:`~captum_akd.evaluation.compare_methods` returned.
        per_image: include per-image values (areas, drops, hits) and the mean
            insertion and deletion curves.

    Returns:
        ``{"settings", "inference", "labels", "methods": {name: {...}}}``:
        each method holds ``"summary"`` (see
        :meth:`~captum_akd.evaluation.MethodResult.summary`), ``"speed"`` and
        ``"attribute_seconds"``, and with ``per_image`` also ``"per_image"``
        (lists of ``N`` values) and ``"mean_curves"``.

    Examples::

        >>> import json
        >>> from captum_akd.report import comparison_to_dict
        >>> data = comparison_to_dict(comparison)   # from compare_methods
        >>> sorted(data["methods"]["RISE"])
        ['attribute_seconds', 'mean_curves', 'per_image', 'speed', 'summary']
        >>> text = json.dumps(data)
    """
    def speed(result) -> dict[str, Any]:
        return {
            "images_per_second": result.images_per_second,
            "seconds": result.seconds,
            "n_images": result.n_images,
            "batch_size": result.batch_size,
            "threads": result.threads,
            "device": result.device,
            "device_name": result.device_name,
        }

    methods = {}
    for r in comparison.methods:
        entry: dict[str, Any] = {"summary": r.summary(), "speed": speed(r.speed),
                                 "attribute_seconds": r.attribute_seconds}
        if per_image:
            entry["per_image"] = {
                "insertion_auc": r.insertion.auc.tolist(),
                "deletion_auc": r.deletion.auc.tolist(),
                "mean_pixel_intensity": r.mean_pixel_intensity.tolist(),
                "drop_percent": r.drops.tolist(),
                "pointing_hit": None if r.pointing_hits is None else r.pointing_hits.tolist(),
                "energy": None if r.energy is None else r.energy.tolist(),
            }
            entry["mean_curves"] = {
                "fractions": r.insertion.fractions.tolist(),
                "insertion": r.insertion.curves.mean(0).tolist(),
                "deletion": r.deletion.curves.mean(0).tolist(),
            }
        methods[r.name] = entry
    return {
        "settings": comparison.settings,
        "inference": speed(comparison.inference),
        "labels": comparison.labels.tolist(),
        "methods": methods,
    }


def save_maps_grid(
    path: str | Path,
    images: Tensor,
    comparison: Comparison,
    masks: Tensor | None = None,
    n: int = 8,
    titles: Sequence[str] | None = None,
) -> Path:
    """Save a PNG grid: one row per image, columns image, mask, each method.

    Each map is min-max scaled and drawn over its image with the ``jet``
    colour map; masks are drawn in green.

    Args:
        path: destination PNG.
        images: ``N x 3 x H x W`` images for display, in [0, 1] (clamped).
        comparison: the maps to show (same images, same order).
        masks: optional ``N x 1 x H x W`` ground-truth masks (a column).
        n: number of images (rows) shown, at most ``N``.
        titles: optional per-image row titles (e.g. class names).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Examples::

        >>> from captum_akd.report import save_maps_grid
        >>> save_maps_grid("maps.png", images.sigmoid(), comparison, n=2, titles=["a", "b"])
        PosixPath('maps.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(n, images.shape[0])
    names = [r.name for r in comparison.methods]
    columns = ["image"] + (["ground truth"] if masks is not None else []) + names
    fig, axes = plt.subplots(n, len(columns), figsize=(1.6 * len(columns), 1.6 * n),
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
        for result in comparison.methods:
            heat = minmax_normalize(result.maps[i : i + 1].float())[0, 0]
            axes[i, col].imshow(pictures[i])
            axes[i, col].imshow(heat.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
            col += 1
    for j, title in enumerate(columns):
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
    """Save a PNG of the mean insertion and deletion curves of every method.

    Two panels, insertion and deletion, with one curve per method (mean over
    images of the black box's probability of the class against the fraction of
    pixels inserted or deleted); the legend gives each method's mean area.

    Args:
        path: destination PNG.
        comparison: what :func:`~captum_akd.evaluation.compare_methods` returned.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Examples::

        >>> from captum_akd.report import save_curves
        >>> save_curves("curves.png", comparison)   # from compare_methods
        PosixPath('curves.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_ins, ax_del) = plt.subplots(1, 2, figsize=(10, 4))
    for r in comparison.methods:
        x = r.insertion.fractions.numpy()
        ax_ins.plot(x, r.insertion.curves.mean(0).numpy(),
                    label=f"{r.name} ({r.insertion.mean:.3f})")
        ax_del.plot(r.deletion.fractions.numpy(), r.deletion.curves.mean(0).numpy(),
                    label=f"{r.name} ({r.deletion.mean:.3f})")
    for ax, title in ((ax_ins, "Insertion (higher is better)"),
                      (ax_del, "Deletion (lower is better)")):
        ax.set_title(title)
        ax.set_xlabel("fraction of pixels inserted" if ax is ax_ins else
                      "fraction of pixels deleted")
        ax.set_ylabel("black-box probability of the class")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

