import pytest
import torch

from captum_akd.models import (
    CBAM,
    AttentiveStudent,
    ExplanationNet,
    cifar_resnet_student,
    efficientnet_lite_student,
    resnet_student,
)
from captum_akd.zoo.cifar_resnet import cifar_resnet20


def test_cbam_shapes_and_range():
    block = CBAM(32)
    features, attention = block(torch.randn(2, 32, 8, 6))
    assert features.shape == (2, 32, 8, 6)
    assert attention.shape == (2, 1, 8, 6)
    assert attention.min() >= 0 and attention.max() <= 1


def test_cbam_identity_init_is_identity():
    block = CBAM(16, identity_init=True)
    x = torch.randn(3, 16, 5, 5)
    features, _ = block(x)
    assert torch.equal(features, x)


def test_cbam_default_is_plain_cbam():
    block = CBAM(16)
    x = torch.randn(2, 16, 4, 4)
    features, attention = block(x)
    expected = x * block.channel(x) * attention
    assert torch.allclose(features, expected, atol=1e-6)


def test_cifar_student_forward_features():
    student = cifar_resnet_student(depth=20, num_classes=7).eval()
    out = student.forward_features(torch.randn(2, 3, 32, 32))
    assert out.logits.shape == (2, 7)
    assert [tuple(f.shape[1:]) for f in out.features] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert [tuple(a.shape[1:]) for a in out.attention] == [(1, 32, 32), (1, 16, 16), (1, 8, 8)]
    assert out.pooled.shape == (2, 64)
    assert torch.equal(student(torch.zeros(1, 3, 32, 32)), student.forward_features(
        torch.zeros(1, 3, 32, 32)).logits)


def test_cam_mean_equals_logit_minus_bias():
    student = cifar_resnet_student(depth=8, num_classes=4).eval()
    x = torch.randn(3, 3, 16, 16)
    out = student.forward_features(x)
    labels = torch.tensor([0, 2, 3])
    cam = student.class_activation_map(out.features[-1], labels)
    expected = out.logits[torch.arange(3), labels] - student.fc.bias[labels]
    assert torch.allclose(cam.mean(dim=(1, 2, 3)), expected, atol=1e-5)


def test_pretrained_backbone_student_matches_backbone(tmp_path):
    from safetensors.torch import save_file

    backbone = cifar_resnet20().eval()
    path = tmp_path / "r20.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(path))
    student = cifar_resnet_student(depth=20, num_classes=10, backbone_weights=path).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(student(x), backbone(x), atol=1e-5)
    assert student.config["kwargs"]["identity_init"] is True


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnet_student(arch):
    student = resnet_student(arch, num_classes=5).eval()
    out = student.forward_features(torch.randn(1, 3, 64, 64))
    assert out.logits.shape == (1, 5)
    assert [f.shape[-1] for f in out.features] == [16, 8, 4, 2]
    assert [f.shape[1] for f in out.features] == student.stage_channels


def test_resnet_student_rejects_unknown_arch():
    with pytest.raises(ValueError, match="`arch`"):
        resnet_student("resnet101")


def test_cifar_student_rejects_bad_depth():
    with pytest.raises(ValueError, match="`depth`"):
        cifar_resnet_student(depth=21)


def test_efficientnet_lite_student():
    pytest.importorskip("efficientnet_lite_pytorch")
    student = efficientnet_lite_student(num_classes=3).eval()
    out = student.forward_features(torch.randn(1, 3, 64, 64))
    assert out.logits.shape == (1, 3)
    assert len(out.features) == 5
    assert [f.shape[-1] for f in out.features] == [32, 16, 8, 4, 2]


def test_student_rejects_bad_construction():
    with pytest.raises(ValueError, match="`stages`"):
        AttentiveStudent(torch.nn.Identity(), [torch.nn.Identity()], [3, 4], num_classes=2)
    with pytest.raises(ValueError, match="`num_classes`"):
        AttentiveStudent(torch.nn.Identity(), [torch.nn.Identity()], [3], num_classes=1)


