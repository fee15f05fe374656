"""The MLflow model a run logs takes an ordinary batch, whatever its eval pipeline (five_crop and
ten_crop give the run multi-crop batches; the logged model is exported from a contiguous one)."""
from __future__ import annotations

import pytest
import torch

from trainlib.checkpoint import LAST, load_safely
from trainlib.models import Net
from trainlib.run import run
from trainlib.tags import RUN_DIR

EVAL_PIPELINES = {
    "default": None,
    "five_crop": [{"resize": {"size": 36}}, {"five_crop": {"size": 32}}, "normalize"],
    "ten_crop": [{"resize": {"size": 36}}, {"ten_crop": {"size": 32}}, "normalize"],
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(EVAL_PIPELINES))
def test_the_logged_model_of_every_eval_pipeline_kind_predicts_an_ordinary_batch(kind, run_config, client, store,
                                                                                 monkeypatch):
    import mlflow

    cfg = run_config(data={"name": "fake", "num_samples": 40, "num_classes": 4, "image_size": 32}, epochs=1,
                     batch_size=8, device="cpu", visuals={"enabled": False}, diagnose={"enabled": False},
                     transforms={"eval": EVAL_PIPELINES[kind]})
    lines: list[str] = []
    run(cfg, progress=False, echo=lines.append)
    (logged,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert not any(line.startswith("warning: model not logged") for line in lines), lines
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    model = mlflow.pytorch.load_model(f"runs:/{logged.info.run_id}/model")
    net = Net(4, 3)
    net.load_state_dict(load_safely(f"{logged.data.tags[RUN_DIR]}/checkpoints/{LAST}")["model"])
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(model(x), net.eval()(x), atol=1e-6)
