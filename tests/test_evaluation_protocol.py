"""The evaluation protocol of design 5: controls, intervals, the ceiling and black-box queries.

Tiny models on 16 x 16 images, a few masks: the numbers mean nothing, what is
checked is what every table and figure is built from.
"""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from captum_akd import AttentiveDistillationAttribution
from captum_akd.baselines import RISE, GradCAM, LimeImage
from captum_akd.blackbox import CountingBlackBox
from captum_akd.evaluation import (
    AKD_LABEL,
    CONTROL_LABELS,
    RISE_LABEL,
    RISE_STUDENT_LABEL,
    Comparison,
    MethodResult,
    baseline_goals,
    break_even,
    build_methods,
    compare_methods,
    paired_differences,
    paired_goal,
    query_accounting,
    surrogate_ceiling,
)
from captum_akd.metrics import CausalMetricResult, ThroughputResult
from captum_akd.models import ExplanationNet, cifar_resnet_student
from captum_akd.report import (
    comparison_to_dict,
    goals_table,
    markdown_table,
    paired_table,
    queries_table,
    save_curves,
    save_maps_grid,
)


def black_box() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(32, 4)).eval()


@pytest.fixture(scope="module")
def setting():
    """A black box, an untrained AKD, the methods on a counted black box and a comparison."""
    model = black_box()
    counted = CountingBlackBox(model)
    torch.manual_seed(1)
    student = cifar_resnet_student(depth=8, num_classes=4).eval()
    attr = AttentiveDistillationAttribution(counted, student,
                                            ExplanationNet.for_student(student, width=8))
    methods = build_methods(counted, attr, model[0], ["akd", "gradcam", "rise", "rise-student"],
                            rise_masks=24, rise_grid=2, seed=0)
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    comparison = compare_methods(model, methods, images, step=64, batch_size=8,
                                 method_images={RISE_STUDENT_LABEL: 4}, road_images=3,
                                 counter=counted, progress=False)
    return model, counted, attr, methods, images, comparison


def scored(name: str, insertion: list[float], deletion: list[float]) -> MethodResult:
    """A method's result from hand-made per-image scores (the other metrics constant)."""
    n = len(insertion)

    def causal(kind: str, auc: list[float]) -> CausalMetricResult:
        values = torch.tensor(auc)
        return CausalMetricResult(kind, values[:, None].repeat(1, 2), values,
                                  float(values.mean()), 1, 1, torch.zeros(n, dtype=torch.long))

    speed = ThroughputResult(1.0, 1.0, n, 1, 1, "cpu", "cpu", [1.0])
    return MethodResult(name, torch.zeros(n, 1, 2, 2), causal("insertion", insertion),
                        causal("deletion", deletion), torch.zeros(n), 0.0, 0.0, torch.zeros(n),
                        None, None, speed, 0.0)


# ------------------------------------------------------------------ controls


def test_control_rows_are_built_scored_and_marked(setting, tmp_path):
    *_, images, comparison = setting
    controls = [r for r in comparison.methods if r.control]
    assert [r.name for r in controls] == list(CONTROL_LABELS.values())
    assert not any(r.control for r in comparison.methods if r.name not in CONTROL_LABELS.values())
    for result in controls:
        assert result.insertion.auc.shape == (6,) and result.road.combined.shape == (3,)
        assert result.black_box_images == 0  # a control never calls the model
    table = markdown_table(comparison, n_resamples=200)
    for name in CONTROL_LABELS.values():
        assert f"| {name} |" in table and "(control)" in name
    data = comparison_to_dict(comparison, n_resamples=200)
    assert {k for k, v in data["methods"].items() if v["control"]} == set(CONTROL_LABELS.values())
    assert save_maps_grid(tmp_path / "maps.png", images, comparison, n=2).is_file()
    # RISE on the student explained 4 of the 6 images: its last two cells say "not run".
    assert save_maps_grid(tmp_path / "all.png", images, comparison, n=6).is_file()
    assert save_curves(tmp_path / "curves.png", comparison).is_file()


