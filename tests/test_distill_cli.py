"""``captum-akd distill``: help text, a tiny run on a zip and on a folder, errors."""

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from test_distill_support import make_images, square_target

from captum_akd import AttentiveDistillationAttribution
from captum_akd.cli import COMMANDS, build_parser, main

NORMALIZE = "0.5,0.5,0.5/0.25,0.25,0.25"
CLASSES = ["blue", "green", "red", "yellow"]  # sorted folder names = labels 0..3


def make_target():
    """The factory ``--target test_distill_cli:make_target`` calls."""
    return square_target


def png_bytes(image: torch.Tensor) -> bytes:
    import io

    array = ((image * 0.25 + 0.5).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(path, split, n, seed):
    images, labels, _ = make_images(n, seed=seed)
    with zipfile.ZipFile(path, "w") as archive:
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            archive.writestr(f"{split}/{CLASSES[label]}/{i:04d}.png", png_bytes(image))
    return path


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["distill", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    parser = build_parser()
    distill = parser._subparsers._group_actions[0].choices["distill"]
    for action in distill._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 15, action.dest
    for needle in ("--target MODULE:FACTORY", "--data PATH", "--out DIR", "--resume",
                   "torchrun", "--area-target", "cifar10-train.zip"):
        assert needle in text
    assert [c.name for c in COMMANDS][0] == "distill"


def test_tiny_run_on_zip_archives(tmp_path, capsys):
    train = write_zip(tmp_path / "train.zip", "train", 96, seed=0)
    test = write_zip(tmp_path / "test.zip", "test", 32, seed=1)
    out = tmp_path / "ckpt"
    args = ["distill", "--target", "test_distill_cli:make_target", "--data", str(train),
            "--val-data", str(test), "--normalize", NORMALIZE, "--student", "cifar-resnet8",
            "--epochs", "1", "--explainer-epochs", "1", "--batch-size", "32",
            "--device", "cpu", "--out", str(out), "--explainer-width", "32"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "top1_agreement" in printed and str(out) in printed
    attr = AttentiveDistillationAttribution.load(out, forward_func=square_target)
    assert attr.normalization == {"mean": [0.5] * 3, "std": [0.25] * 3}
    assert attr.input_size == (16, 16)
    report = attr.metadata["fidelity"]
    assert report["student"]["images"] == 32 and report["student"]["split"] == "val"
    assert "student_lost" in report["explainer"]
    assert main(args) == 2  # exists: needs --resume or --overwrite
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume", "--quiet"]) == 0  # finished: nothing to do


def test_tiny_run_on_a_flat_folder_with_resizing(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    images, _, _ = make_images(24, seed=2, size=20)
    for i, image in enumerate(images):
        (folder / f"{i:03d}.png").write_bytes(png_bytes(image))
    out = tmp_path / "ckpt"
    code = main(["distill", "--target", "test_distill_cli:make_target", "--data", str(folder),
                 "--image-size", "16", "--normalize", NORMALIZE, "--student", "cifar-resnet8",
                 "--epochs", "1", "--explainer-epochs", "1", "--batch-size", "8",
                 "--device", "cpu", "--out", str(out), "--quiet", "--threads", "1"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["metadata"]["input_size"] == [16, 16]
    assert config["metadata"]["fidelity"]["student"]["split"] == "train"


def test_command_line_errors(tmp_path, capsys):
    train = write_zip(tmp_path / "train.zip", "train", 8, seed=0)
    base = ["distill", "--data", str(train), "--out", str(tmp_path / "o"), "--device", "cpu"]
    assert main(base + ["--target", "no_such_module_xyz:f"]) == 2
    assert "cannot import" in capsys.readouterr().err
    assert main(base + ["--target", "test_distill_cli:missing"]) == 2
    assert "no attribute" in capsys.readouterr().err
    # The student's head follows the black box, so a 4-class target needs no flag.
    assert main(["distill", "--target", "test_distill_cli:make_target", "--data",
                 str(tmp_path / "none.zip"), "--out", str(tmp_path / "o")]) == 2
    assert "neither a .zip" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--target", "x:y", "--image-size", "big"])
    assert not (tmp_path / "o").exists()
