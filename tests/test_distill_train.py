"""Training end to end on the tiny square task: black-box guarantee, fidelity, stage 2."""

import pytest
import torch
from test_distill_support import (
    NUM_CLASSES,
    make_dataset,
    make_images,
    square_target,
    tiny_student,
)
from torch import nn
from torch.utils.data import DataLoader, Dataset

import captum_akd
from captum_akd import AttentiveDistillationAttribution
from captum_akd.distill import distill_student, train_explainer

FAST = dict(batch_size=32, quiet=True, device="cpu")


class Guarded(nn.Module):
    """A black box whose weights raise if anything reads them."""

    def __init__(self) -> None:
        super().__init__()
        net = nn.Conv2d(3, NUM_CLASSES, 1, bias=False)
        with torch.no_grad():
            net.weight.copy_(torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0],
                                           [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])[:, :, None, None])
        # Kept in a closure, not as a submodule: the library can only call us.
        object.__setattr__(self, "_fn", lambda x: 3.0 * net(x).flatten(2).amax(2))
        object.__setattr__(self, "calls", [])

    def forward(self, images):
        assert not torch.is_grad_enabled(), "the black box was called with gradients on"
        assert not images.requires_grad
        self.calls.append(images.clone())
        return self._fn(images)

    def _refuse(self, *args, **kwargs):
        raise AssertionError("the black box's parameters were read")

    parameters = named_parameters = state_dict = buffers = named_buffers = _refuse
    modules = named_modules = children = named_children = _refuse

    def __getattr__(self, name):
        raise AssertionError(f"the black box's internals were read ({name!r})")


@pytest.mark.parametrize("perturb_share, objective",
                         [(0.0, "area"), (0.5, "curve"), (0.0, "rise")])
def test_guarded_target_is_only_called(tmp_path, perturb_share, objective):
    target = Guarded()
    student = tiny_student()
    seen = []
    student.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    attr = captum_akd.distill(target, make_dataset(64), student=student, epochs=1,
                              explainer_epochs=1, out=tmp_path / "run",
                              student_config={"perturb_share": perturb_share},
                              explainer_config={"objective": objective}, **FAST)
    assert isinstance(attr, AttentiveDistillationAttribution)
    # Stage 1: the black box saw exactly the augmented (and partly removed) batches the
    # student saw. Both first saw the two held-out batches and their two partly removed
    # copies (the start of the run is measured before the first epoch).
    steps, held = 2, 4
    assert all(torch.equal(a, b) for a, b in zip(target.calls[1:1 + held + steps],
                                                 seen[:held + steps], strict=True))
    assert torch.equal(target.calls[1], make_dataset(64).tensors[0][:32])
    assert not torch.equal(target.calls[1 + held], make_dataset(64).tensors[0][:32])
    maps = attr.attribute(make_images(4, seed=3)[0])
    assert maps.shape == (4, 1, 16, 16)


@pytest.mark.parametrize("append", [False, True])
def test_perturbed_copies_replace_or_join_the_batch_with_the_black_box_label(monkeypatch,
                                                                               append):
    from captum_akd.distill import _stage1

    given = []
    real = _stage1.hard_labels

    def recording(labels, teacher):
        given.append(labels.clone())
        return real(labels, teacher)

    monkeypatch.setattr(_stage1, "hard_labels", recording)
    target = Guarded()
    distill_student(target, make_dataset(64), student=tiny_student(), epochs=1,
                    perturb_share=0.5, perturb_append=append, mixup=0.2, **FAST)
    # Two steps of 32 images; with mixup each gives its labels and its partners' labels.
    size = 48 if append else 32
    assert len(given) == 4
    for labels in given:
        assert labels.shape == (size,)
        copies, clean = (labels[32:], labels[:32]) if append else (labels[:16], labels[16:])
        assert copies.eq(-1).all() and clean.ge(0).all()
    # The black box labelled exactly those batches, copies included.
    assert sum(call.shape[0] == size for call in target.calls) >= 2
    if append:
        assert sum(call.shape[0] == 48 for call in target.calls) == 2


def test_plain_function_target_and_agreement():
    calls = []

    def black_box(images):
        calls.append(torch.is_grad_enabled())
        return square_target(images)

    result = distill_student(black_box, make_dataset(512, seed=0), student=tiny_student(),
                             val_data=make_dataset(256, seed=1), epochs=3, **FAST)
    assert calls and not any(calls)
    report = result.report
    assert report["split"] == "val" and report["images"] == 256
    assert report["top1_agreement"] >= 0.9
    assert report["kl"] < 0.5
    assert report["student_accuracy"] is not None
    assert len(result.history) == 3 and "val_agreement" in result.history[-1]
    assert not result.student.training