def test_a_custom_control_is_marked_in_tables_and_figures():
    from captum_akd.metrics import ControlAttribution
    from captum_akd.report import display_name

    class Brightness(ControlAttribution):
        def _attribute_batch(self, images, labels, additional_forward_args):
            return images.mean(dim=1, keepdim=True)

    model = black_box()
    comparison = compare_methods(model, {"Brightness": Brightness(model)},
                                 torch.rand(2, 3, 16, 16), road_images=0, progress=False)
    assert comparison["Brightness"].control
    assert display_name(comparison["Brightness"]) == "Brightness (control)"
    assert "| Brightness (control) |" in markdown_table(comparison, n_resamples=100)


# --------------------------------------------------------------- statistics


def test_cells_are_means_with_intervals(setting):
    *_, comparison = setting
    line = next(row for row in markdown_table(comparison, ["insertion"], speed=False,
                                              n_resamples=500).splitlines()
                if row.startswith(f"| {RISE_LABEL} |"))
    mean = comparison[RISE_LABEL].insertion.mean
    # Rows scored on fewer images say so (RISE on the student: 4 of the 6).
    assert line.startswith(f"| {RISE_LABEL} | 6 | {mean:.4f} [")
    assert f"| {RISE_STUDENT_LABEL} | 4 (ROAD 3) |" in markdown_table(comparison, n_resamples=100)


def test_a_table_says_tie_when_the_interval_crosses_zero():
    akd = scored(AKD_LABEL, [0.50, 0.50, 0.50, 0.50], [0.20, 0.20, 0.20, 0.20])
    # Insertion: +0.1 and -0.1 by turns (mean 0): a tie. Deletion: lower on every image: better.
    other = scored("Other", [0.60, 0.40, 0.60, 0.40], [0.10, 0.15, 0.12, 0.11])
    comparison = Comparison([akd, other], torch.zeros(4, dtype=torch.long),
                            akd.speed, {"n_images": 4})
    table = paired_table(comparison, AKD_LABEL, ["insertion", "deletion"], n_resamples=2000)
    row = table.splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "Other"
    assert cells[1].startswith("+0.0000 [-") and cells[1].endswith(" tie")
    assert cells[2].startswith("-0.0800 [") and cells[2].endswith(" better")
    paired = paired_differences(comparison, AKD_LABEL, n_resamples=2000)["Other"]
    assert paired["insertion"].low < 0 < paired["insertion"].high
    # Nothing to pair AKD with (a run that scored AKD alone): no table, not a header alone.
    alone = Comparison([akd], torch.zeros(4, dtype=torch.long), akd.speed, {"n_images": 4})
    assert paired_table(alone, AKD_LABEL, ["insertion"], n_resamples=100) == ""


def test_goals_follow_the_interval_rule():
    akd, gradcam = [0.10, 0.30, 0.12, 0.28], [0.20, 0.20, 0.20, 0.20]
    at_least = paired_goal("AKD deletion <= Grad-CAM", akd, gradcam, False, n_resamples=2000)
    strict = paired_goal("AKD deletion < Grad-CAM", akd, gradcam, False, strict=True,
                         n_resamples=2000)
    worse = paired_goal("AKD deletion <= Grad-CAM", [0.3, 0.31, 0.32, 0.33], gradcam, False,
                        n_resamples=2000)
    assert (at_least["verdict"], at_least["holds"]) == ("tie", True)
    assert (strict["verdict"], strict["holds"]) == ("tie", False)
    assert (worse["verdict"], worse["holds"]) == ("worse", False)
    table = goals_table([at_least, worse])
    assert "| tie | yes |" in table and "| worse | no |" in table


