"""TensorBoardX tracker: scalars per metric, plus the seed's train/valid groups on one chart."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

GROUPED = ("loss", "acc")


class TensorBoardTracker:
    def __init__(self, logdir: Path, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self.logdir = Path(logdir)
        self.writer = SummaryWriter(str(self.logdir), purge_step=purge_step)

    def log_params(self, params: dict[str, Any]) -> None:
        table = "\n".join(f"| {k} | {v} |" for k, v in sorted(params.items()))
        self.writer.add_text("config", "| key | value |\n|---|---|\n" + table, 0)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        now = time.time()
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step, walltime=now)
            # tensorboardX keeps only add_scalars values for export_scalars_to_json: keep these too
            self.writer.scalar_dict.setdefault(key, []).append([now, step, float(value)])
        for name in GROUPED:
            pair = {split: metrics[f"{split}/{name}"] for split in ("train", "valid") if f"{split}/{name}" in metrics}
            if len(pair) == 2:
                self.writer.add_scalars(f"{name}_group", pair, step)
        self.writer.flush()

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_model(self, model: Any, input_example: Any) -> None:
        pass

    def close(self, status: str) -> None:
        self.writer.close()

    def summary_writer(self):
        return self.writer
