"""DDP in trainlib: who takes which samples, and real 2-process runs under torchrun (gloo, CPU)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import train_args
from trainlib.checkpoint import LAST, load_safely
from trainlib.config import resolve
from trainlib.distributed import DistContext
from trainlib.errors import ConfigError
from trainlib.observers import EpochObserver

# No augmentation (train uses the eval pipeline), so the data order is the only thing left to match;
# a small even train split (450) so that 2 workers need no padding sample.
EXACT = {"data": {"name": "digits", "split": [0.25, 0.1, 0.65]}, "transforms": {"train": ["normalize"]},
         "optimizer": {"name": "adam", "lr": 0.003}, "epochs": 2}
# SGD's step is linear in the gradient, so the two runs stay a rounding error apart (Adam's
# m / sqrt(v) blows rounding up to ~0.1 lr on weights whose gradient is near zero). The backbone
# trains from epoch 2 on: DDP must then all-reduce its gradients too (a head lr x10 in the meantime).
LINEAR = {**EXACT, "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
          "finetune": {"freeze": "backbone", "unfreeze_at_epoch": 2}}


def ranks(world: int) -> list[DistContext]:
    return [DistContext(rank=r, world_size=world) for r in range(world)]


def batches(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i:i + size] for i in range(0, len(indices), size)]


@pytest.mark.parametrize("world", [2, 3])
def test_global_batch_k_of_w_workers_is_batch_k_of_one_worker_with_w_times_the_batch(world):
    size, batch, epoch = 450 - 450 % world, 16, 3
    alone = DistContext().train_sampler(size, seed=7)
    alone.set_epoch(epoch)
    per_rank = []
    for ctx in ranks(world):
        sampler = ctx.train_sampler(size, seed=7)
        sampler.set_epoch(epoch)
        per_rank.append(batches(list(sampler), batch))
    merged = [sorted(sum(step, [])) for step in zip(*per_rank)]
    assert merged == [sorted(b) for b in batches(list(alone), world * batch)]
    other_epoch = DistContext().train_sampler(size, seed=7)
    other_epoch.set_epoch(epoch + 1)
    assert list(other_epoch) != list(alone)


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_eval_shards_cover_the_split_once_in_order(world):
    shards = [list(ctx.eval_shard(179)) for ctx in ranks(world)]
    assert sum(shards, []) == list(range(179))


def test_uneven_train_split_gives_every_rank_the_same_number_of_steps():
    lengths = {len(ctx.train_sampler(451, seed=0)) for ctx in ranks(2)}
    assert lengths == {226}


def test_workers_must_match_the_world_it_runs_in():
    two = DistContext(rank=0, world_size=2)
    assert two.record_world(resolve([])).distributed.workers == 2  # 1 = take torchrun's world size
    assert two.record_world(resolve([{"distributed": {"workers": 2}}])).distributed.workers == 2
    with pytest.raises(ConfigError, match="distributed.workers is 3 but this job has 2"):
        two.record_world(resolve([{"distributed": {"workers": 3}}]))
    with pytest.raises(ConfigError, match="launch train --workers 2"):
        DistContext().record_world(resolve([{"distributed": {"workers": 2}}]))


@pytest.mark.parametrize("scaling, expected", [("none", 0.01), ("linear", 0.04)])
def test_lr_scaling_applies_to_every_param_group(scaling, expected):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    opt = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[1].parameters()}], lr=0.01)
    DistContext(world_size=4).scale_lr(opt, scaling)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([expected, expected])


def test_sync_batchnorm_on_cpu_workers_is_refused():
    with pytest.raises(ConfigError, match="sync_batchnorm needs GPU"):
        DistContext(world_size=2).prepare(torch.nn.BatchNorm2d(3), sync_batchnorm=True)


@pytest.mark.parametrize("layer, message", [
    ({"workers": 2, "gpus_per_worker": 0.5}, "cannot share a GPU"),
    ({"backend": "mpi"}, "'auto', 'gloo' or 'nccl'"),
    ({"lr_scaling": "sqrt"}, "'none' or 'linear'"),
    ({"workers": 0}, "distributed.workers"),
])
def test_bad_distributed_settings_are_config_errors(layer, message):
    with pytest.raises(ConfigError, match=message):
        resolve([{"distributed": layer}])


def test_one_worker_may_take_a_fraction_of_a_gpu():
    assert resolve([{"distributed": {"gpus_per_worker": 0.25}}]).distributed.gpus_per_worker == 0.25


def single_process_checkpoint(tmp_path: Path, batch_size: int) -> Path:
    from trainlib.run import run

    reports = []
    cfg = resolve([LINEAR, {"batch_size": batch_size, "output": {"dir": str(tmp_path / f"single-{batch_size}")},
                           "tracking": {"mlflow": False, "tensorboard": False}}])
    run(cfg, progress=False, echo=lambda _: None, observers=[EpochObserver(reports.append)])
    return reports[-1].checkpoint_dir / LAST


@pytest.fixture(scope="module")
def torchrun_run(tmp_path_factory, empty_store_template):
    """`torchrun --nproc-per-node 2 -m launcher train`, batch 16 per worker, into a fresh store."""
    import shutil

    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("torchrun")
    shutil.copy(empty_store_template, tmp / "mlflow.db")
    store = f"sqlite:///{tmp / 'mlflow.db'}"
    (tmp / "linear.yaml").write_text(yaml.safe_dump(LINEAR))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "launcher", *train_args(tmp, store, "--config", str(tmp / "linear.yaml"), "--batch-size", "16")]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=900)
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id]) if proc.returncode == 0 else []
    return proc, client, runs


@pytest.mark.slow
def test_torchrun_two_processes_track_one_run(torchrun_run):
    proc, client, runs = torchrun_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch   1/2") == 1 and proc.stdout.count("run id:") == 1  # rank 0 alone prints
    (run,) = runs  # rank 1 created no run
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["launch.world_size"] == "2" and tags["launch.backend"] == "gloo"
    assert tags["launch.global_batch_size"] == "32" and run.data.params["distributed.workers"] == "2"
    for key in ("train/loss", "train/acc", "valid/loss", "valid/acc", "lr"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2], key
    assert "total num:" in proc.stdout


@pytest.mark.slow
def test_two_workers_of_batch_b_train_the_same_weights_as_one_worker_of_batch_2b(torchrun_run, tmp_path):
    proc, _, runs = torchrun_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = load_safely(Path(runs[0].data.tags["launch.run_dir"]) / "checkpoints" / LAST)["model"]
    one = load_safely(single_process_checkpoint(tmp_path, 32))["model"]
    for name, value in ddp.items():
        torch.testing.assert_close(value, one[name], rtol=1e-4, atol=1e-6, msg=name)
    # and the comparison can fail: one worker of batch 16 (twice the steps) ends elsewhere
    half = load_safely(single_process_checkpoint(tmp_path, 16))["model"]
    assert max(float((ddp[k] - half[k]).abs().max()) for k in ddp) > 1e-3
