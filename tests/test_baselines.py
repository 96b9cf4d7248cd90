import pytest
import torch
import torch.nn.functional as F
from captum.attr import Attribution, LayerAttribution, LayerGradCam, PerturbationAttribution

from captum_akd.baselines import RISE, GradCAM, LayerwiseSurrogateCAM, LimeImage
from captum_akd.models import StudentOutput, cifar_resnet_student

N, C, H, W, K = 2, 3, 16, 16, 5


class SmallNet(torch.nn.Module):
    """A fixed classifier standing in for the user's black box."""

    def __init__(self, k: int = K):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, k)
        self.batch_sizes = []
        self.grad_enabled = []

    def forward(self, x, scale=1.0):
        self.batch_sizes.append(x.shape[0])
        self.grad_enabled.append(torch.is_grad_enabled())
        feats = F.relu(self.conv(x))
        return self.head(feats.mean(dim=(2, 3))) * scale


class RegionModel(torch.nn.Module):
    """Two classes with logits +/- k (mean of one fixed square - offset).

    The offset puts the steep part of the softmax where about half the square
    is kept, so keeping or hiding the square moves the score a lot.
    """

    def __init__(self, rows, cols, k=8.0, offset=0.5):
        super().__init__()
        self.rows, self.cols, self.k, self.offset = rows, cols, k, offset
        self.grad_enabled = []

    def forward(self, x):
        self.grad_enabled.append(torch.is_grad_enabled())
        z = self.k * (x[:, :, self.rows, self.cols].mean(dim=(1, 2, 3)) - self.offset)
        return torch.stack([z, -z], dim=1)


class TinyStudent(torch.nn.Module):
    """Stand-in with the AttentiveStudent API: three stages, each half the size."""

    def __init__(self, in_channels=3, num_classes=K, identity=False):
        super().__init__()
        self.mix = torch.nn.Conv2d(in_channels, in_channels, 1, bias=False)
        self.fc = torch.nn.Linear(in_channels, num_classes)
        if identity:
            with torch.no_grad():
                self.mix.weight.copy_(torch.eye(in_channels).view(in_channels, in_channels, 1, 1))
                self.fc.weight.copy_(4.0 * torch.eye(num_classes, in_channels))
                self.fc.bias.zero_()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.min_input_size = 4

    def forward_features(self, x):
        f1 = self.mix(x)
        f2 = F.avg_pool2d(f1, 2)
        f3 = F.avg_pool2d(f2, 2)
        features = [f1, f2, f3]
        attention = [torch.sigmoid(f.mean(dim=1, keepdim=True)) for f in features]
        pooled = f3.mean(dim=(2, 3))
        return StudentOutput(self.fc(pooled), features, attention, pooled)

    def forward(self, x):
        return self.forward_features(x).logits


def make(kind, model=None):
    torch.manual_seed(0)
    model = model if model is not None else SmallNet().eval()
    if kind == "gradcam":
        return GradCAM(model, model.conv)
    if kind == "rise":
        return RISE(model, n_masks=40, grid=4, perturbations_per_eval=16)
    if kind == "lime":
        return LimeImage(model, n_samples=20)
    if kind == "lime-captum":
        return LimeImage(model, n_samples=20, engine="captum", perturbations_per_eval=8)
    if kind == "layerwise":
        return LayerwiseSurrogateCAM(TinyStudent().eval(), forward_func=model)
    raise AssertionError(kind)


KINDS = ["gradcam", "rise", "lime", "lime-captum", "layerwise"]


@pytest.fixture
def images():
    return torch.randn(N, C, H, W, generator=torch.Generator().manual_seed(1))


def peak_in(maps, rows, cols):
    """Whether every map's maximum lies inside the square rows x cols."""
    flat = maps.flatten(1).argmax(dim=1)
    r, c = flat // maps.shape[-1], flat % maps.shape[-1]
    return all(rows.start <= int(a) < rows.stop and cols.start <= int(b) < cols.stop
               for a, b in zip(r, c, strict=True))


# --- the common face ------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_shape_tuple_and_captum_type(kind, images):
    attr = make(kind)
    assert isinstance(attr, Attribution)
    maps = attr.attribute(images, target=1)
    assert maps.shape == (N, 1, H, W)
    assert torch.isfinite(maps).all() and maps.grad_fn is None
    (tuple_maps,) = attr.attribute((images,), target=1)
    torch.testing.assert_close(tuple_maps, maps)
    full = attr.attribute(images, target=1, expand_to_input=True)
    assert full.shape == images.shape


