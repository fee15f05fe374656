"""Every registered dataset builds; folder and txt datasets read what `launch data` writes and
reject bad data with one clear line naming the culprit."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tests.data_files import write_class_tree

from trainlib.data import DATASETS, list_datasets
from trainlib.data.datasets import build_dataset
from trainlib.data.imagefiles import FileImages
from trainlib.data.txtlist import read_list
from trainlib.data.stats import channel_stats
from trainlib.errors import ConfigError, DataError

CLASSES = {"cat": 6, "dog": 6, "owl": 6}


@pytest.fixture
def image_tree(tmp_path) -> Path:
    """root/{train,valid,test}/<class>/*.png: 6, 2 and 2 images per class, 16x16."""
    root = tmp_path / "tree"
    for split, per_class in (("train", 6), ("valid", 2), ("test", 2)):
        write_class_tree(root / split, {name: per_class for name in CLASSES}, seed=len(split))
    return root


def write_lists(root: Path) -> None:
    """The seed's txt lists for a tree, with paths relative to root and classes.txt."""
    names = sorted(CLASSES)
    for split in ("train", "valid", "test"):
        lines = [f"{p.relative_to(root)} {names.index(p.parent.name)}" for p in sorted((root / split).rglob("*.png"))]
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(names) + "\n")


def spec(name: str, **params) -> dict:
    return {"name": name, **DATASETS.validate(name, params)}


def cases(image_tree: Path, cifar_archive: Path) -> dict[str, dict]:
    write_lists(image_tree)
    return {
        "digits": spec("digits"),
        "cifar10": spec("cifar10", root=str(cifar_archive)),
        "folder": spec("folder", root=str(image_tree)),
        "txt": spec("txt", root=str(image_tree)),
        "fake": spec("fake", num_samples=200, num_classes=4, image_size=16),
    }


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_builds_three_nonempty_uint8_splits(name, image_tree, cifar_archive):
    data = build_dataset(cases(image_tree, cifar_archive)[name])
    for split in ("train", "valid", "test"):
        part = data.split(split)
        image, label = part[0]
        assert len(part) > 0 and image.dtype == torch.uint8 and image.shape == data.train.image_shape
        assert 0 <= int(label) < data.num_classes
    assert data.in_channels == 3 and len(data.mean) == 3 and min(data.std) > 0
    assert set(torch.unique(data.train.labels).tolist()) == set(range(data.num_classes))


def test_folder_and_txt_read_the_same_images_and_labels(image_tree):
    write_lists(image_tree)
    folder = build_dataset(spec("folder", root=str(image_tree)))
    txt = build_dataset(spec("txt", root=str(image_tree)))
    assert folder.class_names == txt.class_names == sorted(CLASSES)
    for split in ("train", "valid", "test"):
        f, t = folder.split(split), txt.split(split)
        order_f, order_t = torch.argsort(f.labels, stable=True), torch.argsort(t.labels, stable=True)
        assert torch.equal(f.labels[order_f], t.labels[order_t])
        assert torch.equal(f.images.sum(dim=(1, 2, 3)).sort().values, t.images.sum(dim=(1, 2, 3)).sort().values)
    assert folder.mean == pytest.approx(channel_stats(folder.train.images)[0])


def test_too_big_for_memory_stays_on_disk_with_the_same_pixels_and_stats(image_tree):
    in_memory = build_dataset(spec("folder", root=str(image_tree)))
    on_disk = build_dataset(spec("folder", root=str(image_tree), max_memory_mb=0))
    assert in_memory.in_memory and not on_disk.in_memory and isinstance(on_disk.train, FileImages)
    assert torch.equal(on_disk.train[4][0], in_memory.train.images[4])
    assert on_disk.mean == pytest.approx(in_memory.mean) and on_disk.std == pytest.approx(in_memory.std)


def test_stats_json_sets_the_normalization(image_tree):
    (image_tree / "stats.json").write_text(json.dumps({"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}))
    data = build_dataset(spec("folder", root=str(image_tree)))
    assert data.mean == (0.1, 0.2, 0.3) and data.std == (0.4, 0.5, 0.6)


def test_image_size_resizes_mixed_sizes(image_tree):
    write_class_tree(image_tree / "extra", {"cat": 1}, size=24)
    shutil.move(image_tree / "extra" / "cat" / "000.png", image_tree / "train" / "cat" / "big.png")
    with pytest.raises(DataError, match=r"big.png is 24x24 but .* is 16x16; set data.image_size"):
        build_dataset(spec("folder", root=str(image_tree)))
    data = build_dataset(spec("folder", root=str(image_tree), image_size=12))
    assert data.train.image_shape == (3, 12, 12)


def corrupt_image(root: Path) -> str:
    path = root / "valid" / "dog" / "001.png"
    path.write_bytes(path.read_bytes()[:-200])
    return "001.png"


def empty_class(root: Path) -> str:
    for path in (root / "train" / "owl").iterdir():
        path.unlink()
    return "class 'owl' has no images"


def unknown_class(root: Path) -> str:
    shutil.copytree(root / "test" / "dog", root / "test" / "eel")
    return "eel is not one of the classes"


def empty_split(root: Path) -> str:
    shutil.rmtree(root / "test")
    return "image folder not found: .*test"


@pytest.mark.parametrize("breaks", [corrupt_image, empty_class, unknown_class, empty_split])
@pytest.mark.parametrize("max_memory_mb", [2048, 0])
def test_bad_folder_data_is_one_clear_data_error(breaks, max_memory_mb, image_tree):
    message = breaks(image_tree)
    with pytest.raises(DataError, match=message) as info:
        build_dataset(spec("folder", root=str(image_tree), max_memory_mb=max_memory_mb))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("line, message", [
    ("train/cat/000.png 3", r"train.txt:\d+: label 3 is outside the class range 0..2"),
    ("train/cat/000.png -1", "label -1 is outside"),
    ("train/cat/000.png", r"train.txt:\d+: expected 'path label'"),
    ("train/cat/missing.png 0", r"train.txt:\d+: image 'train/cat/missing.png' not found or not readable \(a relative "
                                r"path is looked up in the list's folder .*, then in the working folder .*\)$"),
])
def test_bad_txt_lines_name_the_file_and_line(line, message, image_tree):
    write_lists(image_tree)
    with open(image_tree / "train.txt", "a") as fh:
        fh.write(line + "\n")
    with pytest.raises(DataError, match=message):
        build_dataset(spec("txt", root=str(image_tree)))


def test_the_tutorials_lists_relative_to_the_working_folder_read_the_same_images(tmp_path, image_tree, monkeypatch):
    """The tutorial's lists say `../../Data/train/...`: relative to its scripts' folder, not the list's."""
    data = tmp_path / "Data"
    shutil.copytree(image_tree, data)
    scripts = tmp_path / "Code" / "1_data_prepare"
    scripts.mkdir(parents=True)
    names = sorted(CLASSES)
    for split in ("train", "valid", "test"):
        lines = [f"../../Data/{p.relative_to(data)} {names.index(p.parent.name)}"
                 for p in sorted((data / split).rglob("*.png"))]
        (data / f"{split}.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(scripts)
    txt = build_dataset(spec("txt", root=str(data)))
    folder = build_dataset(spec("folder", root=str(image_tree)))
    for split in ("train", "valid", "test"):
        assert torch.equal(txt.split(split).images, folder.split(split).images)
        assert torch.equal(txt.split(split).labels, folder.split(split).labels)


def test_a_list_path_is_looked_up_in_the_lists_folder_first_then_the_working_folder(tmp_path, monkeypatch):
    lists, work = tmp_path / "lists", tmp_path / "work"
    for folder in (lists, work):
        (folder / "img").mkdir(parents=True)
        (folder / "img" / "both.png").write_bytes(b"")
    (work / "img" / "work_only.png").write_bytes(b"")
    absolute = tmp_path / "elsewhere.png"
    absolute.write_bytes(b"")
    (lists / "l.txt").write_text(f"img/both.png 0\nimg/work_only.png 1\n{absolute} 0\nimg/a.png 0\nimg/b.png 0\n")
    monkeypatch.chdir(work)
    with pytest.raises(DataError) as info:
        read_list(lists / "l.txt")
    assert str(info.value).startswith(f"{lists / 'l.txt'}:4: image 'img/a.png' not found")  # the first missing one
    (lists / "l.txt").write_text("\n".join((lists / "l.txt").read_text().splitlines()[:3]) + "\n")
    assert read_list(lists / "l.txt")[0].paths == [lists / "img" / "both.png", work / "img" / "work_only.png", absolute]


def test_a_class_without_train_images_in_txt_lists(image_tree):
    write_lists(image_tree)
    lines = (image_tree / "train.txt").read_text().splitlines()
    (image_tree / "train.txt").write_text("\n".join(l for l in lines if not l.endswith(" 2")) + "\n")
    with pytest.raises(DataError, match=r"class 2 \('owl'\) has no images"):
        build_dataset(spec("txt", root=str(image_tree)))


@pytest.mark.parametrize("name, params", [("folder", {}), ("txt", {"root": "/no/such/dir"}),
                                          ("cifar10", {"root": "/no/such.tar.gz"})])
def test_a_missing_root_is_a_data_error_when_built(name, params):
    with pytest.raises(DataError, match="set data.root|does not exist"):
        build_dataset(spec(name, **params))


@pytest.mark.parametrize("name, params, message", [
    ("cifar10", {"root": "x", "valid_ratio": 1.5}, "valid_ratio"),
    ("cifar10", {"root": "x", "valid_ratio": 0}, "valid_ratio must be strictly between 0 and 1"),
    ("folder", {"root": ".", "max_memory_mb": -1}, "max_memory_mb"),
    ("fake", {"num_samples": 5}, "num_samples must be at least"),
])
def test_bad_dataset_params_are_config_errors(name, params, message):
    with pytest.raises(ConfigError, match=message):
        DATASETS.validate(name, params, "data")


def test_digits_are_scikit_learns_without_importing_it():
    """The digits come from the file scikit-learn ships, read as its load_digits() reads it, in a
    process that never imports scikit-learn (its import was most of a default run's data time)."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from trainlib.data.datasets import digits_arrays

    pixels, target = digits_arrays()
    bunch = load_digits()
    assert (pixels == bunch.data).all() and (target == bunch.target).all() and target.dtype == bunch.target.dtype
    code = ("import sys; from trainlib.data.datasets import build_dataset; build_dataset({'name': 'digits'}); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
