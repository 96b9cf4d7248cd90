"""Shared pieces of the distillation tests (no tests here).

A tiny synthetic task: 16 x 16 images of noise with one 5 x 5 square whose
colour (of four) is the class, and a fixed black box that scores each colour by
template matching and global max pooling. A depth-8 CIFAR ResNet student
learns it in a few seconds on one core.
"""

from __future__ import annotations

import os
import sys

import torch
from torch.utils.data import TensorDataset

from captum_akd.models import cifar_resnet_student

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

COLOURS = torch.tensor(
    [[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0]]
)
NUM_CLASSES = 4
SIZE = 16
SQUARE = 5


def make_images(n: int, seed: int = 0, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor,
                                                                    torch.Tensor]:
    """``(images N x 3 x S x S, labels N, masks N x 1 x S x S)`` of the square task."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, size, size, generator=g) * 0.3
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    masks = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        r, c = torch.randint(0, size - SQUARE + 1, (2,), generator=g).tolist()
        noise = 0.2 * torch.randn(3, SQUARE, SQUARE, generator=g)
        images[i, :, r : r + SQUARE, c : c + SQUARE] = COLOURS[labels[i]][:, None, None] + noise
        masks[i, :, r : r + SQUARE, c : c + SQUARE] = True
    return images, labels, masks


def make_dataset(n: int, seed: int = 0, labels: bool = True) -> TensorDataset:
    images, y, _ = make_images(n, seed)
    return TensorDataset(images, y) if labels else TensorDataset(images)


def square_target(images: torch.Tensor) -> torch.Tensor:
    """The black box: a plain function holding no parameters."""
    scores = torch.einsum("kc,nchw->nkhw", COLOURS.to(images.device), images)
    return 3.0 * scores.flatten(2).amax(2)


def tiny_student(seed: int = 0, num_classes: int = NUM_CLASSES):
    torch.manual_seed(seed)
    return cifar_resnet_student(depth=8, num_classes=num_classes)


def subprocess_env() -> dict[str, str]:
    """Environment for a child Python that imports captum_akd and these helpers."""
    env = dict(os.environ)
    paths = [REPO_ROOT, TESTS_DIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["OMP_NUM_THREADS"] = "1"
    env.pop("WORLD_SIZE", None)
    return env


PYTHON = sys.executable