def test_baseline_goals_need_no_worse_metric_and_better_on_enough():
    akd = scored(AKD_LABEL, [0.60, 0.61, 0.62, 0.63], [0.10, 0.11, 0.12, 0.13])

    def against(insertion, deletion, better_on=2):
        other = scored("Grad-CAM", insertion, deletion)
        comparison = Comparison([akd, other], torch.zeros(4, dtype=torch.long), akd.speed,
                                {"n_images": 4})
        rows = baseline_goals(comparison, "Grad-CAM", better_on=better_on, n_resamples=2000)
        return {row["goal"]: row for row in rows}

    # Better on both metrics: every row holds.
    both = against([0.50, 0.51, 0.52, 0.53], [0.20, 0.21, 0.22, 0.23])
    assert list(both) == ["AKD insertion >= Grad-CAM", "AKD deletion to 0 <= Grad-CAM",
                          "AKD better than Grad-CAM on at least 2 of these 2"]
    assert all(row["holds"] for row in both.values())
    assert both["AKD better than Grad-CAM on at least 2 of these 2"]["images"] == 4
    # A tie on insertion (+-0.1 by turns) keeps its row but is not "better".
    tie = against([0.70, 0.51, 0.72, 0.53], [0.20, 0.21, 0.22, 0.23])
    assert tie["AKD insertion >= Grad-CAM"]["verdict"] == "tie"
    assert tie["AKD insertion >= Grad-CAM"]["holds"]
    assert not tie["AKD better than Grad-CAM on at least 2 of these 2"]["holds"]
    assert against([0.70, 0.51, 0.72, 0.53], [0.20, 0.21, 0.22, 0.23], better_on=1)[
        "AKD better than Grad-CAM on at least 1 of these 2"]["holds"]
    # Worse on deletion: that row fails whatever the count says.
    worse = against([0.50, 0.51, 0.52, 0.53], [0.05, 0.06, 0.07, 0.08], better_on=1)
    assert worse["AKD deletion to 0 <= Grad-CAM"]["verdict"] == "worse"
    assert not worse["AKD deletion to 0 <= Grad-CAM"]["holds"]
    assert baseline_goals(Comparison([akd], torch.zeros(4, dtype=torch.long), akd.speed,
                                     {"n_images": 4}), "Grad-CAM") == []


def test_select_keeps_prefix_pairing(setting):
    *_, comparison = setting
    part = comparison.select(torch.tensor([1, 2, 5]))
    assert part[AKD_LABEL].insertion.auc.tolist() == pytest.approx(
        comparison[AKD_LABEL].insertion.auc[[1, 2, 5]].tolist())
    # RISE on the student covered the first 4 images, ROAD the first 3.
    assert part[RISE_STUDENT_LABEL].n_images == 2
    assert part[AKD_LABEL].road.combined.numel() == 2
    assert part[AKD_LABEL].average_drop == pytest.approx(
        float(comparison[AKD_LABEL].drops[[1, 2, 5]].mean()))
    # The per-method settings describe the selected images, not the whole run.
    assert part.settings["n_images"] == 3
    assert part.settings["method_images"][RISE_STUDENT_LABEL] == 2
    assert part.settings["road_images"][AKD_LABEL] == 2


def test_join_adds_methods_scored_on_the_same_images(setting):
    import dataclasses

    from captum_akd.metrics import UniformNoiseControl

    model, counted, attr, methods, images, comparison = setting
    first = torch.arange(3)
    slow = compare_methods(model, {"Noise": UniformNoiseControl(model), "RISE": methods["RISE"]},
                           images[:3], step=64, batch_size=8, road_images=1, progress=False)
    both = comparison.select(first).join(slow, order=["Noise", AKD_LABEL, "RISE"])
    assert [r.name for r in both.methods] == ["Noise", AKD_LABEL, "RISE"]
    assert both["Noise"] is slow["Noise"]
    # A method both have is this comparison's: RISE's first 3 of its 6 images.
    assert both["RISE"].insertion.auc.tolist() == pytest.approx(
        comparison["RISE"].insertion.auc[:3].tolist())
    assert both.inference is comparison.inference
    assert both.settings["road_images"] == {"Noise": 1, AKD_LABEL: 3, "RISE": 3}
    assert both.settings["method_images"] == {"Noise": 3, AKD_LABEL: 3, "RISE": 3}
    shifted = dataclasses.replace(slow, labels=(slow.labels + 1) % 4)
    with pytest.raises(ValueError, match="other classes"):
        comparison.select(first).join(shifted)


# ---------------------------------------------------------- surrogate ceiling


