"""Finetune: Net pretrained on digits 0-5, finetuned onto digits 6-9 with a new head."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
import torch

from tests.weights_files import BAD_FILES, write_bad_file
from trainlib.config import merge, resolve
from trainlib.errors import CheckpointError, ConfigError
from trainlib.finetune import Finetune, detect_head, freeze, load_weights, read_weights
from trainlib.models import MODELS, Net, build_model
from trainlib.observers import EpochObserver
from trainlib.optimizers import OPTIMIZERS
from trainlib.resume import locate
from trainlib.run import run
from trainlib.schedulers import SCHEDULERS, build_scheduler

PRETRAIN_CLASSES = [0, 1, 2, 3, 4, 5]
FINETUNE_CLASSES = [6, 7, 8, 9]
SGD = {"name": "sgd", **OPTIMIZERS.validate("sgd", {"lr": 0.1, "weight_decay": 5e-4})}
BACKBONE_KEYS = ("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc2.bias")


class Store:
    def __init__(self, root: Path, template: Path):
        shutil.copy(template, root / "mlflow.db")
        self.root, self.uri = root, f"sqlite:///{root / 'mlflow.db'}"

    def config(self, experiment: str, **overrides):
        base = {"output": {"dir": str(self.root / "runs")},
                "tracking": {"uri": self.uri, "experiment": experiment, "tensorboard": False, "log_model": False}}
        return resolve([merge(base, overrides)])

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def runs(self, experiment: str):
        client = self.client()
        return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


def finetune_overrides(**finetune):
    return {"epochs": 1, "data": {"name": "digits", "classes": FINETUNE_CLASSES},
            "optimizer": {"name": "sgd", "lr": 0.002}, "finetune": finetune}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, empty_store_template):
    """Net trained 2 epochs on digits 0-5; returns (store, run id, its best checkpoint's tensors)."""
    store = Store(tmp_path_factory.mktemp("finetune"), empty_store_template)
    run(store.config("pretrain", epochs=2, data={"name": "digits", "classes": PRETRAIN_CLASSES},
                     optimizer={"name": "adam", "lr": 0.003}), progress=False, echo=lambda _: None)
    (source,) = store.runs("pretrain")
    best = Path(source.data.tags["launch.run_dir"]) / "checkpoints" / "best.pt"
    return store, source.info.run_id, read_weights(best).tensors


@pytest.fixture(scope="module")
def scratch_and_finetuned(pretrained):
    store, run_id, _ = pretrained
    lines: list[str] = []
    scratch = run(store.config("compare", **finetune_overrides()), progress=False, echo=lambda _: None)
    tuned = run(store.config("compare", **finetune_overrides(source=run_id)), progress=False, echo=lines.append)
    return scratch, tuned, lines


@pytest.mark.slow
def test_finetune_beats_scratch_after_one_epoch(scratch_and_finetuned):
    scratch, tuned, _ = scratch_and_finetuned
    print(f"1 epoch on digits 6-9: scratch test acc {scratch['test/acc']:.3f}, finetuned {tuned['test/acc']:.3f}")
    assert tuned["test/acc"] >= scratch["test/acc"] + 0.2


@pytest.mark.slow
def test_finetune_reports_skipped_head_and_tags_its_source(pretrained, scratch_and_finetuned):
    import json

    store, run_id, _ = pretrained
    *_, lines = scratch_and_finetuned
    text = "\n".join(lines)
    assert "loaded 8 tensors, skipped 2 (shape mismatch)" in text
    assert "skipped fc3.weight: source [6, 84] vs model [4, 84]" in text and "head: fc3 (lr x 10)" in text
    tuned = next(r for r in store.runs("compare") if "launch.finetune.source" in r.data.tags)
    assert tuned.data.tags["launch.finetune.source"] == run_id
    client = store.client()
    report = json.loads(Path(client.download_artifacts(tuned.info.run_id, "finetune_report.json")).read_text())
    assert set(report["report"]["skipped"]) == {"fc3.weight", "fc3.bias"} and len(report["report"]["loaded"]) == 8
    assert report["head"] == "fc3" and report["head_lr_mult"] == 10.0
    assert not client.search_logged_models([tuned.info.experiment_id])  # tracking.log_model: false


@pytest.mark.slow
def test_freeze_keeps_weights_bit_identical_until_unfreeze_then_they_train(pretrained):
    store, run_id, source = pretrained
    snapshots = []
    cfg = store.config("freeze", **merge(finetune_overrides(source=f"{run_id}:best", freeze="backbone",
                                                            unfreeze_at_epoch=2), {"epochs": 2}))
    run(cfg, progress=False, echo=lambda _: None,
        observers=[EpochObserver(lambda rep: snapshots.append(torch.load(rep.checkpoint_dir / "last.pt", weights_only=True)))])
    first, second = snapshots
    for key in BACKBONE_KEYS:
        assert torch.equal(first["model"][key], source[key]), key  # frozen through epoch 1
        assert not torch.equal(second["model"][key], source[key]), key  # trained in epoch 2
    assert [g["name"] for g in first["optimizer"]["param_groups"]] == ["head"]
    assert [g["name"] for g in second["optimizer"]["param_groups"]] == ["head", "unfrozen"]

    (tuned,) = store.runs("freeze")
    client = store.client()
    history = {k: {m.step: m.value for m in client.get_metric_history(tuned.info.run_id, k)}
               for k in ("lr", "lr/head", "lr/unfrozen")}
    assert history["lr"][1] == pytest.approx(0.002) and history["lr/head"][1] == pytest.approx(0.02)
    assert set(history["lr/unfrozen"]) == {2}  # the group exists from the unfreeze epoch on
    assert history["lr/head"][2] == pytest.approx(10 * history["lr/unfrozen"][2])
    assert history["lr/unfrozen"][2] == pytest.approx(history["lr"][2])

    resumed = run(store.config("freeze", **merge(cfg.to_dict(), {"epochs": 3})),
                  resume=locate(tuned.info.run_id, store.uri), progress=False, echo=lambda _: None)
    assert resumed["test/acc"] > 0.5  # the 2-group optimizer state loaded back after re-unfreezing


@pytest.mark.parametrize("name", MODELS.names())
def test_head_is_detected_and_backbone_freezes_for_every_model(name):
    model = build_model({"name": name, **MODELS.validate(name, {})}, 3, 3)
    head = detect_head(model, 3)
    frozen = freeze(model, ["backbone"], head)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith(head + ".") for n in trainable)
    assert set(frozen) | set(trainable) == {n for n, _ in model.named_parameters()}
    optimizer = Finetune(head, 10.0, frozen, None, None).build_optimizer(SGD, model)
    assert [(g["name"], g["lr"]) for g in optimizer.param_groups] == [("head", pytest.approx(1.0))]


