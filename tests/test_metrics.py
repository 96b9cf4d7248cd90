"""Metrics against values worked out by hand on models whose outputs are known."""

import math

import pytest
import torch
from captum.attr import Saliency
from scipy.stats import spearmanr
from torch import nn

from captum_akd._image_ops import gaussian_blur
from captum_akd.metrics import (
    CausalMetricResult,
    ConfidenceResult,
    ThroughputResult,
    average_drop,
    confidence_change,
    deletion,
    energy_pointing_game,
    increase_in_confidence,
    insertion,
    mean_pixel_intensity,
    pointing_game,
    randomize_model,
    sanity_check,
    spearman_correlation,
    throughput,
)


def sig(z: float) -> float:
    """softmax([z, 0])[0], the class-0 probability of RegionModel."""
    return 1 / (1 + math.exp(-z))


class RegionModel(nn.Module):
    """Two classes with logits ``[k * mean of x over a region (all channels), 0]``."""

    def __init__(self, rows: slice, cols: slice, k: float = 2.0) -> None:
        super().__init__()
        self.rows, self.cols, self.k = rows, cols, k

    def forward(self, x):
        score = self.k * x[:, :, self.rows, self.cols].mean(dim=(1, 2, 3))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
    ).eval()


def auc_by_hand(curve):
    return (sum(curve) - (curve[0] + curve[-1]) / 2) / (len(curve) - 1)


# ----------------------------------------------------------------- insertion / deletion


def test_deletion_curve_by_hand():
    model = RegionModel(slice(0, 1), slice(None), k=2.0).eval()  # top row of a 2 x 2 image
    images = torch.ones(1, 1, 2, 2)
    saliency = torch.tensor([[[[4.0, 3.0], [2.0, 1.0]]]])
    result = deletion(model, images, saliency, step=1)
    # top-left, then top-right go first: the top-row mean falls 1 -> 0.5 -> 0
    expected = [sig(2), sig(1), 0.5, 0.5, 0.5]
    assert isinstance(result, CausalMetricResult)
    assert result.kind == "deletion" and result.step == 1 and result.n_steps == 4
    torch.testing.assert_close(result.curves, torch.tensor([expected]))
    torch.testing.assert_close(result.auc, torch.tensor([auc_by_hand(expected)]))
    assert result.mean == pytest.approx(auc_by_hand(expected))
    assert result.target.tolist() == [0]  # the model's prediction
    torch.testing.assert_close(result.fractions, torch.tensor([0, 0.25, 0.5, 0.75, 1.0]))

    # the other class; and a step that does not divide H * W (ceil(4 / 3) = 2 steps)
    other = deletion(model, images, saliency, target=1, step=1)
    torch.testing.assert_close(other.curves, 1 - torch.tensor([expected]))
    coarse = deletion(model, (images,), saliency, step=3)
    torch.testing.assert_close(coarse.curves, torch.tensor([[sig(2), 0.5, 0.5]]))
    assert coarse.auc.item() == pytest.approx(auc_by_hand([sig(2), 0.5, 0.5]))


def test_ties_are_taken_in_row_major_order():
    images = torch.ones(1, 1, 2, 2)
    flat = torch.zeros(1, 1, 2, 2)
    first = RegionModel(slice(0, 1), slice(0, 1), k=2.0).eval()  # pixel (0, 0) only
    last = RegionModel(slice(1, 2), slice(1, 2), k=2.0).eval()  # pixel (1, 1) only
    s = sig(2)
    curve_first = deletion(first, images, flat, step=1).curves
    curve_last = deletion(last, images, flat, step=1).curves
    torch.testing.assert_close(curve_first, torch.tensor([[s, 0.5, 0.5, 0.5, 0.5]]))
    torch.testing.assert_close(curve_last, torch.tensor([[s, s, s, s, 0.5]]))