def test_the_ceiling_row_is_rise_run_on_the_student(setting):
    model, counted, attr, methods, images, comparison = setting
    assert methods[RISE_STUDENT_LABEL].forward_func is attr.student
    alone = RISE(attr.student, n_masks=24, grid=2, seed=0).attribute(
        images[:4], target=comparison.labels[:4])
    assert torch.allclose(comparison[RISE_STUDENT_LABEL].maps, alone)
    assert not torch.allclose(comparison[RISE_STUDENT_LABEL].maps, comparison[RISE_LABEL].maps[:4])
    assert comparison[RISE_STUDENT_LABEL].black_box_images == 0
    ceiling = surrogate_ceiling(comparison, n_resamples=500)
    assert ceiling["images"] == 4
    row = ceiling["metrics"]["deletion"]
    bb = comparison[RISE_LABEL].deletion.auc[:4]
    st = comparison[RISE_STUDENT_LABEL].deletion.auc
    akd = comparison[AKD_LABEL].deletion.auc[:4]
    assert row["transfer_loss"]["difference"] == pytest.approx(float((bb - st).mean()))
    assert row["explainer_gap"]["difference"] == pytest.approx(float((st - akd).mean()))
    assert surrogate_ceiling(comparison.select(torch.arange(6)), student_rise="absent") is None


# ------------------------------------------------------------ black-box queries


def test_counting_black_box_counts_exactly_and_changes_nothing():
    model = black_box()
    counted = CountingBlackBox(model)
    x = torch.rand(5, 3, 16, 16)
    assert torch.equal(counted(x), model(x))
    for n in (1, 3, 7):
        counted(torch.rand(n, 3, 16, 16))
    assert (counted.calls, counted.images) == (4, 16)
    with pytest.raises(TypeError):
        counted()
    with pytest.raises(TypeError):
        CountingBlackBox("not callable")
    counted.reset()

    def failing(images):
        raise RuntimeError("quota exceeded")

    refused = CountingBlackBox(failing)
    with pytest.raises(RuntimeError):
        refused(x)
    assert (refused.calls, refused.images) == (1, 5)  # a request sent is a request billed

    threads = [threading.Thread(target=lambda: [counted(x[:2]) for _ in range(50)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (counted.calls, counted.images) == (200, 400)


def test_counting_black_box_counts_what_each_method_queries():
    model = black_box()
    counted = CountingBlackBox(model)
    images = torch.rand(3, 3, 16, 16)
    RISE(counted, n_masks=30, grid=2, perturbations_per_eval=8).attribute(images, target=0)
    assert (counted.calls, counted.images) == (3 * 4, 3 * 30)  # 8 + 8 + 8 + 6 per image
    counted.reset()
    LimeImage(counted, n_samples=12, perturbations_per_eval=5, seed=0).attribute(images,
                                                                              target=1)
    assert counted.images == 3 * 12
    counted.reset()
    # Gradients flow through the wrapper: Grad-CAM on it equals Grad-CAM on the model.
    through = GradCAM(counted, model[0]).attribute(images, target=2)
    assert torch.allclose(through, GradCAM(model, model[0]).attribute(images, target=2))
    assert counted.images == 3


def test_query_accounting_and_break_even(setting):
    *_, comparison = setting
    assert comparison[RISE_LABEL].black_box_images == 6 * 24
    assert comparison[AKD_LABEL].black_box_images == 0
    assert comparison["Grad-CAM"].black_box_images == 6
    queries = query_accounting(comparison, {"images": 1000, "calls": 10})
    assert queries["methods"][RISE_LABEL]["images_per_image"] == 24
    assert queries["break_even"] == {"Grad-CAM": 1001, RISE_LABEL: 42}
    assert 1000 < 24 * 42 and not 1000 < 24 * 41
    assert RISE_STUDENT_LABEL not in queries["break_even"]  # it never queries the black box
    table = queries_table(queries)
    assert "| AKD (ours): distillation, once | – | 10 | 1000 |" in table
    assert f"| {RISE_LABEL} | 6 | 2 | 144 | 0.3333 | 24 | 42 |" in table
    unknown = queries_table(query_accounting(comparison, None))
    assert "one-off not counted" in unknown
    assert break_even(0, 0, 1) == 1 and break_even(10, 2, 2) is None