class DictData(Dataset):
    """Dict items without labels, and -1 labels: the black box's argmax is used."""

    def __init__(self, n):
        self.images = make_images(n, seed=5)[0]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": -1} if i % 2 else {"image": self.images[i]}


def test_unlabelled_dicts_and_dataloaders():
    result = distill_student(square_target, DictData(64), student=tiny_student(), epochs=1,
                             **FAST)
    assert result.report["split"] == "train" and result.report["student_accuracy"] is None
    loader = DataLoader(make_dataset(64), batch_size=16, shuffle=True)
    result = distill_student(square_target, loader, student=tiny_student(), epochs=1, **FAST)
    assert result.report["images"] == 64


def test_stage_two_alone_gives_class_specific_maps():
    student = distill_student(square_target, make_dataset(512), student=tiny_student(),
                              epochs=3, **FAST).student
    before = {k: v.clone() for k, v in student.state_dict().items()}
    attr = train_explainer(square_target, make_dataset(512), student=student, epochs=3,
                           val_data=make_dataset(128, seed=1), **FAST)
    # The student is frozen: stage 2 leaves its weights and flags alone.
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())
    assert all(p.requires_grad for p in student.parameters())
    report = attr.metadata["fidelity"]["explainer"]
    assert report["student_lost"] > 0.2
    assert 0 < report["mask_mean"] < 0.6
    images, labels, masks = make_images(64, seed=2)
    maps = attr.attribute(images, target=labels)
    flat = maps.flatten(1)
    hits = masks.flatten(1).gather(1, flat.argmax(1, keepdim=True)).float().mean()
    assert hits >= 0.8
    other = attr.attribute(images, target=(labels + 1) % NUM_CLASSES)
    assert not torch.allclose(other, maps, atol=1e-3)


def test_mutual_transfer_trains_two_students(tmp_path):
    torch.manual_seed(1)
    peer = tiny_student(seed=1)
    result = distill_student(square_target, make_dataset(128), student=tiny_student(),
                             peer=peer, epochs=1, out=tmp_path / "mutual", **FAST)
    assert result.peer is peer
    assert {"mutual_kl", "local_attention", "peer_kd"} <= set(result.history[0])
    assert (tmp_path / "mutual" / "peer.safetensors").is_file()


@pytest.mark.parametrize("crop, mixup, cutmix, jpeg_quality, amp", [
    ("resized", 0.4, 0.0, None, False),
    ("pad", 0.4, 1.0, [50, 90], True),
])
def test_other_augmentations_run(crop, mixup, cutmix, jpeg_quality, amp):
    # The square task's images are normalised pixels: mean 0.5, std 0.5.
    normalization = {"mean": [0.5] * 3, "std": [0.5] * 3}
    result = distill_student(square_target, make_dataset(64), student=tiny_student(), epochs=1,
                             crop=crop, mixup=mixup, cutmix=cutmix,
                             jpeg_quality=jpeg_quality,
                             normalization=normalization, amp=amp, optimizer="sgd",
                             grad_clip=1.0, **FAST)
    assert result.report is not None
    # Autocast computes in bfloat16 but keeps the weights in float32.
    assert {p.dtype for p in result.student.parameters()} == {torch.float32}


def test_a_diverging_run_returns_the_student_it_started_from():
    data, held_out = make_dataset(96), make_dataset(32, seed=1)
    student = distill_student(square_target, data, student=tiny_student(), val_data=held_out,
                              epochs=2, **FAST).student
    before = {k: v.clone() for k, v in student.state_dict().items()}
    # A learning rate this large wrecks the student in one epoch.
    result = distill_student(square_target, data, student=student, val_data=held_out,
                             epochs=2, lr=50.0, warmup_epochs=0.0, finetune=False, **FAST)
    report = result.report
    assert report["best_epoch"] == 0
    assert report["top1_agreement"] == report["start"]["top1_agreement"]
    assert report["last"]["top1_agreement"] < report["start"]["top1_agreement"]
    after = result.student.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_a_pretrained_student_is_fine_tuned_with_its_backbone_held_first(tmp_path):
    from captum_akd.checkpoint import read_config

    student = tiny_student()
    student.pretrained = True  # as the builders set it when given weights
    backbone = {k: v.clone() for k, v in student.state_dict().items()
                if k.startswith(("stem.", "stages."))}
    head = student.fc.weight.detach().clone()
    result = distill_student(square_target, make_dataset(64), student=student, epochs=1,
                             out=tmp_path / "run", **FAST)
    state = result.student.state_dict()
    assert all(torch.equal(backbone[k], state[k]) for k in backbone)  # stats included
    assert not torch.equal(result.student.fc.weight, head)  # the head moved
    assert all(p.requires_grad for p in result.student.parameters())
    recorded = read_config(tmp_path / "run")["metadata"]["training"]["student"]["config"]
    assert (recorded["finetune"], recorded["lr"], recorded["warmup_epochs"],
            recorded["freeze_backbone_epochs"], recorded["freeze_batchnorm"]) == (
                True, 2e-4, 0.0, 1, False)


