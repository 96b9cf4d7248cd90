"""Smoke tests of the benchmark harness: every track end to end on a tiny configuration.

A handful of images, one epoch per stage, a few RISE masks and LIME samples and
coarse insertion/deletion steps: the numbers mean nothing, the files and their
structure are what is checked. The cifar10 and imagenet-sample tracks need
``../shared/data`` and are skipped without it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ belongs to the checkout, not to the installed package.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import METHOD_LABELS  # noqa: E402
from benchmarks.run import main  # noqa: E402
from captum_akd import AttentiveDistillationAttribution  # noqa: E402

DATA = REPO.parent / "shared" / "data"
# Options every smoke run shares: cheap baselines, one thread, no bars.
TINY = ["--threads", "1", "--quiet", "--rise-masks", "20", "--lime-samples", "10",
        "--speed-images", "1", "--batch-size", "16", "--epochs", "1",
        "--explainer-epochs", "1", "--grid-images", "2"]
ALL_METHODS = list(METHOD_LABELS.values())


def check_results(out: Path, track: str, methods: list[str]) -> dict:
    """The files of a results directory are there and say what they should."""
    for name in ("results.json", "results.md", "maps.png", "curves.png", ".gitignore"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    assert results["track"] == track
    assert results["command"].startswith("python -m benchmarks.run --track " + track)
    for key in ("date", "git", "machine", "versions", "settings", "seed", "wall_seconds",
                "targets", "evaluations", "distillation", "agreement"):
        assert key in results, key
    assert results["versions"]["torch"] and results["versions"]["captum-akd"]
    named = {name for e in results["evaluations"].values() for name in e["methods"]}
    assert named == set(methods)
    for evaluation in results["evaluations"].values():
        n = evaluation["n_images"]
        assert len(evaluation["image_ids"]) == n == len(evaluation["labels"])
        assert evaluation["inference"]["images_per_second"] > 0
        assert evaluation["inference"]["threads"] == 1
        for entry in evaluation["methods"].values():
            assert len(entry["per_image"]["insertion_auc"]) == n
            assert 0 <= entry["summary"]["insertion"] <= 1
            assert entry["speed"]["batch_size"] == 16
    goals = {g["goal"]: g for g in results["targets"]}
    assert "AKD insertion >= Grad-CAM" in goals
    markdown = (out / "results.md").read_text()
    assert results["command"] in markdown
    assert "## Targets of issue 6" in markdown and "Normal inference" in markdown
    for name in methods:
        assert f"| {name} |" in markdown
    attr = AttentiveDistillationAttribution.load(out / "checkpoint")
    assert attr.student is not None
    return results


def test_synthetic_track(tmp_path: Path) -> None:
    out, cache = tmp_path / "synthetic", tmp_path / "cache"
    argv = ["--track", "synthetic", *TINY, "--n-images", "4", "--slow-images", "2",
            "--train-images", "160", "--test-images", "24", "--target-epochs", "1",
            "--student-depth", "8", "--image-size", "32", "--step", "256",
            "--out", str(out), "--cache", str(cache)]
    results = main(argv)
    check_results(out, "synthetic", ALL_METHODS)
    # RISE and LIME on 2 images: every method there, the fast ones also on all 4.
    assert results["evaluations"]["subset"]["n_images"] == 2
    assert results["evaluations"]["full"]["n_images"] == 4
    assert "RISE" not in results["evaluations"]["full"]["methods"]
    assert (out / "curves-full.png").is_file()
    assert results["evaluations"]["subset"]["methods"]["AKD (ours)"]["summary"][
        "pointing_game"] is not None
    assert results["distillation"]["source"] == "distilled in this run"

    with pytest.raises(FileExistsError):
        main(argv)
    again = main([*argv, "--overwrite"])
    assert again["distillation"]["source"] == "loaded from the cache"
    assert again["target"]["source"] == "loaded from the cache"
    assert not list(tmp_path.glob(".synthetic.*"))  # no staging left behind


@pytest.mark.skipif(not (DATA / "cifar10").is_dir(), reason="needs ../shared/data/cifar10")
def test_cifar10_track(tmp_path: Path) -> None:
    out = tmp_path / "cifar10"
    results = main(["--track", "cifar10", *TINY, "--n-images", "4", "--train-images", "64",
                    "--val-images", "20", "--fidelity-images", "40",
                    "--student-checkpoint", "none", "--sanity-images", "2",
                    "--sanity-epochs", "1", "--sanity-explainer-epochs", "1",
                    "--sanity-train-images", "64", "--data-dir", str(DATA),
                    "--out", str(out), "--cache", str(tmp_path / "cache")])
    check_results(out, "cifar10", ALL_METHODS)
    assert results["evaluations"]["full"]["settings"]["step"] == 32
    assert set(results["sanity_check"]["spearman"]) == {"AKD (ours)", "Layer-wise CAM",
                                                        "Grad-CAM"}
    assert (out / "sanity.png").is_file()
    assert any(g["goal"] == "student top-1 agreement >= 95 %" for g in results["targets"])


@pytest.mark.skipif(not (DATA / "imagenet-sample").is_dir(),
                    reason="needs ../shared/data/imagenet-sample")
def test_imagenet_sample_track(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    out = tmp_path / "imagenet"
    methods = ["akd", "gradcam", "rise"]
    # Seed 2 puts one dog and one other photo first in the split.
    results = main(["--track", "imagenet-sample", *TINY, "--methods", ",".join(methods),
                    "--seed", "2", "--n-images", "2", "--train-images", "2",
                    "--distill-batch-size", "2", "--step", "12544", "--data-dir", str(DATA),
                    "--out", str(out), "--cache", "none"])
    check_results(out, "imagenet-sample", [METHOD_LABELS[k] for k in methods])
    assert results["data"]["train_images"] == 2 and results["data"]["dog_images"] == 1
    dogs = results["slices"]["dog breeds (ImageNet classes 151-268)"]["full"]
    assert dogs["n_images"] == 1 and set(dogs["methods"]) == {"AKD (ours)", "Grad-CAM", "RISE"}
    assert "## Slice: dog breeds" in (out / "results.md").read_text()


def test_agreement_analysis_splits_add_up() -> None:
    """The disagreement analysis on a tiny black box and a student that copies it."""
    import torch

    from benchmarks.agreement_cifar10 import VIEWS, analyse, shift, view_agreement

    torch.manual_seed(0)
    images = torch.randn(40, 3, 8, 8)
    moved = shift(images, 1, 0)
    assert torch.equal(moved[..., 1:], images[..., :-1]) and not moved[..., 0].any()
    assert torch.equal(shift(images, 0, -2)[..., :-2, :], images[..., 2:, :])

    target = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
    labels = target(images).argmax(1).detach()
    labels[:10] = (labels[:10] + 1) % 4  # the black box is wrong on the first ten
    copy = analyse(target, target, images, labels, batch_size=16)
    assert copy["top1_agreement"] == 1.0 and copy["target_accuracy"] == 0.75
    assert copy["agreement_where_target_wrong"] == 1.0
    assert copy["student_right_where_target_wrong"] == 0.0
    assert sum(b["images"] for b in copy["agreement_by_target_confidence"]) == 40

    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
    report = analyse(target, other, images, labels, batch_size=16)
    stable = report["target_mirror_consistency"]
    mixed = (stable * report["agreement_where_target_mirror_stable"]
             + (1 - stable) * report["agreement_where_target_mirror_unstable"])
    assert abs(mixed - report["top1_agreement"]) < 1e-6

    # Views: the plain one repeats the analysis; JPEG needs the normalisation.
    views = view_agreement(target, other, images, labels, {"mean": [0.5] * 3, "std": [0.25] * 3},
                           batch_size=16)
    assert set(views) == set(VIEWS)
    assert views["as is"]["top1_agreement"] == report["top1_agreement"]
    assert views["as is"]["target_accuracy"] == 0.75
    assert views["re-encoded q75"] != views["as is"]


def test_average_students_means_weights_and_batch_norm() -> None:
    """Weight averaging: floats are the mean, batch counters the first's, and the
    re-estimate gives the batch-norm statistics averaged over the batches."""
    import torch

    from benchmarks.average_students import average_weights, recalibrate_batch_norm

    torch.manual_seed(0)

    def net() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))

    a, b = net(), net()
    b[1].running_mean.fill_(2.0)
    b[1].num_batches_tracked.fill_(7)
    mean = average_weights([a, b])
    assert torch.allclose(mean[0].weight, (a[0].weight + b[0].weight) / 2)
    assert torch.allclose(mean[1].running_mean, torch.full((4,), 1.0))
    assert mean[1].num_batches_tracked.item() == 0
    assert torch.equal(a[1].running_mean, torch.zeros(4))  # the inputs are left alone

    batches = torch.randn(12, 3, 6, 6).split(4)
    recalibrate_batch_norm(mean, batches)
    with torch.no_grad():
        features = [mean[0](batch) for batch in batches]
    assert not mean.training
    batch_means = torch.stack([f.mean((0, 2, 3)) for f in features])
    batch_vars = torch.stack([f.var((0, 2, 3)) for f in features])
    assert torch.allclose(mean[1].running_mean, batch_means.mean(0), atol=1e-5)
    assert torch.allclose(mean[1].running_var, batch_vars.mean(0), atol=1e-5)

    with pytest.raises(ValueError, match=r"models\[1\]"):
        average_weights([a, torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3))])
    with pytest.raises(ValueError, match="models"):
        average_weights([])


def test_distill_cifar10_without_labels_gives_the_images_alone() -> None:
    """``--labels black-box``: batches carry no label, so training uses the black box's."""
    import torch
    from torch.utils.data import TensorDataset

    from benchmarks.distill_cifar10 import WithoutLabels
    from captum_akd.distill.batches import NO_LABEL, EpochLoader
    from captum_akd.distill.distributed import setup

    images = torch.randn(6, 3, 8, 8)
    data = WithoutLabels(TensorDataset(images, torch.arange(6)))
    assert len(data) == 6 and torch.equal(data[2], images[2])
    loader = EpochLoader(data, batch_size=3, ctx=setup("cpu"), shuffle=False)
    batches = list(loader)
    assert torch.equal(torch.cat([b[0] for b in batches]), images)
    assert all((labels == NO_LABEL).all() for _, labels in batches)
