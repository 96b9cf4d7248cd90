import pytest
import torch
from captum.attr import Attribution, NoiseTunnel

from captum_akd import AttentiveDistillationAttribution
from captum_akd.models import ExplanationNet, cifar_resnet_student

N, C, H, W, K = 4, 3, 16, 16, 5


class BlackBox(torch.nn.Module):
    """A fixed classifier standing in for the user's model."""

    def __init__(self, k: int = K):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, k),
        )

    def forward(self, x, scale=1.0):
        return self.net(x) * scale


@pytest.fixture
def attr():
    torch.manual_seed(0)
    student = cifar_resnet_student(depth=8, num_classes=K)
    explainer = ExplanationNet.for_student(student, width=32)
    return AttentiveDistillationAttribution(BlackBox().eval(), student, explainer)


@pytest.fixture
def images():
    return torch.randn(N, C, H, W, generator=torch.Generator().manual_seed(1))


def test_is_captum_attribution(attr):
    assert isinstance(attr, Attribution)
    assert attr.num_classes == K


def test_shape_range_and_no_graph(attr, images):
    images.requires_grad_(True)
    maps = attr.attribute(images, target=2)
    assert maps.shape == (N, 1, H, W)
    assert maps.min() >= 0 and maps.max() <= 1
    assert not maps.requires_grad and maps.grad_fn is None
    assert maps.device == images.device


@pytest.mark.parametrize(
    "target",
    [3, [0, 1, 2, 3], torch.tensor(3), torch.tensor([0, 1, 2, 3]), torch.tensor([4, 0, 4, 1])],
)
def test_every_target_form(attr, images, target):
    maps = attr.attribute(images, target=target)
    labels = torch.as_tensor(target).expand(N)
    expected = torch.cat(
        [attr.attribute(images[i : i + 1], target=int(labels[i])) for i in range(N)]
    )
    assert torch.allclose(maps, expected, atol=1e-6)


def test_target_none_uses_black_box_prediction(attr, images):
    predicted = attr.forward_func(images).argmax(1)
    assert torch.allclose(attr.attribute(images), attr.attribute(images, target=predicted))


def test_target_none_calls_black_box_once_without_grad(attr, images):
    calls = []

    def black_box(x):
        calls.append(torch.is_grad_enabled())
        return torch.randn(x.shape[0], K)

    attr.forward_func = black_box
    attr.attribute(images)
    assert calls == [False]


def test_additional_forward_args_reach_black_box(attr, images):
    seen = []

    def black_box(x, flag):
        seen.append(flag)
        return torch.zeros(x.shape[0], K)

    attr.forward_func = black_box
    attr.attribute(images, additional_forward_args=("hello",))
    assert seen == ["hello"]


def test_tuple_in_tuple_out(attr, images):
    out = attr.attribute((images,), target=1)
    assert isinstance(out, tuple) and len(out) == 1
    assert torch.equal(out[0], attr.attribute(images, target=1))


def test_expand_to_input(attr, images):
    maps = attr.attribute(images, target=1, expand_to_input=True)
    assert maps.shape == images.shape
    assert torch.equal(maps[:, :1], attr.attribute(images, target=1))
    assert torch.equal(maps[:, 0], maps[:, 2])


def test_internal_batch_size_matches_one_batch(attr, images):
    whole = attr.attribute(images, target=[0, 1, 2, 3])
    chunked = attr.attribute(images, target=[0, 1, 2, 3], internal_batch_size=3)
    assert torch.allclose(whole, chunked, atol=1e-6)


def test_maps_differ_between_classes(attr, images):
    with torch.no_grad():
        attr.student.fc.weight[1] = -attr.student.fc.weight[0]
    a = attr.attribute(images, target=0)
    b = attr.attribute(images, target=1)
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-3


