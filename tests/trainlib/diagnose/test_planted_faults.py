"""Plant each fault the tutorial teaches to look for; the diagnosis must name it (and blame the
right part), and a healthy default run must raise nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.observed import healthy_run, read_events, train_once
from tests.trainlib.diagnose.planted import planted_datasets
from trainlib import tags as tag
from trainlib.live_checks.catalog import DATA, MODEL, OPTIM
from trainlib.diagnose.doctor import examine
from trainlib.diagnose.report import load_report

QUIET = {"visuals": {"enabled": False}, "diagnose": {"stop_on": []}}  # visuals are tested elsewhere
RAW_PIXELS = [{"normalize": {"mean": [0, 0, 0], "std": [1 / 255] * 3}}]  # "normalizes" to 0..255


# fault -> (config, checks that must fire, checks that may also fire as consequences, culprit)
FAULTS = {
    # sampled every 10 batches, so the divergence is caught mid-epoch (digits has 45 batches an epoch)
    "lr_too_high": ({"optimizer": {"lr": 10}, "epochs": 1, "diagnose": {"every_batches": 10}}, {"divergence"},
                    {"nan", "exploding_gradients", "vanishing_gradients", "dead_relu"}, OPTIM),
    "zero_init": ({"init": {"name": "constant", "value": 0.0}, "epochs": 1}, {"symmetric_units", "dead_relu", "vanishing_gradients"},
                  set(), MODEL),
    "unnormalized_inputs": ({"transforms": {"train": RAW_PIXELS, "eval": RAW_PIXELS}, "epochs": 1},
                            # 0..255 inputs: large logits at step 0, dead units, a loss that may diverge
                            {"inputs_not_normalized"}, {"dead_relu", "initial_loss", "exploding_activations", "divergence"}, DATA),
    "imbalanced_split": ({"data": {"name": "imbalanced_digits_for_test"}, "epochs": 1}, {"class_imbalance"},
                         set(), DATA),
    # 90 train images, no augmentation, a fast optimizer: train acc -> 100%, valid stays ~80%
    "tiny_train_set": ({"data": {"name": "digits", "split": [0.05, 0.15, 0.8]}, "epochs": 12, "init": "default",
                        "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "scheduler": "constant",
                        "transforms": {"train": ["normalize"]}}, {"overfitting"}, set(), DATA),
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory, empty_store_template):
    def train(fault: str):
        with planted_datasets():
            return train_once(tmp_path_factory, empty_store_template, fault, QUIET, FAULTS[fault][0])
    return train


# overfitting needs 12 epochs to show: the slow lane's
@pytest.mark.parametrize("fault", [pytest.param(f, marks=pytest.mark.slow) if f == "tiny_train_set" else f
                                   for f in sorted(FAULTS)])
def test_planted_fault_is_diagnosed_and_blamed_on_the_right_part(fault, planted):
    _, must, may, culprit = FAULTS[fault]
    observed = planted(fault)
    found = observed.findings()
    assert must <= set(found), f"{fault}: found {sorted(found)}"
    assert set(found) <= must | may, f"{fault}: spurious {sorted(set(found) - must - may)}"
    tags = observed.client().get_run(observed.run_id).data.tags
    texts = read_events(Path(observed.run_dir) / "tb")["text"]
    for check in must:
        assert found[check]["message"] in tags[tag.WARNING_PREFIX + check]
        assert any(line.startswith(f"warning [{check}]") for line in observed.output)
        assert f"diagnose/{check}/text_summary" in texts
    assert load_report(observed.client(), observed.run_id).culprit == culprit
    with planted_datasets():
        verdict = examine(observed.client(), observed.run_id).verdict
    assert verdict.culprit == culprit and verdict.deciding_check in must | may, verdict


def test_first_nonfinite_layer_is_named_when_weights_blow_up(planted):
    found = planted("lr_too_high").findings()
    if "nan" in found:
        assert found["nan"]["evidence"]["layer"].startswith(("conv1", "conv2", "fc"))
    assert found["divergence"]["epoch"] == 1 and found["divergence"]["batch"] is not None


def test_zero_init_names_every_symmetric_and_dead_layer(planted):
    found = planted("zero_init").findings()
    assert found["symmetric_units"]["epoch"] == 0  # before training
    assert set(found["symmetric_units"]["evidence"]["layers"]) == {
        "conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"}
    assert found["dead_relu"]["evidence"]["dead_fractions"] == {"conv1": 1.0, "conv2": 1.0, "fc1": 1.0, "fc2": 1.0}


def test_healthy_default_run_raises_nothing(tmp_path_factory, empty_store_template):
    observed = healthy_run(tmp_path_factory, empty_store_template)
    assert observed.findings() == {} and observed.stopped is None
    run = observed.client().get_run(observed.run_id)
    assert run.info.status == "FINISHED"
    assert not [t for t in run.data.tags if t.startswith(tag.WARNING_PREFIX)]
    assert not [line for line in observed.output if line.startswith("warning")]
    for key in ("diag/grad_norm_max", "diag/grad_norm_min", "diag/dead_fraction_max", "diag/update_ratio_max"):
        assert len(observed.client().get_metric_history(observed.run_id, key)) == 5, key