@pytest.mark.parametrize("name", SCHEDULERS.names())
def test_unfreeze_joins_every_schedule_in_step(name):
    model = Net(4, 3)
    tuning = Finetune("fc3", 10.0, freeze(model, ["backbone"], "fc3"), 2, None)
    optimizer = tuning.build_optimizer(SGD, model)
    schedule = build_scheduler({"name": name, **SCHEDULERS.validate(name, {"warmup_epochs": 3})}, optimizer, 6, 3)
    metrics = {"valid/loss": 1.0, "valid/acc": 0.5}
    for epoch in range(1, 7):
        assert tuning.unfreeze_if_due(epoch, model, schedule) == (8 if epoch == 2 else 0)
        for _ in range(3):
            optimizer.step()  # no gradients: only the learning rates matter here
            schedule.after_batch()
        schedule.after_epoch(metrics)
        if epoch >= 2:
            head, unfrozen = optimizer.param_groups
            assert head["lr"] == pytest.approx(10 * unfrozen["lr"]), (name, epoch)


def test_unfreeze_keeps_biases_out_of_weight_decay_when_asked():
    model = Net(4, 3)
    tuning = Finetune("fc3", 10.0, freeze(model, ["conv1", "conv2"], "fc3"), 2, None, no_decay_bias_norm=True)
    optimizer = tuning.build_optimizer({**SGD, "no_decay_bias_norm": True}, model)
    schedule = build_scheduler({"name": "constant"}, optimizer, 2, 1)
    tuning.unfreeze_if_due(2, model, schedule)
    groups = [(g["name"], g["weight_decay"], len(g["params"])) for g in schedule.optimizer.param_groups]
    assert groups == [("backbone", 5e-4, 2), ("backbone", 0.0, 2), ("head", 5e-4, 1), ("head", 0.0, 1),
                      ("unfrozen", 5e-4, 2), ("unfrozen", 0.0, 2)]


