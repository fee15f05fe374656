"""Fast in-memory path vs DataLoader path: images/s of the loader alone and of a training epoch.

Net (the seed's LeNet) on digits (1,437 train images, upscaled to 32x32) and on fake 32x32
10-class data, each with its dataset's default train pipeline (crop with padding [+ flip]
+ normalize). Both paths are built by trainlib's own `build_loaders`; the training epoch is
trainlib's `train_one_epoch`. Each figure is the best of --repeats timed epochs after one
warm-up epoch. Prints a table and one JSON line per measurement.

    PYTHONPATH=$PWD python bench/data_paths.py [--device cpu|cuda] [--threads 1] [--workers 0 2]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from trainlib.data import DATASETS
from trainlib.data.datasets import build_dataset
from trainlib.data.loaders import build_loaders
from trainlib.engine import train_one_epoch
from trainlib.models import build_model
from trainlib.schedulers import build_scheduler


def dataset(name: str, fake_samples: int):
    params = {"num_samples": fake_samples} if name == "fake" else {}
    entry = DATASETS.get(name)
    return build_dataset({"name": name, **DATASETS.validate(name, params)}), entry.meta["transforms"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_rate(epoch, images: int, device: torch.device, repeats: int) -> float:
    epoch()  # warm-up: first-touch allocations, cudnn autotune, worker start
    rates = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        epoch()
        sync(device)
        rates.append(images / (time.perf_counter() - start))
    return max(rates)


def measure(name: str, mode: str, workers: int, args, device: torch.device) -> dict:
    data, specs = dataset(name, args.fake_samples)
    torch.manual_seed(0)
    loaders = build_loaders(data, specs, mode=mode, batch_size=args.batch_size, num_workers=workers,
                            generator=torch.Generator().manual_seed(0), device=device)
    train = loaders["train"]

    def loader_epoch() -> None:
        for x, y in train:
            x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    model = build_model({"name": "net"}, data.num_classes, data.in_channels).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    schedule = build_scheduler({"name": "constant"}, optimizer, 1, len(train))
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_epoch() -> None:
        train_one_epoch(model, train, loss_fn, optimizer, schedule, device, progress=False)

    n = len(data.train)
    return {"dataset": name, "mode": mode, "workers": workers, "train_images": n, "batch_size": args.batch_size,
            "loader_img_per_s": round(best_rate(loader_epoch, n, device, args.repeats)),
            "train_img_per_s": round(best_rate(train_epoch, n, device, args.repeats))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--fake-samples", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[0], help="DataLoader worker counts to time")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for name in ("digits", "fake"):
        fast = measure(name, "memory", 0, args, device)
        rows.append(fast)
        print(json.dumps(fast), flush=True)
        for workers in args.workers:
            slow = measure(name, "dataloader", workers, args, device)
            slow["fast_loader_x"] = round(fast["loader_img_per_s"] / slow["loader_img_per_s"], 1)
            slow["fast_train_x"] = round(fast["train_img_per_s"] / slow["train_img_per_s"], 2)
            rows.append(slow)
            print(json.dumps(slow), flush=True)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"\n{device_name}, torch {torch.__version__}, batch {args.batch_size}")
    print(f"{'dataset':8} {'path':18} {'loader img/s':>13} {'train img/s':>12} {'fast x (loader, train)':>24}")
    for r in rows:
        path = "memory" if r["mode"] == "memory" else f"dataloader w={r['workers']}"
        ratio = f"{r['fast_loader_x']}x, {r['fast_train_x']}x" if "fast_loader_x" in r else ""
        print(f"{r['dataset']:8} {path:18} {r['loader_img_per_s']:>13,} {r['train_img_per_s']:>12,} {ratio:>24}")


if __name__ == "__main__":
    main()
