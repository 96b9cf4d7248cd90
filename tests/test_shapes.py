"""Tests for the built-in fine-grained dataset with part masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from captum_akd.data import SHAPES_MEAN, SHAPES_STD, FineGrainedShapes
from captum_akd.data.shapes import PART_COLOURS


def _same(a: dict, b: dict) -> bool:
    return all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def test_item_is_a_pure_function_of_seed_and_index():
    ds = FineGrainedShapes(length=50, seed=3)
    forward = [ds[i] for i in range(10)]
    # Another instance, other length, reverse order: a worker sees the same images.
    other = FineGrainedShapes(length=1000, seed=3)
    backward = [other[i] for i in reversed(range(10))][::-1]
    assert all(_same(a, b) for a, b in zip(forward, backward, strict=True))
    assert _same(ds[-1], ds[49])
    differ = FineGrainedShapes(length=50, seed=4)
    assert not torch.equal(ds[0]["image"], differ[0]["image"])
    assert not torch.equal(ds[0]["image"], ds[1]["image"])


@pytest.mark.parametrize("size,classes", [(64, 8), (96, 36), (32, 2)])
def test_shapes_dtypes_and_ranges(size, classes):
    ds = FineGrainedShapes(length=20, num_classes=classes, image_size=size, seed=1)
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, size, size) and item["image"].dtype == torch.float32
        assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
        assert item["mask"].shape == (1, size, size) and item["mask"].dtype == torch.bool
        assert item["masks"].shape == (2, size, size) and item["masks"].dtype == torch.bool
        assert item["labels"].shape == (2,) and item["labels"].dtype == torch.int64
        assert isinstance(item["label"], int) and 0 <= item["label"] < classes
        assert item["num_objects"] == 1
        assert item["labels"].tolist() == [item["label"], -1]
        assert torch.equal(item["masks"][0], item["mask"][0]) and not item["masks"][1].any()


def test_mask_is_small_inside_the_image_and_on_the_class_colour():
    ds = FineGrainedShapes(length=200, seed=5)
    areas = []
    for i in range(len(ds)):
        item = ds[i]
        mask = item["mask"][0]
        areas.append(mask.float().mean().item())
        # Parts are never cut by the border, so the mask never reaches it.
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        colour, shape = ds.class_attributes(item["label"])
        inside = item["image"][:, mask].median(dim=1).values
        if shape != "ring":  # a ring's mask includes its hole, which shows the body
            expected = torch.tensor(PART_COLOURS[colour])
            assert (inside - expected).abs().max() < 0.25, (i, colour, inside)
    areas = np.array(areas)
    assert areas.min() > 0.015  # clearly visible
    assert areas.max() < 0.08 and areas.mean() < 0.06  # a small part, not the object


def test_every_class_appears():
    ds = FineGrainedShapes(length=300, num_classes=8, seed=0)
    labels = {ds[i]["label"] for i in range(len(ds))}
    assert labels == set(range(8))
    assert len(set(ds.class_names)) == 8
    assert ds.class_attributes(4) == ("blue", "triangle")
    wide = FineGrainedShapes(length=5, num_classes=36)
    assert wide.num_colours == 6 and wide.num_shapes == 6
    assert len(set(wide.class_names)) == 36


def test_two_objects_have_different_classes_and_disjoint_masks():
    ds = FineGrainedShapes(length=60, seed=2, two_objects=True)
    for i in range(len(ds)):
        item = ds[i]
        first, second = item["labels"].tolist()
        assert item["num_objects"] == 2 and first == item["label"]
        assert first != second and 0 <= second < ds.num_classes
        masks = item["masks"]
        assert masks[0].any() and masks[1].any()
        assert not (masks[0] & masks[1]).any()
        assert torch.equal(masks[0], item["mask"][0])
    mixed = FineGrainedShapes(length=100, seed=2, two_objects=0.5)
    counts = [mixed[i]["num_objects"] for i in range(len(mixed))]
    assert 20 < counts.count(2) < 80


@pytest.mark.parametrize("workers", [0, 2])
def test_default_collate(workers):
    ds = FineGrainedShapes(length=24, seed=7, two_objects=0.5)
    batches = list(DataLoader(ds, batch_size=8, num_workers=workers))
    assert len(batches) == 3
    batch = batches[1]
    assert batch["image"].shape == (8, 3, 64, 64)
    assert batch["label"].shape == (8,) and batch["label"].dtype == torch.int64
    assert batch["mask"].shape == (8, 1, 64, 64)
    assert batch["masks"].shape == (8, 2, 64, 64) and batch["labels"].shape == (8, 2)
    assert torch.equal(batch["image"][3], ds[11]["image"])


def test_normalisation_constants_match_the_images():
    ds = FineGrainedShapes(length=200, seed=11)
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    mean = images.mean(dim=(0, 2, 3))
    std = images.transpose(0, 1).reshape(3, -1).std(dim=1)
    assert torch.allclose(mean, torch.tensor(SHAPES_MEAN), atol=0.02)
    assert torch.allclose(std, torch.tensor(SHAPES_STD), atol=0.02)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 37}, "num_classes"),
        ({"num_classes": 8.0}, "num_classes"),
        ({"image_size": 16}, "image_size"),
        ({"length": -1}, "length"),
        ({"seed": -3}, "seed"),
        ({"two_objects": 1.5}, "two_objects"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FineGrainedShapes(**kwargs)


def test_index_out_of_range():
    ds = FineGrainedShapes(length=3)
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(IndexError):
        ds[-4]
    assert len(FineGrainedShapes(length=0)) == 0
