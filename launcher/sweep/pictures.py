"""The sweep's pictures on its parent run: the objective per epoch and each trial's best
(comparison.png), and the objective against each swept hyperparameter (parameters.png, one
scatter per space key); trials labelled by what differs between them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Mapping

from launcher.sweep.tracking import TrialRow, ranked

if TYPE_CHECKING:
    from launcher.sweep.loading import Sweep

LOG_KINDS = ("loguniform", "qloguniform", "lograndint")
STATUS_COLORS = {"FINISHED": "tab:green", "KILLED": "tab:orange", "FAILED": "tab:red"}
STATUS_NAMES = {"FINISHED": "finished", "KILLED": "stopped early", "FAILED": "failed"}
STATUS_WORDS = ", ".join(f"{STATUS_COLORS[s].removeprefix('tab:')} {name}" for s, name in STATUS_NAMES.items())


@dataclass(frozen=True)
class Objective:
    """What the pictures need of a sweep: its metric, its mode and its space's keys with their distribution kinds."""

    metric: str
    mode: str
    kinds: Mapping[str, str]  # space key -> distribution kind (loguniform, choice, ...), in space order

    @classmethod
    def of(cls, sweep: Sweep) -> Objective:
        return cls(sweep.metric, sweep.mode, {k: d.kind for k, d in sweep.file.space.items()})


def trial_labels(rows: list[TrialRow], keys: list[str]) -> dict[str, str]:
    """Trial name -> what sets it apart, e.g. `rmsprop lr=8e-4 momentum=0.91 plateau`: the values of the
    space keys that differ between the trials (family names bare, the rest key=value), in space order."""
    varying = varying_keys(rows, keys)
    short = {k: k.rsplit(".", 1)[-1] for k in varying}
    clashes = {s for s in short.values() if list(short.values()).count(s) > 1}
    short = {k: (k if s in clashes else s) for k, s in short.items()}
    labels = {}
    for r in rows:
        parts = [value_text(r.params[k]) if k.endswith(".name") else f"{short[k]}={value_text(r.params[k])}"
                 for k in varying if k in r.params]
        labels[r.trial] = " ".join(parts) or r.trial
    repeated = [text for text in labels.values() if list(labels.values()).count(text) > 1]
    return {trial: f"{text} ({trial})" if text in repeated else text for trial, text in labels.items()}


def varying_keys(rows: list[TrialRow], keys: list[str]) -> list[str]:
    """The space keys whose values differ between the trials, in space order."""
    return [k for k in keys if len({repr(r.params.get(k)) for r in rows}) > 1]


def value_text(value: Any) -> str:
    """0.0008123 -> 8.1e-4, 0.05 -> 0.05, 'adam' -> adam."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value == 0 or 1e-2 <= abs(value) < 1e4:
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def plot_comparison(rows: list[TrialRow], objective: Objective, path: Path | IO[bytes]) -> None:
    """Each trial's objective per epoch (a stopped trial ends in an x where it stopped) and its best, as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    labels = trial_labels(rows, list(objective.kinds))
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(16, max(4.5, 1.5 + 0.22 * len(rows))), layout="constrained")
    for i, r in enumerate(rows):  # 20 colours, then the next 20 dashed: no two curves alike in the legend
        curves.plot(range(1, len(r.history) + 1), r.history, marker=".", label=labels[r.trial],
                    color=plt.get_cmap("tab20")(i % 20), linestyle=("-", "--", ":")[i // 20 % 3])
        if r.status == "KILLED" and r.history:
            curves.plot([len(r.history)], [r.history[-1]], marker="x", markersize=10, color="black", zorder=3)
    curves.set(xlabel="epoch", ylabel=objective.metric, title=f"{objective.metric} per epoch (x: stopped early there)")
    if rows:
        curves.legend(**legend_layout(len(rows)))
    order = ranked(rows, objective.mode)
    bars.barh([labels[r.trial] for r in order][::-1], [r.best for r in order][::-1],
              color=[STATUS_COLORS.get(r.status, "tab:gray") for r in order][::-1])
    bars.tick_params(axis="y", labelsize=7)
    bars.set(xlabel=f"best {objective.metric}", title="trials, best first")
    bars.legend(handles=[Patch(color=color, label=STATUS_NAMES[status]) for status, color in STATUS_COLORS.items()],
                loc="lower right", fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_parameters(rows: list[TrialRow], objective: Objective, path: Path | IO[bytes]) -> None:
    """One panel per space key: each trial's best objective against its value of the key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(objective.kinds)
    cols = min(3, max(1, len(keys)))
    n_rows = -(-max(1, len(keys)) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(4.6 * cols, 3.8 * n_rows), squeeze=False, layout="constrained")
    scored = [r for r in rows if r.best is not None]
    best = max(scored, key=lambda r: r.best if objective.mode == "max" else -r.best, default=None)
    for ax, key in zip(axes.flat, keys):
        scatter_key(ax, key, objective.kinds[key], scored, best, objective.metric)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(f"best {objective.metric} of each trial against each swept hyperparameter "
                 f"({STATUS_WORDS}; star: the best trial)", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def scatter_key(ax, key: str, kind: str, rows: list[TrialRow], best: TrialRow | None, metric: str) -> None:
    present = [r for r in rows if key in r.params]
    values = [r.params[key] for r in present]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        xs = [float(v) for v in values]
        if kind in LOG_KINDS:
            ax.set_xscale("log")
    else:
        categories = sorted({str(v) for v in values})
        position = {c: i for i, c in enumerate(categories)}
        xs = [position[str(v)] + jitter(i) for i, v in enumerate(values)]
        ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right", fontsize=8)
    ax.scatter(xs, [r.best for r in present], c=[STATUS_COLORS.get(r.status, "tab:gray") for r in present],
               s=28, edgecolors="black", linewidths=0.4)
    if best is not None and best in present:
        i = present.index(best)
        ax.scatter([xs[i]], [best.best], marker="*", s=220, facecolors="none", edgecolors="black")
    ax.set(xlabel=key, ylabel=f"best {metric}")
    ax.grid(alpha=0.3)


def jitter(i: int) -> float:
    """A small fixed horizontal offset, so trials of one category do not hide each other."""
    return ((i * 7) % 11 - 5) * 0.03


def legend_layout(count: int) -> Mapping[str, Any]:
    """Where the per-epoch curves' legend goes: beside the plot, one or two columns."""
    return {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 7, "ncol": 1 if count <= 16 else 2,
            "frameon": False}
