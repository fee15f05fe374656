"""`launch data`: prepare image datasets as the seed's chapter 1 does (CIFAR-10 -> PNG folders,
per-class train/valid/test split, txt lists, per-channel mean/std)."""
from __future__ import annotations

import click

from launcher.guard import guarded

RATIOS_HELP = "train,valid,test fractions per class, summing to 1."


def _common(fn):
    for option in reversed([
        click.option("--out", "out", required=True, type=click.Path(), help="Output folder (created)."),
        click.option("--ratios", default="0.8,0.1,0.1", show_default=True, help=RATIOS_HELP),
        click.option("--seed", default=0, show_default=True, type=int, help="Seed of the per-class split."),
        click.option("--force", is_flag=True, help="Rebuild even when --out already holds a complete result."),
        click.option("--progress/--no-progress", default=True, help="Show a progress bar (only when stderr is a terminal)."),
    ]):
        fn = option(fn)
    return fn


@click.group("data")
def data() -> None:
    """Prepare image datasets: CIFAR-10 to PNGs, splits, txt lists, mean/std."""


@data.command("cifar10")
@click.argument("source", metavar="ARCHIVE_OR_DIR")
@_common
@guarded
def cifar10(source, out, ratios, seed, force, progress):
    """CIFAR-10 python release -> PNGs per class, txt lists, stats.

    ARCHIVE_OR_DIR is cifar-10-python.tar.gz or its extracted cifar-10-batches-py/. All six
    batches are pooled and split per class into OUT/{train,valid,test}/<class>/*.png, with
    OUT/{train,valid,test}.txt ("path label", paths relative to OUT), OUT/classes.txt and the
    train split's per-channel mean/std in OUT/stats.json. Re-running with the same source and
    settings does nothing; OUT is written in full or not at all."""
    from pathlib import Path

    from trainlib.data.prepare import export_cifar10
    from trainlib.data.splits import parse_ratios

    _report(export_cifar10(Path(source), Path(out), parse_ratios(ratios), seed, force=force, progress=progress))


@data.command("split")
@click.argument("source", metavar="SRC")
@_common
@guarded
def split(source, out, ratios, seed, force, progress):
    """Split a class-per-folder image tree into train/valid/test.

    Copies SRC/<class>/<image> into OUT/{train,valid,test}/<class>/ (every image is decoded
    to check it), and writes the txt lists, classes.txt and the train split's mean/std
    (OUT/stats.json), like `launch data cifar10`."""
    from pathlib import Path

    from trainlib.data.prepare import split_folder
    from trainlib.data.splits import parse_ratios

    _report(split_folder(Path(source), Path(out), parse_ratios(ratios), seed, force=force, progress=progress))


@data.command("stats")
@click.argument("root", metavar="DIR")
@click.option("--write/--no-write", default=True, help="Write DIR/stats.json (read by data.name=folder and txt).")
@guarded
def stats(root, write):
    """Images per class, and the train split's mean/std.

    DIR is a train/valid/test tree (the mean/std is of DIR/train) or a single class-per-folder
    tree DIR/<class>/<image>."""
    from pathlib import Path

    from trainlib.data.prepare import folder_stats

    _report(folder_stats(Path(root), write=write))


def _report(result) -> None:
    if result.reused:
        click.echo(f"{result.out} is up to date (same source and settings; --force rebuilds it)")
    splits = list(result.counts)
    width = max(len(name) for name in [*result.classes, "class"])
    click.echo(f"{'class':<{width}}  " + "  ".join(f"{s:>6}" for s in splits))
    for name in result.classes:
        click.echo(f"{name:<{width}}  " + "  ".join(f"{result.counts[s].get(name, 0):>6}" for s in splits))
    click.echo(f"{'total':<{width}}  " + "  ".join(f"{sum(result.counts[s].values()):>6}" for s in splits))
    click.echo("mean " + " ".join(f"{v:.4f}" for v in result.mean) + "   std " + " ".join(f"{v:.4f}" for v in result.std))
    for split, path in result.lists.items():
        click.echo(f"{split} list: {path}")
    if result.lists:
        click.echo(f"train on it: launch train -s data.name=folder -s data.root={result.out}")