def test_training_mode_modules_are_used_in_eval(attr, images):
    expected = attr.attribute(images, target=0)
    attr.student.train()
    attr.explainer.train()
    assert torch.allclose(attr.attribute(images[:1], target=0), expected[:1], atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(attr, images):
    attr.to("cuda")
    attr.forward_func.to("cuda")
    maps = attr.attribute(images.cuda(), target=1)
    assert maps.device.type == "cuda"
    assert torch.allclose(maps.cpu(), attr.to("cpu").attribute(images, target=1), atol=1e-4)


def test_device_mismatch_is_clear(attr, images):
    # A second device is simulated with PyTorch's "meta" device, so the check
    # runs on machines without a GPU too.
    attr.to("meta")
    with pytest.raises(ValueError, match="`inputs` are on cpu but the student is on meta"):
        attr.attribute(images, target=0)


# --- Captum integration -----------------------------------------------------


def test_visualize_image_attr(attr, images):
    import matplotlib

    matplotlib.use("Agg")
    from captum.attr import visualization as viz

    maps = attr.attribute(images, target=1, expand_to_input=True)
    fig, _ = viz.visualize_image_attr(
        maps[0].permute(1, 2, 0).numpy(),
        images[0].permute(1, 2, 0).numpy(),
        method="blended_heat_map",
        sign="positive",
        use_pyplot=False,
    )
    assert fig is not None


def test_captum_infidelity(attr, images):
    from captum.metrics import infidelity

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.1
        return noise, inputs - noise

    maps = attr.attribute(images, target=1, expand_to_input=True)
    score = infidelity(attr.forward_func, perturb, images, maps, target=1, n_perturb_samples=4)
    assert score.shape == (N,)
    assert torch.isfinite(score).all()


def test_captum_sensitivity_max(attr, images):
    from captum.metrics import sensitivity_max

    score = sensitivity_max(attr.attribute, images, target=1, n_perturb_samples=3)
    assert score.shape == (N,)
    assert torch.isfinite(score).all() and (score >= 0).all()


def test_noise_tunnel(attr, images):
    tunnel = NoiseTunnel(attr)
    maps = tunnel.attribute(images, nt_type="smoothgrad", nt_samples=3, stdevs=0.1, target=1)
    assert maps.shape == (N, 1, H, W)
    assert maps.min() >= 0 and maps.max() <= 1


# --- Bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (torch.randn(C, H, W), ValueError, "4 dimensions"),
        (torch.randn(N, 1, H, W), ValueError, "3 channel"),
        (torch.randn(N, C, 2, 2), ValueError, "at least 4 x 4"),
        (torch.randint(0, 255, (N, C, H, W), dtype=torch.uint8), TypeError, "floating-point"),
        ((torch.randn(N, C, H, W), torch.randn(N, C, H, W)), ValueError, "exactly one tensor"),
        ([1], TypeError, "torch.Tensor"),
        (torch.randn(0, C, H, W), ValueError, "empty"),
    ],
)
def test_bad_inputs(attr, bad, error, match):
    with pytest.raises(error, match=match) as info:
        attr.attribute(bad, target=0)
    assert "inputs" in str(info.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_inputs(attr, images, value):
    images[0, 0, 0, 0] = value
    with pytest.raises(ValueError, match="`inputs` contains 1 NaN or infinite"):
        attr.attribute(images, target=0)


@pytest.mark.parametrize(
    "target, error, match",
    [
        (K, ValueError, "class index 5, out of range"),
        (-1, ValueError, "class index -1"),
        ([0, 1], ValueError, "one class per input"),
        (torch.tensor([0, 1]), ValueError, "0-d or have exactly N"),
        (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "integer tensor"),
        ("cat", TypeError, "must be None"),
        ((0, 1), TypeError, "tuple"),
        ([0, 1.5, 2, 3], TypeError, "hold ints"),
    ],
)
def test_bad_targets(attr, images, target, error, match):
    with pytest.raises(error, match=match) as info:
        attr.attribute(images, target=target)
    assert "`target`" in str(info.value)


def test_bad_internal_batch_size(attr, images):
    with pytest.raises(ValueError, match="`internal_batch_size`"):
        attr.attribute(images, target=0, internal_batch_size=0)


def test_black_box_with_wrong_output(attr, images):
    attr.forward_func = lambda x: torch.zeros(x.shape[0], K + 1)
    with pytest.raises(ValueError, match="returns 6 logits"):
        attr.attribute(images)
    attr.forward_func = lambda x: torch.zeros(x.shape[0])
    with pytest.raises(ValueError, match="`forward_func` must return logits of shape N x K"):
        attr.attribute(images)


def test_target_none_without_black_box(attr, images):
    attr.forward_func = None
    with pytest.raises(ValueError, match="`forward_func` is None"):
        attr.attribute(images)


def test_constructor_checks():
    student = cifar_resnet_student(depth=8, num_classes=K)
    other = cifar_resnet_student(depth=8, num_classes=K)
    other.stage_channels = [8, 16, 32]
    with pytest.raises(ValueError, match="`explainer` was built"):
        AttentiveDistillationAttribution(None, student, ExplanationNet.for_student(other))
    with pytest.raises(TypeError, match="`student`"):
        AttentiveDistillationAttribution(None, BlackBox(), ExplanationNet.for_student(student))


def test_log_usage_wraps_attribute_once():
    from captum_akd._base import ImageAttribution

    # One shared implementation: the subclass does not redefine (or re-wrap) it.
    assert "attribute" not in vars(AttentiveDistillationAttribution)
    assert AttentiveDistillationAttribution.attribute is ImageAttribution.attribute
    assert not hasattr(ImageAttribution.attribute.__wrapped__, "__wrapped__")


@pytest.mark.parametrize("target", [3, [0, 4, 1, 2], torch.tensor(3), torch.tensor([0, 4, 1, 2])])
def test_target_range_is_checked_before_the_device(target):
    from captum_akd._validation import resolve_target

    # A meta tensor cannot be read back: any range check on the device would fail.
    meta = torch.device("meta")
    labels = resolve_target(target, N, K, meta)
    assert labels.device.type == "meta" and labels.shape == (N,)


@pytest.mark.parametrize("target, bad", [(K, K), ([0, 1, -2, 9], -2), ([0, 1, 7, 9], 9),
                                         (torch.tensor([0, 1, 7, 2]), 7)])
def test_out_of_range_target_is_named_without_the_device(target, bad):
    from captum_akd._validation import resolve_target

    with pytest.raises(ValueError, match=f"`target` holds class index {bad}, out of range"):
        resolve_target(target, N, K, torch.device("meta"))
