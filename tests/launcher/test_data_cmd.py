"""`launch data cifar10|split|stats`: the seed's chapter-1 layout, idempotent, atomic, clear errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tests.data_files import CIFAR_CLASSES, write_class_tree

from launcher.cli import main
from trainlib.data.imagefiles import decode
from trainlib.data.stats import ChannelMoments

SPLITS = ("train", "valid", "test")
PER_CLASS = 12  # 10 train-batch + 2 test-batch images per class in the fixture, pooled


def launch(*args: str):
    return CliRunner().invoke(main, ["data", *args, "--no-progress"] if args[0] != "stats" else ["data", *args])


def listed(out: Path, split: str) -> list[tuple[str, int]]:
    return [(line.rsplit(" ", 1)[0], int(line.rsplit(" ", 1)[1])) for line in (out / f"{split}.txt").read_text().splitlines()]


def check_layout(out: Path, classes: list[str], per_split: dict[str, int]) -> None:
    """Per-class counts on disk and in the lists, labels that match folders, stats of the train PNGs."""
    assert (out / "classes.txt").read_text().split() == classes
    for split in SPLITS:
        entries = listed(out, split)
        on_disk = sorted(str(p.relative_to(out)) for p in (out / split).rglob("*.png"))
        assert sorted(path for path, _ in entries) == on_disk
        for path, label in entries:
            assert Path(path).parent.name == classes[label]
        counts = np.bincount([label for _, label in entries], minlength=len(classes))
        assert counts.tolist() == [per_split[split]] * len(classes), split
    moments = ChannelMoments()
    for path, _ in listed(out, "train"):
        moments.add(decode(out / path))
    stats = json.loads((out / "stats.json").read_text())
    mean, std = moments.mean_std()
    assert stats["mean"] == pytest.approx(mean) and stats["std"] == pytest.approx(std)
    assert stats["images"] == per_split["train"] * len(classes)


@pytest.mark.parametrize("form", ["archive", "folder"])
def test_cifar10_writes_pngs_lists_and_stats(form, cifar_archive, cifar_release, tmp_path):
    source = cifar_archive if form == "archive" else cifar_release
    out = tmp_path / "cifar"
    result = launch("cifar10", str(source), "--out", str(out))
    assert result.exit_code == 0, result.output
    check_layout(out, CIFAR_CLASSES, {"train": 10, "valid": 1, "test": 1})
    assert "total" in result.output and "mean" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["cifar"]  # no staging folder left


def test_ratios_and_seed_choose_the_split(cifar_release, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert launch("cifar10", str(cifar_release), "--out", str(a), "--ratios", "0.5,0.25,0.25").exit_code == 0
    check_layout(a, CIFAR_CLASSES, {"train": 6, "valid": 3, "test": 3})
    assert launch("cifar10", str(cifar_release), "--out", str(b), "--ratios", "0.5,0.25,0.25").exit_code == 0
    assert launch("cifar10", str(cifar_release), "--out", str(c), "--ratios", "0.5,0.25,0.25",
                  "--seed", "7").exit_code == 0
    assert listed(a, "valid") == listed(b, "valid") != listed(c, "valid")


def test_rerun_is_idempotent_and_force_rebuilds(cifar_archive, tmp_path):
    out = tmp_path / "cifar"
    assert launch("cifar10", str(cifar_archive), "--out", str(out)).exit_code == 0
    manifest_mtime = (out / "manifest.json").stat().st_mtime_ns
    again = launch("cifar10", str(cifar_archive), "--out", str(out))
    assert again.exit_code == 0 and "up to date" in again.output
    assert (out / "manifest.json").stat().st_mtime_ns == manifest_mtime
    other = launch("cifar10", str(cifar_archive), "--out", str(out), "--seed", "3")
    assert other.exit_code == 2 and "use --force" in other.output
    (out / "train" / "cat" / "stray.png").write_bytes(b"")
    forced = launch("cifar10", str(cifar_archive), "--out", str(out), "--seed", "3", "--force")
    assert forced.exit_code == 0 and "up to date" not in forced.output
    assert not (out / "train" / "cat" / "stray.png").exists()
    check_layout(out, CIFAR_CLASSES, {"train": 10, "valid": 1, "test": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar"]


def test_an_unrelated_existing_folder_is_not_overwritten(cifar_archive, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = launch("cifar10", str(cifar_archive), "--out", str(out))
    assert result.exit_code == 2 and (out / "notes.txt").read_text() == "keep me"


def _truncated(cifar_archive, cifar_release, tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(cifar_archive.read_bytes()[:3000])
    return [str(path)], "truncated or not a .tar.gz"


def _missing_batch(cifar_archive, cifar_release, tmp_path):
    folder = Path(shutil.copytree(cifar_release, tmp_path / "cifar-10-batches-py"))
    (folder / "data_batch_5").unlink()
    return [str(folder)], "batch file missing"


def _bad_ratios(cifar_archive, cifar_release, tmp_path):
    return [str(cifar_archive), "--ratios", "0.8,0.1,0.2"], "summing to 1"


def _not_numbers(cifar_archive, cifar_release, tmp_path):
    return [str(cifar_archive), "--ratios", "most,some,rest"], "three comma-separated numbers"


def _no_source(cifar_archive, cifar_release, tmp_path):
    return [str(tmp_path / "nothing.tar.gz")], "source not found"


@pytest.mark.parametrize("case", [_truncated, _missing_batch, _bad_ratios, _not_numbers, _no_source])
def test_bad_cifar_input_exits_2_with_one_line_and_writes_nothing(case, cifar_archive, cifar_release, tmp_path):
    args, message = case(cifar_archive, cifar_release, tmp_path)
    before = set(tmp_path.iterdir())
    result = launch("cifar10", *args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and message in result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert set(tmp_path.iterdir()) == before


def test_split_copies_a_class_tree_and_stats_reads_it(tmp_path):
    source = write_class_tree(tmp_path / "photos", {"cat": 10, "dog": 10, "owl": 10})
    out = tmp_path / "split"
    result = launch("split", str(source), "--out", str(out))
    assert result.exit_code == 0, result.output
    check_layout(out, ["cat", "dog", "owl"], {"train": 8, "valid": 1, "test": 1})
    written = json.loads((out / "stats.json").read_text())
    (out / "stats.json").unlink()
    stats = launch("stats", str(out))
    assert stats.exit_code == 0 and "owl" in stats.output
    assert json.loads((out / "stats.json").read_text())["mean"] == pytest.approx(written["mean"])
    assert launch("split", str(source), "--out", str(out)).output.startswith(f"{out} is up to date")


def test_split_names_a_corrupt_image_and_leaves_nothing(tmp_path):
    source = write_class_tree(tmp_path / "photos", {"cat": 5, "dog": 5})
    bad = source / "dog" / "003.png"
    bad.write_bytes(bad.read_bytes()[:-100])
    result = launch("split", str(source), "--out", str(tmp_path / "split"))
    assert result.exit_code == 2 and "dog/003.png" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_split_refuses_an_empty_class(tmp_path):
    source = write_class_tree(tmp_path / "photos", {"cat": 5, "dog": 5})
    (source / "eel").mkdir()
    result = launch("split", str(source), "--out", str(tmp_path / "split"))
    assert result.exit_code == 2 and "class 'eel' has no images" in result.output
    assert not (tmp_path / "split").exists()


def test_real_subprocess_writes_the_tree(cifar_archive, tmp_path):
    out = tmp_path / "cifar"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(["launch", "data", "cifar10", str(cifar_archive), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    check_layout(out, CIFAR_CLASSES, {"train": 10, "valid": 1, "test": 1})
