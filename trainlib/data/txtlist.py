"""The seed's txt lists ("path label" per line, chapter 1.3) and the `txt` dataset that reads them.

A list is the user's own input and reading it writes nothing, so its paths may point anywhere
the user can read: the tutorial's lists hold `../../Data/train/...`, relative to where its
scripts run. A relative path is looked up in the list's folder first, then in the working
folder; an absolute one as it is. Only a file that cannot be read is refused, in one line
naming the first such line. (Archives keep their strict rules: see safe_paths.)"""
from __future__ import annotations

import os
from pathlib import Path

from trainlib.data.datasets import DATASETS, PHOTO_TRANSFORMS, ImageSplits, dataset_root
from trainlib.data.filesplits import FileList, load_file_splits
from trainlib.data.safe_paths import unique_names
from trainlib.data.splits import SPLITS
from trainlib.errors import DataError
from trainlib.validation import NonNegativeInt

CLASSES_FILE = "classes.txt"


def write_list(path: Path, entries: list[tuple[str, int]]) -> None:
    path.write_text("".join(f"{name} {label}\n" for name, label in entries))


def read_list(path: Path) -> tuple[FileList, list[int]]:
    """Parse a list (image paths found as the module says). Also returns line numbers."""
    if not path.is_file():
        raise DataError(f"txt list not found: {path}")
    files, lines = FileList([], []), []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{number}: expected 'path label', got {line.strip()!r}")
        files.paths.append(find_image(path, parts[0], number))
        files.labels.append(int(parts[1]))
        lines.append(number)
    return files, lines


def find_image(list_path: Path, image: str, number: int) -> Path:
    """The readable file a list line names: `image` as it is when absolute, else in the list's folder, else in
    the working folder."""
    written = Path(image).expanduser()
    candidates = [written] if written.is_absolute() else [list_path.parent / written, Path.cwd() / written]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.R_OK):
            return Path(os.path.normpath(candidate))
    where = "" if written.is_absolute() else (f" (a relative path is looked up in the list's folder "
                                               f"{list_path.parent}, then in the working folder {Path.cwd()})")
    raise DataError(f"{list_path}:{number}: image {image!r} not found or not readable{where}")


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a UTF-8 text file (byte {exc.start}: {exc.reason})") from None


def write_class_names(folder: Path, names: list[str]) -> None:
    (folder / CLASSES_FILE).write_text("".join(f"{name}\n" for name in names))


def read_class_names(folder: Path) -> list[str] | None:
    path = folder / CLASSES_FILE
    if not path.is_file():
        return None
    return unique_names([line.strip() for line in _lines(path) if line.strip()], str(path))


def check_labels(lists: dict[str, tuple[FileList, list[int]]], paths: dict[str, Path],
                 class_names: list[str]) -> None:
    """Every label must name a class, and every class needs training images."""
    count = len(class_names)
    for split, (files, lines) in lists.items():
        for label, number in zip(files.labels, lines):
            if not 0 <= label < count:
                raise DataError(f"{paths[split]}:{number}: label {label} is outside the class range 0..{count - 1}")
    missing = sorted(set(range(count)) - set(lists["train"][0].labels))
    if missing:
        raise DataError(f"class {missing[0]} ('{class_names[missing[0]]}') has no images in {paths['train']}")


@DATASETS.register("txt", transforms=PHOTO_TRANSFORMS)
def txt(*, root: str = "", train: str = "train.txt", valid: str = "valid.txt", test: str = "test.txt",
        image_size: NonNegativeInt = 0, max_memory_mb: NonNegativeInt = 2048) -> ImageSplits:
    """The seed's txt lists in root ('path label' lines); class names from root/classes.txt when present."""
    base = dataset_root(root)
    paths = {"train": base / train, "valid": base / valid, "test": base / test}
    lists = {split: read_list(paths[split]) for split in SPLITS}
    class_names = read_class_names(base) or [str(i) for i in range(max(lists["train"][0].labels, default=-1) + 1)]
    check_labels(lists, paths, class_names)
    return load_file_splits({split: files for split, (files, _) in lists.items()}, class_names, base,
                            image_size, max_memory_mb)
