"""ArrayBlackBox: any function on NumPy arrays as the black box (no ONNX Runtime needed).

Conversion both ways, batching and exact counts, probabilities as
log-probabilities, a clear error for every bad input or answer, Grad-CAM's
refusal of a non-differentiable black box, and the parts of OnnxBlackBox and
``--target x.onnx`` that must work (or fail clearly) without ONNX Runtime.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from captum_akd.baselines import RISE, GradCAM
from captum_akd.blackbox import (
    ArrayBlackBox,
    CountingBlackBox,
    OnnxBlackBox,
    check_differentiable,
    is_differentiable,
)
from captum_akd.cli import load_target

K = 5


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, K)).eval()


def as_numpy_function(model: nn.Module):
    """The model behind a NumPy interface, as a non-PyTorch deployment would offer it."""

    def fn(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(batch)).numpy()

    return fn


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_converts_tensors_to_float32_arrays_and_back():
    seen = []

    def fn(batch):
        seen.append(batch)
        return batch.mean(axis=(2, 3)).astype(np.float64)   # float64 answers come back float32

    black_box = ArrayBlackBox(fn, batch_size=4, in_channels=3)
    # Non-contiguous, float64 and requiring grad: all of it must be undone for fn.
    images = torch.rand(3, 10, 8, 8, dtype=torch.float64, requires_grad=True).transpose(0, 1)
    logits = black_box(images)
    assert [b.shape for b in seen] == [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)]
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in seen)
    assert logits.dtype == torch.float32 and logits.shape == (10, 3)
    assert logits.device == images.device and not logits.requires_grad
    torch.testing.assert_close(logits, images.detach().float().mean(dim=(2, 3)))
    assert (black_box.calls, black_box.images, black_box.runs) == (1, 10, 3)
    assert black_box.num_classes == 3 and black_box.differentiable is False
    assert "ArrayBlackBox" in repr(black_box) and "runs=3" in repr(black_box)


def test_counts_calls_images_and_runs_exactly():
    black_box = ArrayBlackBox(as_numpy_function(tiny_model()), batch_size=10)
    rise = RISE(black_box, n_masks=40, grid=2, perturbations_per_eval=16)
    rise.attribute(torch.rand(2, 3, 16, 16), target=[0, 3])
    # Per image three library calls of 16, 16 and 8 masked copies; 16 is two runs of 10.
    assert (black_box.calls, black_box.images, black_box.runs) == (6, 80, 10)
    black_box.reset()
    assert (black_box.calls, black_box.images, black_box.runs) == (0, 0, 0)
    black_box(torch.rand(3, 3, 16, 16))
    assert (black_box.calls, black_box.images, black_box.runs) == (1, 3, 1)
    # Extra arguments (Captum's additional_forward_args) reach fn unchanged.
    scaled = ArrayBlackBox(lambda x, scale: scale * x.mean(axis=(2, 3)))
    torch.testing.assert_close(scaled(torch.ones(2, 3, 4, 4), 2.0), torch.full((2, 3), 2.0))


def test_rise_on_the_array_black_box_is_rise_on_the_model():
    model = tiny_model()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    settings = dict(n_masks=48, grid=3, perturbations_per_eval=32, seed=0)
    expected = RISE(model, **settings).attribute(images)
    got = RISE(ArrayBlackBox(as_numpy_function(model)), **settings).attribute(images)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_probabilities_become_log_probabilities_with_the_same_softmax():
    model = tiny_model()
    fn = as_numpy_function(model)
    images = torch.rand(6, 3, 16, 16)
    black_box = ArrayBlackBox(lambda x: softmax(fn(x)), outputs="probabilities")
    logits = black_box(images)
    with torch.no_grad():
        expected = model(images)
    torch.testing.assert_close(logits.softmax(1), expected.softmax(1), atol=1e-6, rtol=0)
    assert torch.equal(logits.argmax(1), expected.argmax(1))
    torch.testing.assert_close(logits.exp().sum(1), torch.ones(6))
    # A probability of exactly 0 stays a finite logit: every method can use it.
    one_hot = ArrayBlackBox(lambda x: np.eye(K)[np.zeros(len(x), dtype=int)],
                            outputs="probabilities")
    out = one_hot(images)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.softmax(1), torch.eye(K)[[0] * 6], atol=1e-37, rtol=0)


def rows(n_cols: int, value: float = 0.2, dtype=np.float32):
    return lambda x: np.full((len(x), n_cols), value, dtype=dtype)


BAD_ANSWERS = {
    "one dimension": (lambda x: np.zeros(len(x), np.float32), {}, ValueError,
                      "N x K = 4 x K"),
    "three dimensions": (lambda x: np.zeros((len(x), K, 1), np.float32), {}, ValueError,
                         "shape (4, 5, 1)"),
    "rows != N": (lambda x: np.zeros((len(x) + 1, K), np.float32), {}, ValueError,
                  "batch of 4 images; got shape (5, 5)"),
    "integer dtype": (lambda x: np.zeros((len(x), K), np.int64), {}, TypeError,
                      "floating-point logits; got dtype int64"),
    "not an array": (lambda x: [[0.0, 1.0], [2.0]], {}, TypeError, "must return an N x K"),
    "K != num_classes": (rows(K), {"num_classes": 7}, ValueError,
                         "returned 5 classes but 7 were expected"),
    "NaN": (lambda x: np.full((len(x), K), np.nan, np.float32), {}, ValueError,
            "20 NaN or infinite value(s)"),
    "inf": (lambda x: np.where(np.eye(len(x), K) > 0, np.inf, 0).astype(np.float32), {},
            ValueError, "4 NaN or infinite value(s)"),
    "probabilities above 1": (rows(K, 1.5), {"outputs": "probabilities"}, ValueError,
                              "outside [0, 1]"),
    "negative probabilities": (lambda x: np.tile([[-0.5, 1.5, 0, 0, 0]], (len(x), 1)),
                               {"outputs": "probabilities"}, ValueError, "outside [0, 1]"),
    "rows not summing to 1": (rows(K, 0.1), {"outputs": "probabilities"}, ValueError,
                              "rows must sum to 1 (tolerance 0.001); row 0 sums to 0.5"),
}


@pytest.mark.parametrize("case", list(BAD_ANSWERS))
def test_every_bad_answer_raises_a_clear_error(case):
    fn, options, error, message = BAD_ANSWERS[case]
    black_box = ArrayBlackBox(fn, **options)
    with pytest.raises(error, match="`fn`") as info:
        black_box(torch.rand(4, 3, 8, 8))
    assert message in str(info.value)
    assert (black_box.calls, black_box.runs) == (1, 1)   # sent, so counted


def test_the_number_of_classes_may_not_change_between_answers():
    sizes = iter([K, K, 3])
    black_box = ArrayBlackBox(lambda x: np.zeros((len(x), next(sizes)), np.float32))
    black_box(torch.rand(2, 3, 8, 8))
    black_box(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="returned 3 classes but 5 were expected"):
        black_box(torch.rand(2, 3, 8, 8))
    # Sums within the tolerance pass, and the tolerance can be widened.
    loose = ArrayBlackBox(rows(4, 0.2501), outputs="probabilities")
    assert loose(torch.rand(2, 3, 8, 8)).shape == (2, 4)
    with pytest.raises(ValueError, match="sums to 1.2"):
        ArrayBlackBox(rows(4, 0.3), outputs="probabilities")(torch.rand(2, 3, 8, 8))
    assert ArrayBlackBox(rows(4, 0.3), outputs="probabilities",
                         tolerance=0.25)(torch.rand(2, 3, 8, 8)).shape == (2, 4)


BAD_INPUTS = {
    "three dimensions": (torch.rand(3, 8, 8), ValueError, "4 dimensions"),
    "empty": (torch.rand(0, 3, 8, 8), ValueError, "empty"),
    "wrong channels": (torch.rand(2, 1, 8, 8), ValueError, "C (channels) = 3"),
    "NaN": (torch.full((2, 3, 8, 8), float("nan")), ValueError, "NaN"),
    "integer": (torch.zeros(2, 3, 8, 8, dtype=torch.long), TypeError, "floating-point"),
    "a NumPy array": (np.zeros((2, 3, 8, 8), np.float32), TypeError, "torch.Tensor"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_images_are_refused_before_the_model_is_called(case):
    images, error, message = BAD_INPUTS[case]
    black_box = ArrayBlackBox(lambda x: pytest.fail("fn was called"), in_channels=3)
    with pytest.raises(error, match="images") as info:
        black_box(images)
    assert message in str(info.value)
    assert (black_box.calls, black_box.images, black_box.runs) == (0, 0, 0)


def test_constructor_arguments_are_checked():
    with pytest.raises(TypeError, match="`fn` must be callable"):
        ArrayBlackBox("model.onnx")
    with pytest.raises(ValueError, match="`outputs` must be one of"):
        ArrayBlackBox(np.mean, outputs="scores")
    with pytest.raises(ValueError, match="`batch_size` must be a positive int"):
        ArrayBlackBox(np.mean, batch_size=0)
    with pytest.raises(TypeError, match="`num_classes`"):
        ArrayBlackBox(np.mean, num_classes=2.0)
    with pytest.raises(ValueError, match="`tolerance`"):
        ArrayBlackBox(np.mean, tolerance=-1)


def test_differentiable_flags_and_grad_cam_refusal():
    model = tiny_model()
    array_box = ArrayBlackBox(as_numpy_function(model))
    assert is_differentiable(model) and CountingBlackBox(model).differentiable
    assert not is_differentiable(array_box) and not CountingBlackBox(array_box).differentiable

    def remote(images):
        return model(images)

    remote.differentiable = False
    for black_box in (array_box, CountingBlackBox(array_box), remote):
        with pytest.raises(TypeError, match="gradients cannot flow") as info:
            GradCAM(black_box, model[0])
        for method in ("AKD", "AttentiveDistillationAttribution", "RISE", "LIME",
                       "layer-wise CAM"):
            assert method in str(info.value)
    check_differentiable(model, "Grad-CAM")
    assert GradCAM(CountingBlackBox(model), model[0]).attribute(
        torch.rand(2, 3, 16, 16), target=0).shape == (2, 1, 16, 16)


def test_onnx_without_onnxruntime_says_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import now raises ImportError
    with pytest.raises(ImportError, match=r"pip install captum-akd\[onnx\]"):
        OnnxBlackBox(path)
    with pytest.raises(ValueError, match=r"pip install captum-akd\[onnx\]"):
        load_target(str(path), {})


def test_onnx_paths_and_options_are_checked_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ONNX model file"):
        OnnxBlackBox(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="`path_or_session` must be"):
        OnnxBlackBox(42)
    with pytest.raises(ValueError, match="no such ONNX model file"):
        load_target(str(tmp_path / "missing.onnx"), {})
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="--target-arg colour: not an option"):
        load_target(str(tmp_path / "model.onnx"), {"colour": "red"})