def test_grad_cam_gives_the_same_maps_on_a_frozen_backbone():
    from trainlib.visuals.gradcam import grad_cam

    model, x = Net(10, 3), torch.rand(2, 3, 32, 32)
    cams, preds = grad_cam(model, model.conv2, x)
    freeze(model, ["backbone"], "fc3")  # conv2's output then needs no gradient of its own
    frozen_cams, frozen_preds = grad_cam(model, model.conv2, x)
    assert torch.equal(frozen_preds, preds)
    torch.testing.assert_close(frozen_cams, cams)


def test_torchvision_weights_load_except_the_classifier(tmp_path):
    import torchvision

    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    model = build_model({"name": "tv:resnet18"}, 10, 3)
    report = load_weights(model, str(path), None, "tv:resnet18")
    assert set(report.skipped) == {"fc.weight", "fc.bias"} and not report.missing and not report.unexpected
    assert report.skipped["fc.weight"] == {"source": [1000, 512], "model": [10, 512]}
    assert detect_head(model, 10) == "fc"


def test_ddp_prefixed_state_dict_loads(tmp_path):
    source = Net(10, 3)
    path = tmp_path / "ddp.pt"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)
    model = Net(10, 3)
    assert len(load_weights(model, str(path), None, "net").loaded) == 10
    assert torch.equal(model.conv1.weight, source.conv1.weight)


def test_no_matching_tensor_names_the_model_it_was_trained_as(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"model": {"pre.0.weight": torch.zeros(64, 3, 3, 3)}, "config": {"model": {"name": "resnet34"}}}, path)
    with pytest.raises(CheckpointError, match="trained as model 'resnet34'"):
        load_weights(Net(10, 3), str(path), None, "net")


