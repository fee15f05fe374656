"""The report's own matplotlib charts (the sweep's curves and parameter pictures are launcher.sweep.pictures'):
parameter importance as bars, and one run's curves."""
from __future__ import annotations

from typing import IO, Sequence


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_importance(ranking: dict[str, float], metric: str, method: str, out: IO[bytes]) -> None:
    plt = _pyplot()
    keys = list(ranking)[::-1]  # the most important on top
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * len(keys)), layout="constrained")
    ax.barh(keys, [ranking[k] for k in keys], color="tab:blue")
    for y, key in enumerate(keys):
        ax.text(ranking[key], y, f" {ranking[key]:.2f}", va="center", fontsize=9)
    ax.set(xlim=(0, 1.1), xlabel=f"share of the variance of {metric} explained",
           title=f"parameter importance: {method}")
    ax.title.set_fontsize(9)
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)


def plot_run_curves(curves: Sequence, title: str, out: IO[bytes]) -> None:
    """`curves`: trainlib.diagnose.report.Curve objects; losses, accuracies and the lr in one panel each."""
    plt = _pyplot()
    panels = [("loss", [c for c in curves if c.name.endswith("loss")]),
              ("accuracy", [c for c in curves if c.name.endswith("/acc")]),
              ("lr", [c for c in curves if c.name == "lr"])]
    panels = [(name, found) for name, found in panels if found]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.8), squeeze=False,
                             layout="constrained")
    for ax, (name, found) in zip(axes.flat, panels):
        for c in found:
            ax.plot(range(1, len(c.values) + 1), c.values, marker=".", label=c.name)
        ax.set(xlabel="epoch", ylabel=name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
