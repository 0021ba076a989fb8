"""A fit resumed from a resumed fit's checkpoint, with another logger type each time: the
fit-start report survives every checkpoint, without recomputation."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from lightning_dataprops import names
from lightning_dataprops.callbacks import DatasetPropertiesMonitor, MeasurementFailedWarning
from tests.integration.lightning_models import TensorDataModule, TinyCNN, trainer


def test_a_second_resume_with_another_logger_gets_the_first_report(
    pneumonia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    import lightning_dataprops.callbacks.dataset_properties as module

    x, y = pneumonia
    x, y = x[::6], y[::6]
    first = DatasetPropertiesMonitor()
    loggers: list[Any] = [TensorBoardLogger(tmp_path, name="a"), CSVLogger(tmp_path, name="b")]
    checkpoint = None
    fits = []
    for epochs, (monitor, logger) in enumerate(
        zip((first, DatasetPropertiesMonitor()), loggers, strict=True), start=1
    ):
        fit = trainer(
            tmp_path, [monitor], max_epochs=epochs, enable_checkpointing=True, logger=logger
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y), ckpt_path=checkpoint)
        assert fit.checkpoint_callback is not None
        checkpoint = fit.checkpoint_callback.best_model_path
        fits.append(fit)
        # From here on a measurement would be a recomputation.
        monkeypatch.setattr(module, "measure_dataset", _refuse)
    assert first.fit_start_state is not None

    third = DatasetPropertiesMonitor()
    logger = CSVLogger(tmp_path, name="c")
    fit3 = trainer(tmp_path, [third], max_epochs=3, enable_checkpointing=True, logger=logger)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit3.fit(TinyCNN(), datamodule=TensorDataModule(x, y), ckpt_path=checkpoint)
    assert not [w for w in caught if issubclass(w.category, MeasurementFailedWarning)]
    assert not third.recomputed and third.fit_start_state == first.fit_start_state
    resumed_step = fits[-1].global_step
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as table:
        rows = [row for row in csv.DictReader(table) if row.get(names.K_F)]
    assert [int(row["step"]) for row in rows] == [resumed_step]
    assert float(rows[0][names.K_F]) == pytest.approx(
        first.fit_start_state["metrics"][names.K_F], rel=1e-6
    )
    folder = Path(logger.log_dir) / "dataprops"
    assert (folder / "sharpest_pairs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    findings = json.loads((folder / "findings.json").read_text())
    assert findings["sharpest_pairs"]["step"] == resumed_step


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("fit-start properties were recomputed on resume")
