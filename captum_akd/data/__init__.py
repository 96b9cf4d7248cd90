"""Datasets: real-image loaders (zip archives, folders) and the synthetic benchmark."""

from captum_akd.data.cifar_zip import CifarZip
from captum_akd.data.image_folder import DOG_CLASSES, ImageFolderDataset, imagenet_sample

__all__ = ["DOG_CLASSES", "CifarZip", "ImageFolderDataset", "imagenet_sample"]
