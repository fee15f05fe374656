"""trainlib's training epoch against a plain PyTorch loop, same model object, same device, same process.

For each model (net, resnet34) and style (fp32; bf16 + channels_last; bf16 + channels_last +
torch.compile), in one process:
  plain         a hand-written loop in the style of ../shared/bench/anchor_gpu.py: the data resident
                on the device as normalized floats, random crop (pad 4) + flip on the device, autocast,
                zero_grad / backward / step; run on the very model object trainlib's `build_parts`
                built (init, device, memory format), with the same SGD settings (fused on CUDA, as
                trainlib's). Only the loop differs.
  trainlib_on   `trainlib.run.run` as a user runs it: tracking on (TensorBoardX, and MLflow when it is
                installed; the GPU machine has none) and observers (visuals, diagnosis) at their defaults.
  trainlib_off  the same with tracking, visuals and diagnosis off.
img/s of trainlib is its own `time/img_per_s` (training phase, after the epoch's one sync, compile step
excluded); `wall_img_per_s` is train samples over the time between epoch ends (validation, logging and
checkpoints included). Every figure is the median over the epochs after the first (warm-up: cuDNN
autotuning, compilation). The three measurements are interleaved --repeats times (3 on CPU, whose
figures drift by +-10% between runs on a shared machine) and each keeps its median repeat.
Ratios: trainlib / plain. Prints one JSON object (also --out FILE).

    PYTHONPATH=$PWD python bench/gpu_throughput.py                 # sizes for the device found
    PYTHONPATH=$PWD python bench/gpu_throughput.py --models net --styles fp32 bf16_cl
Defaults: CUDA: batch 512, 50,000 fake 32x32 images (40,000 train), 4 epochs; CPU: small sizes.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from trainlib.config import validate
from trainlib.observers import EpochObserver
from trainlib.optimizers import fused_kernel
from trainlib.precision import compiled
from trainlib.run import build_parts, run

STYLES = {
    "fp32": {"precision": "fp32", "channels_last": False, "compile": False},
    "bf16_cl": {"precision": "bf16", "channels_last": True, "compile": False},
    "bf16_cl_compile": {"precision": "bf16", "channels_last": True, "compile": "default"},
}
SIZES = {  # device type -> model -> (batch, fake samples (80% train), epochs)
    "cuda": {"net": (512, 50_000, 4), "resnet34": (512, 50_000, 4)},
    "cpu": {"net": (128, 6_400, 4), "resnet34": (32, 160, 3)},
}
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.247, 0.243, 0.261)


def config(model: str, style: str, device: torch.device, out: Path, tracked: bool, args) -> dict[str, Any]:
    batch, samples, epochs = sizes(model, device, args)
    mlflow, tensorboard = (tracked and installed(name) for name in ("mlflow", "tensorboardX"))
    return {
        "model": model, "data": {"name": "fake", "num_samples": samples, "num_classes": 10, "image_size": 32},
        "loader": {"mode": "memory"}, "batch_size": batch, "epochs": epochs, "device": str(device),
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
        "scheduler": "cosine", "seed": 0, "train": STYLES[style],
        "output": {"dir": str(out / "runs")}, "visuals": {"enabled": tracked}, "diagnose": {"enabled": tracked},
        "tracking": {"mlflow": mlflow, "tensorboard": tensorboard, "log_model": False,
                     "uri": f"sqlite:///{out / 'mlflow.db'}", "experiment": "gpu_throughput"},
    }


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def sizes(model: str, device: torch.device, args) -> tuple[int, int, int]:
    batch, samples, epochs = SIZES["cuda" if device.type == "cuda" else "cpu"][model]
    return args.batch or batch, args.samples or samples, args.epochs or epochs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_augment(x: torch.Tensor) -> torch.Tensor:
    """anchor_gpu.py's random crop with 4-pixel reflect pad + horizontal flip, on the device."""
    n = x.shape[0]
    x = F.pad(x, (4, 4, 4, 4), mode="reflect")
    i = torch.randint(0, 9, (n,), device=x.device)
    j = torch.randint(0, 9, (n,), device=x.device)
    ar = torch.arange(32, device=x.device)
    rows = (i[:, None] + ar)[:, None, :, None].expand(n, x.shape[1], 32, 40)
    x = torch.gather(x, 2, rows)
    cols = (j[:, None] + ar)[:, None, None, :].expand(n, x.shape[1], 32, 32)
    x = torch.gather(x, 3, cols)
    flip = torch.rand(n, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def plain_loop(cfg: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The anchor's loop on the model trainlib builds for `cfg`; one warm-up pass, then timed passes."""
    parts = build_parts(validate({**cfg, "visuals": {"enabled": False}, "diagnose": {"enabled": False}}))
    model, style = parts.model, cfg["train"]
    bf16 = style["precision"] == "bf16"
    params = [{"params": list(model.parameters())}]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4, **fused_kernel(params))
    step_model = compiled(model, style["compile"])
    crit = torch.nn.CrossEntropyLoss()
    train = parts.data.train
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    xg = ((train.images.float() / 255 - mean) / std).to(device)
    yg = torch.as_tensor(train.labels).to(device)
    batch, n = cfg["batch_size"], len(yg)

    def one_pass() -> torch.Tensor:
        perm = torch.randperm(n, device=device)
        loss = torch.zeros((), device=device)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            x = device_augment(xg[idx])
            if style["channels_last"]:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = crit(step_model(x), yg[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return loss

    model.train()
    start = time.perf_counter()
    one_pass()
    sync(device)
    warmup_s = time.perf_counter() - start
    rates = []
    for _ in range(cfg["epochs"] - 1):
        start = time.perf_counter()
        last = one_pass()
        float(last.detach())
        rates.append(n / (time.perf_counter() - start))
    return {"img_per_s": round(statistics.median(rates), 1), "warmup_s": round(warmup_s, 2)}


def trainlib_epochs(cfg: dict[str, Any]) -> dict[str, Any]:
    reports: list[tuple[float, dict[str, float]]] = []
    start = time.perf_counter()
    run(cfg, observers=[EpochObserver(lambda r: reports.append((time.perf_counter(), r.metrics)))], progress=False,
        echo=lambda line: None)
    samples = round(cfg["data"]["num_samples"] * 0.8)
    ends = [start] + [t for t, _ in reports]
    wall = [samples / (b - a) for a, b in zip(ends[1:], ends[2:])]
    first = reports[0][1]
    return {"img_per_s": round(statistics.median(m["time/img_per_s"] for _, m in reports[1:]), 1),
            "wall_img_per_s": round(statistics.median(wall), 1),
            "compile_s": round(first["time/compile_s"], 2) if "time/compile_s" in first else None,
            "first_epoch_s": round(ends[1] - ends[0], 2)}


def measure(model: str, style: str, device: torch.device, args) -> dict[str, Any]:
    """The three measurements, interleaved `repeats` times (plain, off, on, plain, ...) so that a
    slow spell of the machine hits all three alike; each keeps its median repeat by img/s."""
    row: dict[str, Any] = {"model": model, "style": style}
    batch, samples, epochs = sizes(model, device, args)
    repeats = args.repeats or (1 if device.type == "cuda" else 3)
    row.update(batch=batch, train_images=round(samples * 0.8), epochs=epochs, repeats=repeats)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        on = config(model, style, device, out, True, args)
        row["tracking_on"] = [name for name in ("mlflow", "tensorboard") if on["tracking"][name]]
        measurements = {"plain": lambda: plain_loop(config(model, style, device, out, False, args), device),
                        "trainlib_off": lambda: trainlib_epochs(config(model, style, device, out, False, args)),
                        "trainlib_on": lambda: trainlib_epochs(on)}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in measurements}
        for _ in range(repeats):
            for name, measure_one in measurements.items():
                try:
                    runs[name].append(measure_one())
                except Exception as exc:  # keep going: one failing measurement must not lose the others
                    runs[name].append({"error": f"{type(exc).__name__}: {str(exc)[:400]}"})
    for name, results in runs.items():
        failed = [r for r in results if "error" in r]
        row[name] = failed[0] if failed else median_run(results)
    if any("error" in row[name] for name in measurements):
        row["error"] = True
        return row
    plain = row["plain"]["img_per_s"]
    row["ratio_on"] = round(row["trainlib_on"]["img_per_s"] / plain, 3)
    row["ratio_off"] = round(row["trainlib_off"]["img_per_s"] / plain, 3)
    return row


def median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The repeat of median img/s, with every repeat's img/s alongside."""
    ranked = sorted(results, key=lambda r: r["img_per_s"])
    return {**ranked[(len(ranked) - 1) // 2], "repeats_img_per_s": [r["img_per_s"] for r in results]}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    by = {(r["model"], r["style"]): r for r in ok}
    out: dict[str, Any] = {"min_ratio_on": min((r["ratio_on"] for r in ok), default=None),
                           "min_ratio_off": min((r["ratio_off"] for r in ok), default=None),
                           "target_ratio": 0.95}
    out["all_ratios_meet_target"] = bool(ok) and all(min(r["ratio_on"], r["ratio_off"]) >= 0.95 for r in ok)
    if ("net", "fp32") in by:
        out["net_fp32_trainlib_on_img_per_s"] = by["net", "fp32"]["trainlib_on"]["img_per_s"]
    fp32 = by.get(("resnet34", "fp32"))
    for style in ("bf16_cl", "bf16_cl_compile"):
        if fp32 and ("resnet34", style) in by:
            out[f"resnet34_{style}_over_fp32_trainlib_on"] = round(
                by["resnet34", style]["trainlib_on"]["img_per_s"] / fp32["trainlib_on"]["img_per_s"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", nargs="+", default=["net", "resnet34"], choices=["net", "resnet34"])
    ap.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    ap.add_argument("--batch", type=int, help="override the batch size")
    ap.add_argument("--samples", type=int, help="override the fake dataset size (80%% train)")
    ap.add_argument("--epochs", type=int, help="override the epochs (>= 2: the first is warm-up)")
    ap.add_argument("--repeats", type=int, help="interleaved repeats of each measurement (default: 3 on CPU, 1 on CUDA)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows = []
    for model in args.models:
        for style in args.styles:
            rows.append(measure(model, style, device, args))
            print(json.dumps(rows[-1]), flush=True)
    meta = {"torch": torch.__version__, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "mlflow_installed": installed("mlflow"),
            "tensorboardX_installed": installed("tensorboardX")}
    result = {"meta": meta, "rows": rows, "summary": summary(rows)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
