"""Cost of the default dataprops callbacks, and whether their time ledger tells it.

A small CNN trained on 28x28 Fashion-MNIST images (Debian's dataset-fashion-mnist) on the CPU,
same seed, same data, fits without and with ``default_callbacks()`` at their default settings,
alternating. Reported per condition (quiet, then with ``--background-load N`` busy processes):

* epoch time from one epoch's start to the next (so it includes the end-of-epoch d_repr work),
  the first epoch of each fit left out, and the fit-start cost (the monitor's own timer);
* the whole fit's wall time with and without the callbacks, their difference, and the
  callbacks' own ledger (``overhead_seconds(trainer)``: everything their hooks cost): the
  two should agree within a few percentage points of the fit.

    python benchmarks/bench_monitor.py [--epochs 4] [--n 5000] [--repeats 2] [--background-load 2]

The defaults keep it to a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_dataprops import default_callbacks, names
from lightning_dataprops.callbacks import overhead_seconds
from lightning_dataprops.data import load_fashion_mnist, sample_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dataset_properties import cpu_description
from paired_fits import (
    LEDGER_HEADER,
    Condition,
    Fit,
    StepClock,
    add_condition_arguments,
    bench_trainer,
    measure_conditions,
)


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


def fit(data: TensorDataset, epochs: int, monitor: list[pl.Callback] | None) -> Fit:
    pl.seed_everything(0, verbose=False)
    clock, steps = EpochClock(), StepClock()
    callbacks: list[pl.Callback] = [clock, steps, *(monitor or [])]
    trainer = bench_trainer(epochs, callbacks, limit_val_batches=0)
    started = time.perf_counter()
    trainer.fit(BenchCNN(), DataLoader(data, batch_size=128, shuffle=True))
    wall = time.perf_counter() - started
    metrics = trainer.callback_metrics
    fit_start = float(metrics.get(names.seconds("fit_start"), torch.tensor(0.0)))
    ledger = overhead_seconds(trainer)
    return Fit(wall, ledger, steps.seconds, clock.epochs, fit_start)


def epoch_row(condition: Condition) -> str:
    """Epoch times without and with the callbacks (each fit's first epoch left out)."""
    plain_epochs = [t for f in condition.plain for t in f.epochs[1:]]
    monitored_epochs = [t for f in condition.monitored for t in f.epochs[1:]]
    base = statistics.median(plain_epochs)
    with_monitor = statistics.median(monitored_epochs)
    fit_start = statistics.median(f.fit_start for f in condition.monitored)
    return (
        f"| {condition.label} | {', '.join(f'{t:.2f}' for t in plain_epochs)} | "
        f"{', '.join(f'{t:.2f}' for t in monitored_epochs)} | {base:.2f} / {with_monitor:.2f} "
        f"| {100 * (with_monitor - base) / base:+.1f}% | {fit_start:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each kind")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    add_condition_arguments(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_fashion_mnist()
    sample = sample_dataset(loaded.inputs, loaded.targets, max_samples=args.n, seed=0)
    assert sample.targets is not None, "Fashion-MNIST has labels"
    data = TensorDataset(sample.inputs, sample.targets)
    fit(data, 1, None)  # warm-up: imports, allocator, thread pools
    results = measure_conditions(
        lambda monitored: fit(
            data, args.epochs, default_callbacks(progress=False) if monitored else None
        ),
        args.repeats,
        args.background_load,
        quiet=not args.no_quiet,
    )
    print(
        f"machine: {cpu_description()}, {os.cpu_count()} cores, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}; measured {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"data: {len(data)} Fashion-MNIST images 1x28x28, batch 128, {args.epochs} epochs, "
        f"{args.repeats} alternating fits of each kind per condition"
    )
    print()
    print(
        "| condition | epochs without (s) | epochs with default_callbacks() (s) "
        "| median without / with (s) | per epoch | fit start (s) |"
    )
    print("|---|---|---|---|---|---|")
    for condition in results:
        print(epoch_row(condition))
    print()
    print(LEDGER_HEADER)
    for condition in results:
        print(condition.ledger_row())


if __name__ == "__main__":
    main()
