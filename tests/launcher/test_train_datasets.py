"""`launch train` on every dataset kind, and bad data that stops it before any MLflow run exists."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.data_files import write_class_tree

from launcher.cli import main
from trainlib.data import list_datasets

TINY = ["--epochs", "1", "--batch-size", "64", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def prepared(cifar_archive, tmp_path_factory) -> Path:
    """What `launch data cifar10` writes: a folder tree plus txt lists and stats.json."""
    out = tmp_path_factory.mktemp("prepared") / "cifar"
    result = CliRunner().invoke(main, ["data", "cifar10", str(cifar_archive), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


def data_args(name: str, cifar_archive: Path, prepared: Path) -> list[str]:
    return {
        "digits": ["-s", "data.name=digits"],
        "cifar10": ["-s", "data.name=cifar10", "-s", f"data.root={cifar_archive}"],
        "folder": ["-s", "data.name=folder", "-s", f"data.root={prepared}"],
        "txt": ["-s", "data.name=txt", "-s", f"data.root={prepared}"],
        "fake": ["-s", "data.name=fake", "-s", "data.num_samples=100"],
    }[name]


def train(tmp_path: Path, *args: str, mlflow_uri: str | None = None):
    tracking = ["--tracking-uri", mlflow_uri] if mlflow_uri else ["-s", "tracking.mlflow=false"]
    return CliRunner().invoke(main, ["train", *TINY, "--output-dir", str(tmp_path / "runs"),
                                     "-s", "tracking.tensorboard=false", *tracking, *args])


@pytest.mark.parametrize("name", list_datasets())
def test_launch_train_trains_on_every_dataset_kind(name, cifar_archive, prepared, tmp_path):
    result = train(tmp_path, *data_args(name, cifar_archive, prepared))
    assert result.exit_code == 0, result.output
    assert "epoch   1/1" in result.output and "test acc" in result.output
    assert len(list((tmp_path / "runs").glob("*/checkpoints/last.pt"))) == 1


def test_the_dataloader_path_trains_on_the_prepared_folder(prepared, tmp_path):
    result = train(tmp_path, "-s", "data.name=folder", "-s", f"data.root={prepared}", "-s", "loader.mode=dataloader")
    assert result.exit_code == 0, result.output


def _corrupt(tree: Path) -> tuple[list[str], str]:
    victim = next((tree / "test" / "dog").iterdir())
    victim.write_bytes(victim.read_bytes()[:-150])
    return ["-s", "data.name=folder", "-s", f"data.root={tree}"], f"test/dog/{victim.name}"


def _empty_class(tree: Path) -> tuple[list[str], str]:
    for path in (tree / "train" / "owl").iterdir():
        path.unlink()
    return ["-s", "data.name=folder", "-s", f"data.root={tree}"], "class 'owl' has no images"


def _label_out_of_range(tree: Path) -> tuple[list[str], str]:
    (tree / "valid.txt").write_text("valid/cat/000.png 7\n")
    (tree / "train.txt").write_text("train/cat/000.png 0\ntrain/dog/000.png 1\n")
    (tree / "test.txt").write_text("test/cat/000.png 0\n")
    return ["-s", "data.name=txt", "-s", f"data.root={tree}"], "valid.txt:1: label 7 is outside the class range 0..1"


def _forced_memory_on_disk(tree: Path) -> tuple[list[str], str]:
    return ["-s", "data.name=folder", "-s", f"data.root={tree}", "-s", "data.max_memory_mb=0",
            "-s", "loader.mode=memory"], "needs the dataset in memory"


def run_count(client) -> int:
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


@pytest.mark.parametrize("breaks", [_corrupt, _empty_class, _label_out_of_range, _forced_memory_on_disk])
def test_bad_data_exits_2_before_any_run_exists(breaks, store, client, tmp_path):
    tree = tmp_path / "tree"
    for split in ("train", "valid", "test"):
        write_class_tree(tree / split, {"cat": 3, "dog": 3, "owl": 3})
    args, message = breaks(tree)
    result = train(tmp_path, *args, mlflow_uri=store)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and message in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "runs").exists()
    assert run_count(client) == 0


def test_a_good_run_lands_in_the_store(store, client, prepared, tmp_path):
    """The control for the test above: a run on good data does land in such a store."""
    result = train(tmp_path, "-s", "data.name=folder", "-s", f"data.root={prepared}", mlflow_uri=store)
    assert result.exit_code == 0, result.output
    assert run_count(client) == 1
