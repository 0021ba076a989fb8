"""The fixed training recipe as a LightningModule, and one seeded CPU training run."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from .tasks import Config

TEST_LOSS = "test_loss"
TEST_ACC = "test_acc"
TRAIN_LOSS = "train_loss"
EVAL_BATCH = 500


class SmallCNN(pl.LightningModule):
    """Two conv blocks, a 64-unit ReLU embedding (the penultimate layer ``embed``) and a head.

    ``image_shape`` is ``(channels, height, width)`` of the inputs: 1 channel for the grayscale
    tasks, 3 for RGB photos; the two 2x2 poolings leave ``height // 4 x width // 4`` maps.

    Trained with cross-entropy and Adam. Its validation loop runs once, after the last step, over
    two loaders: the task's fixed test set (logs ``test_loss`` and ``test_acc``) and the training
    set (logs ``train_loss``), both exact means over their sets, in eval mode.
    """

    def __init__(
        self, image_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 2, lr: float = 1e-3
    ) -> None:
        super().__init__()
        self.lr = lr
        channels, height, width = image_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.embed = nn.Sequential(nn.Linear(32 * (height // 4) * (width // 4), 64), nn.ReLU())
        self.head = nn.Linear(64, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(self.features(x)))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(
        self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        x, y = batch
        logits = self(x)
        size = len(y)  # weights the epoch mean by batch size: the exact mean over the set
        loss = F.cross_entropy(logits, y)
        if dataloader_idx == 0:
            self.log(TEST_LOSS, loss, batch_size=size, add_dataloader_idx=False)
            accuracy = (logits.argmax(1) == y).float().mean()
            self.log(TEST_ACC, accuracy, batch_size=size, add_dataloader_idx=False)
        else:
            self.log(TRAIN_LOSS, loss, batch_size=size, add_dataloader_idx=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def train_loader(x: Tensor, y: Tensor, batch_size: int, seed: int) -> DataLoader:
    """Reshuffled epochs of full batches, the order drawn from a generator seeded by ``seed``."""
    dataset = TensorDataset(x, y)
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    return DataLoader(dataset, batch_size=min(batch_size, len(y)), sampler=sampler, drop_last=True)


def fit(
    x: Tensor,
    y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    cfg: Config,
    seed: int,
    callbacks: list[Callback],
) -> tuple[pl.Trainer, SmallCNN]:
    """Train a fresh :class:`SmallCNN` for ``cfg.steps`` steps on ``(x, y)``, on the CPU.

    Validation (the test set, then the training set) runs once, after the last step, inside the
    last epoch, so the callbacks that measure at the end of that epoch see the final weights.
    """
    torch.manual_seed(seed)
    channels, height, width = x.shape[1:]
    model = SmallCNN((int(channels), int(height), int(width)), n_classes=2, lr=cfg.lr)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=cfg.steps,
        max_epochs=-1,
        val_check_interval=cfg.steps,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    evaluation = [
        DataLoader(TensorDataset(test_x, test_y), batch_size=EVAL_BATCH),
        DataLoader(TensorDataset(x, y), batch_size=EVAL_BATCH),
    ]
    trainer.fit(model, train_loader(x, y, cfg.batch_size, seed), evaluation)
    return trainer, model
