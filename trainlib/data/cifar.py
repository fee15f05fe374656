"""The CIFAR-10 python release (`cifar-10-python.tar.gz` or its `cifar-10-batches-py/` folder).

Each batch file is a pickled dict: b'data' (N x 3072 uint8, channel-major 32x32), b'labels',
b'filenames', b'batch_label'; `batches.meta` holds b'label_names'. Pickle is the format's
own encoding, so it is read with an unpickler that can only rebuild numpy arrays: a crafted
archive cannot run code.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import torch

from trainlib import entry_checks
from trainlib.data.datasets import DATASETS, PHOTO_TRANSFORMS, ImageSplits, TensorImages, dataset_root
from trainlib.data.safe_paths import unique_names
from trainlib.data.splits import split_per_class
from trainlib.errors import DataError
from trainlib.validation import Probability

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
META = "batches.meta"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
IMAGE_SHAPE = (3, 32, 32)

# (module, name) pairs the real files reference: numpy array and dtype reconstruction only.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses every global except numpy's array/dtype reconstruction."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        # pickles from numpy 1.x name numpy.core, which numpy 2 keeps only as a deprecated alias
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def unpickle(data: bytes, where: str) -> dict:
    try:
        obj = NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, OverflowError, MemoryError) as exc:
        raise DataError(f"{where} is not a CIFAR-10 python batch: {exc or type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where} is not a CIFAR-10 python batch: it holds a {type(obj).__name__}, not a dict")
    return obj


@dataclass
class CifarBatch:
    name: str
    images: np.ndarray  # (N, 3, 32, 32) uint8
    labels: np.ndarray  # (N,) int64


@dataclass
class CifarRelease:
    class_names: list[str]
    batches: list[CifarBatch]

    def join(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        chosen = [b for b in self.batches if b.name in names]
        return np.concatenate([b.images for b in chosen]), np.concatenate([b.labels for b in chosen])


def locate(root: Path) -> Path:
    """The archive file or the batches folder behind `root` (either, or a folder holding either)."""
    root = root.expanduser()
    if not root.exists():
        raise DataError(f"CIFAR-10 source not found: {root} (give {ARCHIVE} or its extracted {FOLDER}/)")
    if root.is_file():
        return root
    for candidate in (root / FOLDER, root / ARCHIVE):
        if candidate.exists():
            return candidate
    return root


def fingerprint(source: Path) -> str:
    """Names, sizes and mtimes of the files a read would use: changes when the source does."""
    files = [source] if source.is_file() else [source / n for n in (META, *TRAIN_BATCHES, *TEST_BATCHES)]
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat() if path.exists() else None
        digest.update(f"{path.name}:{stat and stat.st_size}:{stat and stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def _read_folder(folder: Path, names: list[str]) -> dict[str, bytes]:
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 batch file missing: {folder / missing[0]}")
    return {name: (folder / name).read_bytes() for name in names}


def _read_archive(archive: Path, names: list[str]) -> dict[str, bytes]:
    """One streaming pass over the .tar.gz (random access would decompress it again per member)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                name = Path(member.name).name
                if member.isfile() and name in names and name not in found:
                    found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"{archive} is not a readable CIFAR-10 archive (truncated or not a .tar.gz): {exc}") from None
    missing = [name for name in names if name not in found]
    if missing:
        raise DataError(f"CIFAR-10 archive {archive} has no {FOLDER}/{missing[0]}")
    return found


def read_release(root: Path, names: tuple[str, ...] = TRAIN_BATCHES + TEST_BATCHES) -> CifarRelease:
    """Read and check the label names and the given batches."""
    source = locate(root)
    wanted = [META, *names]
    raw = _read_archive(source, wanted) if source.is_file() else _read_folder(source, wanted)
    where = {name: f"{source}:{name}" for name in wanted}
    class_names = _class_names(unpickle(raw.pop(META), where[META]), where[META])
    batches = [_batch(name, unpickle(raw.pop(name), where[name]), len(class_names), where[name]) for name in names]
    return CifarRelease(class_names, batches)


def _class_names(meta: dict, where: str) -> list[str]:
    names = meta.get(b"label_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, bytes) for n in names):
        raise DataError(f"{where} has no b'label_names' list; is this the CIFAR-10 python release?")
    return unique_names([n.decode("utf-8", errors="replace") for n in names], f"{where}: b'label_names'")


def _batch(name: str, batch: dict, num_classes: int, where: str) -> CifarBatch:
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(f"{where} lacks b'data' (array) or b'labels'; is this the CIFAR-10 python release?")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        raise DataError(f"{where}: b'data' must be N x 3072 uint8 (32x32 RGB), got {data.shape} {data.dtype}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),):
        raise DataError(f"{where}: {len(labels)} labels for {len(data)} images")
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if len(bad):
        raise DataError(f"{where}: label {int(bad[0])} is outside the class range 0..{num_classes - 1}")
    return CifarBatch(name, data.reshape(-1, *IMAGE_SHAPE), labels)


def _needs_download(base: Path) -> bool:
    return not base.exists() or base.is_dir() and not any((base / n).exists() for n in (FOLDER, ARCHIVE, META))


def _download(root: Path) -> None:
    from torchvision.datasets import CIFAR10

    root.mkdir(parents=True, exist_ok=True)
    CIFAR10(str(root), train=True, download=True)


@DATASETS.register("cifar10", transforms=PHOTO_TRANSFORMS, check=entry_checks.cifar_valid_ratio)
def cifar10(*, root: str = "", download: bool = False, valid_ratio: Probability = 0.1, split_seed: int = 0) -> ImageSplits:
    """CIFAR-10 from the python archive or folder: official test_batch as test, valid split off train per class."""
    if download and root and _needs_download(Path(root).expanduser()):
        _download(Path(root).expanduser())
    release = read_release(dataset_root(root))
    train_images, train_labels = release.join(TRAIN_BATCHES)
    index = split_per_class(train_labels, [1 - valid_ratio, valid_ratio, 0.0], split_seed)
    test_images, test_labels = release.join(TEST_BATCHES)

    def take(images: np.ndarray, labels: np.ndarray, idx=slice(None)) -> TensorImages:
        return TensorImages(torch.from_numpy(images[idx]), torch.from_numpy(labels[idx]))

    return ImageSplits(take(train_images, train_labels, index["train"]),
                       take(train_images, train_labels, index["valid"]),
                       take(test_images, test_labels), release.class_names)
