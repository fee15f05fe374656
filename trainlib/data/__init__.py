"""Datasets (registry), per-class splitting and loaders.

Importing the package registers every dataset: digits (in datasets.py), cifar10, folder, txt, fake.
"""
from trainlib.data.datasets import DATASETS, ImageSplits, TensorImages, build_dataset, list_datasets
from trainlib.data import cifar, folder, synthetic, txtlist  # noqa: F401  (registers datasets)

__all__ = ["DATASETS", "ImageSplits", "TensorImages", "build_dataset", "list_datasets"]
