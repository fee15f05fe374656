"""Test data written in real formats: the CIFAR-10 python release and class-per-folder PNG trees."""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_PER_CLASS_PER_BATCH = 2  # x 5 batches = 10 train images per class
TEST_PER_CLASS = 2


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle did for the CIFAR-10 release: protocol 2, byte strings as
    py2 `str` opcodes, numpy arrays via numpy.core.multiarray._reconstruct."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None) -> None:
        if getattr(obj, "__name__", "") == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj, path: Path) -> None:
    with open(path, "wb") as fh:
        Py2Pickler(fh, protocol=2).dump(obj)


def cifar_batch(label: str, labels: list[int], rng: np.random.Generator) -> dict:
    """Images whose mean brightness grows with the class, so a model can learn something."""
    labels_arr = np.array(labels)
    base = (labels_arr[:, None] * 20 + 30).astype(np.int64)
    data = np.clip(base + rng.integers(-30, 30, (len(labels), 3072)), 0, 255).astype(np.uint8)
    return {b"batch_label": label.encode(), b"labels": list(labels), b"data": data,
            b"filenames": [f"img_{label.replace(' ', '_')}_{i}.png".encode() for i in range(len(labels))]}


def write_cifar_release(folder: Path, seed: int = 0) -> Path:
    """folder/cifar-10-batches-py with 5 train batches and a test batch, 10 classes."""
    rng = np.random.default_rng(seed)
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    py2_pickle({b"num_cases_per_batch": 20, b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_vis": 3072},
               batches / "batches.meta")
    for i in range(1, 6):
        labels = [c for c in range(10) for _ in range(TRAIN_PER_CLASS_PER_BATCH)]
        py2_pickle(cifar_batch(f"training batch {i} of 5", rng.permutation(labels).tolist(), rng),
                   batches / f"data_batch_{i}")
    py2_pickle(cifar_batch("testing batch 1 of 1", [c for c in range(10) for _ in range(TEST_PER_CLASS)], rng),
               batches / "test_batch")
    (batches / "readme.html").write_text("<html>CIFAR-10</html>\n")
    return batches


def write_class_tree(root: Path, classes: dict[str, int], size: int = 16, seed: int = 0) -> Path:
    """root/<class>/<i>.png with the given number of images per class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = np.clip(label * 40 + rng.integers(0, 60, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root
