"""Losses, augmentation, schedule, configs and state encoding of the distill package."""

import math

import pytest
import torch
from torch.utils.data import DataLoader

from captum_akd.data._batches import Collate, split_batch, split_item
from captum_akd.distill import BatchAugment, DistillConfig, ExplainerConfig
from captum_akd.distill import losses as L
from captum_akd.distill._stage2 import choose_classes
from captum_akd.distill._trainer import Precision, build_optimizer, cosine_schedule
from captum_akd.distill.config import resolve_config
from captum_akd.distill.mutual import grid_cells, local_attention_loss, mutual_kl, pearson

Z_S = torch.tensor([[1.0, 0.0]])
Z_T = torch.tensor([[0.0, 1.0]])


def test_distillation_kl_matches_closed_form():
    # z_t / T = [0, a], z_s / T = [a, 0] with a = 1 / T: KL = a * tanh(a / 2).
    for temperature in (1.0, 2.0, 4.0):
        expected = temperature * math.tanh(1 / (2 * temperature))
        assert L.distillation_kl(Z_S, Z_T, temperature).item() == pytest.approx(expected, rel=1e-6)
    assert L.distillation_kl(Z_T, Z_T, 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_kd_loss_weights_kl_and_cross_entropy():
    out = L.kd_loss(Z_S, Z_T, torch.tensor([1]), temperature=1.0, alpha=0.5)
    ce = math.log(1 + math.e)  # CE([1, 0], class 1)
    assert out["kd"].item() == pytest.approx(math.tanh(0.5), rel=1e-6)
    assert out["ce"].item() == pytest.approx(ce, rel=1e-6)
    assert out["loss"].item() == pytest.approx(0.5 * math.tanh(0.5) + 0.5 * ce, rel=1e-6)
    only_kd = L.kd_loss(Z_S, Z_T, torch.tensor([1]), temperature=2.0, alpha=1.0)
    assert only_kd["loss"].item() == pytest.approx(2 * math.tanh(0.25), rel=1e-6)


def test_kd_loss_mixup_cross_entropy():
    out = L.kd_loss(Z_S, Z_T, torch.tensor([0]), 1.0, 0.0, labels_b=torch.tensor([1]), lam=0.25)
    ce0, ce1 = math.log(1 + math.exp(-1)), math.log(1 + math.e)
    assert out["loss"].item() == pytest.approx(0.25 * ce0 + 0.75 * ce1, rel=1e-6)


def test_hard_labels_fall_back_to_the_black_box():
    teacher = torch.tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 1.0]])
    assert L.hard_labels(torch.tensor([2, -1]), teacher).tolist() == [2, 0]


def test_preserve_and_destroy_values():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    classes = torch.tensor([0, 0])
    # p(c) = 1/2 and 3/4.
    assert L.preserve_loss(logits, classes).item() == pytest.approx(
        (math.log(2) - math.log(0.75)) / 2, rel=1e-6)
    assert L.destroy_loss(logits, classes).item() == pytest.approx(
        (math.log(2) + math.log(4)) / 2, rel=1e-6)
    # Stable when p(c) rounds to 1 in float32: -log(1 - p) is about 100.
    sure = L.destroy_loss(torch.tensor([[100.0, 0.0]]), torch.tensor([0]))
    assert sure.item() == pytest.approx(100.0, rel=1e-4)


def test_area_and_tv():
    one = torch.zeros(1, 1, 2, 2)
    one[..., 0, 0] = 1
    assert L.area_loss(one).item() == pytest.approx(0.25)
    assert L.area_loss(one, target=0.25).item() == pytest.approx(0.0)
    half = torch.full((1, 1, 2, 2), 0.5)
    assert L.area_loss(half, target=0.25).item() == pytest.approx(0.25)
    stripes = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    assert L.tv_loss(stripes).item() == pytest.approx(1.0)
    assert L.tv_loss(torch.ones(1, 1, 4, 4)).item() == 0


def test_explainer_loss_sums_weighted_terms():
    logits = torch.tensor([[0.0, 0.0]])
    mask = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    out = L.explainer_loss(logits, logits, mask, torch.tensor([1]), 1.0, 2.0, 3.0, 4.0, None)
    expected = math.log(2) + 2 * math.log(2) + 3 * 0.5 + 4 * 1.0
    assert out["loss"].item() == pytest.approx(expected, rel=1e-6)
    assert set(out) == {"loss", "preserve", "destroy", "area", "tv"}