@pytest.mark.parametrize("kind", KINDS)
def test_every_target_form_agrees(kind, images):
    attr = make(kind)
    per_image = torch.cat([attr.attribute(images[i : i + 1], target=[3, 0][i]) for i in range(N)])
    for target in ([3, 0], torch.tensor([3, 0])):
        torch.testing.assert_close(attr.attribute(images, target=target), per_image)
    same = attr.attribute(images, target=2)
    for target in ([2, 2], torch.tensor(2), torch.tensor([2, 2])):
        torch.testing.assert_close(attr.attribute(images, target=target), same)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", [K, -1, [0, K + 2], torch.tensor([K, 0])])
def test_target_out_of_range_names_target(kind, target, images):
    with pytest.raises(ValueError, match="`target`"):
        make(kind).attribute(images, target=target)


@pytest.mark.parametrize("kind", KINDS)
def test_target_none_is_black_box_prediction(kind, images):
    model = SmallNet().eval()
    attr = make(kind, model)
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    torch.testing.assert_close(attr.attribute(images), attr.attribute(images, target=predicted))


@pytest.mark.parametrize("kind", ["rise", "lime", "lime-captum"])
def test_black_box_only_called_without_grad(kind, images):
    model = SmallNet().eval()
    make(kind, model).attribute(images, target=1)
    assert model.grad_enabled and not any(model.grad_enabled)
    assert all(p.grad is None for p in model.parameters())


def test_internal_batch_size_and_additional_args(images):
    model = SmallNet().eval()
    for kind in ("gradcam", "rise"):
        attr = make(kind, model)
        whole = attr.attribute(images, target=[1, 2], additional_forward_args=(3.0,))
        chunked = attr.attribute(
            images, target=[1, 2], additional_forward_args=(3.0,), internal_batch_size=1
        )
        torch.testing.assert_close(chunked, whole)


def test_constructor_checks():
    model = SmallNet()
    with pytest.raises(ValueError, match="`p1`"):
        RISE(model, p1=0.0)
    with pytest.raises(ValueError, match="`n_masks`"):
        RISE(model, n_masks=0)
    with pytest.raises(ValueError, match="`engine`"):
        LimeImage(model, engine="shap")
    with pytest.raises(ValueError, match="`segmentation`"):
        LimeImage(model, segmentation="felzenszwalb")
    with pytest.raises(TypeError, match="`layer`"):
        GradCAM(model, "conv")
    with pytest.raises(TypeError, match="`student`"):
        LayerwiseSurrogateCAM(model)


# --- Grad-CAM -------------------------------------------------------------------


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_equals_captum_layergradcam_plus_interpolate(relu, images):
    model = SmallNet().eval()
    target = torch.tensor([4, 1])
    ours = GradCAM(model, model.conv, relu=relu).attribute(images, target=target)
    layer_maps = LayerGradCam(model, model.conv).attribute(
        images, target=target, relu_attributions=relu
    )
    expected = LayerAttribution.interpolate(layer_maps, (H, W), "bilinear")
    assert torch.equal(ours, expected)
    assert all(p.grad is None for p in model.parameters())


def test_gradcam_on_pooled_layer_upsamples_bilinearly(images):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.MaxPool2d(4),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, K),
    ).eval()
    maps = GradCAM(model, model[1]).attribute(images, target=0)
    layer_maps = LayerGradCam(model, model[1]).attribute(images, 0, relu_attributions=True)
    assert layer_maps.shape[-2:] == (4, 4)
    expected = F.interpolate(layer_maps, size=(H, W), mode="bilinear", align_corners=False)
    assert torch.equal(maps, expected)


# --- RISE -----------------------------------------------------------------------


def test_rise_is_a_perturbation_attribution():
    rise = RISE(SmallNet())
    assert isinstance(rise, PerturbationAttribution) and isinstance(rise, Attribution)
    assert not rise.multiplies_by_inputs