def test_insertion_curve_by_hand():
    # A 3 x 3 image that is 0 except a 1 at the centre, and a model that only
    # reads the centre. Blurred with a 3-tap Gaussian of sigma 1, the centre
    # becomes w_c ** 2 with w_c = 1 / (1 + 2 exp(-1/2)).
    images = torch.zeros(1, 1, 3, 3)
    images[0, 0, 1, 1] = 1.0
    model = RegionModel(slice(1, 2), slice(1, 2), k=3.0).eval()
    saliency = torch.arange(9.0, 0.0, -1.0).view(1, 1, 3, 3)  # row-major ranks 0..8
    saliency[0, 0, 1, 1] = 7.5  # centre ranked third (rank 2)
    w_c = 1 / (1 + 2 * math.exp(-0.5))
    result = insertion(model, images, saliency, step=2, blur_kernel=3, blur_sigma=1.0)
    # ceil(9 / 2) = 5 steps; ranks 0-1 go in at step 1, ranks 2-3 (the centre) at step 2
    blurred, whole = sig(3 * w_c**2), sig(3.0)
    expected = [blurred, blurred, whole, whole, whole, whole]
    assert result.kind == "insertion" and result.n_steps == 5
    torch.testing.assert_close(result.curves, torch.tensor([expected]))
    assert result.auc.item() == pytest.approx(auc_by_hand(expected), abs=1e-6)


def _causal_by_loop(model, image, saliency_map, label, step, start, finish):
    """RISE's CausalMetric written out pixel by pixel, for one image."""
    _, h, w = image.shape
    values = saliency_map.flatten().tolist()
    order = sorted(range(h * w), key=lambda p: (-values[p], p))
    n_steps = math.ceil(h * w / step)
    state = start.clone()
    curve = []
    for i in range(n_steps + 1):
        with torch.no_grad():
            curve.append(model(state[None]).softmax(dim=1)[0, label].item())
        for p in order[i * step : (i + 1) * step]:
            state[:, p // w, p % w] = finish[:, p // w, p % w]
    return curve


def test_causal_metrics_match_pixel_loop_and_chunking():
    model = tiny_cnn()
    images = torch.randn(2, 3, 5, 7)
    saliency = torch.randint(0, 6, (2, 1, 5, 7)).float()  # many ties
    blurred = gaussian_blur(images, 11, 5)
    labels = model(images).argmax(dim=1)
    for metric, starts, finishes in (
        (insertion, blurred, images),
        (deletion, images, torch.zeros_like(images)),
    ):
        result = metric(model, images, saliency, step=4, batch_size=1000)
        assert result.curves.shape == (2, 10)  # ceil(35 / 4) = 9 steps
        for i in range(2):
            expected = _causal_by_loop(
                model, images[i], saliency[i, 0], labels[i], 4, starts[i], finishes[i]
            )
            torch.testing.assert_close(result.curves[i], torch.tensor(expected))
        chunked = metric(model, images, saliency, step=4, batch_size=3)
        torch.testing.assert_close(chunked.curves, result.curves)
        torch.testing.assert_close(chunked.auc, result.auc)
    # the end points: insertion ends on, deletion starts from, the original image
    p = model(images).softmax(dim=1).gather(1, labels[:, None])[:, 0]
    torch.testing.assert_close(insertion(model, images, saliency).curves[:, -1], p)
    torch.testing.assert_close(deletion(model, images, saliency).curves[:, 0], p)
    assert insertion(model, images, saliency).step == 7  # default: one row, W pixels


@pytest.mark.parametrize("metric", [insertion, deletion])
def test_causal_metrics_reject_bad_input(metric):
    model = RegionModel(slice(0, 1), slice(None)).eval()
    images = torch.ones(2, 1, 4, 4)
    good = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="saliency"):
        metric(model, images, torch.rand(2, 1, 4, 3))
    with pytest.raises(ValueError, match="saliency"):
        metric(model, images, torch.rand(3, 1, 4, 4))
    nan_map = good.clone()
    nan_map[1, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="saliency"):
        metric(model, images, nan_map)
    for step in (0, 17, -1, 2.0):
        with pytest.raises(ValueError, match="step"):
            metric(model, images, good, step=step)
    with pytest.raises(ValueError, match="batch_size"):
        metric(model, images, good, batch_size=0)
    with pytest.raises(ValueError, match="target"):
        metric(model, images, good, target=5)
    metric(model, images, good, step=16)  # H * W itself is fine