def test_local_attention_loss():
    maps = [torch.rand(2, 1, 8, 8), torch.rand(2, 1, 4, 4)]
    assert local_attention_loss(maps, [3 * m + 1 for m in maps]).item() == pytest.approx(
        0.0, abs=1e-5)
    assert local_attention_loss(maps, [-m for m in maps]).item() == pytest.approx(2.0, abs=1e-5)
    assert grid_cells(torch.rand(3, 1, 8, 8), 2).shape == (3, 4, 16)
    # Cells keep at least 2 x 2 pixels; odd sizes are resized.
    assert grid_cells(torch.rand(1, 1, 4, 4), 4).shape == (1, 4, 4)
    assert grid_cells(torch.rand(1, 1, 7, 7), 2).shape == (1, 4, 16)
    assert pearson(torch.ones(5), torch.rand(5)).item() == 0
    with pytest.raises(ValueError, match="as many stages"):
        local_attention_loss(maps, maps[:1])
    assert mutual_kl(Z_S, Z_S, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_pad_crop_is_a_shift_and_seeded():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    augment = BatchAugment(crop="pad", padding=2, flip=False)
    out, mix = augment(images, torch.Generator().manual_seed(1))
    again, _ = augment(images, torch.Generator().manual_seed(1))
    assert mix is None and torch.equal(out, again)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(2):
        found = any(torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])
                    for dy in range(5) for dx in range(5))
        assert found


def test_resized_crop_identity_and_flip():
    images = torch.rand(4, 3, 8, 8)
    same = BatchAugment(crop="resized", scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)
    out, _ = same(images, torch.Generator().manual_seed(0))
    assert torch.allclose(out, images, atol=1e-5)
    flip = BatchAugment(crop="none", flip=True)
    out, _ = flip(images, torch.Generator().manual_seed(0))
    for i in range(4):
        assert torch.equal(out[i], images[i]) or torch.equal(out[i], images[i].flip(-1))


def test_mixup_reports_its_mix():
    images = torch.rand(6, 3, 4, 4)
    out, mix = BatchAugment(crop="none", flip=False, mixup=1.0)(
        images, torch.Generator().manual_seed(0))
    assert 0 <= mix.lam <= 1
    assert torch.allclose(out, mix.lam * images + (1 - mix.lam) * images[mix.perm])


def test_cutmix_pastes_a_box_from_the_partner_and_reports_it():
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    augment = BatchAugment(crop="none", flip=False, cutmix=1.0)
    boxes = set()
    for seed in range(20):
        out, mix = augment(images, torch.Generator().manual_seed(seed))
        again, _ = augment(images, torch.Generator().manual_seed(seed))
        assert torch.equal(out, again)
        top, bottom, left, right = mix.box
        inside = torch.zeros(8, 8, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        assert torch.equal(out[..., inside], images[mix.perm][..., inside])
        assert torch.equal(out[..., ~inside], images[..., ~inside])
        assert mix.lam == pytest.approx(1 - inside.float().mean().item())
        boxes.add(mix.box)
    assert len(boxes) > 10
    # The caller's batch is left alone.
    assert torch.equal(images, torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0)))


def test_mixup_and_cutmix_together_take_turns():
    images = torch.rand(4, 3, 8, 8)
    augment = BatchAugment(crop="none", flip=False, mixup=1.0, cutmix=1.0)
    kinds = [augment(images, torch.Generator().manual_seed(seed))[1].box is None
             for seed in range(40)]
    assert 10 < sum(kinds) < 30
    with pytest.raises(ValueError, match="`cutmix` must be >= 0"):
        BatchAugment(cutmix=-1.0)


def test_jpeg_recompression_in_pixel_and_normalised_space():
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(3, 3, 16, 16, generator=g)
    out, mix = BatchAugment(crop="none", flip=False, jpeg_quality=75)(
        pixels, torch.Generator().manual_seed(1))
    assert mix is None and out.shape == pixels.shape and out.dtype == pixels.dtype
    # Lossy: noise does not survive, but stays on the 8-bit pixel grid in [0, 1].
    assert 0.02 < (out - pixels).abs().mean() < 0.3
    assert torch.allclose(out * 255, (out * 255).round(), atol=1e-3)
    # A higher quality keeps more of the image.
    finer, _ = BatchAugment(crop="none", flip=False, jpeg_quality=98)(
        pixels, torch.Generator().manual_seed(1))
    assert (finer - pixels).abs().mean() < (out - pixels).abs().mean()
    # Normalised inputs go back to pixels and return normalised.
    norm = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
    mean, std = (torch.tensor(norm[k]).reshape(1, 3, 1, 1) for k in ("mean", "std"))
    normed, _ = BatchAugment(crop="none", flip=False, jpeg_quality=75, normalization=norm)(
        (pixels - mean) / std, torch.Generator().manual_seed(1))
    assert torch.allclose(normed * std + mean, out, atol=1e-5)
    # Grey images keep their one channel.
    grey, _ = BatchAugment(crop="none", flip=False, jpeg_quality=75)(
        pixels[:, :1], torch.Generator().manual_seed(1))
    assert grey.shape == (3, 1, 16, 16)


