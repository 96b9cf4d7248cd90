"""OnnxBlackBox: a PyTorch model exported to ONNX explains like the model itself.

A tiny CNN (3 -> 8 conv, 5 classes, 16 x 16 images) is exported once with
the legacy exporter (``dynamo=False``: no onnxscript needed) and run by ONNX
Runtime on one thread. Through the adapter it gives the model's logits, the
same distilled student, the same RISE and LIME maps and exactly the counts of
a counted PyTorch model; the graph's fixed sizes are checked; Grad-CAM
refuses it; and ``captum-akd distill --target model.onnx`` runs.
"""

from __future__ import annotations

import re

import pytest
import torch
from test_distill_cli import NORMALIZE, write_zip
from test_distill_support import tiny_student
from torch import nn
from torch.utils.data import TensorDataset

pytest.importorskip("onnxruntime", reason="OnnxBlackBox needs onnxruntime (captum-akd[onnx])")
pytest.importorskip("onnx", reason="torch.onnx.export needs onnx (captum-akd[onnx])")

import onnxruntime  # noqa: E402

from captum_akd import AttentiveDistillationAttribution  # noqa: E402
from captum_akd.baselines import RISE, GradCAM, LimeImage  # noqa: E402
from captum_akd.blackbox import CountingBlackBox, OnnxBlackBox  # noqa: E402
from captum_akd.cli import load_target, main  # noqa: E402
from captum_akd.distill import distill_student  # noqa: E402

pytestmark = [
    # The legacy TorchScript exporter announces its deprecation on every export.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

K = 5
SIZE = 16


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, K)).eval()


