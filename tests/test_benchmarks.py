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
import torch

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ belongs to the checkout, not to the installed package.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import METHOD_LABELS, perturb_options  # noqa: E402
from benchmarks.run import main, resolve_args  # noqa: E402
from benchmarks.synthetic import demo_settings, load_black_box  # noqa: E402
from captum_akd import AttentiveDistillationAttribution  # noqa: E402
from captum_akd.checkpoint import read_config  # noqa: E402
from captum_akd.demo import demo_data, demo_distill  # noqa: E402
from captum_akd.evaluation import CONTROL_LABELS  # noqa: E402

DATA = REPO.parent / "shared" / "data"
# Options every smoke run shares: cheap baselines, one thread, no bars.
TINY = ["--threads", "1", "--quiet", "--rise-masks", "20", "--lime-samples", "10",
        "--speed-images", "1", "--batch-size", "16", "--epochs", "1",
        "--explainer-epochs", "1", "--grid-images", "2", "--bootstrap-resamples", "200"]
ALL_METHODS = list(METHOD_LABELS.values())
CONTROLS = set(CONTROL_LABELS.values())


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
    assert named == set(methods) | CONTROLS
    for evaluation in results["evaluations"].values():
        n = evaluation["n_images"]
        assert len(evaluation["image_ids"]) == n == len(evaluation["labels"])
        assert evaluation["inference"]["images_per_second"] > 0
        assert evaluation["inference"]["threads"] == 1
        for name, entry in evaluation["methods"].items():
            assert len(entry["per_image"]["insertion_auc"]) == n
            assert len(entry["per_image"]["deletion_blur_auc"]) == n
            assert 0 <= entry["summary"]["insertion"] <= 1
            assert entry["control"] == (name in CONTROLS)
            if name != "RISE on student":  # a diagnostic, not timed
                assert entry["speed"]["batch_size"] == 16
            if name != "AKD (ours)" and "insertion" in entry["paired"]:
                assert entry["paired"]["insertion"]["verdict"] in ("better", "worse", "tie")
    goals = {g["goal"]: g for g in results["targets"]}
    assert goals["AKD insertion >= Grad-CAM"]["verdict"] in ("better", "worse", "tie")
    assert "AKD beats every control on insertion" in goals
    weights = results["checkpoint"]["weights_sha256"]
    assert set(weights) == {"student.safetensors", "explainer.safetensors"}
    assert read_config(out / "checkpoint")["weights_sha256"] == weights
    markdown = (out / "results.md").read_text()
    assert results["command"] in markdown and weights["student.safetensors"] in markdown
    assert "## Targets of issue 6" in markdown and "Normal inference" in markdown
    assert "## Black-box queries" in markdown
    for name in set(methods) | CONTROLS:
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
    # RISE on the student ran with RISE, on the same images: the surrogate ceiling.
    assert "RISE on student" in results["evaluations"]["subset"]["methods"]
    assert results["surrogate_ceiling"]["images"] == 2
    # The subset's fast methods are the full run's first two images, not a new run.
    for name, entry in results["evaluations"]["full"]["methods"].items():
        subset = results["evaluations"]["subset"]["methods"][name]
        assert subset["per_image"]["insertion_auc"] == entry["per_image"]["insertion_auc"][:2]
        assert subset["speed"] == entry["speed"]
    # The student's own forward pass is timed beside AKD, and AKD's cost judged by it.
    student = results["evaluations"]["subset"]["student_forward"]
    assert student["images_per_second"] > 0 and student["n_images"] == 4
    assert "AKD time <= 1.25 x the student's own forward pass" in {
        g["goal"] for g in results["targets"]}
    assert "| Student forward pass (the surrogate alone) |" in (out / "results.md").read_text()
    queries = results["black_box_queries"]
    assert queries["one_off"]["images"] > 0
    assert queries["methods"]["RISE"]["images_per_image"] == 20
    assert queries["methods"]["RISE on student"]["images"] == 0
    assert queries["break_even"]["RISE"] == queries["one_off"]["images"] // 20 + 1

    # The track's AKD is the demo's: demo_distill with the same sizes gives the same weights.
    s = demo_settings(resolve_args(argv))
    train, test = demo_data(s, progress=False)
    target = load_black_box(s, out / "checkpoint" / "black_box.safetensors")
    direct = demo_distill(s, target, train, test, progress=False)
    saved = AttentiveDistillationAttribution.load(out / "checkpoint")
    for module in ("student", "explainer"):
        mine, theirs = getattr(direct, module).state_dict(), getattr(saved, module).state_dict()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), module
    with pytest.raises(ValueError, match="--student-lr does not apply"):
        main([*argv, "--student-lr", "0.1", "--overwrite"])

    with pytest.raises(FileExistsError):
        main(argv)
    again = main([*argv, "--overwrite"])
    assert again["distillation"]["source"] == "loaded from the cache"
    assert again["target"]["source"] == "loaded from the cache"
    assert again["black_box_queries"]["one_off"] == queries["one_off"]
    assert not list(tmp_path.glob(".synthetic.*"))  # no staging left behind

    # Re-scoring from the saved checkpoint trains nothing, the black box included,
    # and reproduces the per-image scores.
    rescored = main([*argv[:-4], "--out", str(tmp_path / "rescored"), "--cache", "none",
                     "--checkpoint", str(out / "checkpoint")])
    assert rescored["distillation"]["source"] == "loaded from --checkpoint"
    assert rescored["target"]["source"].startswith("loaded from --checkpoint")
    assert rescored["target"]["sha256"] == results["target"]["sha256"]
    assert rescored["checkpoint"]["weights_sha256"] == results["checkpoint"]["weights_sha256"]
    assert rescored["black_box_queries"]["one_off"]["images"] == queries["one_off"]["images"]
    for key in ("insertion_auc", "deletion_auc"):
        before = results["evaluations"]["full"]["methods"]["AKD (ours)"]["per_image"][key]
        after = rescored["evaluations"]["full"]["methods"]["AKD (ours)"]["per_image"][key]
        assert after == pytest.approx(before, abs=1e-4)

    # Another stage 2 on the same black box: the given --explainer-* options replace the
    # demo's of the same name, the black box is the file's, and its hash keys the cache.
    black_box = out / "checkpoint" / "black_box.safetensors"
    rise_argv = [*argv[:-4], "--out", str(tmp_path / "rise"), "--cache", str(cache),
                 "--black-box", str(black_box), "--explainer-objective", "rise",
                 "--explainer-area-weight", "0", "--explainer-rise-masks", "2",
                 "--explainer-rise-grid", "4"]
    options = demo_settings(resolve_args(rise_argv)).explainer_options
    assert options == {**demo_settings(resolve_args(argv)).explainer_options,
                       "objective": "rise", "area_weight": 0.0, "rise_masks": 2, "rise_grid": 4}
    rise = main(rise_argv)
    assert rise["target"]["sha256"] == results["target"]["sha256"]
    assert rise["target"]["source"].startswith("loaded from --black-box")
    assert rise["distillation"]["source"] == "distilled in this run"
    assert rise["distillation"]["settings"]["explainer_options"] == options
    assert rise["distillation"]["key"] != results["distillation"]["key"]
    assert "stage-2 settings" in (tmp_path / "rise" / "results.md").read_text()
    with pytest.raises(ValueError, match="--black-box and --checkpoint"):
        main([*rise_argv, "--overwrite", "--checkpoint", str(out / "checkpoint")])
    with pytest.raises(ValueError, match="--black-box .* is not a file"):
        main([*argv[:-4], "--out", str(tmp_path / "rise"), "--overwrite",
              "--black-box", str(tmp_path / "missing")])


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
    assert results["evaluations"]["full"]["settings"]["road_images"]["AKD (ours)"] == 4
    assert (out / "sanity.png").is_file()
    assert any(g["goal"] == "student top-1 agreement >= 95 %" for g in results["targets"])


