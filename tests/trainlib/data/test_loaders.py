"""The fast in-memory path and the DataLoader path: same batches in shape, a seeded fast path
is deterministic, the choice follows loader.mode, and a resumed run equals an uninterrupted one."""
from __future__ import annotations

import pytest
import torch

from tests.resumed_runs import whole_and_resumed
from trainlib.checkpoint import LAST, load_safely
from trainlib.data import DATASETS
from trainlib.data.datasets import PHOTO_TRANSFORMS, build_dataset
from trainlib.data.fast import MemoryBatches
from trainlib.data.loaders import build_loaders, choose_mode
from trainlib.errors import ConfigError

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def fake_data():
    return build_dataset({"name": "fake", **DATASETS.validate("fake", {"num_samples": 200, "num_classes": 4,
                                                                        "image_size": 16})})


def loaders(data, mode, seed=0, specs=PHOTO_TRANSFORMS, batch_size=32):
    return build_loaders(data, specs, mode=mode, batch_size=batch_size, num_workers=0,
                         generator=torch.Generator().manual_seed(seed), device=CPU)


def test_both_paths_give_the_same_batches_in_shape_and_eval_values(fake_data):
    fast, slow = loaders(fake_data, "memory"), loaders(fake_data, "dataloader")
    assert isinstance(fast["train"], MemoryBatches) and isinstance(slow["train"], torch.utils.data.DataLoader)
    for split in ("train", "valid", "test"):
        assert len(fast[split]) == len(slow[split])
        fast_batches, slow_batches = list(fast[split]), list(slow[split])
        for (xf, yf), (xs, ys) in zip(fast_batches, slow_batches):
            assert xf.shape == xs.shape and xf.dtype == xs.dtype == torch.float32 and yf.shape == ys.shape
        labels = [torch.cat([y for _, y in batches]).sort().values for batches in (fast_batches, slow_batches)]
        assert torch.equal(*labels)
        if split != "train":  # same order, deterministic pipeline: same values
            assert torch.allclose(torch.cat([x for x, _ in fast_batches]), torch.cat([x for x, _ in slow_batches]),
                                  atol=1e-5)


def test_seeded_fast_path_is_deterministic_and_augments(fake_data):
    def epoch(seed):
        return [(x.clone(), y.clone()) for x, y in loaders(fake_data, "memory", seed)["train"]]

    first, again, other = epoch(1), epoch(1), epoch(2)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(first[0][1], other[0][1])
    train = loaders(fake_data, "memory", 1)["train"]
    epoch_1, epoch_2 = next(iter(train))[0], next(iter(train))[0]
    assert not torch.equal(epoch_1, epoch_2)  # the generator moves on between epochs


def test_auto_takes_the_fast_path_only_when_it_can(fake_data, tmp_path):
    assert choose_mode("auto", fake_data, PHOTO_TRANSFORMS) == "memory"
    no_device_version = {"train": [{"name": "color_jitter", "brightness": 0.3}], "eval": []}
    assert choose_mode("auto", fake_data, no_device_version) == "dataloader"
    assert choose_mode("dataloader", fake_data, PHOTO_TRANSFORMS) == "dataloader"
    with pytest.raises(ConfigError, match="transform 'color_jitter' .* has no device version"):
        choose_mode("memory", fake_data, no_device_version)


def test_forcing_memory_on_data_kept_on_disk_is_a_config_error(tmp_path):
    from tests.data_files import write_class_tree

    for split in ("train", "valid", "test"):
        write_class_tree(tmp_path / split, {"a": 2, "b": 2})
    data = build_dataset({"name": "folder", **DATASETS.validate("folder", {"root": str(tmp_path), "max_memory_mb": 0})})
    assert choose_mode("auto", data, PHOTO_TRANSFORMS) == "dataloader"
    with pytest.raises(ConfigError, match="needs the dataset in memory"):
        choose_mode("memory", data, PHOTO_TRANSFORMS)


@pytest.mark.slow
def test_a_resumed_fast_path_run_reproduces_an_uninterrupted_one(tmp_path):
    config = {"data": {"name": "fake", "num_samples": 40, "num_classes": 4, "image_size": 32},
              "loader": {"mode": "memory"}, "epochs": 2, "batch_size": 8, "device": "cpu",
              "output": {"dir": str(tmp_path)}, "tracking": {"mlflow": False, "tensorboard": False}}
    whole, resumed, _ = whole_and_resumed(config)
    assert resumed == whole
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    weights = [load_safely(r / "checkpoints" / LAST)["model"] for r in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_the_tutorials_to_tensor_pipeline_takes_the_fast_path(fake_data):
    tutorial = {"train": [{"name": "random_crop", "size": 0, "padding": 4, "padding_mode": "constant", "fill": 0},
                          {"name": "to_tensor"}, {"name": "normalize", "mean": None, "std": None}],
                "eval": [{"name": "to_tensor"}, {"name": "normalize", "mean": None, "std": None}]}
    assert choose_mode("auto", fake_data, tutorial) == "memory"
