"""Draw the figures of the documentation into ``docs/_static/``.

Run ``python docs/make_figures.py`` after changing the method; the PNGs are
committed so that building the docs needs neither this script nor a display.
Only matplotlib is used: boxes, arrows and text, no data.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

STATIC = Path(__file__).resolve().parent / "_static"

# One colour per role, readable in print and for common colour blindness.
BLACK_BOX = "#4d4d4d"
STUDENT = "#2b6cb0"
ATTENTION = "#d69e2e"
EXPLAINER = "#c05621"
LOSS_1 = "#2b6cb0"
LOSS_2 = "#c05621"
MUTUAL = "#6b46c1"


def box(ax, x, y, w, h, text, colour, *, filled=True, size=9, dashed=False, weight="normal"):
    """A rounded box centred at (x, y) with ``text`` inside."""
    patch = FancyBboxPatch(
        (x - w / 2, y - h / 2), w, h,
        boxstyle="round,pad=0.02,rounding_size=0.08",
        facecolor=colour if filled else "white",
        edgecolor=colour,
        linewidth=1.6,
        linestyle="--" if dashed else "-",
        alpha=0.95,
    )
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=size, weight=weight,
            color="white" if filled else colour, wrap=True)


def arrow(ax, start, end, colour="#333333", *, style="-|>", dashed=False, rad=0.0, width=1.3):
    ax.add_patch(FancyArrowPatch(
        start, end, arrowstyle=style, mutation_scale=12, color=colour, linewidth=width,
        linestyle="--" if dashed else "-", connectionstyle=f"arc3,rad={rad}",
        shrinkA=2, shrinkB=2,
    ))


def pipeline(path: Path) -> Path:
    """The method on one page: stage 1 on top, the explainer and stage 2 below."""
    fig, ax = plt.subplots(figsize=(13, 7.4), dpi=150)
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 7.4)
    ax.axis("off")

    # Row heights.
    y_box, y_student, y_att, y_dec = 6.55, 4.75, 3.7, 1.75

    # Input image and the black box.
    box(ax, 0.8, y_student, 1.1, 0.9, "image x\nN×C×H×W", "#718096", size=9)
    box(ax, 4.7, y_box, 3.2, 0.75, "black-box target f\n(called only, under no_grad)",
        BLACK_BOX, size=9)
    arrow(ax, (0.8, y_student + 0.45), (3.1, y_box), rad=-0.15)
    box(ax, 7.4, y_box, 1.0, 0.6, "logits z_t", BLACK_BOX, filled=False, size=9)
    arrow(ax, (6.3, y_box), (6.9, y_box))

    # The attentive student: stages, each followed by CBAM.
    ax.text(1.55, y_student + 0.95, "attentive student (stage 1: distilled from f)",
            fontsize=10, color=STUDENT, weight="bold", ha="left")
    xs = [2.2, 3.95, 5.7]
    for i, x in enumerate(xs, start=1):
        box(ax, x, y_student, 0.8, 0.7, f"S{i}", STUDENT, size=10, weight="bold")
        box(ax, x + 0.85, y_student, 0.75, 0.7, "CBAM", ATTENTION, size=8.5, weight="bold")
        arrow(ax, (x + 0.4, y_student), (x + 0.47, y_student))
        if i < len(xs):
            arrow(ax, (x + 1.22, y_student), (xs[i] - 0.4, y_student))
        # Attended features F_i and spatial attention A_i go down to the explainer.
        ax.text(x + 0.85, y_att, f"F{i}, A{i}", ha="center", va="center", fontsize=8.5,
                color=ATTENTION)
        arrow(ax, (x + 0.85, y_student - 0.35), (x + 0.85, y_att + 0.17), ATTENTION)
    arrow(ax, (1.35, y_student), (1.8, y_student))
    box(ax, 7.85, y_student, 1.1, 0.7, "GAP +\nlinear", STUDENT, size=8.5)
    arrow(ax, (6.93, y_student), (7.3, y_student))
    box(ax, 9.0, y_student, 1.0, 0.6, "logits z_s", STUDENT, filled=False, size=9)
    arrow(ax, (8.4, y_student), (8.5, y_student))

    # Stage-1 loss between the two sets of logits.
    box(ax, 11.2, 5.75, 3.3, 1.2,
        "stage-1 loss (KD)\nα·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))\n+ (1 − α)·CE(z_s, y)"
        "\ny: label, else argmax z_t",
        LOSS_1, filled=False, size=8.5)
    arrow(ax, (7.9, y_box), (9.5, 6.1), LOSS_1)
    arrow(ax, (9.0, y_student + 0.3), (9.6, 5.2), LOSS_1)

    # Mutual transfer: an optional peer student.
    box(ax, 11.2, 3.95, 3.3, 1.0,
        "optional peer student (mutual transfer)\n1 − pearson per k×k cell of A_l\n"
        "+ mutual KL between the students",
        MUTUAL, filled=False, size=8.5, dashed=True)
    arrow(ax, (9.2, y_student - 0.3), (9.55, 3.95), MUTUAL, dashed=True, rad=0.35)

    # Class activation map from the student's own classifier weights.
    box(ax, 8.1, y_att - 0.05, 1.9, 0.75, "class CAM of c\nΣ_k w_c,k · F3_k\n(no backward)",
        STUDENT, filled=False, size=8)
    arrow(ax, (7.85, y_student - 0.35), (7.95, y_att + 0.33), STUDENT)

    # The explainer: top-down decoder with a skip from every stage.
    ax.text(1.55, y_dec + 0.85, "explanation network (stage 2: student frozen)",
            fontsize=10, color=EXPLAINER, weight="bold", ha="left")
    dec_x = [3.05, 4.8, 6.55]
    for i, x in enumerate(dec_x, start=1):
        box(ax, x, y_dec, 1.15, 0.7, f"decode {i}", EXPLAINER, size=9, weight="bold")
        arrow(ax, (x, y_att - 0.17), (x, y_dec + 0.35), ATTENTION)
        if i > 1:
            arrow(ax, (x - 0.58, y_dec), (dec_x[i - 2] + 0.58, y_dec), EXPLAINER)
    arrow(ax, (8.1, y_att - 0.43), (6.95, y_dec + 0.35), STUDENT, rad=-0.1)
    ax.text(8.05, 2.55, "CAM + class vector\nat every level", fontsize=8, color=STUDENT,
            ha="left", va="center")
    box(ax, 1.05, y_dec, 1.3, 0.75, "map M_c\nN×1×H×W\nin [0, 1]", EXPLAINER,
        filled=False, size=8.5, weight="bold")
    arrow(ax, (2.47, y_dec), (1.72, y_dec), EXPLAINER)
    ax.text(2.1, y_dec - 0.55, "sigmoid,\nupsample", fontsize=7.5, ha="center",
            color=EXPLAINER)

    # Stage-2 losses.
    box(ax, 11.2, 1.75, 3.3, 1.6,
        "stage-2 losses (b: blurred x)\n"
        "preserve: CE(student(M·x + (1−M)·b), c)\n"
        "destroy: −log(1 − p(c | (1−M)·x + M·b))\n"
        "area: λ_a · mean(M)   (or target share)\n"
        "smooth: λ_tv · TV(M)\n"
        "c: f's prediction (sometimes another)",
        LOSS_2, filled=False, size=8.5)
    arrow(ax, (1.05, y_dec - 0.38), (9.5, 1.2), LOSS_2, rad=0.18)

    # Legend of what happens at explanation time.
    ax.text(0.25, 0.2,
            "At explanation time: one forward pass of the student and the explainer per "
            "batch; f is only called when target=None, to read its prediction.",
            fontsize=9, color="#2d3748", ha="left", style="italic")

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path


def main() -> None:
    print(pipeline(STATIC / "pipeline.png"))


if __name__ == "__main__":
    main()
