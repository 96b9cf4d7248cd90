"""Datasets: real-image loaders (zip archives, folders) and the synthetic benchmark."""

from captum_akd.data.cifar_zip import CifarZip
from captum_akd.data.image_folder import DOG_CLASSES, ImageFolderDataset, imagenet_sample
from captum_akd.data.shapes import SHAPES_MEAN, SHAPES_STD, FineGrainedShapes

__all__ = [
    "DOG_CLASSES",
    "SHAPES_MEAN",
    "SHAPES_STD",
    "CifarZip",
    "FineGrainedShapes",
    "ImageFolderDataset",
    "imagenet_sample",
]
