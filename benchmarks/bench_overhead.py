"""Fit time with and without the default callbacks, on the CIFAR-like model of issue 11.

A small ResNet-like CNN trained for 5 epochs on 4,000 CIFAR-10 RGB photos (1,000 held-out
photos for validation), with ``Normalize(mean, std)`` applied inside the Dataset, as most
pipelines do. The same seed and data for both kinds of run; runs alternate (without, with,
without, with, ...) so that load changes on a shared machine hit both alike, after one warm-up
fit that is not counted. Per pair of fits: the wall-clock difference and the callbacks' own
ledger (``overhead_seconds(trainer)``, logged as ``dataprops/time/total``), in percent of the
plain fit, and their gap (see ``paired_fits.py``); quiet, and with ``--background-load N`` busy
processes as well. The ledger of the last fit is broken down by stage.

    python benchmarks/bench_overhead.py [--repeats 4] [--epochs 5] [--n 4000] [--background-load 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lightning_dataprops import default_callbacks, names
from lightning_dataprops.callbacks import overhead_seconds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dataset_properties import cpu_description
from paired_fits import (
    LEDGER_HEADER,
    Fit,
    StepClock,
    add_condition_arguments,
    bench_trainer,
    measure_conditions,
)

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "cifar10.npz"
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


class Normalize:
    """torchvision-style ``Normalize`` (``.mean``/``.std``), so the probe can find it."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean, self.std = mean, std
        self._mean = torch.tensor(mean)[:, None, None]
        self._std = torch.tensor(std)[:, None, None]

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self._mean) / self._std


class Photos(Dataset[tuple[Tensor, int]]):
    """uint8 HWC photos, normalised on access like a torchvision dataset with a transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        self.labels = labels.astype(np.int64)
        self.transform = Normalize(MEAN, STD)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.transform(self.images[index].float() / 255.0), int(self.labels[index])


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class SmallResNet(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            Block(32),
            nn.MaxPool2d(2),
            Block(32),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(32, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=2e-3)


def fit(train: Photos, val: Photos, epochs: int, monitored: bool) -> Fit:
    pl.seed_everything(0, verbose=False)
    clock = StepClock()
    callbacks = [clock, *(default_callbacks(progress=False) if monitored else [])]
    trainer = bench_trainer(epochs, callbacks)
    started = time.perf_counter()
    trainer.fit(
        SmallResNet(),
        DataLoader(train, batch_size=64, shuffle=True),
        DataLoader(val, batch_size=256),
    )
    elapsed = time.perf_counter() - started
    if not monitored:
        return Fit(elapsed, 0.0, clock.seconds)
    LAST_LEDGER.clear()
    LAST_LEDGER.update(
        (key, float(value))
        for key, value in trainer.callback_metrics.items()
        if key.startswith((f"{names.PREFIX}/time", f"{names.PREFIX}/postponed"))
    )
    return Fit(elapsed, overhead_seconds(trainer), clock.seconds)


LAST_LEDGER: dict[str, float] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=4, help="pairs of fits (alternating order)")
    add_condition_arguments(parser)
    args = parser.parse_args()
    with np.load(CIFAR) as data:
        images, labels = data["train_images"], data["train_labels"].ravel()
        val_images, val_labels = data["test_images"][:1000], data["test_labels"][:1000].ravel()
    chosen = np.random.default_rng(0).permutation(len(labels))[: args.n]
    train, val = Photos(images[chosen], labels[chosen]), Photos(val_images, val_labels.ravel())
    fit(train, val, 1, monitored=True)  # warm-up: allocators, threads, first-call costs
    results = measure_conditions(
        lambda monitored: fit(train, val, args.epochs, monitored),
        args.repeats,
        args.background_load,
        quiet=not args.no_quiet,
    )
    print(
        f"machine: {cpu_description()}, {os.cpu_count()} cores, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}; measured {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"data: {args.n} CIFAR-10 photos 3x32x32 (Normalize in the Dataset), 1000 for "
        f"validation, batch 64, {args.epochs} epochs, {args.repeats} alternating pairs of fits "
        "per condition"
    )
    print()
    print("| condition | fits without (s) | fits with (s) | added (mean of the pairs) |")
    print("|---|---|---|---|")
    for condition in results:
        print(
            f"| {condition.label} | {', '.join(f'{f.wall:.1f}' for f in condition.plain)} | "
            f"{', '.join(f'{f.wall:.1f}' for f in condition.monitored)} | "
            f"{statistics.mean(condition.differences):+.1f}% |"
        )
    print()
    print(LEDGER_HEADER)
    for condition in results:
        print(condition.ledger_row())
    print()
    print("The callbacks' ledger (last fit with them):")
    for key, value in sorted(LAST_LEDGER.items()):
        print(f"- {key}: {value:.3f}")


if __name__ == "__main__":
    main()