def test_jpeg_quality_ranges_are_drawn_per_image_and_seeded():
    pixels = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)).expand(
        16, 3, 16, 16)
    augment = BatchAugment(crop="none", flip=False, jpeg_quality=[10, 95])
    out, _ = augment(pixels, torch.Generator().manual_seed(2))
    again, _ = augment(pixels, torch.Generator().manual_seed(2))
    assert torch.equal(out, again)
    # The same image comes back differently: the qualities differ between images.
    assert len({round(float((o - pixels[0]).abs().mean()), 6) for o in out}) > 3


def test_jpeg_recompression_rejects_what_it_cannot_encode():
    with pytest.raises(ValueError, match="`jpeg_quality`.*got 0"):
        BatchAugment(jpeg_quality=0)
    with pytest.raises(ValueError, match="`normalization` must be a dict"):
        BatchAugment(jpeg_quality=75, normalization={"mean": [0.5]})
    augment = BatchAugment(crop="none", flip=False, jpeg_quality=75)
    with pytest.raises(ValueError, match="pixels in \\[0, 1\\].*`normalization`"):
        augment(torch.randn(2, 3, 8, 8) * 3, torch.Generator())
    with pytest.raises(ValueError, match="1- or 3-channel"):
        augment(torch.rand(2, 2, 8, 8), torch.Generator())


def test_choose_classes():
    predicted = torch.tensor([0, 1, 2, 3] * 25)
    logits = torch.zeros(100, 4)
    logits[:, 2] = 1.0
    logits[torch.arange(100), predicted] = 5.0
    g = torch.Generator().manual_seed(0)
    chosen = choose_classes(predicted, logits, 0.25, "second", g)
    other = chosen != predicted
    assert 10 < int(other.sum()) < 40
    # The second most likely class: 2, or 0 where the prediction is 2.
    assert set(chosen[other & (predicted != 2)].tolist()) <= {2}
    assert set(chosen[other & (predicted == 2)].tolist()) <= {0}
    assert torch.equal(choose_classes(predicted, logits, 0.0, "random", g), predicted)
    randoms = choose_classes(predicted, logits, 1.0, "random", g)
    assert bool((randoms != predicted).all())


def test_cosine_schedule_warms_up_and_anneals():
    opt = build_optimizer([torch.nn.Linear(2, 2)], "sgd", lr=1.0, weight_decay=0.0)
    sched = cosine_schedule(opt, total_steps=10, warmup_steps=2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1 / 3) and lrs[1] == pytest.approx(2 / 3)
    assert lrs[2] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:], strict=False))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_no_weight_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = build_optimizer([model], "adamw", lr=1e-3, weight_decay=0.1)
    decays = {len(g["params"]): g["weight_decay"] for g in opt.param_groups}
    assert decays == {1: 0.1, 3: 0.0}


def test_configs_validate_and_resolve():
    cfg = resolve_config(DistillConfig, {"epochs": 3}, {"lr": 0.01})
    assert (cfg.epochs, cfg.lr, cfg.resolved_weight_decay()) == (3, 0.01, 0.05)
    assert DistillConfig(optimizer="sgd").resolved_lr() == 0.05
    with pytest.raises(TypeError, match="unknown DistillConfig option"):
        resolve_config(DistillConfig, None, {"epoch": 3})
    for bad in ({"epochs": 0}, {"alpha": 1.5}, {"optimizer": "adam"}, {"crop": "zoom"},
                {"temperature": -1}, {"jpeg_quality": 101}, {"jpeg_quality": [90, 50]},
                {"jpeg_quality": [50, 70, 90]}, {"jpeg_quality": 75.0}):
        with pytest.raises(ValueError):
            DistillConfig(**bad)
    # One stored form per setting.
    assert DistillConfig(jpeg_quality=[75]).jpeg_quality == 75
    assert DistillConfig(jpeg_quality=(50, 90)).jpeg_quality == [50, 90]
    for bad in ({"area_target": 1.0}, {"blur_kernel": 4}, {"other_class": "all"},
                {"other_class_fraction": 2.0}):
        with pytest.raises(ValueError):
            ExplainerConfig(**bad)
    for restarts in (0, 1.5):
        with pytest.raises(ValueError, match="restarts"):
            ExplainerConfig(restarts=restarts)
    # The RISE term is added to another objective; under 'rise' a weight would be ignored.
    with pytest.raises(ValueError, match="rise_weight"):
        ExplainerConfig(objective="rise", rise_weight=0.5)
    assert ExplainerConfig(objective="curve", rise_weight=0.5).rise_weight == 0.5


