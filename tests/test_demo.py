"""`captum-akd demo --quick` end to end: every output exists, parses and covers every method."""

import json

import pytest
from safetensors.torch import load_file

from captum_akd import AttentiveDistillationAttribution
from captum_akd.cli import main
from captum_akd.demo import DemoSettings, demo_data, demo_distill, demo_target

METHODS = ["AKD (ours)", "Layer-wise CAM", "Grad-CAM", "RISE", "LIME", "RISE on student"]
CONTROLS = ["Uniform noise (control)", "Centre Gaussian (control)", "Sobel edges (control)"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "akd-demo"
    assert main(["demo", "--quick", "--quiet", "--out", str(out)]) == 0
    return out


def test_every_output_exists_and_parses(demo_dir):
    for name in ("report.md", "results.json", "maps.png", "curves.png"):
        assert (demo_dir / name).is_file(), name
    for name in ("maps.png", "curves.png"):
        assert (demo_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((demo_dir / "results.json").read_text())
    assert set(results["methods"]) == set(METHODS + CONTROLS)
    assert {k for k, row in results["methods"].items() if row["control"]} == set(CONTROLS)
    for name, row in results["methods"].items():
        summary = row["summary"]
        assert 0.0 <= summary["insertion"] <= 1.0
        assert 0.0 <= summary["deletion"] <= 1.0
        assert 0.0 <= summary["deletion_blur"] <= 1.0
        assert -1.0 <= summary["road_combined"] <= 1.0
        assert 0.0 <= summary["pointing_game"] <= 100.0
        if name == "RISE on student":  # a diagnostic, not timed
            assert summary["images_per_second"] is None
        else:
            assert summary["images_per_second"] > 0
        low, high = row["intervals"]["insertion"]["low"], row["intervals"]["insertion"]["high"]
        assert low <= summary["insertion"] <= high
    assert results["surrogate_ceiling"]["metrics"]["insertion"]["transfer_loss"]["verdict"] in (
        "better", "worse", "tie")
    queries = results["black_box_queries"]
    assert queries["one_off"]["images"] > 0
    assert queries["methods"]["RISE"]["images_per_image"] == results["settings"]["rise_masks"]
    assert queries["methods"]["AKD (ours)"]["images"] == 0
    # Issue 23's claim, in the demo's own goals: never worse than Grad-CAM on the four
    # faithfulness metrics, better on two, better than every control on each.
    goals = {goal["goal"] for goal in results["goals"]}
    metrics = ("insertion", "deletion to 0", "deletion to blur", "ROAD combined")
    assert {"AKD insertion >= Grad-CAM", "AKD deletion to 0 <= Grad-CAM",
            "AKD deletion to blur <= Grad-CAM", "AKD ROAD combined >= Grad-CAM",
            "AKD better than Grad-CAM on at least 2 of these 4"} <= goals
    assert {f"AKD beats every control on {m}" for m in metrics} <= goals
    assert all(isinstance(goal["holds"], bool) for goal in results["goals"])
    assert 0.0 <= results["target"]["test_accuracy"] <= 100.0
    assert 0.0 <= results["student"]["agreement"] <= 100.0


def test_report_has_a_row_per_method(demo_dir):
    report = (demo_dir / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    for name in METHODS + CONTROLS + ["Normal inference"]:
        assert any(line.startswith(f"| {name} |") for line in rows), name
    assert "![maps](maps.png)" in report
    for section in ("## Each method against AKD, image by image", "## Surrogate ceiling",
                    "## Black-box queries"):
        assert section in report, section


def test_checkpoint_loads(demo_dir):
    checkpoint = demo_dir / "checkpoint"
    attr = AttentiveDistillationAttribution.load(checkpoint)
    assert attr.num_classes == 8
    assert load_file(str(checkpoint / "student.safetensors"))


def test_refuses_to_overwrite(demo_dir, capsys):
    assert main(["demo", "--quick", "--quiet", "--out", str(demo_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_overwrite_replaces_only_a_demo_directory(demo_dir, tmp_path):
    from captum_akd.checkpoint import write_directory_atomically

    # A demo directory is ours to replace (the same call the demo makes at its end).
    write_directory_atomically(demo_dir, {"results.json": lambda p: p.write_text("{}")},
                               overwrite=True, marker="results.json")
    assert sorted(p.name for p in demo_dir.iterdir()) == ["results.json"]
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "cat.jpg").write_bytes(b"mine")
    assert main(["demo", "--quick", "--quiet", "--overwrite", "--out", str(precious)]) == 2
    assert (precious / "cat.jpg").read_bytes() == b"mine"


def test_help_explains_every_option(capsys):
    from captum_akd.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    demo = build_parser()._subparsers._group_actions[0].choices["demo"]
    for action in demo._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 15, action.dest
            assert action.option_strings[0] in text


def test_demo_distill_takes_stage_1_options():
    tiny = DemoSettings(image_size=32, train_images=16, test_images=8, eval_images=2,
                        target_epochs=1, student_epochs=1, explainer_epochs=1,
                        student_options={"perturb_share": 0.5})
    train, test = demo_data(tiny, progress=False)
    attr = demo_distill(tiny, demo_target(tiny, train, progress=False), train, test,
                        progress=False)
    assert attr.metadata["training"]["student"]["config"]["perturb_share"] == 0.5
    assert DemoSettings().student_options == {}  # the demo itself matches clean images only


def test_amp_and_slow_images_reach_the_run(tmp_path):
    from captum_akd.demo import run_demo

    tiny = DemoSettings(image_size=32, train_images=48, test_images=20, eval_images=3,
                        target_epochs=1, student_epochs=1, explainer_epochs=1, rise_masks=20,
                        lime_samples=10, step=256, bootstrap_resamples=200, ceiling_images=None,
                        amp=True, slow_images=2)
    results = run_demo(tmp_path / "demo", settings=tiny, progress=False)
    images = results["evaluation"]["method_images"]
    # RISE, LIME and RISE on the student explain the first two images, the rest all three.
    assert images["RISE"] == images["LIME"] == images["RISE on student"] == 2
    assert images["AKD (ours)"] == images["Grad-CAM"] == images["Uniform noise (control)"] == 3
    assert results["settings"]["amp"] is True and results["settings"]["slow_images"] == 2
    attr = AttentiveDistillationAttribution.load(tmp_path / "demo" / "checkpoint")
    training = attr.metadata["training"]
    assert training["student"]["mixed_precision"] and training["explainer"]["mixed_precision"]
    assert DemoSettings().amp is None and DemoSettings().slow_images is None