@pytest.mark.skipif(not (DATA / "imagenet-sample").is_dir(),
                    reason="needs ../shared/data/imagenet-sample")
def test_imagenet_sample_track(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    out = tmp_path / "imagenet"
    methods = ["akd", "gradcam", "rise"]
    # Seed 2 puts one dog and one other photo first in the split.
    # Three held-out photos: the student's agreement is measured on all three,
    # the methods explain and are scored on the first two.
    results = main(["--track", "imagenet-sample", *TINY, "--methods", ",".join(methods),
                    "--seed", "2", "--n-images", "3", "--score-images", "2",
                    "--train-images", "2", "--select-images", "1", "--perturb-share", "0.5",
                    "--perturb-substrates", "blur", "--distill-batch-size", "2",
                    "--step", "12544", "--data-dir", str(DATA),
                    "--out", str(out), "--cache", "none"])
    check_results(out, "imagenet-sample", [METHOD_LABELS[k] for k in methods])
    # Perturbation matching reaches stage 1 and the settings (the cache key).
    assert results["distillation"]["settings"]["perturb_share"] == 0.5
    student_config = read_config(out / "checkpoint")["metadata"]["training"]["student"]["config"]
    assert student_config["perturb_share"] == 0.5
    assert results["distillation"]["settings"]["perturb_substrates"] == "blur"
    assert student_config["perturb_substrates"] == "blur"
    assert student_config["perturb_masks"] == "both"
    assert "by the mean of clean and perturbed agreement" in (out / "results.md").read_text()
    assert results["data"]["train_images"] == 1 and results["data"]["select_images"] == 1
    assert results["data"]["dog_images"] >= 1
    assert results["distillation"]["settings"]["select_images"] == 1
    assert 0 <= results["student"]["agreement_start"] <= 100
    assert results["evaluations"]["full"]["n_images"] == 2
    assert results["agreement"]["on"] == "the 3 evaluation photos"
    assert results["target"]["model"] == "efficientnet_lite2_target"
    dogs = results["slices"]["dog breeds (ImageNet classes 151-268)"]["full"]
    assert dogs["n_images"] == 1
    assert set(dogs["methods"]) == {"AKD (ours)", "Grad-CAM", "RISE"} | CONTROLS
    assert "## Slice: dog breeds" in (out / "results.md").read_text()


@pytest.mark.skipif(not (DATA / "imagenet-sample").is_dir(),
                    reason="needs ../shared/data/imagenet-sample")
def test_imagenet_sample_track_retrains_the_explainer_of_a_committed_student(
        tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    committed = Path(__file__).resolve().parents[1] / "benchmarks/checkpoints/imagenet-sample"
    command = ["--track", "imagenet-sample", *TINY, "--methods", "akd",
               "--n-images", "2", "--train-images", "3", "--select-images", "1",
               "--student-from", str(committed), "--explainer-objective", "curve",
               "--explainer-budgets", "2", "--explainer-destroy", "both",
               "--explainer-train-size", "96", "--explainer-seed", "3",
               "--distill-batch-size", "2", "--step", "12544", "--data-dir", str(DATA),
               "--no-controls", "--road-images", "0", "--cache", str(tmp_path / "cache")]
    out = tmp_path / "imagenet"
    results = main([*command, "--out", str(out)])
    settings = results["distillation"]["settings"]
    assert settings["objective"] == "curve" and settings["select_images"] == 1
    # Stage 2 alone takes the other seed; the photos stay --seed's.
    assert settings["explainer_seed"] == 3 and settings["seed"] == 0
    assert settings["train_images"] == 2 and settings["train_size"] == 96
    # Trained on 96 px photos, applied (and recorded) at the student's 260 px, also when
    # a later run loads the pair from the cache (whose run directory says 96 px).
    assert read_config(out / "checkpoint")["metadata"]["input_size"] == [260, 260]
    again = main([*command, "--out", str(tmp_path / "again")])
    assert again["distillation"]["source"] == "loaded from the cache"
    assert read_config(tmp_path / "again" / "checkpoint")["metadata"]["input_size"] == [260, 260]
    assert settings["student_sha256"] == json.loads(
        (committed / "config.json").read_text())["weights_sha256"]["student.safetensors"]
    assert results["evaluations"]["full"]["n_images"] == 2


def test_explainer_seed_is_refused_where_no_stage_2_runs_alone(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert resolve_args(["--track", "cifar10", "--explainer-seed", "1"]).explainer_seed == 1
    for refused in (["--track", "synthetic"], ["--track", "imagenet-sample"],
                    ["--track", "cifar10", "--student-checkpoint", "none"]):
        with pytest.raises(SystemExit):
            resolve_args([*refused, "--explainer-seed", "1"])
        assert "--explainer-seed seeds a stage 2 trained on a given student" in (
            capsys.readouterr().err)


def test_perturb_share_is_refused_where_no_stage_1_is_trained(
        capsys: pytest.CaptureFixture[str]) -> None:
    for track in ("synthetic", "imagenet-sample"):
        assert resolve_args(["--track", track, "--perturb-share", "0.4"]).perturb_share == 0.4
    for refused in (["--track", "cifar10"],
                    ["--track", "imagenet-sample", "--student-from", "benchmarks/checkpoints/x"]):
        with pytest.raises(SystemExit):
            resolve_args([*refused, "--perturb-share", "0.4"])
        assert "--perturb-share changes a stage 1 this run does not train" in (
            capsys.readouterr().err)
    with pytest.raises(SystemExit):
        resolve_args(["--track", "synthetic", "--perturb-share", "1"])
    assert "--perturb-share must be in [0, 1), got 1" in capsys.readouterr().err
    # The copies' substrates and masks mean nothing without copies.
    for option in (["--perturb-substrates", "blur"], ["--perturb-masks", "smooth"]):
        with pytest.raises(SystemExit):
            resolve_args(["--track", "synthetic", *option])
        assert f"{option[0]} sets the perturbed copies" in capsys.readouterr().err
    args = resolve_args(["--track", "synthetic", "--perturb-share", "0.4",
                         "--perturb-substrates", "blur"])
    assert perturb_options(args) == {"perturb_share": 0.4, "perturb_substrates": "blur"}
    assert perturb_options(resolve_args(["--track", "synthetic"])) == {}


def test_explainer_seed_is_refused_where_no_stage_1_run_is_found(tmp_path: Path) -> None:
    # 'auto' finds no finished distill_cifar10.py run in the repository.
    with pytest.raises(ValueError, match="--explainer-seed: --student-checkpoint 'auto'"):
        main(["--track", "cifar10", *TINY, "--n-images", "2", "--explainer-seed", "1",
              "--data-dir", str(DATA), "--out", str(tmp_path / "out"), "--cache", "none"])


def test_distill_cifar10_without_labels_gives_the_images_alone() -> None:
    """``--labels black-box``: items carry no label, so training uses the black box's."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from benchmarks.distill_cifar10 import WithoutLabels
    from captum_akd.distill import distill_student
    from captum_akd.models import cifar_resnet_student

    images = torch.randn(6, 3, 8, 8)
    data = WithoutLabels(TensorDataset(images, torch.arange(6)))
    assert len(data) == 6 and torch.equal(data[2], images[2])
    assert torch.equal(next(iter(DataLoader(data, batch_size=6))), images)
    black_box = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
    result = distill_student(black_box, data, student=cifar_resnet_student(depth=8, num_classes=4),
                             epochs=1, batch_size=3, device="cpu", quiet=True)
    # Accuracy needs labels: none reached the run.
    assert result.report["student_accuracy"] is None


def test_distill_cifar10_fidelity_of_a_copy_is_perfect() -> None:
    import torch
    from torch.utils.data import TensorDataset

    from benchmarks.distill_cifar10 import fidelity

    torch.manual_seed(0)
    black_box = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
    images = torch.randn(10, 3, 8, 8)
    labels = black_box(images).argmax(1).detach()
    labels[:4] = (labels[:4] + 1) % 4  # the black box is wrong on four
    report = fidelity(black_box, black_box, TensorDataset(images, labels), torch.device("cpu"),
                      batch_size=3)
    assert report["images"] == 10 and report["top1_agreement"] == 1.0
    assert abs(report["kl"]) < 1e-6
    assert report["student_accuracy"] == report["target_accuracy"] == 0.6


def test_cifar10_takes_only_finished_runs_of_distill_cifar10(tmp_path: Path) -> None:
    """A run counts as finished once distill_cifar10.py wrote its record beside it."""
    from benchmarks.cifar10 import run_record, stage1_checkpoint

    run = tmp_path / "checkpoint-e3"
    run.mkdir()
    (run / "config.json").write_text("{}")
    assert run_record(run) is None  # stopped half-way: no record yet
    with pytest.raises(ValueError, match="no finished student"):
        stage1_checkpoint(str(run))
    (tmp_path / "e3.json").write_text(json.dumps({"explainer": None}))
    assert stage1_checkpoint(str(run)) == (run, False)
    explained = tmp_path / "checkpoint-e3-explainer"
    explained.mkdir()
    (explained / "config.json").write_text("{}")
    (tmp_path / "e3.json").write_text(json.dumps({"explainer": {"mask_mean": 0.2}}))
    assert stage1_checkpoint(str(explained)) == (explained, True)
    assert stage1_checkpoint("none") is None


class _RampMaps:
    """An attribution whose map ranks pixels left to right, the same for every image."""

    def attribute(self, inputs, target=None, **kwargs):
        n, _, h, w = inputs.shape
        return torch.arange(w, dtype=inputs.dtype).expand(n, 1, h, w).clone()


def test_agreement_is_the_share_of_images_where_both_models_pick_the_same_class() -> None:
    from benchmarks.map_matching import agreement

    torch.manual_seed(0)
    images = torch.randn(16, 3, 2, 2) * 3
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)).eval()

    class _Constant(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 3).float()

    assert agreement(model, model, images) == 1.0
    assert (model(images).argmax(1) == 0).sum() == 5  # the seed's draw: neither 0 nor all
    assert agreement(model, _Constant(), images) == 0.3125


def test_map_masked_removes_one_end_of_the_map_at_the_drawn_share() -> None:
    from benchmarks.map_matching import map_masked

    torch.manual_seed(0)
    images = torch.rand(8, 3, 8, 8) + 1  # no pixel is 0, so a zeroed one shows
    black_box = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
    copies = map_masked(_RampMaps(), black_box, images, torch.Generator().manual_seed(3),
                        (3, 1.0))
    again = map_masked(_RampMaps(), black_box, images, torch.Generator().manual_seed(3),
                       (3, 1.0))
    assert torch.equal(copies, again)
    changed = (copies != images).any(1)  # N x H x W
    generator = torch.Generator().manual_seed(3)
    share = torch.rand(8, generator=generator) * 0.9 + 0.05
    most = torch.rand(8, generator=generator) < 0.5
    ramp = torch.arange(8.0).expand(8, 8)
    for i in range(8):
        kept_top = round(float(share[i]) * 64)
        removed = changed[i]
        # The most relevant pixels (right) go, or all but them.
        assert int(removed.sum()) == (kept_top if most[i] else 64 - kept_top), i
        gone, left = ramp[removed], ramp[~removed]
        if len(gone) and len(left):
            assert (gone.min() >= left.max()) if most[i] else (gone.max() <= left.min()), i


def test_blurred_maps_are_the_maps_under_a_gaussian() -> None:
    from torchvision.transforms.functional import gaussian_blur

    from benchmarks.explainer_objective import Blurred

    images = torch.rand(2, 3, 8, 8)
    maps = Blurred(_RampMaps(), 1.0).attribute(images, target=torch.tensor([0, 1]))
    assert torch.allclose(maps, gaussian_blur(_RampMaps().attribute(images), [7, 7], [1.0, 1.0]))


def test_mean_maps_are_the_members_maps_averaged_for_the_asked_class() -> None:
    from benchmarks.explainer_objective import Mean

    class _ClassMaps:
        """Every pixel of image i is the requested class of image i, times a scale."""

        def __init__(self, scale: float) -> None:
            self.scale = scale

        def attribute(self, inputs, target=None, **kwargs):
            value = self.scale * target.to(inputs.dtype)
            return value[:, None, None, None].expand(inputs.shape[0], 1, *inputs.shape[-2:])

    images, target = torch.rand(3, 3, 4, 4), torch.tensor([0, 1, 2])
    maps = Mean([_ClassMaps(1.0), _ClassMaps(3.0), _RampMaps()]).attribute(images, target=target)
    ramp = _RampMaps().attribute(images)
    assert maps.shape == (3, 1, 4, 4)
    assert torch.allclose(maps, (4.0 * target[:, None, None, None] + ramp) / 3)


def test_cam_blend_mixes_the_explainers_maps_with_the_students_cam() -> None:
    from benchmarks.explainer_objective import CamBlend
    from captum_akd import AttentiveDistillationAttribution
    from captum_akd.models import ExplanationNet, cifar_resnet_student

    torch.manual_seed(0)
    student = cifar_resnet_student(depth=8, num_classes=3)
    attr = AttentiveDistillationAttribution(None, student,
                                            ExplanationNet.for_student(student, width=16))
    images, target = torch.rand(2, 3, 16, 16), torch.tensor([0, 2])
    alone, cam, half = (CamBlend(attr, w).attribute(images, target=target)
                        for w in (0.0, 1.0, 0.5))
    assert torch.allclose(alone, attr.attribute(images, target=target), atol=1e-6)
    # The CAM alone: non-negative, each map scaled to a maximum of one, class-specific.
    assert cam.shape == (2, 1, 16, 16) and bool(cam.min() >= 0)
    assert torch.allclose(cam.flatten(1).amax(1), torch.ones(2))
    other = CamBlend(attr, 1.0).attribute(images, target=torch.tensor([1, 1]))
    assert not torch.allclose(cam, other)
    assert torch.allclose(half, (alone + cam) / 2, atol=1e-6)


def test_score_rows_runs_rise_once_per_image_untimed() -> None:
    from types import SimpleNamespace

    from benchmarks.explainer_objective import score_rows
    from captum_akd.baselines import RISE

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 3)).eval()
    seen = []

    def counted(x: torch.Tensor) -> torch.Tensor:
        seen.append(len(x))
        return model(x)

    test = {"image": torch.rand(4, 3, 8, 8), "mask": torch.zeros(4, 1, 8, 8, dtype=torch.bool)}
    test["mask"][..., 2:5, 2:5] = True
    rows = score_rows(model, {"RISE": RISE(counted, n_masks=8, grid=2)}, test, images=3,
                      road_images=0, threads=1, s=SimpleNamespace(step=16, seed=0))
    # One attribution pass (8 masked copies of each of the 3 images), no timing passes.
    assert sum(seen) == 3 * 8
    assert len(rows["RISE"]["per_image"]["insertion"]) == 3


def test_stage2_speed_times_both_students_on_equal_logits_and_keeps_its_results(
        tmp_path: Path) -> None:
    from benchmarks.stage2_speed import main as stage2_speed

    out = tmp_path / "speed"
    args = ["--images", "2", "--masks", "3", "--repeats", "2", "--threads", "1",
            "--out", str(out)]
    results = stage2_speed(args)
    assert set(results["seconds"]) == {"frozen student", "channels-last copy"}
    assert all(len(t) == 2 and min(t) > 0 for t in results["seconds"].values())
    assert results["max_logit_difference"] < 1e-4
    assert json.loads((out / "results.json").read_text())["settings"]["masks"] == 3
    with pytest.raises(FileExistsError, match="--overwrite"):
        stage2_speed(args)