def test_optimizer_state_round_trips_through_the_run_directory(tmp_path):
    from captum_akd.distill._distributed import setup
    from captum_akd.distill._state import STATE_OPTIM, RunDir
    from captum_akd.models import ExplanationNet, cifar_resnet_student

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    student = cifar_resnet_student(depth=8, num_classes=3)
    run = RunDir(tmp_path / "run", resume=False, overwrite=False, ctx=setup("cpu"))
    run.state.fingerprints["student"] = {}
    run.save(student, ExplanationNet.for_student(student, width=16), {},
             {"optimizer": opt.state_dict(), "scheduler": None, "scaler": None})
    # Read back without unpickling arbitrary objects.
    assert torch.load(tmp_path / "run" / STATE_OPTIM, weights_only=True)["scaler"] is None
    resumed = RunDir(tmp_path / "run", resume=True, overwrite=False, ctx=setup("cpu")).load()
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    fresh.load_state_dict(resumed.optim["optimizer"])
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9)
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(fresh.state_dict()["state"][0][key], opt.state_dict()["state"][0][key])


def test_item_and_batch_forms():
    image = torch.rand(3, 4, 4)
    assert split_item(image)[1] == -1
    assert split_item((image, 2))[1] == 2
    assert split_item((image, torch.tensor(3), "extra"))[1] == 3
    assert split_item({"image": image, "label": None})[1] == -1
    assert split_item({"image": image})[1] == -1
    with pytest.raises(TypeError, match="image tensor"):
        split_item(("not an image", 1))
    with pytest.raises(TypeError, match="int class index"):
        split_item((image, 1.5))
    images, labels = Collate()([(image, 1), {"image": image, "label": -1}, image])
    assert images.shape == (3, 3, 4, 4) and labels.tolist() == [1, -1, -1]
    resized, _ = Collate(image_size=(8, 8))([image, torch.rand(3, 6, 5)])
    assert resized.shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="different sizes"):
        Collate()([image, torch.rand(3, 6, 5)])
    dict_batch = next(iter(DataLoader([{"image": image, "label": 1}] * 2, batch_size=2)))
    assert split_batch(dict_batch)[1].tolist() == [1, 1]
    assert split_batch(torch.rand(2, 3, 4, 4))[1].tolist() == [-1, -1]


def test_mixed_precision_on_the_cpu_is_bfloat16_without_a_scaler():
    precision = Precision(torch.device("cpu"), enabled=True)
    assert (precision.enabled, precision.dtype) == (True, torch.bfloat16)
    assert not precision.scaler.is_enabled()
    net = torch.nn.Conv2d(3, 4, 3)
    with precision.autocast():
        out = net(torch.randn(2, 3, 8, 8))
    assert out.dtype == torch.bfloat16
    # Off unless asked for on the CPU.
    assert not Precision(torch.device("cpu")).enabled
    with pytest.raises(ValueError, match="`amp=True` needs a CUDA device or the CPU"):
        Precision(torch.device("meta"), enabled=True)


