"""The ModelCheckpoint and EarlyStopping recipes of docs/callbacks.md, in real fits.

A name with ``/`` in a checkpoint file name makes folders; a periodic metric (d_repr every 2
epochs) is in ``callback_metrics`` only on the epochs that measured it, so
``EarlyStopping(strict=False, check_on_train_epoch_end=True)`` checks exactly those epochs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from lightning_dataprops import names
from lightning_dataprops.callbacks import RepresentationIDMonitor
from lightning_dataprops.data import load_digits_data
from tests.integration.lightning_models import TensorDataModule, TinyCNN, trainer

LAYER = "features.5"
D_REPR = names.d_repr(LAYER)


def _data() -> TensorDataModule:
    digits = load_digits_data()
    return TensorDataModule(digits.inputs[:480], digits.targets[:480], batch_size=32)


class _Seen(pl.Callback):
    """Records, at each epoch end after the others, whether the monitored value is there."""

    def __init__(self) -> None:
        self.present: list[bool] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.present.append(D_REPR in trainer.callback_metrics)


def _fit(tmp_path: Path, *extra: Any, epochs: int) -> tuple[pl.Trainer, RepresentationIDMonitor]:
    # Default options, overhead budget on: a monitored value is measured on schedule anyway.
    monitor = RepresentationIDMonitor(layers=[LAYER], every_n_epochs=2, max_samples=100)
    saves = any(isinstance(callback, ModelCheckpoint) for callback in extra)
    fit = trainer(tmp_path, [monitor, *extra], max_epochs=epochs, enable_checkpointing=saves)
    fit.fit(TinyCNN(n_classes=10), _data())
    return fit, monitor


def test_checkpoint_named_after_a_d_repr_value_is_one_flat_file(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=folder,
        monitor=D_REPR,
        mode="max",
        every_n_epochs=2,  # the monitor's schedule: the value exists on those epochs
        save_top_k=-1,
        filename="epoch{epoch}-drepr{" + D_REPR + ":.2f}",
        auto_insert_metric_name=False,
    )
    _, monitor = _fit(tmp_path, checkpoint, epochs=4)
    files = sorted(folder.rglob("*"))
    assert all(path.parent == folder for path in files), f"nested folders: {files}"
    expected = [f"epoch{row['epoch']}-drepr{row['d_repr']:.2f}.ckpt" for row in monitor.history]
    assert [path.name for path in files] == expected
    assert len(expected) == 2 and all(
        re.fullmatch(r"epoch[13]-drepr\d+\.\d\d\.ckpt", e) for e in expected
    )


def test_default_checkpoint_name_of_a_slashed_metric_makes_folders(tmp_path: Path) -> None:
    """Why the recipe is needed: Lightning's automatic ``name=value`` puts the ``/`` in a path."""
    folder = tmp_path / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=folder, monitor=D_REPR, every_n_epochs=2, filename="{" + D_REPR + ":.2f}"
    )
    _fit(tmp_path, checkpoint, epochs=2)
    (saved,) = folder.rglob("*.ckpt")
    assert saved.parent != folder and saved.relative_to(folder).parts[:2] == ("dataprops", "d_repr")


def test_early_stopping_checks_only_the_epochs_that_measured(tmp_path: Path) -> None:
    # After the first check every check is "no improvement" (min_delta is huge), so patience=1
    # stops at the second check: epoch 3 when unmeasured epochs are skipped, epoch 2 had a stale
    # value of epoch 1 been re-read.
    stopping = EarlyStopping(
        monitor=D_REPR,
        mode="max",
        patience=1,
        min_delta=1e6,
        strict=False,
        check_on_train_epoch_end=True,
    )
    seen = _Seen()
    fit, monitor = _fit(tmp_path, stopping, seen, epochs=8)
    assert seen.present == [False, True, False, True]
    assert stopping.stopped_epoch == 3 and fit.current_epoch == 4
    assert [row["epoch"] for row in monitor.history] == [1, 3]


def test_strict_early_stopping_on_a_periodic_metric_fails_on_an_unmeasured_epoch(
    tmp_path: Path,
) -> None:
    stopping = EarlyStopping(monitor=D_REPR, strict=True, check_on_train_epoch_end=True)
    with pytest.raises(RuntimeError, match="not available"):
        _fit(tmp_path, stopping, epochs=2)