def export(model: nn.Module, path, fixed_batch: int | None = None, inputs: tuple | None = None,
           input_names=("images",)) -> str:
    """Export with a dynamic batch axis, or with ``fixed_batch`` images per run."""
    inputs = inputs or (torch.zeros(fixed_batch or 1, 3, SIZE, SIZE),)
    dynamic = None if fixed_batch else {**{name: {0: "n"} for name in input_names},
                                        "logits": {0: "n"}}
    torch.onnx.export(model, inputs, str(path), dynamo=False, input_names=list(input_names),
                      output_names=["logits"], dynamic_axes=dynamic)
    return str(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``(model, path of its ONNX export)``, exported once for the whole file."""
    model = tiny_cnn()
    return model, export(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def open_box(path: str, **options) -> OnnxBlackBox:
    return OnnxBlackBox(path, threads=1, **options)


def images(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_logits_equal_the_pytorch_models(exported):
    model, path = exported
    black_box = open_box(path, batch_size=3)
    x = images(7)
    logits = black_box(x)
    with torch.no_grad():
        expected = model(x)
    assert logits.dtype == torch.float32 and logits.shape == (7, K)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    assert (black_box.calls, black_box.images, black_box.runs) == (1, 7, 3)
    assert (black_box.input_name, black_box.output_name) == ("images", "logits")
    assert black_box.num_classes == K and black_box.in_channels == 3
    assert black_box.differentiable is False
    # A ready session works the same; providers belong to the session then.
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    torch.testing.assert_close(OnnxBlackBox(session)(x), logits, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="ready InferenceSession"):
        OnnxBlackBox(session, providers=["CPUExecutionProvider"])
    # Bytes of the model too.
    with open(path, "rb") as f:
        torch.testing.assert_close(open_box(f.read())(x), logits, atol=1e-6, rtol=0)


def test_graph_names_and_fixed_sizes_are_checked(exported, tmp_path):
    _, path = exported
    with pytest.raises(ValueError, match=r"its inputs: \['images'\]"):
        open_box(path, input_name="pixels")
    with pytest.raises(ValueError, match=r"its outputs: \['logits'\]"):
        open_box(path, output_name="probs")
    with pytest.raises(ValueError, match="K = 5"):
        open_box(path, num_classes=10)
    black_box = open_box(path)
    for bad, message in ((torch.rand(2, 1, SIZE, SIZE), "C (channels) = 3"),
                         (torch.rand(2, 3, 8, SIZE), "H (height) = 16"),
                         (torch.rand(3, SIZE, SIZE), "4 dimensions"),
                         (torch.full((1, 3, SIZE, SIZE), float("nan")), "NaN")):
        with pytest.raises(ValueError, match=re.escape(message)):
            black_box(bad)
    with pytest.raises(TypeError, match="no additional_forward_args"):
        black_box(images(2), 3)
    assert (black_box.calls, black_box.runs) == (0, 0)

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = tiny_cnn()

        def forward(self, images, scale):
            return self.net(images) * scale.view(-1, 1)

    two = export(TwoInputs(), tmp_path / "two.onnx",
                 inputs=(torch.zeros(1, 3, SIZE, SIZE), torch.ones(1)),
                 input_names=("images", "scale"))
    with pytest.raises(ValueError, match=r"several inputs \['images', 'scale'\]"):
        open_box(two)


def test_a_fixed_batch_size_is_padded_and_enforced(tmp_path):
    model = tiny_cnn()
    path = export(model, tmp_path / "fixed.onnx", fixed_batch=4)
    black_box = open_box(path)
    assert black_box.batch_size == 4
    x = images(6)
    with torch.no_grad():
        torch.testing.assert_close(black_box(x), model(x), atol=1e-5, rtol=0)
    assert (black_box.calls, black_box.images, black_box.runs) == (1, 6, 2)
    with pytest.raises(ValueError, match="fixed batch size 4"):
        open_box(path, batch_size=3)


def test_a_model_exported_with_its_softmax_gives_probabilities(tmp_path):
    model = tiny_cnn()
    path = export(nn.Sequential(model, nn.Softmax(dim=1)).eval(), tmp_path / "probs.onnx")
    x = images(5)
    with torch.no_grad():
        expected = model(x).softmax(1)
    black_box = open_box(path, outputs="probabilities")
    torch.testing.assert_close(black_box(x).softmax(1), expected, atol=1e-6, rtol=0)
    # Read as logits they are the wrong thing but legal; the reverse is refused.
    logits_path = export(model, tmp_path / "logits.onnx")
    with pytest.raises(ValueError, match="the ONNX model's output 'logits'"):
        open_box(logits_path, outputs="probabilities")(x * 50)


def test_distillation_through_onnx_gives_the_pytorch_student(exported):
    model, path = exported
    # One epoch of five batches of 8: five optimisation steps.
    data = TensorDataset(images(40, seed=2))
    settings = dict(epochs=1, batch_size=8, quiet=True, device="cpu")
    onnx_box = open_box(path)
    counted = CountingBlackBox(model)
    via_onnx = distill_student(onnx_box, data, student=tiny_student(num_classes=K), **settings)
    via_torch = distill_student(counted, data, student=tiny_student(num_classes=K), **settings)
    assert len(via_onnx.history) == len(via_torch.history) == 1
    onnx_state, torch_state = via_onnx.student.state_dict(), via_torch.student.state_dict()
    assert onnx_state.keys() == torch_state.keys()
    # ONNX Runtime's logits differ from torch's by ~3e-8; the optimiser's normalised
    # steps magnify that to ~2e-4 on weights whose gradients are near 0 (machine-dependent),
    # so weights get 1e-3 (training moves them by up to ~0.6) and answers are compared tightly.
    for name, value in torch_state.items():
        torch.testing.assert_close(onnx_state[name], value, atol=1e-3, rtol=0, msg=name)
    probe = images(16, seed=5)
    with torch.no_grad():
        answers = via_onnx.student.eval()(probe), via_torch.student.eval()(probe)
    torch.testing.assert_close(*answers, atol=2e-5, rtol=0)
    start = tiny_student(num_classes=K).state_dict()
    moved = max(float((value - start[name]).abs().max()) for name, value in torch_state.items()
                if value.is_floating_point())
    assert moved > 1e-3   # the students did train: equal is not "both untouched"
    # The same requests, counted the same way; every call fits in one run.
    assert (onnx_box.calls, onnx_box.images) == (counted.calls, counted.images)
    assert onnx_box.calls > 5 and onnx_box.runs == onnx_box.calls


def test_rise_and_lime_maps_and_counts_match(exported):
    model, path = exported
    x = images(2, seed=3)
    onnx_box, counted = open_box(path, batch_size=10), CountingBlackBox(model)
    rise = dict(n_masks=40, grid=2, perturbations_per_eval=16, seed=0)
    onnx_maps = RISE(onnx_box, **rise).attribute(x, target=[0, 3])
    torch_maps = RISE(counted, **rise).attribute(x, target=[0, 3])
    # Softmax scores of logits within 1e-5, averaged over masks: maps within 1e-5.
    torch.testing.assert_close(onnx_maps, torch_maps, atol=1e-5, rtol=0)
    assert (onnx_box.calls, onnx_box.images) == (counted.calls, counted.images) == (6, 80)
    assert onnx_box.runs == 10   # calls of 16, 16, 8 images; 16 is two runs of 10
    onnx_box.reset()
    counted.reset()
    lime = dict(n_samples=48, perturbations_per_eval=16, seed=0)
    onnx_maps = LimeImage(onnx_box, **lime).attribute(x)   # target None: one call each
    torch_maps = LimeImage(counted, **lime).attribute(x)
    # Ridge weights on probabilities that differ by about 1e-7.
    torch.testing.assert_close(onnx_maps, torch_maps, atol=1e-4, rtol=0)
    assert (onnx_box.calls, onnx_box.images) == (counted.calls, counted.images)
    assert onnx_box.images == 2 + 2 * 48


def test_grad_cam_refuses_an_onnx_black_box(exported):
    model, path = exported
    for black_box in (open_box(path), CountingBlackBox(open_box(path))):
        with pytest.raises(TypeError, match="gradients cannot flow through an ONNX Runtime"):
            GradCAM(black_box, model[0])


def test_cli_target_onnx_file(exported, tmp_path, capsys):
    model, path = exported
    black_box = load_target(path, {"batch_size": 16, "threads": 1})
    assert isinstance(black_box, OnnxBlackBox) and black_box.batch_size == 16
    train = write_zip(tmp_path / "train.zip", "train", 32, seed=0)
    out = tmp_path / "ckpt"
    code = main(["distill", "--target", path, "--target-arg", "threads=1", "--data", str(train),
                 "--normalize", NORMALIZE, "--student", "cifar-resnet8", "--epochs", "1",
                 "--explainer-epochs", "1", "--batch-size", "16", "--explainer-width", "8",
                 "--device", "cpu", "--quiet", "--threads", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    attr = AttentiveDistillationAttribution.load(out, forward_func=black_box)
    maps = attr.attribute(images(3))               # target None: the ONNX model's prediction
    assert maps.shape == (3, 1, SIZE, SIZE)
    assert main(["distill", "--target", path, "--target-arg", "colour=red", "--data", str(train),
                 "--out", str(tmp_path / "o")]) == 2
    assert "not an option of an ONNX target" in capsys.readouterr().err