def test_perturbed_copies_are_seeded_and_use_the_asked_masks_and_substrates():
    from captum_akd._image_ops import gaussian_blur, perturb

    images = torch.randn(8, 3, 16, 16)
    first = perturb(images, torch.Generator().manual_seed(3))
    assert torch.equal(first, perturb(images, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, perturb(images, torch.Generator().manual_seed(4)))
    kept = (first == images).all(1).float().mean((1, 2))
    assert bool(((kept > 0.03) & (kept < 0.97)).all())
    zero = perturb(images, torch.Generator().manual_seed(0), substrates=("zero",))
    removed = (zero != images).any(1, keepdim=True).expand_as(images)
    assert bool((zero[removed] == 0).all())
    blur = perturb(images, torch.Generator().manual_seed(0), substrates=("blur",))
    removed = (blur != images).any(1, keepdim=True).expand_as(images)
    assert torch.allclose(blur[removed], gaussian_blur(images)[removed])
    # Scattered masks leave isolated pixels; smooth ones, a few large blobs.
    def edges(out):
        keep = (out == images).all(1).float()
        return (keep[:, 1:] != keep[:, :-1]).float().mean()
    smooth = perturb(images, torch.Generator().manual_seed(0), masks=("smooth",))
    scattered = perturb(images, torch.Generator().manual_seed(0), masks=("scattered",))
    assert edges(smooth) < 0.5 * edges(scattered)
    # A batch too small to give a copy (share x batch rounds to 0) gives none.
    assert perturb(images[:0], torch.Generator().manual_seed(0)).shape == (0, 3, 16, 16)


def test_soft_top_k_keeps_each_share_and_passes_gradients():
    from captum_akd.distill.losses import draw_budgets, soft_top_k

    torch.manual_seed(0)
    mask = torch.rand(3, 1, 8, 8, requires_grad=True)
    budgets = draw_budgets(3, 4, 2.0, torch.Generator().manual_seed(1))
    assert torch.equal(budgets, draw_budgets(3, 4, 2.0, torch.Generator().manual_seed(1)))
    assert bool(((budgets >= 0.005) & (budgets <= 0.995)).all())
    kept = soft_top_k(mask, budgets, temperature=0.01)
    assert kept.shape == (3, 4, 8, 8)
    # Near-hard at a small temperature: the top share of pixels by rank (at least one).
    shares = (kept > 0.5).float().mean(dim=(2, 3))
    assert torch.allclose(shares, (budgets * 64).round().clamp_min(1) / 64)
    soft = soft_top_k(mask, budgets, temperature=0.1)
    soft.sum().backward()
    assert mask.grad is not None and bool((mask.grad > 0).any())
    # Only the order matters: a monotone rescaling of the map gives the same masks.
    assert torch.allclose(soft_top_k(3 * mask.detach() + 1, budgets, 0.1), soft.detach(),
                          atol=1e-5)


def test_probability_terms_are_the_curves_integrands():
    from captum_akd.distill.losses import explainer_loss

    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    classes = torch.tensor([0, 1])
    p = torch.softmax(logits, dim=1).gather(1, classes[:, None]).mean()
    parts = explainer_loss(logits, logits, torch.full((2, 1, 4, 4), 0.5), classes,
                           probability=True)
    assert torch.allclose(parts["preserve"], 1 - p) and torch.allclose(parts["destroy"], p)


def test_rise_loss_reads_the_order_the_rise_baseline_gives():
    from captum_akd._image_ops import rise_masks
    from captum_akd.baselines import RISE

    # A model whose class-0 score rises with the brightness of the top-left quarter only.
    def model(images):
        corner = images[:, :, :8, :8].mean(dim=(1, 2, 3))
        return torch.stack([4 * corner, torch.zeros_like(corner)], dim=1)

    image = torch.ones(1, 3, 16, 16)
    rise_map = RISE(model, n_masks=2000, grid=4, seed=0).attribute(image, target=0)
    masks = rise_masks(2000, 16, 16, 4, 0.5, torch.Generator().manual_seed(1))
    scores = model(masks * image).softmax(1)[:, 0]
    # From other masks, the estimate's order is the baseline's (both carry the
    # noise of 2000 draws, so the correlation is high but not 1; measured 0.92) ...
    agreement = -L.rise_loss(rise_map, masks.view(1, 2000, 16, 16), scores[None])
    assert agreement > 0.85
    # ... and a map of the wrong corner scores far worse.
    wrong = rise_map.flip(-1, -2)
    assert L.rise_loss(wrong, masks.view(1, 2000, 16, 16), scores[None]) > 0
    # Seeded masks repeat; the baseline's masks are the same function's.
    again = rise_masks(2000, 16, 16, 4, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(masks, again)
    assert torch.equal(RISE(model, n_masks=5, grid=4, seed=2).generate_masks((16, 16)),
                       rise_masks(5, 16, 16, 4, 0.5, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="at least 2 masks"):
        L.rise_loss(rise_map, masks[:1].view(1, 1, 16, 16), scores[None, :1])
