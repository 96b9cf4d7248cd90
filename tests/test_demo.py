"""`captum-akd demo --quick` end to end: every output exists, parses and covers every method."""

import json

import pytest
from safetensors.torch import load_file

from captum_akd import AttentiveDistillationAttribution
from captum_akd.cli import main

METHODS = ["AKD (ours)", "Layer-wise CAM", "Grad-CAM", "RISE", "LIME"]


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
    assert set(results["methods"]) == set(METHODS)
    for row in results["methods"].values():
        summary = row["summary"]
        assert 0.0 <= summary["insertion"] <= 1.0
        assert 0.0 <= summary["deletion"] <= 1.0
        assert 0.0 <= summary["pointing_game"] <= 100.0
        assert summary["images_per_second"] > 0
    assert {goal["goal"] for goal in results["goals"]}
    assert all(isinstance(goal["holds"], bool) for goal in results["goals"])
    assert 0.0 <= results["target"]["test_accuracy"] <= 100.0
    assert 0.0 <= results["student"]["agreement"] <= 100.0


def test_report_has_a_row_per_method(demo_dir):
    report = (demo_dir / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    for name in METHODS + ["Normal inference"]:
        assert any(line.startswith(f"| {name} |") for line in rows), name
    assert "![maps](maps.png)" in report


def test_checkpoint_loads(demo_dir):
    checkpoint = demo_dir / "checkpoint"
    attr = AttentiveDistillationAttribution.load(checkpoint)
    assert attr.num_classes == 8
    assert load_file(str(checkpoint / "student.safetensors"))


def test_refuses_to_overwrite(demo_dir, capsys):
    assert main(["demo", "--quick", "--quiet", "--out", str(demo_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err
