"""Datasets (registry), per-class splitting and loaders."""
from trainlib.data.datasets import DATASETS, ImageSplits, TensorImages, build_dataset, list_datasets

__all__ = ["DATASETS", "ImageSplits", "TensorImages", "build_dataset", "list_datasets"]
