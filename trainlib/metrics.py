"""Confusion matrix, the seed's per-class recall/precision report, and its plot."""
from __future__ import annotations

from pathlib import Path

import torch


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """cm[true, pred] counts."""
    idx = targets.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_report(cm: torch.Tensor, class_names: list[str]) -> str:
    """The seed's table: total, recall and precision per class."""
    lines = []
    for i, name in enumerate(class_names):
        total = int(cm[i].sum())
        recall = float(cm[i, i]) / total if total else 0.0
        predicted = int(cm[:, i].sum())
        precision = float(cm[i, i]) / predicted if predicted else 0.0
        lines.append(f"class:{name:<10} total num:{total:<6} recall:{recall:>7.2%}  precision:{precision:>7.2%}")
    return "\n".join(lines)


def plot_confusion_matrix(cm: torch.Tensor, class_names: list[str], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(class_names)
    norm = cm.float() / cm.sum(1, keepdim=True).clamp(min=1)
    fig, ax = plt.subplots(figsize=(max(4, n * 0.6 + 2), max(4, n * 0.6 + 1.5)))
    im = ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
