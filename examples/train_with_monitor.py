"""Train a small CNN with the default dataprops callbacks watching the data and the network.

``callbacks=default_callbacks()`` adds DatasetPropertiesMonitor (d_data, K_F at fit start),
RepresentationIDMonitor (d_repr every epoch), RobustnessMonitor (FGSM/PGD every 5 epochs) and
ScalingForecastMonitor (the scaling-law forecast). A source without a validation split (the
default digits) is split 85/15, so that validation never sees training images.

Runs anywhere in under a minute on a CPU with the default data (scikit-learn's bundled digits;
about 10 s on two cores).
W&B runs offline by default (``wandb sync`` uploads the run later); ``--wandb-mode disabled``
turns it off and ``--wandb-mode online`` logs live.

    python examples/train_with_monitor.py
    python examples/train_with_monitor.py --data ../shared/data/medmnist/pneumoniamnist.npz
    python examples/train_with_monitor.py --data /usr/share/datasets/fashion-mnist --max-train 10000
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_dataprops import RepresentationIDMonitor, default_callbacks
from lightning_dataprops.data import load_source, sample_dataset


class SmallCNN(pl.LightningModule):
    """Two conv blocks and a linear head; d_repr is measured on the layer feeding the head."""

    def __init__(self, channels: int, n_classes: int, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Linear(32 * 4, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def _loss(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.log(f"{stage}_loss", loss, prog_bar=True)
        self.log(f"{stage}_acc", (logits.argmax(1) == y).float().mean(), prog_bar=stage == "val")
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._loss(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._loss(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", default=None, help="MedMNIST-style .npz, Fashion-MNIST folder, or image folder"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--max-train", type=int, default=None, help="stratified subsample of the training split"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--wandb-mode", choices=["offline", "online", "disabled"], default="offline"
    )
    parser.add_argument("--project", default="lightning-dataprops-example")
    parser.add_argument("--output", default="runs", help="folder for W&B files and checkpoints")
    return parser.parse_args(argv)


def _split(data_source: str | None, split: str, train: Tensor) -> TensorDataset | None:
    """The source's own ``split``, or ``None`` when it has none (or returns the training data)."""
    try:
        loaded = load_source(data_source, split=split)
    except ValueError:
        return None
    if loaded.inputs.shape == train.shape and torch.equal(loaded.inputs, train):
        return None  # e.g. scikit-learn's digits: one set for every split
    return TensorDataset(loaded.inputs, loaded.targets)


def main(argv: list[str] | None = None) -> pl.Trainer:
    args = parse_args(argv)
    pl.seed_everything(args.seed, verbose=False)
    loaded = load_source(args.data, split="train")
    print(loaded.description)
    train = sample_dataset(
        loaded.inputs, loaded.targets, max_samples=args.max_train, seed=args.seed
    )
    assert train.targets is not None, "the example trains a classifier: labelled data"
    train_set: Dataset[tuple[Tensor, ...]] = TensorDataset(train.inputs, train.targets)
    val_set: Dataset[tuple[Tensor, ...]] | None = _split(args.data, "val", loaded.inputs) or _split(
        args.data, "test", loaded.inputs
    )
    if val_set is None:
        generator = torch.Generator().manual_seed(args.seed)
        train_set, val_set = torch.utils.data.random_split(
            train_set, [0.85, 0.15], generator=generator
        )
    n_classes = int(loaded.targets.max()) + 1
    model = SmallCNN(channels=loaded.inputs.shape[1], n_classes=n_classes)

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    loggers: list = []
    if args.wandb_mode != "disabled":
        from lightning.pytorch.loggers import WandbLogger

        os.environ.setdefault("WANDB_SILENT", "true")
        loggers.append(
            WandbLogger(
                project=args.project, save_dir=str(output), offline=args.wandb_mode == "offline"
            )
        )
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="auto",
        devices=1,
        logger=loggers or False,
        default_root_dir=str(output),
        callbacks=default_callbacks(seed=args.seed),
        log_every_n_steps=10,
    )
    trainer.fit(
        model,
        train_dataloaders=DataLoader(train_set, batch_size=args.batch_size, shuffle=True),
        val_dataloaders=DataLoader(val_set, batch_size=256),
    )
    print("\nMeasured by the dataprops callbacks (values held after the last epoch):")
    for name, value in sorted(trainer.callback_metrics.items()):
        if name.startswith("dataprops/") and not name.startswith("dataprops/time"):
            print(f"  {name:45s} {float(value):.4g}")
    # d_repr is measured on the epochs the overhead budget allows (every epoch on a long fit):
    # its history holds each one.
    for callback in getattr(trainer, "callbacks", []):
        if isinstance(callback, RepresentationIDMonitor):
            for row in callback.history:
                print(f"  d_repr of {row['layer']!r} at epoch {row['epoch']}: {row['d_repr']:.4g}")
    for logger in loggers:
        logger.experiment.finish()  # flush and close the run (a script should not leave it open)
    if args.wandb_mode == "offline":
        print(f"\nW&B run written offline under {output / 'wandb'}; upload it with `wandb sync`.")
    return trainer


if __name__ == "__main__":
    main()
