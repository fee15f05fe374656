"""The doctor one level deeper: faults whose symptoms look alike are told apart by the step-0
checks and the probes, on real tracked runs (trainlib's `run`, a real MLflow store); healthy
configurations other than the default raise nothing and start no probe."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.observed import one_thread, train_once
from tests.trainlib.diagnose.planted import planted_datasets
from trainlib.live_checks.catalog import DATA, MODEL, OPTIM
from trainlib.diagnose.doctor import FIGURE, examine
from trainlib.live_checks.findings import ARTIFACT
from trainlib.diagnose.probes import PROBE_NAMES

# the doctor reads a run's diagnostics and config, never its MLflow model (ResNet34's took 4 s to log)
QUIET = {"visuals": {"enabled": False}, "diagnose": {"stop_on": []}, "tracking": {"log_model": False}}

# fault -> (config, culprit, what may decide it: checks or probes)
FAULTS = {
    # N(0, 1) weights: logits ~1e4 at step 0; the NaN/divergence that follows is the init's doing
    "exploding_init": ({"init": {"name": "normal", "std": 1.0}, "epochs": 1}, MODEL,
                       {"initial_loss", "exploding_activations"}),
    "shuffled_labels": ({"data": {"name": "shuffled_labels_digits_for_test"}, "epochs": 2}, DATA, {"label_shuffle"}),
    "weight_decay_too_large": ({"optimizer": {"weight_decay": 0.5}, "epochs": 2}, OPTIM,
                               {"overfit_one_batch", "lr_probe"}),
    "diverging_momentum": ({"optimizer": {"momentum": 1.5}, "epochs": 1, "diagnose": {"every_batches": 10}}, OPTIM,
                           {"divergence", "nan", "exploding_gradients"}),
    "inputs_never_reach_model": ({"data": {"name": "blank_digits_for_test"}, "epochs": 1}, DATA,
                                 {"identical_inputs"}),
    "lr_too_small": ({"optimizer": {"name": "adam", "lr": 1e-6}, "epochs": 2}, OPTIM,
                     {"lr_probe", "overfit_one_batch"}),
}

# other optimizers, schedules, batch sizes, label smoothing, ResNet34 (21M parameters: kept short with 8x8
# images of two digits, so that 12 steps take it well past chance)
HEALTHY = {
    "adam_constant": {"optimizer": {"name": "adam", "lr": 0.001}, "scheduler": "constant", "epochs": 3},
    "rmsprop_step": {"optimizer": {"name": "rmsprop", "lr": 0.0005}, "scheduler": {"name": "step", "step_size": 2},
                     "epochs": 3},
    "sgd_nesterov_batch16_exponential": {"optimizer": {"name": "sgd", "lr": 0.05, "nesterov": True},
                                         "batch_size": 16, "scheduler": "exponential", "epochs": 3},
    "label_smoothing_adamw": {"loss": {"name": "cross_entropy", "label_smoothing": 0.1},
                              "optimizer": {"name": "adamw", "lr": 0.002}, "epochs": 3},
    "resnet34_tiny": {"model": {"name": "resnet34"}, "data": {"name": "digits", "image_size": 8, "classes": [0, 1],
                                                              "split": [0.5, 0.25, 0.25]},
                      "optimizer": {"name": "adam", "lr": 0.001}, "batch_size": 32, "epochs": 2},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, empty_store_template):
    def train(name: str, config: dict):
        with planted_datasets():
            return train_once(tmp_path_factory, empty_store_template, f"deep-{name}", QUIET, config)
    return train


def doctor(observed, probe: bool = False):
    with planted_datasets(), one_thread():
        return examine(observed.client(), observed.run_id, probe=probe)


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_planted_fault_is_blamed_on_the_right_part(fault, trained, tmp_path):
    config, culprit, deciders = FAULTS[fault]
    observed = trained(fault, config)
    exam = doctor(observed)
    verdict = exam.verdict
    assert verdict.culprit == culprit, (fault, verdict)
    assert (verdict.deciding_probe or verdict.deciding_check) in deciders, (fault, verdict)
    assert verdict.evidence and 0 < verdict.confidence <= 1
    if verdict.deciding_probe:  # ambiguous findings: the probes ran, were logged to the run and decided
        assert verdict.ambiguous and [p.name for p in exam.probes] == list(PROBE_NAMES)
        client = observed.client()
        assert {ARTIFACT, FIGURE} <= {a.path for a in client.list_artifacts(observed.run_id)}
        logged = json.loads(Path(client.download_artifacts(observed.run_id, ARTIFACT, str(tmp_path))).read_text())
        assert logged["verdict"]["deciding_probe"] == verdict.deciding_probe
        assert [p["name"] for p in logged["probes"]] == list(PROBE_NAMES)
    else:
        assert verdict.deciding_check in {f.check for f in exam.report.findings}


@pytest.mark.slow
def test_step0_findings_explain_the_nan_that_follows(trained):
    observed = trained("exploding_init", FAULTS["exploding_init"][0])
    found = observed.findings()
    assert found["initial_loss"]["epoch"] == 0 and found["initial_loss"]["batch"] == 0
    assert found["initial_loss"]["evidence"]["expected"] == pytest.approx(math.log(10), rel=1e-4)
    assert found["initial_loss"]["evidence"]["initial_loss"] > 100 * math.log(10)
    assert found["exploding_activations"]["evidence"]["layer"].startswith(("conv", "fc"))
    later = set(found) - {"initial_loss", "exploding_activations"}
    assert later, "the blown-up init should also show later symptoms (NaN, divergence, ...)"
    exam = doctor(observed)
    assert exam.verdict.deciding_check == "initial_loss" and exam.probes is None


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_configuration_raises_nothing(name, trained):
    observed = trained(name, HEALTHY[name])
    assert observed.findings() == {} and observed.stopped is None
    exam = doctor(observed)
    assert exam.verdict.culprit is None and exam.probes is None  # nothing ambiguous: no probe ran
    step0 = exam.report.diagnostics["step0"]
    assert step0["initial_loss"] < 3 * step0["expected_loss"] and sum(step0["train_labels"]) > 0
