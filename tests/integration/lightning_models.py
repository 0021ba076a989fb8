"""Tiny Lightning models and data for real, seconds-long CPU training in tests."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_dataprops.callbacks import DataPropsOptions
from tests.residual_block import residual_features


class TinyCNN(pl.LightningModule):
    """Conv -> BatchNorm -> ReLU -> pool -> flatten -> dropout -> Linear head."""

    def __init__(
        self, channels: int = 1, n_classes: int = 2, lr: float = 0.05, batch_norm: bool = True
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1),
            nn.BatchNorm2d(8) if batch_norm else nn.Identity(),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Dropout(0.2),
        )
        self.head = nn.Linear(8 * 16, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = _unpack(batch)
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = _unpack(batch)
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def _unpack(batch: Any) -> tuple[Tensor, Tensor]:
    if isinstance(batch, dict):
        return batch["image"], batch["label"]
    return batch[0], batch[1]


class DictImages(Dataset):
    """Items as dicts ``{"image": x, "label": y, "id": i}``."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.x[index], "label": self.y[index], "id": index}


class TensorDataModule(pl.LightningDataModule):
    """Shuffled train loader and a val loader over in-memory tensors."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int = 64, as_dict: bool = False) -> None:
        super().__init__()
        self.x, self.y, self.batch_size, self.as_dict = x, y, batch_size, as_dict

    def _dataset(self, x: Tensor, y: Tensor) -> Dataset:
        return DictImages(x, y) if self.as_dict else TensorDataset(x, y)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._dataset(self.x, self.y), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._dataset(self.x[:128], self.y[:128]), batch_size=self.batch_size)


def binary_task(
    x: Tensor, y: Tensor, a: int, b: int, n: int | None = None
) -> tuple[Tensor, Tensor]:
    """Classes ``a`` (label 0) and ``b`` (label 1), at most ``n`` samples of each."""
    rows = torch.cat([(y == a).nonzero()[:n, 0], (y == b).nonzero()[:n, 0]])
    return x[rows], (y[rows] == b).long()


class TupleOutputCNN(TinyCNN):
    """``forward`` returns ``(logits, features)``: needs ``forward_fn=lambda m, x: m(x)[0]``."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        features = self.features(x)
        return self.head(features), features

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = _unpack(batch)
        loss = nn.functional.cross_entropy(self(x)[0], y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = _unpack(batch)
        self.log("val_loss", nn.functional.cross_entropy(self(x)[0], y))


class SharedReLUNet(TinyCNN):
    """An MLP whose one ``nn.ReLU`` runs twice per forward pass (after ``fc1`` and ``fc2``)."""

    def __init__(self, lr: float = 0.05) -> None:
        super().__init__(lr=lr)
        self.fc1 = nn.Linear(28 * 28, 32)
        self.fc2 = nn.Linear(32, 16)
        self.act = nn.ReLU()
        self.out = nn.Linear(16, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.act(self.fc2(self.act(self.fc1(x.flatten(1))))))


class FunctionalReLUNet(SharedReLUNet):
    """The head reads ``F.relu(fc2(...))``: an activation that no module hook sees."""

    def forward(self, x: Tensor) -> Tensor:
        return self.out(nn.functional.relu(self.fc2(self.act(self.fc1(x.flatten(1))))))


class WeightNormHeadNet(SharedReLUNet):
    """The head is ``weight_norm(nn.Linear)``: a module whose children are parametrizations."""

    def __init__(self, lr: float = 0.05) -> None:
        super().__init__(lr=lr)
        self.out = nn.utils.parametrizations.weight_norm(nn.Linear(16, 2))


class FunctionalHeadNet(SharedReLUNet):
    """The head is ``F.linear(features, self.w)``: a parameter of the LightningModule itself."""

    def __init__(self, lr: float = 0.05) -> None:
        super().__init__(lr=lr)
        del self.out
        self.w = nn.Parameter(torch.randn(2, 16) * 0.1)

    def forward(self, x: Tensor) -> Tensor:
        features = self.act(self.fc2(self.act(self.fc1(x.flatten(1)))))
        return nn.functional.linear(features, self.w)


class ResidualCNN(TinyCNN):
    """Conv -> BatchNorm -> ReLU(inplace=True) -> BasicBlock -> pool -> flatten -> head."""

    def __init__(self, lr: float = 0.05) -> None:
        super().__init__(lr=lr)
        self.features = residual_features()


def trainer(root: Any, callbacks: list[Any], **kwargs: Any) -> pl.Trainer:
    """A tiny CPU trainer: 2 epochs of 4 batches, no logger, no checkpoints, no progress bar."""
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "limit_train_batches": 4,
        "limit_val_batches": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
        "default_root_dir": str(root),
    }
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)


class CompilableCNN(TinyCNN):
    """TinyCNN without ``self.log`` in its steps.

    Lightning 2.6 with torch 2.13 cannot ``fit`` a ``torch.compile``d LightningModule that calls
    ``self.log`` in a step (dynamo fails inside ``LightningModule.log``, with or without any
    callback); this model is the largest one that such a fit accepts.
    """

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = _unpack(batch)
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        return None


ON_SCHEDULE = DataPropsOptions(overhead_budget=None)
"""Measure on schedule: tests that check every scheduled measurement switch the budget off."""


def fit_then_resume(
    root: Any,
    make_callbacks: Any,
    x: Tensor,
    y: Tensor,
    monkeypatch: Any,
    *,
    epochs: int = 2,
) -> tuple[pl.Trainer, list[Any], pl.Trainer, list[Any]]:
    """Fit one epoch with ``make_callbacks()`` and a checkpoint, then resume to ``epochs`` with
    fresh callbacks while the fit-start measurement refuses to run (it must be restored).

    Returns ``(first trainer, its callbacks, resumed trainer, its callbacks)``.
    """
    import warnings

    import lightning_dataprops.callbacks.dataset_properties as module
    from lightning_dataprops.callbacks import MeasurementFailedWarning

    first = make_callbacks()
    fit = trainer(root, first, max_epochs=1, enable_checkpointing=True)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert fit.checkpoint_callback is not None
    checkpoint = fit.checkpoint_callback.best_model_path

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fit-start properties were recomputed on resume")

    monkeypatch.setattr(module, "measure_dataset", refuse)
    second = make_callbacks()
    resumed = trainer(root, second, max_epochs=epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MeasurementFailedWarning)
        resumed.fit(TinyCNN(), datamodule=TensorDataModule(x, y), ckpt_path=checkpoint)
    return fit, first, resumed, second
