"""The tutorial's rhythm: validate every second epoch (`valid_every`), draw histograms every epoch
(`visuals.histograms.every`), through a real tracked run read back from MLflow and TensorBoard."""
from __future__ import annotations

import pytest

from launcher.docs import SECTIONS
from trainlib.config import resolve
from trainlib.errors import ConfigError
from trainlib.run import run

FAKE = {"data": {"name": "fake", "num_samples": 80, "num_classes": 4, "image_size": 32}, "batch_size": 16,
        "device": "cpu", "diagnose": {"enabled": True}}
ONLY_HISTOGRAMS = {name: False for name in ("confusion", "embedding", "feature_maps", "gradcam", "graph", "hparams",
                                            "inputs", "kernels", "pr_curves", "scalars_json", "video")}


@pytest.mark.slow
def test_validate_every_second_epoch_and_draw_histograms_every_epoch(run_config, client, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    lines: list[str] = []
    cfg = run_config(**FAKE, epochs=5, valid_every=2,
                     scheduler={"name": "plateau", "patience": 0}, train={"early_stop": {"patience": 5}},
                     visuals={"histograms": {"every": 1}, **ONLY_HISTOGRAMS, "confusion": {"every": 1}})
    final = run(cfg, progress=False, echo=lines.append)
    (logged,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    steps = {key: [m.step for m in client.get_metric_history(logged.info.run_id, key)]
             for key in ("train/loss", "valid/acc", "valid/loss", "valid/best_acc")}
    assert steps == {"train/loss": [1, 2, 3, 4, 5], "valid/acc": [2, 4, 5], "valid/loss": [2, 4, 5],
                     "valid/best_acc": [2, 4, 5]}  # every 2nd epoch and the last
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert ["(not validated)" in line for line in epoch_lines] == [True, False, True, False, False]
    assert "test/acc" in final and logged.info.status == "FINISHED"
    (tb,) = (tmp_path / "runs").glob("*/tb")
    events = EventAccumulator(str(tb), size_guidance={"histograms": 0, "images": 0})
    events.Reload()
    weights = next(tag for tag in events.Tags()["histograms"] if "weight" in tag)
    assert [e.step for e in events.Histograms(weights)] == [1, 2, 3, 4, 5]
    valid_cm = [tag for tag in events.Tags()["images"] if "valid" in tag]
    assert valid_cm and [e.step for e in events.Images(valid_cm[0])] == [2, 4, 5]  # drawn when validated


def test_valid_every_is_a_config_key_in_the_reference_and_is_checked():
    assert resolve([]).valid_every == 1
    assert "| `valid_every` | `int (>= 1, <= 1000000)` | `1` |" in SECTIONS["config-reference"]()
    assert "| `visuals.histograms.every` | `int (>= 1)` | `20` |" in SECTIONS["config-reference"]()
    with pytest.raises(ConfigError, match="valid_every"):
        resolve([{"valid_every": 0}])


def test_a_sweep_judging_on_a_valid_metric_refuses_valid_every(tmp_path):
    from launcher.sweep.loading import load_sweep

    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\nbase: {epochs: 4, valid_every: 2}\nspace:\n  optimizer.lr: {choice: [0.01, 0.1]}\n"
                     "tune: {metric: valid/acc, num_samples: 2}\n")
    with pytest.raises(ConfigError, match=r"s\.yaml:2: .*valid_every.*2: the sweep judges each trial on valid/acc"):
        load_sweep(sweep)
