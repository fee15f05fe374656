"""The model graph (add_graph), traced once at the start of the run."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import Toggle, VISUALS
from trainlib.visuals.images import eval_mode, fixed_samples


class Graph(Observer):
    def on_fit_start(self, ctx: FitContext) -> None:
        x = fixed_samples(ctx.loaders["valid"], 1)[0].to(ctx.device)
        try:
            with eval_mode(ctx.model), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notice
                # check_trace=False: the check imports sympy & co (~2 s); tracing a traced module is a no-op
                traced = torch.jit.trace(ctx.model, x, check_trace=False)
                ctx.writer.add_graph(traced, x)
        except RuntimeError as exc:
            ctx.echo(f"note: the model graph is not in TensorBoard: tracing failed ({str(exc).splitlines()[0]})")


@VISUALS.register("graph")
def graph(item: Toggle, model: nn.Module, sample: torch.Tensor) -> Observer:
    return Graph()
