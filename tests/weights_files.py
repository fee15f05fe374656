"""Weight files that must be refused: code payloads, truncated and non-state-dict files."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from trainlib.models import Net


class CodePayload:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_bad_file(kind: str, path: Path, marker: Path) -> None:
    if kind == "code payload (torch.save)":
        torch.save({"conv1.weight": torch.zeros(1), "evil": CodePayload(marker)}, path)
    elif kind == "code payload (raw pickle)":
        path.write_bytes(pickle.dumps(CodePayload(marker)))
    elif kind == "truncated":
        torch.save(Net(10, 3).state_dict(), path)
        path.write_bytes(path.read_bytes()[:2000])
    elif kind == "not a state dict":
        torch.save([1, 2, 3], path)
    elif kind == "text file":
        path.write_text("conv1.weight: 1\n")


BAD_FILES = ("code payload (torch.save)", "code payload (raw pickle)", "truncated", "not a state dict", "text file")
