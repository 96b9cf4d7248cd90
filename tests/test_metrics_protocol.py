"""The benchmark protocol's metrics: controls, ROAD, deletion to blur, bootstrap.

Hand computations on tiny models and images, and ROAD against
``pytorch-grad-cam``'s implementation on a fixed case (skipped when that
test-only dependency is missing).
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from captum_akd.metrics import (
    CentreGaussianControl,
    ControlAttribution,
    ROADResult,
    SobelEdgeControl,
    UniformNoiseControl,
    bootstrap_interval,
    deletion,
    insertion,
    noisy_linear_imputation,
    paired_comparison,
    road,
)
from captum_akd.metrics import uncertainty as uncertainty_module

# pytorch-grad-cam hands torch tensors to np.percentile, which NumPy 2 warns about.
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")


def centre_reader(k: float):
    """A black box with logits ``[k * x[:, :, 1, 1].mean over channels, 0]``."""

    def forward(x):
        score = k * x[:, :, 1, 1].mean(dim=1)
        return torch.stack([score, torch.zeros_like(score)], dim=1)

    return forward


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
        nn.Linear(54, 4),
    ).eval()


def never_called(*args):
    raise AssertionError("a control called the model")


def auc_by_hand(curve):
    return (sum(curve) - (curve[0] + curve[-1]) / 2) / (len(curve) - 1)


# ----------------------------------------------------------------------- controls

CONTROLS = [
    UniformNoiseControl(never_called, seed=0),
    CentreGaussianControl(never_called),
    SobelEdgeControl(never_called),
]


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: type(c).__name__)
def test_controls_have_the_face_and_never_call_the_model(control):
    images = torch.randn(3, 3, 12, 10)
    maps = control.attribute(images)  # target=None must not call the model either
    assert isinstance(control, ControlAttribution)
    assert maps.shape == (3, 1, 12, 10) and maps.dtype == images.dtype
    assert maps.min() >= 0 and maps.max() <= 1
    # deterministic: again, from a fresh instance, whatever the global RNG
    torch.manual_seed(123)
    torch.rand(7)
    fresh = type(control)(None)
    torch.testing.assert_close(control.attribute(images, target=[1, 2, 3]), maps)
    torch.testing.assert_close(fresh.attribute(images, target=4), maps, rtol=0, atol=0)
    # the common face: chunks, tuples, expansion
    torch.testing.assert_close(control.attribute(images, internal_batch_size=2), maps)
    (as_tuple,) = control.attribute((images,))
    torch.testing.assert_close(as_tuple, maps)
    assert control.attribute(images, expand_to_input=True).shape == images.shape
    with pytest.raises(ValueError, match="target"):
        control.attribute(images, target=[0, 1])  # still checked for its form


def test_uniform_noise_is_seeded_per_image():
    images = torch.rand(4, 3, 8, 8)
    control = UniformNoiseControl(None, seed=5)
    maps = control.attribute(images)
    # an image's map depends only on the seed and the image
    torch.testing.assert_close(control.attribute(images[2:3]), maps[2:3], rtol=0, atol=0)
    torch.testing.assert_close(
        control.attribute(images.flip(0)), maps.flip(0), rtol=0, atol=0
    )
    torch.testing.assert_close(
        control.attribute(images.double()), maps.double(), rtol=0, atol=0
    )
    assert not torch.equal(maps[0], maps[1])  # different images, different draws
    assert not torch.equal(maps, UniformNoiseControl(None, seed=6).attribute(images))
    with pytest.raises(TypeError, match="seed"):
        UniformNoiseControl(None, seed=1.5)


def test_centre_gaussian_peaks_at_the_centre_by_hand():
    for height, width in ((9, 9), (8, 12)):
        maps = CentreGaussianControl(None).attribute(torch.rand(2, 3, height, width))
        y = torch.arange(height, dtype=torch.float64)[:, None] - (height - 1) / 2
        x = torch.arange(width, dtype=torch.float64)[None, :] - (width - 1) / 2
        gauss = torch.exp(-(y**2) / (2 * (height / 4) ** 2) - x**2 / (2 * (width / 4) ** 2))
        expected = (gauss - gauss.min()) / (gauss.max() - gauss.min())
        torch.testing.assert_close(maps[1, 0], expected.float())
        assert torch.equal(maps[0], maps[1])
        peak = maps[0, 0] == maps[0, 0].max()
        centre = torch.zeros(height, width, dtype=torch.bool)
        centre[(height - 1) // 2 : height // 2 + 1, (width - 1) // 2 : width // 2 + 1] = True
        assert torch.equal(peak, centre)  # 1 centre pixel (odd) or the central 2 x 2
        assert torch.equal(maps[0, 0], maps[0, 0].flip(0)) and torch.equal(
            maps[0, 0], maps[0, 0].flip(1)
        )
    with pytest.raises(ValueError, match="sigma_fraction"):
        CentreGaussianControl(None, sigma_fraction=0)


def test_sobel_is_zero_on_constant_images_and_high_on_edges():
    constant = torch.full((2, 3, 10, 10), 0.7)
    constant[1] = -2.0
    assert SobelEdgeControl(None).attribute(constant).abs().max() == 0

    # Without smoothing, by hand: a step between columns 3 and 4 gives the
    # Sobel x-derivative 1 + 2 + 1 = 4 on those two columns and 0 elsewhere.
    step = torch.zeros(1, 3, 8, 8)
    step[..., 4:] = 1.0
    raw = SobelEdgeControl(None, blur_kernel=1).attribute(step)
    expected = torch.zeros(1, 1, 8, 8)
    expected[..., 3:5] = 1.0
    torch.testing.assert_close(raw, expected)

    # Smoothed (the default): highest on the edge, nothing far from it.
    edges = SobelEdgeControl(None).attribute(step)[0, 0]
    assert edges[:, 3:5].min() > 0.95 and edges[:, :1].max() < 1e-6
    assert edges[:, 3:5].mean() > 10 * edges[:, [1, 6]].mean()
    # summed over channels on the image as given: an edge in one channel of a
    # scaled image normalises to the same map
    one_channel = torch.zeros(1, 3, 8, 8)
    one_channel[:, 1, :, 4:] = 5.0
    torch.testing.assert_close(SobelEdgeControl(None).attribute(one_channel)[0, 0], edges)
    with pytest.raises(ValueError, match="blur_kernel"):
        SobelEdgeControl(None, blur_kernel=4)


# ----------------------------------------------------------------------- ROAD


def _distinct_maps(n: int, size: int) -> torch.Tensor:
    """Maps whose values are all distinct (no ties), also after ``1 - map``."""
    gen = torch.Generator().manual_seed(1)
    return torch.stack(
        [torch.randperm(size * size, generator=gen).float() / (size * size) for _ in range(n)]
    ).view(n, 1, size, size)


def test_imputation_matches_pytorch_grad_cam():
    road_lib = pytest.importorskip("pytorch_grad_cam.metrics.road")
    images = torch.randn(2, 3, 20, 20)
    removed = torch.rand(2, 20, 20) < 0.7
    ours = noisy_linear_imputation(images, removed, noise=0.0)
    for i in range(2):
        theirs = road_lib.NoisyLinearImputer(noise=0.0)(images[i], (~removed[i]).float())
        torch.testing.assert_close(ours[i], theirs, rtol=0, atol=1e-6)
    # noise: seeded, only on removed pixels, of about the asked size
    noisy = noisy_linear_imputation(images, removed, noise=0.01, seed=3)
    torch.testing.assert_close(noisy, noisy_linear_imputation(images, removed, seed=3))
    delta = (noisy - ours).abs()
    assert delta[~removed[:, None].expand_as(images)].max() == 0
    assert 0.005 < delta[removed[:, None].expand_as(images)].mean() < 0.012


def test_imputation_rejects_bad_masks():
    images = torch.rand(1, 3, 4, 4)
    with pytest.raises(TypeError, match="bool"):
        noisy_linear_imputation(images, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        noisy_linear_imputation(images, torch.zeros(1, 4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="every pixel"):
        noisy_linear_imputation(images, torch.ones(1, 4, 4, dtype=torch.bool))


def test_road_agrees_with_pytorch_grad_cam():
    road_lib = pytest.importorskip("pytorch_grad_cam.metrics.road")
    confidence = pytest.importorskip("pytorch_grad_cam.metrics.perturbation_confidence")
    targets_lib = pytest.importorskip("pytorch_grad_cam.utils.model_targets")
    model = tiny_cnn()
    # 20 x 20 = 400 pixels: a multiple of 100, where grad-cam's percentile
    # threshold removes exactly as many pixels as our floor(H * W * p / 100).
    images = torch.randn(3, 3, 20, 20)
    maps = _distinct_maps(3, 20)
    labels = model(images).argmax(dim=1)
    ours = road(model, images, maps, noise=0.0)
    assert isinstance(ours, ROADResult)
    assert ours.n_removed == (40, 80, 120, 160, 200, 240, 280, 320, 360)

    cams = maps[:, 0].numpy()
    targets = [targets_lib.ClassifierOutputSoftmaxTarget(int(c)) for c in labels]
    imputer = road_lib.NoisyLinearImputer(noise=0.0)
    for j, p in enumerate(ours.percentiles):
        # grad-cam's percentile is the share kept: removing p % is its (100 - p)
        for removal, curves in (
            (confidence.RemoveMostRelevantFirst, ours.morf_curves),
            (confidence.RemoveLeastRelevantFirst, ours.lerf_curves),
        ):
            metric = confidence.PerturbationConfidenceMetric(removal(100 - p, imputer))
            theirs = metric(images, cams, targets, model, return_diff=False)
            torch.testing.assert_close(curves[:, j], torch.from_numpy(theirs), atol=1e-5, rtol=0)

    # ROADCombined, its imputers made noise-free, is half our combined score
    class Noiseless(road_lib.NoisyLinearImputer):
        def __init__(self, noise=0.0, weighting=None):
            super().__init__(noise=0.0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(road_lib, "NoisyLinearImputer", Noiseless)
        combined = road_lib.ROADCombined()(images, cams, targets, model)
    torch.testing.assert_close(ours.combined, 2 * torch.from_numpy(combined), atol=1e-5, rtol=0)
    # and the scores are the stated means of the curves
    torch.testing.assert_close(ours.morf, ours.morf_curves.mean(dim=1))
    torch.testing.assert_close(ours.lerf, ours.lerf_curves.mean(dim=1))
    torch.testing.assert_close(ours.combined, ours.lerf - ours.morf)
    assert ours.mean == pytest.approx(float(ours.combined.mean()))
    p = model(images).softmax(dim=1).gather(1, labels[:, None])[:, 0]
    torch.testing.assert_close(ours.original, p)


def test_road_removes_exactly_k_pixels_with_ties_in_row_major_order():
    seen = []

    def recording(x):
        seen.append(x.clone())
        return torch.stack([x.mean(dim=(1, 2, 3)), torch.zeros(x.shape[0])], dim=1)

    image = torch.rand(1, 1, 4, 4)
    flat = torch.zeros(1, 1, 4, 4)  # every pixel tied
    result = road(recording, image, flat, target=0, percentiles=[25, 50], noise=0.0)
    assert result.n_removed == (4, 8)
    states = torch.cat(seen[1:])  # after the call on the original image
    changed = (states != image).flatten(1)
    # MoRF 25 %, MoRF 50 %, LeRF 25 %, LeRF 50 %: ties go row-major for both
    for state, k in zip(changed, (4, 8, 4, 8), strict=True):
        assert state[:k].all() and not state[k:].any()


def test_road_is_seeded_and_independent_of_batching():
    model = tiny_cnn()
    images = torch.randn(3, 3, 10, 10)
    maps = torch.rand(3, 1, 10, 10)
    base = road(model, images, maps, percentiles=(20, 60), seed=1)
    torch.manual_seed(99)  # the global RNG plays no part
    threads = road(model, images, maps, percentiles=(20, 60), seed=1, num_threads=2)
    torch.testing.assert_close(threads.morf_curves, base.morf_curves, rtol=0, atol=0)
    torch.testing.assert_close(threads.lerf_curves, base.lerf_curves, rtol=0, atol=0)
    # other model batches: equal up to the model's batch-dependent rounding
    again = road(model, images, maps, percentiles=(20, 60), seed=1, batch_size=3)
    torch.testing.assert_close(again.morf_curves, base.morf_curves)
    torch.testing.assert_close(again.lerf_curves, base.lerf_curves)
    alone = road(model, images[1:2], maps[1:2], percentiles=(20, 60), seed=1)
    torch.testing.assert_close(alone.morf_curves, base.morf_curves[1:2])
    other = road(model, images, maps, percentiles=(20, 60), seed=2)
    assert not torch.equal(other.morf_curves, base.morf_curves)
    assert base.morf_curves.shape == (3, 2) and base.combined.shape == (3,)


def test_road_rejects_bad_settings():
    model = tiny_cnn()
    images, maps = torch.rand(1, 3, 6, 6), torch.rand(1, 1, 6, 6)
    for percentiles in ([], [100], [-5], "10", [True]):
        with pytest.raises(ValueError, match="percentiles"):
            road(model, images, maps, percentiles=percentiles)
    with pytest.raises(ValueError, match="noise"):
        road(model, images, maps, noise=-0.1)
    with pytest.raises(ValueError, match="num_threads"):
        road(model, images, maps, num_threads=0)
    with pytest.raises(ValueError, match="saliency"):
        road(model, images, torch.rand(1, 1, 6, 5))


# ----------------------------------------------------------------------- deletion to blur


def test_deletion_to_blur_by_hand():
    # 3 x 3 image, 0 except a 1 at the centre, and a model that reads the
    # centre only. With a 3-tap Gaussian of sigma 1 the blurred centre is
    # w_c ** 2, w_c = 1 / (1 + 2 exp(-1/2)); the centre is ranked third.
    images = torch.zeros(1, 1, 3, 3)
    images[0, 0, 1, 1] = 1.0
    model = centre_reader(3.0)
    saliency = torch.arange(9.0, 0.0, -1.0).view(1, 1, 3, 3)
    saliency[0, 0, 1, 1] = 7.5
    w_c = 1 / (1 + 2 * math.exp(-0.5))
    # softmax([z, 0])[0] is the sigmoid of z
    whole, blurred = 1 / (1 + math.exp(-3.0)), 1 / (1 + math.exp(-3 * w_c**2))

    to_blur = deletion(model, images, saliency, step=2, substrate="blur", blur_kernel=3,
                       blur_sigma=1.0)
    expected = [whole, whole, blurred, blurred, blurred, blurred]
    assert to_blur.kind == "deletion" and to_blur.substrate == "blur"
    torch.testing.assert_close(to_blur.curves, torch.tensor([expected]))
    assert to_blur.auc.item() == pytest.approx(auc_by_hand(expected), abs=1e-6)

    # the default is the paper's zero substrate, unchanged
    zero = [whole, whole, 0.5, 0.5, 0.5, 0.5]
    default = deletion(model, images, saliency, step=2)
    assert default.substrate == "zero"
    torch.testing.assert_close(default.curves, torch.tensor([zero]), rtol=0, atol=0)
    explicit = deletion(model, images, saliency, step=2, substrate="zero", blur_kernel=3)
    torch.testing.assert_close(explicit.curves, default.curves, rtol=0, atol=0)
    with pytest.raises(ValueError, match="substrate"):
        deletion(model, images, saliency, substrate="mean")


def test_deletion_to_blur_ends_where_insertion_starts():
    model = tiny_cnn()
    images = torch.randn(2, 3, 9, 9)
    maps = torch.rand(2, 1, 9, 9)
    to_blur = deletion(model, images, maps, step=9, substrate="blur")
    start = insertion(model, images, maps, step=9)
    assert start.substrate == "blur"
    # (equal up to the model's batch-dependent rounding: the states share calls differently)
    torch.testing.assert_close(to_blur.curves[:, -1], start.curves[:, 0])
    torch.testing.assert_close(to_blur.curves[:, 0], start.curves[:, -1])


# ----------------------------------------------------------------------- bootstrap


def test_bootstrap_interval_is_the_stated_resampling():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.05, 0.6, 0.2])
    result = bootstrap_interval(torch.tensor(scores), n_resamples=50, seed=7)
    rng = np.random.default_rng(7)
    means = scores[rng.integers(0, 7, size=(50, 7))].mean(axis=1)
    low, high = np.percentile(means, [50 * (1 - 0.95), 50 * (1 + 0.95)])  # 2.5 and 97.5
    assert (result.low, result.high) == (low, high)
    assert result.mean == pytest.approx(scores.mean())
    assert (result.n, result.n_resamples, result.confidence) == (7, 50, 0.95)
    ninety = bootstrap_interval(list(scores), confidence=0.9, n_resamples=50, seed=7)
    ninety_by_hand = np.percentile(means, [50 * (1 - 0.9), 50 * (1 + 0.9)])
    assert (ninety.low, ninety.high) == tuple(ninety_by_hand)
    assert result == bootstrap_interval(scores, n_resamples=50, seed=7)
    assert result != bootstrap_interval(scores, n_resamples=50, seed=8)


def test_bootstrap_chunks_give_the_same_numbers(monkeypatch):
    scores = np.random.default_rng(0).random(30)
    whole = bootstrap_interval(scores, n_resamples=200, seed=3)
    monkeypatch.setattr(uncertainty_module, "_CHUNK_ELEMENTS", 64)  # 2 rows a chunk
    assert bootstrap_interval(scores, n_resamples=200, seed=3) == whole


def test_bootstrap_of_equal_scores_has_zero_width():
    result = bootstrap_interval([0.25] * 40)
    assert result.low == result.high == result.mean == 0.25
    assert result.n_resamples == 10_000
    assert result.format(2) == "0.25 [0.25, 0.25]"


def test_bootstrap_is_fast():
    scores = np.random.default_rng(0).random(1000)
    import time

    start = time.perf_counter()
    bootstrap_interval(scores)  # 10,000 resamples of 1,000 images
    assert time.perf_counter() - start < 2.0  # typically ~0.05 s; generous for shared CPUs


def test_paired_comparison_verdicts():
    base = np.linspace(0.2, 0.8, 50)
    shift = 0.01 * np.sin(np.arange(50))  # per-image jitter around the difference
    up = base + 0.05 + shift
    assert paired_comparison(up, base).verdict == "better"
    assert paired_comparison(base, up).verdict == "worse"
    # lower is better (deletion): the same intervals get the other words
    lower = paired_comparison(up, base, higher_is_better=False)
    assert lower.verdict == "worse" and lower.low > 0
    assert paired_comparison(base, up, higher_is_better=False).verdict == "better"
    # an interval that crosses 0 is a tie, whichever way is better
    mixed = base + 0.05 * np.where(np.arange(50) % 2 == 0, 1.0, -1.0)
    tie = paired_comparison(mixed, base)
    assert tie.low < 0 < tie.high and tie.verdict == "tie"
    assert paired_comparison(mixed, base, higher_is_better=False).verdict == "tie"
    assert paired_comparison(base, base).verdict == "tie"  # zero width at 0

    # the difference and its interval are the bootstrap of the paired differences
    result = paired_comparison(up, base, n_resamples=300, seed=4)
    direct = bootstrap_interval(up - base, n_resamples=300, seed=4)
    assert result.difference == pytest.approx(0.05 + shift.mean())
    assert (result.low, result.high) == (direct.low, direct.high)
    assert result == paired_comparison(up, base, n_resamples=300, seed=4)


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="scores"):
        bootstrap_interval([])
    with pytest.raises(ValueError, match="scores"):
        bootstrap_interval([[0.1, 0.2]])
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_interval([0.1, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval([0.1, 0.2], confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_interval([0.1, 0.2], n_resamples=0)
    with pytest.raises(ValueError, match="same images"):
        paired_comparison([0.1, 0.2], [0.1])
    with pytest.raises(TypeError, match="higher_is_better"):
        paired_comparison([0.1], [0.2], higher_is_better="yes")
