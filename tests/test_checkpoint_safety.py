"""Loading refuses a config or weights file that does not fit, before allocating.

A checkpoint directory may come from anyone: ``config.json`` is checked against
each builder's signature and bounds, both networks are built on the ``meta``
device, and the weights files' headers are compared with them before any
tensor is read or any real network built.
"""

import json
import os
import stat
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from captum_akd import AttentiveDistillationAttribution
from captum_akd import checkpoint as ckpt
from captum_akd.models import (
    STUDENT_ARCHS,
    STUDENT_BUILDERS,
    ExplanationNet,
    build_student,
    cifar_resnet_student,
)


@pytest.fixture
def path(tmp_path):
    torch.manual_seed(0)
    student = cifar_resnet_student(depth=8, num_classes=5)
    explainer = ExplanationNet.for_student(student, width=32)
    return ckpt.save_checkpoint(tmp_path / "ckpt", student, explainer)


def edit_config(path, edit):
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config))


def test_huge_width_is_refused_fast_naming_the_key(path):
    edit_config(path, lambda c: c["explainer"]["kwargs"].update(width=10_000_000))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="'width' must be an int from 1 to 8192; got 10000000"):
        ckpt.load_checkpoint(path)
    assert time.perf_counter() - start < 0.5


def test_large_class_count_within_bounds_is_compared_on_meta(path):
    # Within bounds but not what the file holds: refused from the header, by name.
    edit_config(path, lambda c: c["student"]["kwargs"].update(num_classes=1_000_000))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"student.safetensors: tensor 'fc.weight' has shape "
                                         r"\[5, 64\] but the student built from config.json "
                                         r"expects \[1000000, 64\]"):
        ckpt.load_checkpoint(path)
    # Building it for real would allocate and initialise 256 MB first.
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("role, builder", [("student", "cifar_resnet_student"),
                                           ("explainer", "ExplanationNet")])
def test_unknown_keyword_is_named(path, role, builder):
    edit_config(path, lambda c: c[role]["kwargs"].update(foo=1))
    with pytest.raises(ValueError, match=f"config.json: {role} builder '{builder}' has no "
                                         "keyword 'foo'; valid: ") as info:
        ckpt.load_checkpoint(path)
    assert not isinstance(info.value, TypeError)


def test_keyword_of_wrong_type_is_named(path):
    edit_config(path, lambda c: c["student"]["kwargs"].update(depth="8"))
    with pytest.raises(ValueError, match="'depth' must be an int"):
        ckpt.load_checkpoint(path)


def test_missing_required_keyword_is_named(path):
    edit_config(path, lambda c: c["explainer"]["kwargs"].pop("class_dim"))
    with pytest.raises(ValueError, match="needs the keyword 'class_dim'"):
        ckpt.load_checkpoint(path)


def test_external_weights_keyword_is_refused(path):
    edit_config(path, lambda c: c["student"]["kwargs"].update(backbone_weights="/etc/passwd"))
    with pytest.raises(ValueError, match="'backbone_weights' would load starting weights"):
        ckpt.load_checkpoint(path)


def test_explainer_for_other_stages_is_refused(path):
    edit_config(path, lambda c: c["explainer"]["kwargs"].update(stage_channels=[16, 32, 128]))
    with pytest.raises(ValueError, match="explainer keyword 'stage_channels' is"):
        ckpt.load_checkpoint(path)


def rewrite_tensor(path, name, key, tensor):
    state = load_file(path / name)
    state[key] = tensor
    save_file(state, path / name)
    edit_config(path, lambda c: c["weights_sha256"].pop(name))


def test_tensor_of_wrong_shape_is_named(path):
    rewrite_tensor(path, "student.safetensors", "stages.0.0.conv1.weight",
                   torch.zeros(16, 16, 1, 1))
    with pytest.raises(ValueError, match=r"student.safetensors: tensor 'stages.0.0.conv1.weight' "
                                         r"has shape \[16, 16, 1, 1\] but the student built "
                                         r"from config.json expects \[16, 16, 3, 3\]"):
        ckpt.load_checkpoint(path)


def test_tensor_of_wrong_dtype_is_named(path):
    rewrite_tensor(path, "explainer.safetensors", "head.bias", torch.zeros(1, dtype=torch.float64))
    with pytest.raises(ValueError, match="tensor 'head.bias' has dtype F64 but the explainer "
                                         "built from config.json expects F32"):
        ckpt.load_checkpoint(path)


def test_extra_and_missing_tensors_are_named(path):
    state = load_file(path / "student.safetensors")
    state["extra.weight"] = state.pop("fc.bias")
    save_file(state, path / "student.safetensors")
    edit_config(path, lambda c: c["weights_sha256"].clear())
    with pytest.raises(ValueError, match=r"1 missing key\(s\): 'fc.bias'; 1 unexpected "
                                         r"key\(s\): 'extra.weight'"):
        ckpt.load_checkpoint(path)


def test_load_state_strict_names_keys():
    student = cifar_resnet_student(depth=8, num_classes=5)
    state = dict(student.state_dict())
    state.pop("fc.bias")
    with pytest.raises(ValueError, match=r"1 missing key\(s\): 'fc.bias'"):
        ckpt.load_state_strict(student, state, "student")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_weights_files_get_the_mode_of_config_json(tmp_path, umask):
    old = os.umask(umask)
    try:
        student = cifar_resnet_student(depth=8, num_classes=5)
        explainer = ExplanationNet.for_student(student, width=16)
        path = ckpt.save_checkpoint(tmp_path / "ckpt", student, explainer)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()}
    assert modes["config.json"] == 0o666 & ~umask
    assert modes == dict.fromkeys(modes, modes["config.json"])


def test_round_trip_still_loads(path):
    attr = AttentiveDistillationAttribution.load(path)
    assert attr.student.num_classes == 5


def test_one_student_table():
    assert set(STUDENT_BUILDERS) == {
        "cifar_resnet_student", "resnet_student", "efficientnet_lite_student"}
    assert {a.builder.__name__ for a in STUDENT_ARCHS.values()} == set(STUDENT_BUILDERS)
    assert {"cifar-resnet20", "resnet18", "efficientnet-lite0"} <= set(STUDENT_ARCHS)
    assert ckpt.STUDENT_BUILDERS is STUDENT_BUILDERS


def test_build_student_matches_the_cli_semantics():
    student = build_student("cifar-resnet8", 7)
    assert student.num_classes == 7
    assert student.config == {
        "builder": "cifar_resnet_student",
        "kwargs": {"depth": 8, "num_classes": 7, "identity_init": False}}
    assert build_student("cifar-resnet8", 7, stem_stride=2).config["kwargs"]["stem_stride"] == 2
    with torch.device("meta"):
        assert build_student("resnet18", 4).config["kwargs"] == {
            "arch": "resnet18", "num_classes": 4, "identity_init": False}
    with pytest.raises(FileNotFoundError):
        build_student("resnet18", 4, weights="no-such-file.safetensors")
    with pytest.raises(ValueError, match="efficientnet-lite0 takes --student-weights pretrained"):
        build_student("efficientnet-lite0", 4, weights="some/path.pth")
    with pytest.raises(ValueError, match="`name` must be one of"):
        build_student("vgg16", 4)