def test_freeze_batchnorm_holds_the_backbone_statistics_while_its_weights_train():
    student = tiny_student()
    student.pretrained = True
    stats = {k: v.clone() for k, v in student.state_dict().items()
             if k.startswith(("stem.", "stages.")) and "running_" in k}
    weights = {k: v.clone() for k, v in student.state_dict().items()
               if k.startswith(("stem.", "stages.")) and k.endswith("weight")}
    assert stats and weights
    # No frozen epoch, so the backbone's weights move in the one epoch run.
    result = distill_student(square_target, make_dataset(64), student=student, epochs=1,
                             freeze_backbone_epochs=0, freeze_batchnorm=True, **FAST)
    state = result.student.state_dict()
    assert any(not torch.equal(weights[k], state[k]) for k in weights)
    assert all(torch.equal(stats[k], state[k]) for k in stats)


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_batchnorm_sets_the_mode_the_backbone_trains_in(freeze):
    student = tiny_student()
    student.pretrained = True
    seen: set[bool] = set()
    batchnorm = next(m for m in student.stages.modules() if isinstance(m, torch.nn.BatchNorm2d))
    batchnorm.register_forward_pre_hook(lambda module, args: seen.add(module.training))
    distill_student(square_target, make_dataset(32), student=student, epochs=1,
                    freeze_backbone_epochs=0, freeze_batchnorm=freeze, **FAST)
    # Training steps run in train mode unless held; the fidelity reports always in eval mode.
    assert seen == ({False} if freeze else {True, False})


@pytest.mark.parametrize("objective", [
    {"objective": "curve", "budgets": 2, "destroy_substrate": "both"},
    {"objective": "rise", "rise_masks": 8, "rise_grid": 4, "area_weight": 0.0},
    {"objective": "curve", "budgets": 2, "destroy_substrate": "both", "rise_weight": 0.5,
     "rise_masks": 4, "rise_grid": 4},
])
def test_the_whole_curve_objectives_train_ranked_maps(objective):
    student = distill_student(square_target, make_dataset(256), student=tiny_student(),
                              epochs=2, **FAST).student
    attr = train_explainer(square_target, make_dataset(256), student=student, epochs=2,
                           val_data=make_dataset(64, seed=1), **objective, **FAST)
    report = attr.metadata["fidelity"]["explainer"]
    # The held-out curve score is measured before the first epoch and after each.
    assert report["student_insertion"] > report["start"]["student_insertion"]
    assert report["best_epoch"] in (1, 2)
    assert 0 <= report["student_deletion"] < report["student_insertion"] <= 1