@pytest.mark.parametrize("kind", BAD_FILES)
def test_unsafe_or_broken_files_are_refused_and_run_no_code(kind, tmp_path):
    path, marker = tmp_path / "weights.pkl", tmp_path / "pwned"
    write_bad_file(kind, path, marker)
    with pytest.raises(CheckpointError) as err:
        read_weights(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()
    if kind.startswith("code payload"):  # control: a plain unpickling really runs the payload
        with contextlib.suppress(RuntimeError):  # torch.load runs it, then finds no torch magic number
            torch.load(path, weights_only=False)
        assert marker.exists()


@pytest.mark.parametrize("finetune, message", [
    ({"freeze": ["conv9"]}, "'conv9' names no module with parameters; valid: backbone, conv1, conv2, fc1, fc2, fc3"),
    ({"freeze": "backbone", "unfreeze_at_epoch": 5}, "must be <= epochs"),
    ({"source": None, "unfreeze_at_epoch": 2, "freeze": []}, "needs finetune.freeze"),
    ({"freeze": "backbone", "head": "fc9"}, "finetune.head: 'fc9'"),
])
def test_bad_finetune_settings_are_config_errors(finetune, message, tmp_path):
    cfg = resolve([{"epochs": 2, "output": {"dir": str(tmp_path)}, "finetune": finetune,
                    "tracking": {"mlflow": False, "tensorboard": False}}])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(cfg, progress=False, echo=lambda _: None)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_unfreezing_under_ddp_trains_like_one_process(tmp_path):
    """2 torchrun workers of batch 16 end where one process of batch 32 does, unfreeze included
    (DDP only all-reduces the parameters that were trainable when it wrapped the model)."""
    import subprocess
    import sys

    import yaml

    from trainlib.checkpoint import LAST, load_safely

    torch.manual_seed(0)
    torch.save(Net(10, 3).state_dict(), tmp_path / "net_params.pkl")
    # SGD, not Adam: Adam's first steps are ~lr x sign(grad), which turns float noise in a
    # near-zero gradient into a full step; SGD keeps the two runs' rounding differences tiny.
    exact = {"data": {"name": "digits", "split": [0.25, 0.1, 0.65]}, "transforms": {"train": ["normalize"]},
             "optimizer": {"name": "sgd", "lr": 0.05}, "epochs": 2,
             "finetune": {"source": str(tmp_path / "net_params.pkl"), "freeze": "backbone", "unfreeze_at_epoch": 2},
             "tracking": {"mlflow": False, "tensorboard": False}}
    (tmp_path / "exact.yaml").write_text(yaml.safe_dump(exact))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "launcher",
           "train", "--no-progress", "--config", str(tmp_path / "exact.yaml"), "--batch-size", "16",
           "--output-dir", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch 2: unfroze 8 parameter tensors" in proc.stdout
    ddp = load_safely(next((tmp_path / "ddp").glob(f"*/checkpoints/{LAST}")))["model"]
    reports = []
    run(resolve([exact, {"batch_size": 32, "output": {"dir": str(tmp_path / "one")}}]), progress=False,
        echo=lambda _: None, observers=[EpochObserver(reports.append)])
    one = load_safely(reports[-1].checkpoint_dir / LAST)["model"]
    for name, value in ddp.items():
        torch.testing.assert_close(value, one[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
def test_finetune_without_an_lr_trains_at_the_finetune_default_and_its_loss_falls(pretrained):
    """The tutorial finetunes at lr 0.001 (head x10); the from-scratch default (0.05, head 0.5) wrecks the weights."""
    store, run_id, _ = pretrained
    overrides = {"epochs": 3, "data": {"name": "digits", "classes": FINETUNE_CLASSES}, "finetune": {"source": run_id}}
    cfg = store.config("defaults", **overrides)
    assert cfg.optimizer["lr"] == cfg.finetune.default_lr == 0.001
    assert "lr: 0.001  # finetune.default_lr: finetune.source is set and no optimizer.lr was given" in cfg.to_yaml()
    run(cfg, progress=False, echo=lambda _: None)
    (tuned,) = store.runs("defaults")
    losses = [m.value for m in sorted(store.client().get_metric_history(tuned.info.run_id, "train/loss"),
                                      key=lambda m: m.step)]
    print(f"finetune with the defaults, train loss per epoch: {losses}")
    assert len(losses) == 3 and losses[-1] < losses[0] and losses[1] < losses[0]
    config_yaml = Path(tuned.data.tags["launch.run_dir"]) / "config.yaml"
    assert "# finetune.default_lr" in config_yaml.read_text()


@pytest.mark.parametrize("layers", [[{"finetune": {"source": "x.pt"}}, {"optimizer": {"lr": 0.05}}],
                                    [{"optimizer": {"name": "adam", "lr": 0.02}}, {"finetune": {"source": "x.pt"}}]])
def test_an_lr_the_user_gave_is_kept_when_finetuning(layers):
    cfg = resolve(layers)
    assert cfg.optimizer["lr"] in (0.05, 0.02) and "#" not in cfg.to_yaml()
    assert resolve([{"finetune": {"source": "x.pt"}}]).optimizer["lr"] == 0.001
    assert resolve([]).optimizer["lr"] == 0.05
