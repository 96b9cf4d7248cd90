import json
import shutil

import pytest
import torch

from captum_akd import AttentiveDistillationAttribution
from captum_akd import checkpoint as ckpt
from captum_akd.models import ExplanationNet, cifar_resnet_student


def make_attr(num_classes=5, depth=8, seed=0):
    torch.manual_seed(seed)
    student = cifar_resnet_student(depth=depth, num_classes=num_classes)
    explainer = ExplanationNet.for_student(student, width=32)
    return AttentiveDistillationAttribution(
        None,
        student,
        explainer,
        input_size=(16, 16),
        normalization={"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        metadata={"note": "test"},
    )


@pytest.fixture
def saved(tmp_path):
    attr = make_attr()
    path = attr.save(tmp_path / "ckpt")
    return attr, path


def test_round_trip_gives_identical_maps(saved):
    attr, path = saved
    images = torch.randn(3, 3, 16, 16)
    loaded = AttentiveDistillationAttribution.load(path)
    assert torch.equal(loaded.attribute(images, target=[0, 2, 4]),
                       attr.attribute(images, target=[0, 2, 4]))
    assert loaded.input_size == (16, 16)
    assert loaded.normalization == {"mean": [0.5] * 3, "std": [0.25] * 3}
    assert loaded.metadata == {"note": "test"}


def test_config_contents(saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    assert config["format"] == "captum-akd"
    assert config["student"] == {
        "builder": "cifar_resnet_student",
        "kwargs": {"depth": 8, "num_classes": 5, "identity_init": False},
    }
    assert config["num_classes"] == 5
    assert config["metadata"]["input_size"] == [16, 16]
    assert set(config["weights_sha256"]) == {"student.safetensors", "explainer.safetensors"}
    assert config["weights_sha256"]["student.safetensors"] == ckpt.file_sha256(
        path / "student.safetensors")
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json", "explainer.safetensors", "student.safetensors"]


def test_load_with_black_box_and_target_none(saved):
    attr, path = saved
    black_box = lambda x: torch.nn.functional.one_hot(  # noqa: E731
        torch.full((x.shape[0],), 3), 5).float()
    loaded = AttentiveDistillationAttribution.load(path, forward_func=black_box)
    images = torch.randn(2, 3, 16, 16)
    assert torch.equal(loaded.attribute(images), attr.attribute(images, target=3))


def test_refuses_to_overwrite(saved):
    attr, path = saved
    before = (path / "student.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_attr(seed=1).save(path)
    assert (path / "student.safetensors").read_bytes() == before


def test_overwrite_replaces(saved):
    _, path = saved
    other = make_attr(seed=1)
    other.save(path, overwrite=True)
    images = torch.randn(2, 3, 16, 16)
    loaded = AttentiveDistillationAttribution.load(path)
    assert torch.equal(loaded.attribute(images, target=1), other.attribute(images, target=1))
    assert [p.name for p in path.parent.iterdir()] == ["ckpt"]


def test_overwrite_never_replaces_foreign_directory(tmp_path):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "cat.jpg").write_bytes(b"not a checkpoint")
    with pytest.raises(FileExistsError, match="not a captum-akd checkpoint"):
        make_attr().save(precious, overwrite=True)
    assert (precious / "cat.jpg").read_bytes() == b"not a checkpoint"


def test_interrupted_save_leaves_nothing_and_keeps_old(saved, monkeypatch):
    attr, path = saved
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        make_attr(seed=2).save(path, overwrite=True)
    with pytest.raises(KeyboardInterrupt):
        make_attr(seed=2).save(path.parent / "fresh")
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in path.parent.iterdir()] == ["ckpt"]


def test_write_json_failing_midway_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    ckpt.write_json({"top1_agreement": 0.5}, path)
    # json.dump has written part of the file when it meets the unserialisable value.
    with pytest.raises(TypeError):
        ckpt.write_json({"a": 1, "z": object()}, path)
    assert json.loads(path.read_text()) == {"top1_agreement": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    ckpt.write_json({"top1_agreement": 0.9}, path)
    assert json.loads(path.read_text()) == {"top1_agreement": 0.9}


@pytest.mark.parametrize("name", ["config.json", "student.safetensors", "explainer.safetensors"])
def test_missing_file(saved, name):
    _, path = saved
    (path / name).unlink()
    with pytest.raises(FileNotFoundError, match=f"missing {name}"):
        AttentiveDistillationAttribution.load(path)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="`directory`"):
        AttentiveDistillationAttribution.load(tmp_path / "nope")


@pytest.mark.parametrize("name", ["student.safetensors", "explainer.safetensors"])
def test_truncated_weights(saved, name):
    _, path = saved
    data = (path / name).read_bytes()
    (path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        AttentiveDistillationAttribution.load(path)


def test_truncated_weights_without_hash_still_clear(saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["weights_sha256"] = {}
    (path / "config.json").write_text(json.dumps(config))
    data = (path / "student.safetensors").read_bytes()
    (path / "student.safetensors").write_bytes(data[:100])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        AttentiveDistillationAttribution.load(path)


def test_truncated_config(saved):
    _, path = saved
    text = (path / "config.json").read_text()
    (path / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not valid JSON"):
        AttentiveDistillationAttribution.load(path)


def test_weights_from_another_checkpoint(saved, tmp_path):
    _, path = saved
    other = make_attr(num_classes=7).save(tmp_path / "other")
    shutil.copy(other / "student.safetensors", path / "student.safetensors")
    with pytest.raises(ValueError, match="another checkpoint"):
        AttentiveDistillationAttribution.load(path)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("num_classes", 9, "another architecture or class count"),
        ("depth", 14, "another architecture or class count"),
    ],
)
def test_config_describing_another_model(saved, field, value, match):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["student"]["kwargs"][field] = value
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=match):
        AttentiveDistillationAttribution.load(path)


def test_unknown_builder_and_format(saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["student"]["builder"] = "os.system"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="unknown student builder"):
        AttentiveDistillationAttribution.load(path)
    config["format"] = "something-else"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not a captum-akd checkpoint"):
        AttentiveDistillationAttribution.load(path)
    config["format"], config["format_version"] = "captum-akd", 99
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="newer than"):
        AttentiveDistillationAttribution.load(path)


def test_weights_are_safetensors_not_pickle(saved):
    _, path = saved
    for name in ("student.safetensors", "explainer.safetensors"):
        head = (path / name).read_bytes()[:16]
        assert not head.startswith(b"\x80")  # pickle protocol marker
        assert not head.startswith(b"PK")  # torch.save zip container


def test_map_location(saved):
    _, path = saved
    loaded = AttentiveDistillationAttribution.load(path, map_location=torch.device("cpu"))
    assert next(loaded.student.parameters()).device.type == "cpu"
    assert not loaded.student.training and not loaded.explainer.training
