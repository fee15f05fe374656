"""The `folder` dataset: class-per-folder images in root/{train,valid,test}/<class>/."""
from __future__ import annotations

from pathlib import Path

from trainlib.data.datasets import DATASETS, PHOTO_TRANSFORMS, ImageSplits, dataset_root
from trainlib.data.filesplits import FileList, load_file_splits
from trainlib.data.imagefiles import scan_classes
from trainlib.data.splits import SPLITS
from trainlib.data.txtlist import read_class_names
from trainlib.errors import DataError
from trainlib.validation import NonNegativeInt


def read_tree(root: Path) -> tuple[dict[str, FileList], list[str]]:
    """root/{train,valid,test}/<class>/<image> -> file lists.

    Classes are listed in root/classes.txt when present (so labels match the txt lists
    `launch data` writes next to the tree), else they are train's folders, sorted.
    """
    trees = {name: scan_classes(root / name) for name in SPLITS}
    class_names = read_class_names(root) or list(trees["train"])
    index = {name: i for i, name in enumerate(class_names)}
    for split in SPLITS:
        unknown = sorted(set(trees[split]) - set(index))
        if unknown:
            raise DataError(f"{root / split / unknown[0]} is not one of the classes "
                            f"({', '.join(class_names)})")
    empty = [name for name in class_names if name not in trees["train"]]
    if empty:
        raise DataError(f"class '{empty[0]}' has no images in {root / 'train'}")
    lists = {split: FileList([p for paths in tree.values() for p in paths],
                             [index[c] for c, paths in tree.items() for _ in paths])
             for split, tree in trees.items()}
    return lists, class_names


@DATASETS.register("folder", transforms=PHOTO_TRANSFORMS)
def folder(*, root: str = "", image_size: NonNegativeInt = 0, max_memory_mb: NonNegativeInt = 2048) -> ImageSplits:
    """Images in root/{train,valid,test}/<class>/ (as `launch data` writes them); root/stats.json when present."""
    base = dataset_root(root)
    lists, class_names = read_tree(base)
    return load_file_splits(lists, class_names, base, image_size, max_memory_mb)
