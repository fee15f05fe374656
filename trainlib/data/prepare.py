"""`launch data`: turn a CIFAR-10 archive or a class-per-folder tree into the seed's layout
(chapter 1.1-1.5): DIR/{train,valid,test}/<class>/<image>, txt lists, classes.txt, stats.json.

Output is built in a hidden folder next to DIR and renamed into place at the end, with the
manifest written last: DIR either holds a complete result or does not exist. A complete
result made from the same source with the same settings is reused.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from trainlib.data import cifar
from trainlib.data.imagefiles import decode, scan_classes
from trainlib.data.splits import SPLITS, check_ratios, split_per_class
from trainlib.data.stats import ChannelMoments, write_stats
from trainlib.data.txtlist import write_class_names, write_list
from trainlib.errors import DataError

MANIFEST = "manifest.json"
FORMAT = "launch-data/1"

# writes one image at the given path and returns its pixels (uint8 CHW) for the statistics
ImageWriter = Callable[[Path], torch.Tensor]


@dataclass
class Item:
    split: str
    label: int
    name: str
    write: ImageWriter


@dataclass
class Prepared:
    out: Path
    classes: list[str]
    counts: dict[str, dict[str, int]]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    reused: bool = False
    lists: dict[str, Path] = field(default_factory=dict)


def export_cifar10(source: Path, out: Path, ratios: list[float], seed: int, *, force: bool = False,
                   progress: bool = True) -> Prepared:
    """PNGs per class from the CIFAR-10 python release, all six batches pooled and split per class."""
    check_ratios(ratios)
    located = cifar.locate(source)
    settings = {"command": "cifar10", "source": str(located.resolve()), "fingerprint": cifar.fingerprint(located),
                "ratios": ratios, "seed": seed}
    previous = reuse(out, settings, force)
    if previous:
        return previous
    release = cifar.read_release(located)
    images = np.concatenate([b.images for b in release.batches])
    labels = np.concatenate([b.labels for b in release.batches])
    names = [f"{b.name}_{i:05d}.png" for b in release.batches for i in range(len(b.labels))]
    index = split_per_class(labels, ratios, seed)
    items = [Item(split, int(labels[i]), names[i], _png_writer(images[i])) for split in SPLITS for i in index[split]]
    return build(out, settings, release.class_names, items, progress)


def split_folder(source: Path, out: Path, ratios: list[float], seed: int, *, force: bool = False,
                 progress: bool = True) -> Prepared:
    """Copy a class-per-folder tree into train/valid/test per class; every image is decoded to check it."""
    check_ratios(ratios)
    source, out = source.expanduser().resolve(), out.expanduser().resolve()
    if out == source or source in out.parents:
        raise DataError(f"--out {out} must not be inside the source folder {source}")
    tree = scan_classes(source)
    files = [p for paths in tree.values() for p in paths]
    labels = np.array([label for label, paths in enumerate(tree.values()) for _ in paths])
    settings = {"command": "split", "source": str(source), "fingerprint": _files_fingerprint(source, files),
                "ratios": ratios, "seed": seed}
    previous = reuse(out, settings, force)
    if previous:
        return previous
    index = split_per_class(labels, ratios, seed)
    items = [Item(split, int(labels[i]), files[i].name, _copy_writer(files[i])) for split in SPLITS for i in index[split]]
    return build(out, settings, list(tree), items, progress)


def folder_stats(root: Path, *, write: bool = True) -> Prepared:
    """Counts per split and class, and the train split's mean/std (root/stats.json) of a folder tree.

    `root` is either a train/valid/test tree or one class-per-folder tree (then all images count as train).
    """
    splits = [s for s in SPLITS if (root / s).is_dir()] if (root / "train").is_dir() else [""]
    trees = {split or "train": scan_classes(root / split) for split in splits}
    moments = ChannelMoments()
    images = [p for paths in trees["train"].values() for p in paths]
    for path in tqdm(images, desc="stats", unit="img", leave=False, disable=None):  # None: a bar on a terminal only
        moments.add(decode(path))
    mean, std = moments.mean_std()
    if write:
        write_stats(root, mean, std, sum(len(p) for p in trees["train"].values()))
    counts = {split: {c: len(paths) for c, paths in tree.items()} for split, tree in trees.items()}
    return Prepared(root, list(trees["train"]), counts, mean, std)


def reuse(out: Path, settings: dict, force: bool) -> Prepared | None:
    """The previous complete result made with these settings, unless forced; anything else in `out` is an error."""
    if force or not out.exists():
        return None
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("settings") != settings:
        raise DataError(f"{out} already exists and is not the output of this command with these settings; "
                        f"use --force to rebuild it")
    return Prepared(out, manifest["classes"], manifest["counts"], tuple(manifest["mean"]), tuple(manifest["std"]),
                    reused=True, lists=_lists(out))


def build(out: Path, settings: dict, classes: list[str], items: list[Item], progress: bool) -> Prepared:
    with staging(out) as tmp:
        result = write_tree(tmp, classes, items, progress)
        manifest = {"format": FORMAT, "settings": settings, "classes": classes, "counts": result.counts,
                    "mean": list(result.mean), "std": list(result.std)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    result.out, result.lists = out, _lists(out)
    return result


def write_tree(root: Path, classes: list[str], items: list[Item], progress: bool) -> Prepared:
    """Write every image under root/<split>/<class>/, then the txt lists, classes.txt and stats.json."""
    for folder in {(item.split, classes[item.label]) for item in items}:
        (root.joinpath(*folder)).mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[tuple[str, int]]] = {split: [] for split in SPLITS}
    moments = ChannelMoments()
    for item in tqdm(items, desc="writing images", unit="img", disable=None if progress else True):
        relative = f"{item.split}/{classes[item.label]}/{item.name}"
        pixels = item.write(root / relative)
        if item.split == "train":
            moments.add(pixels)
        lists[item.split].append((relative, item.label))
    for split, entries in lists.items():
        write_list(root / f"{split}.txt", entries)
    write_class_names(root, classes)
    mean, std = moments.mean_std()
    write_stats(root, mean, std, len(lists["train"]))
    counts = {split: {name: sum(1 for _, label in lists[split] if label == i) for i, name in enumerate(classes)}
              for split in SPLITS}
    return Prepared(root, classes, counts, mean, std)


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A hidden folder next to `out` that replaces it on success and vanishes on any failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        yield tmp
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _lists(out: Path) -> dict[str, Path]:
    return {split: out / f"{split}.txt" for split in SPLITS}


def _png_writer(chw: np.ndarray) -> ImageWriter:
    def write(path: Path) -> torch.Tensor:
        from PIL import Image

        Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0))).save(path)
        return torch.from_numpy(chw)
    return write


def _copy_writer(source: Path) -> ImageWriter:
    def write(path: Path) -> torch.Tensor:
        pixels = decode(source)
        shutil.copy2(source, path)
        return pixels
    return write


def _files_fingerprint(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]