@pytest.mark.parametrize("p1", [0.5, 0.2])
def test_rise_mask_statistics(p1):
    rise = RISE(SmallNet(), n_masks=1000, grid=7, p1=p1)
    masks = rise.generate_masks((32, 24))
    assert masks.shape == (1000, 1, 32, 24)
    assert masks.min() >= 0 and masks.max() <= 1
    assert abs(float(masks.mean()) - p1) < 0.02
    # Smooth, not binary: bilinear upsampling of the grid leaves fractions.
    assert ((masks > 0.01) & (masks < 0.99)).float().mean() > 0.2
    # The random shift moves the grid: masks are not all aligned the same.
    assert not torch.equal(masks[0, 0, :, :4], masks[1, 0, :, :4])
    assert rise.generate_masks((32, 24)) is masks


def test_rise_masks_seeded():
    a = RISE(SmallNet(), n_masks=50, seed=3).generate_masks((16, 16))
    b = RISE(SmallNet(), n_masks=50, seed=3)
    b.generate_masks((8, 8))  # another size first must not change these masks
    assert torch.equal(a, b.generate_masks((16, 16)))
    assert not torch.equal(a, RISE(SmallNet(), n_masks=50, seed=4).generate_masks((16, 16)))


def test_rise_seeded_runs_identical_different_seed_differs(images):
    model = SmallNet().eval()
    first = RISE(model, n_masks=60, grid=4, seed=0).attribute(images, target=1)
    again = RISE(model, n_masks=60, grid=4, seed=0).attribute(images, target=1)
    other = RISE(model, n_masks=60, grid=4, seed=1).attribute(images, target=1)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_rise_matches_formula_and_bounds_batches(images):
    model = SmallNet().eval()
    rise = RISE(model, n_masks=30, grid=3, p1=0.4, perturbations_per_eval=7)
    model.batch_sizes.clear()
    maps = rise.attribute(images, target=[2, 4])
    assert max(model.batch_sizes) <= 7
    masks = rise.generate_masks((H, W))
    expected = []
    with torch.no_grad():
        for image, c in zip(images, [2, 4], strict=True):
            probs = model(image * masks).softmax(dim=1)[:, c]
            expected.append((probs.view(-1, 1, 1, 1) * masks).sum(dim=0) / (30 * 0.4))
    torch.testing.assert_close(maps, torch.stack(expected))
    # Packing several images into one call gives the same maps.
    packed = RISE(model, n_masks=30, grid=3, p1=0.4, perturbations_per_eval=64)
    model.batch_sizes.clear()
    torch.testing.assert_close(packed.attribute(images, target=[2, 4]), maps)
    assert model.batch_sizes == [60]


def test_rise_peaks_in_the_region_the_model_looks_at():
    rows, cols = slice(4, 8), slice(8, 12)
    model = RegionModel(rows, cols)
    images = torch.ones(2, 3, 16, 16)
    maps = RISE(model, n_masks=300, grid=4, perturbations_per_eval=150).attribute(images, target=0)
    assert peak_in(maps, rows, cols)
    assert maps[:, :, rows, cols].mean() > maps.mean() + 0.1
    flipped = RISE(model, n_masks=300, grid=4).attribute(images, target=1)
    assert flipped[:, :, rows, cols].mean() < flipped.mean() - 0.1
    assert not any(model.grad_enabled)


# --- LIME -----------------------------------------------------------------------


def block_image(region_value=2.0):
    """32 x 32 image of 8 x 8 flat blocks with distinct colours; block (1, 2) bright."""
    gen = torch.Generator().manual_seed(5)
    colours = torch.rand(3, 4, 4, generator=gen) * 2 - 1
    colours[:, 1, 2] = region_value
    return colours.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2).unsqueeze(0)


@pytest.mark.parametrize("engine", ["lime", "captum"])
@pytest.mark.parametrize("segmentation", ["quickshift", "slic"])
def test_lime_peaks_in_the_region_the_model_looks_at(engine, segmentation):
    rows, cols = slice(8, 16), slice(16, 24)
    model = RegionModel(rows, cols)
    lime = LimeImage(model, n_samples=150, engine=engine, segmentation=segmentation)
    maps = lime.attribute(block_image(), target=0)
    assert maps.shape == (1, 1, 32, 32) and maps.min() >= 0
    assert peak_in(maps, rows, cols)
    region = torch.zeros(32, 32, dtype=torch.bool)
    region[rows, cols] = True
    assert maps[0, 0][region].sum() > 0.9 * maps.sum()


