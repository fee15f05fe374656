"""Run setup: the standard tags take the command line from the caller, never from sys.argv."""
from __future__ import annotations

import sys

import torch

from trainlib import tags as tag
from trainlib.config import resolve
from trainlib.startup import run_tags


def test_the_command_tag_is_what_the_launcher_passed(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ray::worker", "--not-the-command"])
    cfg = resolve([{"seed": 3, "finetune": {"source": "runs/x/checkpoints/best.pt"}}])
    tags = run_tags(cfg, torch.device("cpu"), "launch train --epochs 2")
    assert tags[tag.COMMAND] == "launch train --epochs 2"
    assert tags[tag.SEED] == "3" and tags[tag.DEVICE] == "cpu" and tags[tag.FINETUNE_SOURCE].endswith("best.pt")
    assert tag.COMMAND not in run_tags(cfg, torch.device("cpu"))  # a library caller that passes none gets none
