"""The seed's txt lists ("path label" per line, chapter 1.3) and the `txt` dataset that reads them."""
from __future__ import annotations

from pathlib import Path

from trainlib.data.datasets import DATASETS, PHOTO_TRANSFORMS, ImageSplits, dataset_root
from trainlib.data.filesplits import FileList, load_file_splits
from trainlib.data.splits import SPLITS
from trainlib.errors import DataError
from trainlib.validation import NonNegativeInt

CLASSES_FILE = "classes.txt"


def write_list(path: Path, entries: list[tuple[str, int]]) -> None:
    path.write_text("".join(f"{name} {label}\n" for name, label in entries))


def read_list(path: Path) -> tuple[FileList, list[int]]:
    """Parse a list; relative image paths are taken from the list's folder. Also returns line numbers."""
    if not path.is_file():
        raise DataError(f"txt list not found: {path}")
    files, lines = FileList([], []), []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{path}:{number}: expected 'path label', got {line.strip()!r}")
        files.paths.append(path.parent / Path(parts[0]).expanduser())
        files.labels.append(int(parts[1]))
        lines.append(number)
    return files, lines


def write_class_names(folder: Path, names: list[str]) -> None:
    (folder / CLASSES_FILE).write_text("".join(f"{name}\n" for name in names))


def read_class_names(folder: Path) -> list[str] | None:
    path = folder / CLASSES_FILE
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


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
