"""Bad input fails with a clear message before any training starts."""

import pytest
import torch
from test_distill_support import make_dataset, make_images, square_target, tiny_student
from torch.utils.data import Dataset, TensorDataset

import captum_akd
from captum_akd.distill import distill_student, train_explainer
from captum_akd.models import ExplanationNet, cifar_resnet_student

FAST = dict(epochs=1, batch_size=16, quiet=True, device="cpu")


class Counting:
    """Wraps a student to notice any training step."""

    def __init__(self):
        self.student = tiny_student()
        self.steps = 0
        self.student.register_forward_pre_hook(self._count)

    def _count(self, module, args):
        if module.training:
            self.steps += 1


def expect_error(error, pattern, target=square_target, data=None, **kwargs):
    counting = Counting()
    with pytest.raises(error, match=pattern):
        distill_student(target, data if data is not None else make_dataset(32),
                        student=kwargs.pop("student", counting.student), **{**FAST, **kwargs})
    assert counting.steps == 0


@pytest.mark.parametrize("target, pattern", [
    (lambda x: square_target(x)[:, 0], "N x K"),
    (lambda x: square_target(x)[:1], "N x K"),
    (lambda x: (square_target(x),), "must return a tensor"),
    (lambda x: square_target(x).long(), "floating-point"),
    ("not callable", "callable"),
])
def test_target_must_return_n_by_k_logits(target, pattern):
    expect_error((ValueError, TypeError), pattern, target=target)


def test_class_count_must_match_the_student():
    expect_error(ValueError, "returns 4 logits.*head of 6 classes.*num_classes=4",
                 student=cifar_resnet_student(depth=8, num_classes=6))


class Empty(Dataset):
    def __len__(self):
        return 0

    def __getitem__(self, i):
        raise IndexError(i)


class MixedSizes(Dataset):
    def __len__(self):
        return 40

    def __getitem__(self, i):
        size = 16 if i < 30 else 20
        return torch.rand(3, size, size), 0


def test_empty_and_mixed_size_datasets():
    expect_error(ValueError, "`train_data` is empty", data=Empty())
    expect_error(ValueError, "`val_data` is empty", val_data=Empty())
    expect_error(ValueError, "different sizes.*image_size", data=MixedSizes())
    # With a resize the same data trains.
    result = distill_student(square_target, MixedSizes(), student=tiny_student(),
                             image_size=16, **FAST)
    assert result.report["images"] == 40


def test_other_bad_data():
    images, labels, _ = make_images(32)
    expect_error(ValueError, "out of range for a model with 4 classes",
                 data=TensorDataset(images, labels + 7))
    late = labels.clone()
    late[-1] = 9  # beyond the first items the probe reads: found through the data's labels
    expect_error(ValueError, "class index 9", data=TensorDataset(images, late))
    expect_error(TypeError, "floating-point",
                 data=TensorDataset((images * 50).to(torch.uint8), labels))
    expect_error(ValueError, "3 channel", data=TensorDataset(images[:, :1], labels))
    expect_error(ValueError, "at least 4 x 4", data=TensorDataset(images[:, :, :2, :2], labels))
    expect_error(ValueError, "val_data. images are", val_data=TensorDataset(
        torch.rand(8, 3, 20, 20)))
    expect_error(TypeError, "Dataset or DataLoader", data=[images[0]] * 4)
    expect_error(ValueError, "NaN", data=TensorDataset(torch.full((4, 3, 16, 16), float("nan"))))


def test_bad_options():
    expect_error(TypeError, "unknown DistillConfig option.*temperature", temprature=2.0)
    expect_error(ValueError, "`alpha`", alpha=2.0)
    expect_error(ValueError, "`batch_size`", batch_size=0)
    expect_error(ValueError, "`image_size`", image_size="large")
    with pytest.raises(ValueError, match="`peer` has 3 classes"):
        distill_student(square_target, make_dataset(16), student=tiny_student(),
                        peer=cifar_resnet_student(depth=8, num_classes=3), **FAST)
    student = tiny_student()
    wrong = ExplanationNet([8, 16], 16)
    with pytest.raises(ValueError, match="for_student"):
        train_explainer(square_target, make_dataset(16), student=student, explainer=wrong,
                        **FAST)
    with pytest.raises(ValueError, match="for_student"):
        captum_akd.distill(square_target, make_dataset(16), student=student, explainer=wrong,
                           quiet=True)
    with pytest.raises(TypeError, match="AttentiveStudent"):
        distill_student(square_target, make_dataset(16), student=torch.nn.Linear(2, 2), **FAST)


def test_jpeg_recompression_needs_pixels_or_their_normalization():
    # The square task's images are normalised (about -1.5 to 1.5), not pixels.
    expect_error(ValueError, "`jpeg_quality` needs pixels in \\[0, 1\\].*`normalization`",
                 jpeg_quality=75)
    expect_error(ValueError, "`jpeg_quality` must be", jpeg_quality=[90, 10])
