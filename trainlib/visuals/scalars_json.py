"""Every scalar of the run in `scalars.json` (tensorboardX's export_scalars_to_json), also an MLflow
artifact, written at the end: the curves as data, for a notebook or another tool.

Format (tensorboardX's): {tag: [[wall time, epoch, value], ...]}. tensorboardX keeps only
`add_scalars` values for the export; the TensorBoard tracker adds its `add_scalar` values too.
A resumed run adds its epochs to the file the first part wrote (the epochs it redoes replaced).
"""
from __future__ import annotations

import json

import torch
from torch import nn

from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import Toggle, VISUALS

FILE = "scalars.json"


class ScalarsJson(Observer):
    def on_fit_start(self, ctx: FitContext) -> None:
        self.ctx = ctx

    def on_fit_end(self, epoch: int, final: dict[str, float]) -> None:
        path = self.ctx.run_dir / FILE
        earlier = json.loads(path.read_text()) if path.exists() else {}
        self.ctx.writer.export_scalars_to_json(str(path))
        if earlier:
            path.write_text(json.dumps(merged(earlier, json.loads(path.read_text()))))
        self.ctx.tracker.log_artifact(path)


def merged(earlier: dict[str, list], later: dict[str, list]) -> dict[str, list]:
    """Each tag's earlier points before its first later step, then the later points."""
    out = {}
    for tag in {**earlier, **later}:
        new = later.get(tag, [])
        start = min((step for _, step, _ in new), default=float("inf"))
        out[tag] = [p for p in earlier.get(tag, []) if p[1] < start] + new
    return out


@VISUALS.register("scalars_json")
def scalars_json(item: Toggle, model: nn.Module, sample: torch.Tensor) -> Observer:
    return ScalarsJson()