def test_training_mode_warns():
    model = RegionModel(slice(0, 1), slice(None)).train()
    with pytest.warns(UserWarning, match="eval"):
        deletion(model, torch.ones(1, 1, 2, 2), torch.rand(1, 1, 2, 2))


# ----------------------------------------------------------------- drop / increase


def test_average_drop_and_increase_by_hand():
    model = RegionModel(slice(0, 1), slice(None), k=2.0).eval()  # top row of 2 x 2
    images = torch.ones(2, 1, 2, 2)
    maps = torch.tensor([[[0.5, 0.5], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]]])
    # image 0, class 0: Y = sig(2), O = sig(2 * 0.5); image 1, class 1:
    # Y = 1 - sig(2), O = 1 - sig(0) = 0.5 > Y, so no drop and an increase
    result = confidence_change(model, images, maps, target=[0, 1], normalize=False)
    drop0 = (sig(2) - sig(1)) / sig(2) * 100
    assert isinstance(result, ConfidenceResult)
    torch.testing.assert_close(result.original_scores, torch.tensor([sig(2), 1 - sig(2)]))
    torch.testing.assert_close(result.masked_scores, torch.tensor([sig(1), 0.5]))
    torch.testing.assert_close(result.drops, torch.tensor([drop0, 0.0]))
    assert result.average_drop == pytest.approx(drop0 / 2, rel=1e-5)
    assert result.increase_in_confidence == pytest.approx(50.0)
    assert average_drop(model, images, maps, [0, 1], normalize=False) == result.average_drop
    assert increase_in_confidence(model, images, maps, [0, 1], normalize=False) == 50.0