def test_explainer_shapes_range_and_gradients():
    student = cifar_resnet_student(depth=8, num_classes=4).eval()
    explainer = ExplanationNet.for_student(student, width=32)
    x = torch.randn(2, 3, 20, 28)
    maps = explainer.explain(student, x, torch.tensor([1, 3]))
    assert maps.shape == (2, 1, 20, 28)
    assert maps.min() >= 0 and maps.max() <= 1
    maps.mean().backward()
    assert all(p.grad is not None for p in explainer.head.parameters())


def test_explainer_first_stage_skips_the_shallowest_levels(tmp_path):
    from captum_akd import AttentiveDistillationAttribution
    from captum_akd.checkpoint import save_checkpoint

    student = cifar_resnet_student(depth=8, num_classes=4).eval()
    explainer = ExplanationNet.for_student(student, width=32, first_stage=1).eval()
    assert len(explainer.levels) == 2 and explainer.level_widths == [16, 32]
    # The stride-1 stage is never read: changing its features changes nothing.
    x = torch.randn(2, 3, 16, 16)
    out = student.forward_features(x)
    cam = student.class_activation_map(out.features[-1], torch.tensor([1, 2]))
    args = (out.attention, cam, student.fc.weight[[1, 2]], (16, 16))
    first = explainer([out.features[0], *out.features[1:]], *args)
    noisy = explainer([torch.randn_like(out.features[0]), *out.features[1:]], *args)
    assert first.shape == (2, 1, 16, 16) and torch.equal(first, noisy)
    # Saved and loaded with its setting; a checkpoint without it decodes every stage.
    path = save_checkpoint(tmp_path / "ckpt", student, explainer)
    loaded = AttentiveDistillationAttribution.load(path)
    assert loaded.explainer.first_stage == 1
    assert torch.equal(loaded.attribute(x, target=[1, 2]),
                       explainer.explain(student, x, torch.tensor([1, 2])))
    kwargs = dict(explainer.config["kwargs"])
    del kwargs["first_stage"]
    assert ExplanationNet(**kwargs).first_stage == 0
    for bad in (3, -1, 1.0):
        with pytest.raises(ValueError, match="first_stage"):
            ExplanationNet.for_student(student, first_stage=bad)


def test_explainer_is_class_specific_by_construction():
    # Opposite classifier rows give opposite CAMs, so the explainer sees
    # different inputs for the two classes and must return different maps.
    student = cifar_resnet_student(depth=8, num_classes=2).eval()
    with torch.no_grad():
        student.fc.weight[1] = -student.fc.weight[0]
    explainer = ExplanationNet.for_student(student).eval()
    x = torch.randn(1, 3, 16, 16)
    a = explainer.explain(student, x, torch.tensor([0]))
    b = explainer.explain(student, x, torch.tensor([1]))
    assert (a - b).abs().max() > 1e-3


def test_cifar_student_stem_stride_halves_every_stage(tmp_path):
    from captum_akd import AttentiveDistillationAttribution

    student = cifar_resnet_student(depth=8, num_classes=5, stem_stride=2).eval()
    out = student.forward_features(torch.rand(2, 3, 64, 64))
    assert [tuple(a.shape[-2:]) for a in out.attention] == [(32, 32), (16, 16), (8, 8)]
    assert student.min_input_size == 8
    explainer = ExplanationNet.for_student(student)
    attr = AttentiveDistillationAttribution(lambda x: student(x), student, explainer)
    images = torch.rand(2, 3, 64, 64)
    maps = attr.attribute(images, target=1)
    assert maps.shape == (2, 1, 64, 64)
    attr.save(tmp_path / "ckpt")
    loaded = AttentiveDistillationAttribution.load(tmp_path / "ckpt")
    assert loaded.student.stem.conv.stride == (2, 2)
    assert torch.equal(loaded.attribute(images, target=1), maps)


def test_cifar_student_rejects_bad_stem_stride():
    with pytest.raises(ValueError, match="stem_stride"):
        cifar_resnet_student(depth=8, stem_stride=3)