def test_the_rise_term_scores_with_a_channels_last_copy_and_saves_the_student_as_is():
    from captum_akd.distill._stage2 import rise_scorer

    student = tiny_student()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    attr = train_explainer(square_target, make_dataset(64), student=student, epochs=1,
                           objective="rise", rise_masks=4, rise_grid=4, area_weight=0.0, **FAST)
    # The student that is saved keeps its values and its (contiguous) memory format.
    state = attr.student.state_dict()
    assert all(torch.equal(state[k], v) for k, v in before.items())
    assert all(p.is_contiguous() for p in attr.student.parameters())
    scorer = rise_scorer(attr.student, torch.device("cpu"))
    conv = next(m for m in scorer.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not scorer.training and not any(p.requires_grad for p in scorer.parameters())
    images = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(scorer(images), attr.student(images), rtol=1e-5, atol=1e-5)


def test_black_box_selection_reads_the_black_box_and_keeps_its_best_epoch():
    student = distill_student(square_target, make_dataset(128), student=tiny_student(),
                              epochs=1, **FAST).student
    queried, reports = {}, {}
    runs = {"student": {}, "black_box": {}, "subset": {"select_images": 8}}
    for name, extra in runs.items():
        seen = []

        def counted(images, seen=seen):
            seen.append(images.shape[0])
            return square_target(images)

        judge = "student" if name == "student" else "black_box"
        torch.manual_seed(0)  # the same fresh explainer for each run
        attr = train_explainer(counted, make_dataset(128), student=student, epochs=2,
                               val_data=make_dataset(32, seed=1), objective="curve", budgets=2,
                               destroy_substrate="both", select_on=judge, **extra, **FAST)
        queried[name], reports[name] = sum(seen), attr.metadata["fidelity"]["explainer"]
    # Before the first epoch and after each: 5 shares x (1 kept + 2 removed) x 32 images,
    # or x the 8 images `select_images` names.
    assert queried["black_box"] - queried["student"] == 3 * 5 * 3 * 32
    assert queried["subset"] - queried["student"] == 3 * 5 * 3 * 8
    assert reports["black_box"]["black_box_images"] == 32
    assert reports["subset"]["black_box_images"] == 8
    # The student still judges every held-out image, so its figures do not change.
    assert reports["subset"]["start"]["student_insertion"] == reports["black_box"]["start"][
        "student_insertion"]
    report = reports["black_box"]
    assert "black_box_insertion" not in reports["student"]
    kept = report["black_box_insertion"] - report["black_box_deletion"]
    for other in (report["start"], report["last"]):
        assert kept >= other["black_box_insertion"] - other["black_box_deletion"]
    assert {"student_insertion", "student_deletion"} <= set(report)


def test_a_diverging_explainer_run_keeps_its_start_and_stops_early():
    data, held_out = make_dataset(96), make_dataset(32, seed=1)
    student = distill_student(square_target, data, student=tiny_student(), epochs=2,
                              **FAST).student
    explainer = train_explainer(square_target, data, student=student, val_data=held_out,
                                epochs=2, **FAST).explainer
    before = {k: v.clone() for k, v in explainer.state_dict().items()}
    attr = train_explainer(square_target, data, student=student, explainer=explainer,
                           val_data=held_out, epochs=4, lr=50.0, warmup_epochs=0.0,
                           patience=1, **FAST)
    report = attr.metadata["fidelity"]["explainer"]
    assert report["best_epoch"] == 0
    assert attr.metadata["epochs_done"] == 1 and attr.metadata["complete"]
    assert report["student_insertion"] == report["start"]["student_insertion"]
    after = attr.explainer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # The report of the weights kept is complete: the black box judged their maps.
    assert {"mask_mean", "target_retained", "target_lost"} <= set(report)


def test_patience_counts_only_epochs_that_were_measured():
    data, held_out = make_dataset(64), make_dataset(32, seed=1)
    # A rate this large never improves on the start, but epoch 1 is not measured
    # (eval_every=2), so the run stops after epoch 2, not 1.
    result = distill_student(square_target, data, student=tiny_student(), val_data=held_out,
                             epochs=4, eval_every=2, patience=1, lr=50.0, warmup_epochs=0.0,
                             finetune=False, **FAST)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.report["best_epoch"] == 0


@pytest.mark.parametrize("kept", ["start", "last"])
def test_stage_2_measures_its_final_report_once_on_the_weights_kept(monkeypatch, tmp_path,
                                                                   kept):
    import json

    from captum_akd.distill import _stage2

    student = distill_student(square_target, make_dataset(64), student=tiny_student(),
                              epochs=1, **FAST).student
    calls = []
    measure = _stage2.explainer_fidelity
    monkeypatch.setattr(_stage2, "explainer_fidelity",
                        lambda *args: calls.append(1) or measure(*args))
    # A score that falls (or rises) with the epoch decides which weights are kept.
    sign = -1 if kept == "start" else 1
    monkeypatch.setattr(_stage2.ExplainerStage, "score",
                        lambda self, report: (sign * report["epoch"],))
    attr = train_explainer(square_target, make_dataset(64), student=student, epochs=2,
                           val_data=make_dataset(32, seed=1), out=tmp_path / "run", **FAST)
    report = attr.metadata["fidelity"]["explainer"]
    state = json.loads((tmp_path / "run" / "training_state.json").read_text())
    history = state["history"]["explainer"]
    assert len(calls) == 1 and 0 < report["mask_mean"] < 1
    assert report["best_epoch"] == (0 if kept == "start" else 2)
    # The last epoch's record carries the one-mask figures only when its weights are kept.
    assert ("val_mask_mean" in history[-1]) == (kept == "last")


def test_the_black_box_subset_scores_the_first_held_out_images():
    from captum_akd.distill._distributed import setup
    from captum_akd.distill._fidelity import HeldOut, explainer_curve

    class Batches:
        # Three fixed batches of 8, as the held-out loader would give them.
        def __init__(self, data):
            self.data = data

        def set_epoch(self, epoch):
            pass

        def __iter__(self):
            return iter(self.data)

    torch.manual_seed(0)
    images = torch.rand(24, 3, 32, 32)
    batches = [(images[i:i + 8], torch.zeros(8, dtype=torch.long)) for i in range(0, 24, 8)]
    attr = train_explainer(square_target, make_dataset(64), student=tiny_student(), epochs=1,
                           **FAST)
    ctx, device = setup("cpu"), torch.device("cpu")
    judges = ("student", "black_box")

    def curve(held_out, limit):
        return explainer_curve(attr.student, attr.explainer, held_out, ctx, judges=judges,
                               black_box_images=limit)

    whole = curve(HeldOut(Batches(batches), square_target, device), None)
    subset = curve(HeldOut(Batches(batches), square_target, device), 12)
    first = curve(HeldOut(Batches(batches), square_target, device, limit=12), None)
    assert (whole["black_box_images"], subset["black_box_images"]) == (24, 12)
    assert subset["student_images"] == 24
    for key in ("insertion", "deletion"):
        assert subset[f"student_{key}"] == pytest.approx(whole[f"student_{key}"], abs=1e-12)
        assert subset[f"black_box_{key}"] == pytest.approx(first[f"black_box_{key}"],
                                                           abs=1e-6)


def test_the_default_explainer_is_initialised_from_the_run_seed():
    # Whatever the caller drew from torch's global generator, the same call
    # with the same seed trains the same explainer; another seed, another one.
    student, data = tiny_student().eval(), make_dataset(32)

    def trained(seed, draws):
        torch.randn(draws)
        attr = train_explainer(square_target, data, student=student, epochs=1, seed=seed,
                               **FAST)
        return attr.explainer.state_dict()

    first, second, other = trained(0, 1), trained(0, 7), trained(1, 1)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_restarts_keep_the_seed_whose_maps_the_black_box_scores_best(tmp_path):
    # Restart r is the run seed 3 + r would make; the kept one has the best
    # held-out black-box curve score, and the checkpoint holds it alone.
    student, data = tiny_student().eval(), make_dataset(64)
    options = dict(student=student, val_data=make_dataset(32, seed=1), epochs=2,
                   objective="curve", budgets=2, **FAST)
    plain = [train_explainer(square_target, data, seed=seed, **options) for seed in (3, 4, 5)]
    attr = train_explainer(square_target, data, seed=3, restarts=3, out=tmp_path / "run",
                           **options)
    report = attr.metadata["fidelity"]["explainer"]
    summaries = report["restarts"]
    assert [s["seed"] for s in summaries] == [3, 4, 5]
    for summary, alone in zip(summaries, plain, strict=True):
        alone_report = alone.metadata["fidelity"]["explainer"]
        assert summary["target_retained"] == alone_report["target_retained"]
        assert summary["best_epoch"] == alone_report["best_epoch"]
        assert summary["black_box_images"] == 32
    scores = [s["score"] for s in summaries]
    assert len(set(scores)) == 3  # the seeds give different explainers
    kept = scores.index(max(scores))
    assert report["restart_seed"] == 3 + kept
    best = plain[kept].explainer.state_dict()
    assert all(torch.equal(v, best[k]) for k, v in attr.explainer.state_dict().items())
    assert report["target_retained"] == plain[kept].metadata["fidelity"]["explainer"][
        "target_retained"]
    loaded = AttentiveDistillationAttribution.load(tmp_path / "run", square_target)
    assert all(torch.equal(v, best[k]) for k, v in loaded.explainer.state_dict().items())
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.is_dir()) == []


def test_restarts_read_the_black_box_once_per_restart_unless_it_chose_the_epochs():
    student, data = tiny_student().eval(), make_dataset(32)
    queried = {}
    for name, extra in {"one": {}, "two": {"restarts": 2},
                        "two-subset": {"restarts": 2, "select_images": 8},
                        "two-by-black-box": {"restarts": 2, "select_on": "black_box"}}.items():
        seen = []

        def counted(images, seen=seen):
            seen.append(images.shape[0])
            return square_target(images)

        train_explainer(counted, data, student=student, val_data=make_dataset(16, seed=1),
                        epochs=1, seed=0, **extra, **FAST)
        queried[name] = sum(seen)
    # Each restart's kept maps are judged once, on every held-out image or on
    # `select_images`: 5 shares x (1 kept + 1 removed) per image.
    assert queried["two"] - queried["two-subset"] == 2 * 5 * 2 * (16 - 8)
    # Chosen by the black box already (before the epoch and after it), the reading
    # of the kept epoch is reused instead of made again.
    assert queried["two-by-black-box"] - queried["two"] == 2 * 5 * 2 * 16
    assert queried["two"] > 2 * (queried["one"] - 16)
