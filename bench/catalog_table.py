"""Valid accuracy and time of the short digits run of every loss and every optimizer (markdown table).

The runs are the slow tests' (tests/trainlib/catalog_runs.py: Net, digits, 2 or 3 epochs,
batch 64, no augmentation), one process, CPU. Usage:

    PYTHONPATH=$PWD python bench/catalog_table.py [--threads N] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.trainlib.catalog_runs import ACC_BAR, EPOCHS, EPOCHS_FOR, optimizer_spec, short_run_config, train  # noqa: E402


def rows(out_dir: Path) -> list[str]:
    from trainlib.losses import list_losses
    from trainlib.optimizers import OPTIMIZERS

    lines = []
    runs = [("loss", name, {"loss": name}) for name in list_losses()]
    runs += [("optimizer", e.name, {"optimizer": optimizer_spec(e.name)})
             for e in OPTIMIZERS.entries() if not e.refused]
    for family, name, choice in runs:
        config = short_run_config(out_dir, **choice)
        result = train(config)
        lines.append(f"| {family} | {name} | {config['optimizer']} | {result['valid/best_acc']:.1%} | "
                     f"{result['train_losses'][0]:.3f} -> {result['train_losses'][-1]:.3f} | {result['seconds']:.1f} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    more = ", ".join(f"{name} {epochs}" for name, epochs in EPOCHS_FOR.items())
    header = [f"Net on digits, {EPOCHS} epochs ({more}), batch 64, CPU threads {torch.get_num_threads()}; "
              f"test bar: valid acc >= {ACC_BAR:.0%}", "",
              "| family | name | optimizer | best valid acc | train loss epoch 1 -> last | seconds |",
              "|---|---|---|---|---|---|"]
    print("\n".join(header), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        table = header + rows(Path(tmp))
    if args.out:
        args.out.write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
