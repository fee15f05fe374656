"""Image files on disk: class-per-folder scanning, decoding to uint8 CHW tensors, file-backed splits."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainlib.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"})


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def scan_classes(root: Path) -> dict[str, list[Path]]:
    """`root/<class>/<image>` -> {class: sorted image paths}; an empty class folder is an error."""
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    classes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in folder.iterdir() if is_image(p))
        if not images:
            raise DataError(f"class '{folder.name}' has no images in {folder} "
                            f"(image types: {', '.join(sorted(IMAGE_SUFFIXES))})")
        classes[folder.name] = images
    if not classes:
        raise DataError(f"{root} holds no class folders; expected {root}/<class>/<image>")
    return classes


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    with _open(path) as img:
        return img.height, img.width


def decode(path: Path, size: int = 0) -> torch.Tensor:
    """An RGB uint8 (3, H, W) tensor; resized to size x size when size > 0."""
    from PIL import Image

    with _open(path) as img:
        try:
            rgb = img.convert("RGB")
            if size and rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(rgb, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"cannot decode image {path}: {exc}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


@dataclass
class FileImages:
    """One split kept on disk: images are decoded when a sample is read (DataLoader path)."""

    paths: list[Path]
    labels: torch.Tensor
    image_shape: tuple[int, int, int]
    resize: int = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return decode(self.paths[i], self.resize), self.labels[i]


def decode_all(paths: list[Path], shape: tuple[int, int, int], resize: int) -> torch.Tensor:
    """Decode every image into one (N, C, H, W) uint8 tensor; all must share `shape`.

    Threads help: PIL releases the GIL while it decodes.
    """
    out = torch.empty((len(paths), *shape), dtype=torch.uint8)
    pool = ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1))
    try:
        for i, (path, img) in enumerate(zip(paths, pool.map(decode, paths, [resize] * len(paths)))):
            if img.shape != out.shape[1:]:
                raise DataError(different_sizes(path, img.shape, paths[0], shape))
            out[i] = img
    finally:
        pool.shutdown(cancel_futures=True)  # a bad file stops the rest at once
    return out


def verify(path: Path) -> tuple[int, int]:
    """Check a file's structure (PIL's verify: chunks and checksums, no decoding); returns (height, width)."""
    with _open(path) as img:
        try:
            img.verify()
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"corrupt image {path}: {exc}") from None
        return img.height, img.width


def check_files(paths: list[Path], shape: tuple[int, int, int] | None) -> None:
    """Every file must be a sound image; with `shape`, of that height and width."""
    for path in paths:
        size = verify(path)
        if shape is not None and size != shape[1:]:
            raise DataError(different_sizes(path, (3, *size), paths[0], shape))


def different_sizes(path: Path, got: tuple[int, ...], first: Path, want: tuple[int, ...]) -> str:
    return (f"image {path} is {got[1]}x{got[2]} but {first} is {want[1]}x{want[2]}; "
            f"set data.image_size to resize all images to one size")
