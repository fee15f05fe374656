"""Reading the CIFAR-10 python release: both forms, the safe unpickler, and every bad-input case."""
from __future__ import annotations

import io
import os
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.data_files import CIFAR_CLASSES, TEST_PER_CLASS, TRAIN_PER_CLASS_PER_BATCH, py2_pickle

from trainlib.data.cifar import NumpyOnlyUnpickler, read_release
from trainlib.data.datasets import build_dataset
from trainlib.errors import DataError

TRAIN_PER_CLASS = 5 * TRAIN_PER_CLASS_PER_BATCH


def test_archive_and_folder_give_the_same_release(cifar_release, cifar_archive):
    from_folder = read_release(cifar_release)
    from_parent = read_release(cifar_release.parent)  # a folder holding cifar-10-batches-py/
    from_archive = read_release(cifar_archive)
    assert from_folder.class_names == CIFAR_CLASSES
    for other in (from_parent, from_archive):
        assert [b.name for b in other.batches] == [b.name for b in from_folder.batches]
        for a, b in zip(from_folder.batches, other.batches):
            assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)


def test_pixels_are_channel_major_rows(cifar_release):
    raw = pickle.load(open(cifar_release / "data_batch_1", "rb"), encoding="bytes")
    batch = read_release(cifar_release).batches[0]
    assert batch.images.shape == (len(raw[b"labels"]), 3, 32, 32)
    assert np.array_equal(batch.images[0, 1, 2], raw[b"data"][0, 1024 + 2 * 32: 1024 + 3 * 32])


def test_cifar10_dataset_uses_test_batch_and_splits_valid_off_train(cifar_archive):
    data = build_dataset({"name": "cifar10", "root": str(cifar_archive), "download": False,
                          "valid_ratio": 0.2, "split_seed": 0})
    assert data.class_names == CIFAR_CLASSES and data.in_memory
    assert data.train.images.shape[1:] == (3, 32, 32) and data.train.images.dtype == torch.uint8
    for split, per_class in (("train", TRAIN_PER_CLASS * 0.8), ("valid", TRAIN_PER_CLASS * 0.2),
                             ("test", TEST_PER_CLASS)):
        counts = torch.bincount(data.split(split).labels, minlength=10)
        assert counts.tolist() == [per_class] * 10, split
    test_batch = read_release(cifar_archive, ("test_batch",)).batches[0]
    assert torch.equal(data.test.images, torch.from_numpy(test_batch.images))


class RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({b"data": RunsCode(str(marker))}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    assert not marker.exists()


def _copy(cifar_release: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(cifar_release, tmp_path / "cifar-10-batches-py"))


def _truncated_archive(release, archive, tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    return path


def _not_an_archive(release, archive, tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"this is not a tar file" * 100)
    return path


def _other_archive(release, archive, tmp_path):
    path = tmp_path / "photos.tar.gz"
    (tmp_path / "a.txt").write_text("hello")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tmp_path / "a.txt", arcname="photos/a.txt")
    return path


def _missing_batch(release, archive, tmp_path):
    folder = _copy(release, tmp_path)
    (folder / "data_batch_3").unlink()
    return folder


def _wrong_shape(release, archive, tmp_path):
    folder = _copy(release, tmp_path)
    batch = pickle.load(open(folder / "data_batch_2", "rb"), encoding="bytes")
    batch[b"data"] = batch[b"data"][:, :1024]
    py2_pickle(batch, folder / "data_batch_2")
    return folder


def _label_out_of_range(release, archive, tmp_path):
    folder = _copy(release, tmp_path)
    batch = pickle.load(open(folder / "test_batch", "rb"), encoding="bytes")
    batch[b"labels"][3] = 10
    py2_pickle(batch, folder / "test_batch")
    return folder


def _code_in_batch(release, archive, tmp_path):
    folder = _copy(release, tmp_path)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": RunsCode(str(tmp_path / "pwned"))}, protocol=2))
    return folder


def _no_label_names(release, archive, tmp_path):
    folder = _copy(release, tmp_path)
    py2_pickle({b"num_vis": 3072}, folder / "batches.meta")
    return folder


BAD_SOURCES = {
    "truncated archive": (_truncated_archive, "truncated or not a .tar.gz"),
    "not an archive": (_not_an_archive, "truncated or not a .tar.gz"),
    "non-CIFAR archive": (_other_archive, "has no cifar-10-batches-py/batches.meta"),
    "missing batch file": (_missing_batch, "batch file missing: .*data_batch_3"),
    "wrong array shape": (_wrong_shape, r"data_batch_2: b'data' must be N x 3072 uint8"),
    "label outside class range": (_label_out_of_range, r"test_batch: label 10 is outside the class range 0..9"),
    "code in a batch": (_code_in_batch, "data_batch_1 is not a CIFAR-10 python batch: refusing to load"),
    "no label names": (_no_label_names, "no b'label_names'"),
}


@pytest.fixture(params=sorted(BAD_SOURCES))
def bad_source(request, cifar_release, cifar_archive, tmp_path):
    make, message = BAD_SOURCES[request.param]
    return make(cifar_release, cifar_archive, tmp_path), message


def test_bad_sources_raise_one_clear_data_error(bad_source, tmp_path):
    source, message = bad_source
    with pytest.raises(DataError, match=message) as info:
        read_release(source)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "pwned").exists()