def test_confidence_normalises_and_upsamples():
    model = RegionModel(slice(0, 1), slice(None), k=2.0).eval()
    images = torch.ones(1, 1, 2, 2)
    # min-max: [[1, 3], [3, 5]] -> [[0, .5], [.5, 1]], top-row mean 0.25
    result = confidence_change(model, images, torch.tensor([[[[1.0, 3.0], [3.0, 5.0]]]]))
    assert result.masked_scores.item() == pytest.approx(sig(0.5))
    assert result.target.tolist() == [0]
    # a 1 x 1 map of 0.5 upsampled to 4 x 4 is 0.5 everywhere
    big = torch.ones(1, 1, 4, 4)
    half = torch.full((1, 1, 1, 1), 0.5)
    result = confidence_change(model, big, half, normalize=False)
    assert result.masked_scores.item() == pytest.approx(sig(1.0))
    with pytest.raises(ValueError, match="saliency"):
        confidence_change(model, images, torch.full((1, 1, 2, 2), 2.0), normalize=False)
    with pytest.raises(ValueError, match="saliency"):
        confidence_change(model, images, torch.full((2, 1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="saliency"):
        confidence_change(model, images, torch.full((1, 1, 2, 2), float("nan")))


# ----------------------------------------------------------------- intensity


def test_mean_pixel_intensity():
    maps = torch.stack([torch.tensor([[0.0, 1.0], [1.0, 2.0]]), torch.full((2, 2), 3.0)])
    torch.testing.assert_close(mean_pixel_intensity(maps), torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(
        mean_pixel_intensity(maps.unsqueeze(1) * 10 - 4), torch.tensor([0.5, 0.0])
    )
    with pytest.raises(ValueError, match="saliency"):
        mean_pixel_intensity(torch.tensor([[[float("nan"), 1.0]]]))


# ----------------------------------------------------------------- pointing games


def _planted(size, row, col):
    maps = torch.rand(1, 1, size, size) * 0.5
    maps[0, 0, row, col] = 1.0
    return maps


def test_pointing_game_planted_maximum():
    mask = torch.zeros(1, 32, 32, dtype=torch.bool)
    mask[0, 10:20, 10:20] = True
    assert pointing_game(_planted(32, 15, 15), mask).tolist() == [True]
    assert pointing_game(_planted(32, 30, 30), mask).tolist() == [False]
    # 15 px at 224 is 15 * 32 / 224 = 2.14 px at 32: 2 px off hits, 3 px off misses
    assert pointing_game(_planted(32, 15, 21), mask).tolist() == [True]
    assert pointing_game(_planted(32, 15, 22), mask).tolist() == [False]
    assert pointing_game(_planted(32, 21, 21), mask).tolist() == [False]  # sqrt(8) > 2.14
    assert pointing_game(_planted(32, 15, 21), mask, tolerance=0).tolist() == [False]
    assert pointing_game(_planted(32, 15, 22), mask, 3, reference_size=32).tolist() == [True]
    # at 224 the tolerance is 15 px as given
    big = torch.zeros(1, 1, 224, 224)
    big[0, 0, 100:120, 100:120] = 1.0
    assert pointing_game(_planted(224, 110, 134), big).tolist() == [True]
    assert pointing_game(_planted(224, 110, 135), big).tolist() == [False]
    # batched, N x 1 x H x W float masks thresholded at 0.5
    maps = torch.cat([_planted(32, 15, 15), _planted(32, 0, 0)])
    soft = torch.full((2, 1, 32, 32), 0.4)
    soft[:, :, 10:20, 10:20] = 0.6
    assert pointing_game(maps, soft).tolist() == [True, False]
    # equal maxima: the first in row-major order is the point
    assert pointing_game(torch.zeros(1, 32, 32), mask).tolist() == [False]
    assert pointing_game(torch.zeros(1, 32, 32), ~mask).tolist() == [True]


def test_pointing_game_bad_input():
    maps = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="masks"):
        pointing_game(maps, torch.ones(1, 8, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match="masks"):
        energy_pointing_game(maps, torch.ones(2, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(maps, torch.ones(1, 8, 8), tolerance=-1)
    with pytest.raises(ValueError, match="saliency"):
        pointing_game(torch.full((1, 8, 8), float("nan")), torch.ones(1, 8, 8))


def test_energy_pointing_game_by_hand():
    maps = torch.tensor([[[[1.0, 2.0], [3.0, -4.0]]]])
    mask = torch.tensor([[[True, True], [False, False]]])
    # raw map, negatives clipped: (1 + 2) / (1 + 2 + 3)
    torch.testing.assert_close(energy_pointing_game(maps, mask), torch.tensor([0.5]))
    # min-max: (x + 4) / 7 -> 5/7, 6/7, 1, 0: (11/7) / (18/7)
    torch.testing.assert_close(
        energy_pointing_game(maps, mask, normalize=True), torch.tensor([11 / 18])
    )
    torch.testing.assert_close(energy_pointing_game(torch.zeros(1, 2, 2), mask), torch.zeros(1))


# ----------------------------------------------------------------- sanity check


def test_spearman_correlation():
    a = torch.rand(3, 1, 6, 6)
    torch.testing.assert_close(spearman_correlation(a, a), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(spearman_correlation(a, -a), -torch.ones(3, dtype=torch.float64))
    increasing = torch.arange(10.0).repeat(2, 1)
    torch.testing.assert_close(
        spearman_correlation(increasing, increasing.flip(1) ** 3),
        -torch.ones(2, dtype=torch.float64),
    )
    # against scipy, with many ties (average ranks)
    x = torch.randint(0, 4, (4, 30)).float()
    y = torch.randint(0, 5, (4, 30)).float()
    ours = spearman_correlation(x, y)
    for i in range(4):
        assert ours[i].item() == pytest.approx(spearmanr(x[i], y[i]).statistic, abs=1e-10)
    assert torch.isnan(spearman_correlation(torch.ones(1, 5), torch.rand(1, 5))).all()
    with pytest.raises(ValueError, match="maps_b"):
        spearman_correlation(a, torch.rand(3, 1, 6, 5))
    with pytest.raises(ValueError, match="maps_a"):
        spearman_correlation(torch.full((1, 4), float("nan")), torch.rand(1, 4))


class WithRawParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)
        self.scale = nn.Parameter(torch.full((2,), 0.7))  # no reset_parameters covers it


def test_randomize_model():
    model = tiny_cnn()
    with torch.no_grad():
        model[1].running_mean.fill_(0.3)
        model[1].weight.fill_(2.0)
        model[1].bias.fill_(0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    randomized = randomize_model(model, seed=1)
    assert torch.equal(torch.rand(3), expected_draw)  # global random state restored
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # original intact
    for (name, p), q in zip(model.named_parameters(), randomized.parameters(), strict=True):
        assert not torch.equal(p, q), name
    # batch norm's own reset: weight 1, bias 0, and the running statistics too
    assert torch.equal(randomized[1].weight, torch.ones(4))
    assert torch.equal(randomized[1].running_mean, torch.zeros(4))
    assert not randomized.training
    again = randomize_model(model, seed=1)
    other = randomize_model(model, seed=2)
    assert torch.equal(again[0].weight, randomized[0].weight)
    assert not torch.equal(other[0].weight, randomized[0].weight)
    # only the head, for the cascading test
    head = randomize_model(model, seed=1, modules=["5"])
    assert torch.equal(head[0].weight, model[0].weight)
    assert not torch.equal(head[5].weight, model[5].weight)
    raw = WithRawParameter()
    assert not torch.equal(randomize_model(raw).scale, raw.scale)
    with pytest.raises(ValueError, match="modules"):
        randomize_model(model, modules=["nope"])


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_sanity_check():
    images = torch.randn(3, 3, 6, 6)

    def edges(x, target):
        return x.mean(dim=1, keepdim=True)

    same = sanity_check(edges, edges, images, target=0)
    torch.testing.assert_close(same.correlations, torch.ones(3, dtype=torch.float64))
    assert same.mean == pytest.approx(1.0)
    flipped = sanity_check(edges, lambda x, t: -edges(x, t), images, target=[0, 1, 2])
    assert flipped.mean == pytest.approx(-1.0)
    assert sanity_check(edges, lambda x, t: -edges(x, t), images, 0, absolute=True).mean == 1.0
    with pytest.raises(ValueError, match="target"):
        sanity_check(edges, edges, images)

    model = tiny_cnn()
    random_model = randomize_model(model, seed=0)
    result = sanity_check(Saliency(model), Saliency(random_model), images, batch_size=2)
    assert result.correlations.shape == (3,)
    assert result.original_maps.shape == images.shape
    assert torch.equal(result.target, model(images).argmax(dim=1))
    assert torch.isfinite(result.correlations).all()


# ----------------------------------------------------------------- throughput


class RecordingMethod:
    def __init__(self) -> None:
        self.targets = []

    def attribute(self, inputs, target=None):
        self.targets.append(target)
        return inputs.mean(dim=1, keepdim=True)


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_throughput():
    model = tiny_cnn()
    images = torch.randn(5, 3, 8, 8)
    plain = throughput(model, images, batch_size=2, warmup=1, repeats=2)
    assert isinstance(plain, ThroughputResult)
    assert plain.images_per_second > 0 and plain.seconds > 0
    assert (plain.n_images, plain.batch_size, plain.device) == (5, 2, "cpu")
    assert plain.threads >= 1 and len(plain.timings) == 2
    explained = throughput(Saliency(model), images, target=1, repeats=1)
    assert explained.images_per_second > 0 and explained.batch_size == 5

    method = RecordingMethod()
    throughput(method, images, target=[0, 1, 2, 3, 4], batch_size=2, warmup=0, repeats=1)
    assert [t.tolist() for t in method.targets] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="repeats"):
        throughput(model, images, repeats=0)
    with pytest.raises(TypeError, match="method"):
        throughput(42, images)
