"""Cost of the default dataprops callbacks: epoch time with and without them, fit-start cost.

A small CNN trained on 10,000 28x28 Fashion-MNIST images (Debian's dataset-fashion-mnist) on
the CPU, same seed, same data, one run without and one with ``default_callbacks()`` at their
default settings. Epoch time is measured from one epoch's start to the next (so it includes the
monitor's end-of-epoch d_repr work); the fit-start cost is the monitor's own timer.

    python benchmarks/bench_monitor.py [--epochs 6] [--n 10000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import time
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_dataprops import default_callbacks, names
from lightning_dataprops.data import load_fashion_mnist, sample_dataset


class BenchCNN(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64),
            nn.ReLU(),
        )
        self.head = nn.Linear(64, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class EpochClock(pl.Callback):
    """Wall time from each epoch's start to the next epoch's start (or the end of training)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.end = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.end = time.perf_counter()

    @property
    def epochs(self) -> list[float]:
        marks = [*self.starts, self.end]
        return [b - a for a, b in itertools.pairwise(marks)]


def fit(
    data: TensorDataset, epochs: int, monitor: list[pl.Callback] | None
) -> tuple[list[float], float]:
    pl.seed_everything(0, verbose=False)
    clock = EpochClock()
    callbacks: list[pl.Callback] = [clock, *(monitor or [])]
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=callbacks,
    )
    trainer.fit(BenchCNN(), DataLoader(data, batch_size=128, shuffle=True))
    fit_start = float(trainer.callback_metrics.get(names.seconds("fit_start"), torch.tensor(0.0)))
    return clock.epochs, fit_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each kind")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_fashion_mnist()
    sample = sample_dataset(loaded.inputs, loaded.targets, max_samples=args.n, seed=0)
    assert sample.targets is not None, "Fashion-MNIST has labels"
    data = TensorDataset(sample.inputs, sample.targets)
    plain: list[float] = []
    monitored: list[float] = []
    fit_starts: list[float] = []
    # Alternate the two kinds so that load changes on a shared machine hit both alike; the
    # first epoch of each run warms up allocators and threads and is left out.
    for _ in range(args.repeats):
        epochs, _ = fit(data, args.epochs, None)
        plain += epochs[1:]
        epochs, fit_start = fit(data, args.epochs, default_callbacks(progress=False))
        monitored += epochs[1:]
        fit_starts.append(fit_start)
    base = statistics.median(plain)
    with_monitor = statistics.median(monitored)
    worst = max(monitored)
    fit_start = statistics.median(fit_starts)
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(
        f"data: {len(data)} Fashion-MNIST images 1x28x28, batch 128, {args.epochs} epochs, "
        f"{args.repeats} alternating runs each"
    )
    print()
    print(
        "| run | epoch times after the first (s) | median epoch (s) | overhead per epoch "
        "| fit start (s) |"
    )
    print("|---|---|---|---|---|")
    print(f"| without monitor | {', '.join(f'{t:.2f}' for t in plain)} | {base:.2f} | | |")
    print(
        f"| default_callbacks() | {', '.join(f'{t:.2f}' for t in monitored)} | {with_monitor:.2f} "
        f"| {100 * (with_monitor - base) / base:+.1f}% (slowest epoch "
        f"{100 * (worst - base) / base:+.1f}%) | {fit_start:.2f} "
        f"({100 * fit_start / base:.0f}% of an epoch) |"
    )


if __name__ == "__main__":
    main()