def test_lime_segments_follow_the_image():
    lime = LimeImage(SmallNet(), segmentation="quickshift")
    segments = lime.segments(block_image())
    assert segments.shape == (1, 32, 32) and segments.dtype == torch.long
    # Labels are dense 0..S-1 and the bright block is one superpixel of its own.
    assert torch.equal(segments.unique(), torch.arange(int(segments.max()) + 1))
    block = segments[0, 8:16, 16:24]
    assert (block == block[0, 0]).all() and int((segments == block[0, 0]).sum()) == 64


@pytest.mark.parametrize("engine", ["lime", "captum"])
def test_lime_seeded(engine, images):
    model = SmallNet().eval()
    first = LimeImage(model, n_samples=30, engine=engine, seed=0).attribute(images, target=1)
    again = LimeImage(model, n_samples=30, engine=engine, seed=0).attribute(images, target=1)
    other = LimeImage(model, n_samples=30, engine=engine, seed=1).attribute(images, target=1)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("hide_color", ["mean", 0.0, [0.0, 0.5, -0.5], None])
def test_lime_hide_color_forms(hide_color, images):
    for engine in ("lime", "captum"):
        lime = LimeImage(SmallNet().eval(), n_samples=10, engine=engine, hide_color=hide_color)
        assert lime.attribute(images, target=0).shape == (N, 1, H, W)
    with pytest.raises(ValueError, match="`hide_color`"):
        LimeImage(SmallNet(), hide_color=[0.0, 1.0]).attribute(images, target=0)


# --- layer-wise surrogate CAM --------------------------------------------------


def test_layerwise_peaks_on_the_class_channel():
    rows, cols = slice(8, 16), slice(16, 24)
    student = TinyStudent(in_channels=2, num_classes=2, identity=True).eval()
    image = torch.zeros(1, 2, 32, 32)
    image[:, 0, rows, cols] = 1.0  # evidence for class 0 inside the square
    image[:, 1] = 0.5
    image[:, 1, rows, cols] = 0.0  # evidence for class 1 everywhere else
    attr = LayerwiseSurrogateCAM(student)
    maps = attr.attribute(image, target=0)
    assert maps.shape == (1, 1, 32, 32)
    assert float(maps.min()) == 0.0 and float(maps.max()) == 1.0
    assert peak_in(maps, rows, cols)
    assert maps[:, :, rows, cols].mean() > 0.8 and maps[:, :, :4].max() < 0.1
    stages = attr.stage_maps(image, torch.tensor([0]))
    assert stages.shape == (3, 1, 1, 32, 32)
    assert all(peak_in(stage, rows, cols) for stage in stages)
    other = attr.attribute(image, target=1)
    assert other[:, :, rows, cols].mean() < 0.25 and other[:, :, :4].min() > 0.9


def test_layerwise_on_the_cifar_student_reads_only_the_student():
    torch.manual_seed(0)
    student = cifar_resnet_student(depth=20, num_classes=10)
    black_box = SmallNet(k=10).eval()
    images = torch.randn(2, 3, 32, 32)
    attr = LayerwiseSurrogateCAM(student, forward_func=black_box)
    maps = attr.attribute(images)
    assert maps.shape == (2, 1, 32, 32)
    assert maps.min() >= 0 and maps.max() <= 1
    assert not student.training
    assert black_box.grad_enabled == [False]  # one no-grad call, for the prediction
    assert all(p.grad is None for p in student.parameters())
    assert all(p.grad is None for p in black_box.parameters())
    with torch.no_grad():
        predicted = black_box(images).argmax(dim=1)
    torch.testing.assert_close(maps, attr.attribute(images, target=predicted))
    student.requires_grad_(False)  # a frozen student still has a graph through the input
    torch.testing.assert_close(attr.attribute(images, target=predicted), maps)
    with pytest.raises(ValueError, match="channel"):
        attr.attribute(torch.randn(1, 1, 32, 32), target=0)
    with pytest.raises(ValueError, match="`target`"):
        attr.attribute(images, target=10)


def test_layerwise_defaults_to_the_student_prediction(images):
    student = TinyStudent().eval()
    attr = LayerwiseSurrogateCAM(student)
    assert attr.forward_func is student and attr.num_classes == K
    with torch.no_grad():
        predicted = student(images).argmax(dim=1)
    torch.testing.assert_close(attr.attribute(images), attr.attribute(images, target=predicted))
