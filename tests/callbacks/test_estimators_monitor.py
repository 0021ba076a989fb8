"""DatasetPropertiesMonitor logs every estimator, their spread, and warns once when they
disagree, in tiny real fits."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lightning_dataprops import dataset_properties, names, sample_dataset
from lightning_dataprops.callbacks import (
    DataPropsOptions,
    DatasetPropertiesMonitor,
    EstimatorsDisagreeWarning,
)
from tests.integration.lightning_models import TensorDataModule, TinyCNN, trainer


def _fit(x: torch.Tensor, y: torch.Tensor, tmp_path: Path, estimators: tuple[str, ...]) -> tuple:
    monitor = DatasetPropertiesMonitor(
        DataPropsOptions(seed=1), max_samples=400, k=10, estimators=estimators
    )
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(n_classes=10), datamodule=TensorDataModule(x, y))
    sample = sample_dataset(torch.utils.data.TensorDataset(x, y), max_samples=400, seed=1)
    props = dataset_properties(sample.inputs, sample.targets, k=10, estimators=estimators)
    disagree = [w for w in caught if issubclass(w.category, EstimatorsDisagreeWarning)]
    return fit, props, disagree


def test_estimators_and_their_spread_are_logged_with_one_warning(
    mnist: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    x, y = mnist[0][:800], mnist[1][:800]
    fit, props, disagree = _fit(x, y, tmp_path, ("gride", "abid"))
    assert props.spread is not None
    for name in ("gride", "abid", "twonn"):
        logged = float(fit.callback_metrics[names.d_data_estimate(name)])
        assert logged == pytest.approx(props.estimates[name].value, rel=1e-5)
    logged_spread = float(fit.callback_metrics[names.D_DATA_SPREAD])
    assert logged_spread == pytest.approx(props.spread.relative, rel=1e-5)
    # Digits: the angle statistic reads far below the distance ratios, beyond their noise.
    assert props.spread.disagree
    assert len(disagree) == 1 and "abid" in str(disagree[0].message)


def test_no_warning_when_the_estimators_agree(
    mnist: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    x, y = mnist[0][:800], mnist[1][:800]
    fit, props, disagree = _fit(x, y, tmp_path, ())
    assert props.spread is not None and set(props.spread.values) == {"mle", "twonn"}
    assert props.spread.disagree is False and disagree == []
    assert float(fit.callback_metrics[names.D_DATA_SPREAD]) == pytest.approx(
        props.spread.relative, rel=1e-5
    )


def test_an_estimators_note_reaches_the_logger(
    mnist: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    """The calibrated estimator says when its value needs a caveat (here: 400 samples, below
    its table); the fit's loggers get that note beside the value, not the value alone."""
    x, y = mnist[0][:800], mnist[1][:800]
    monitor = DatasetPropertiesMonitor(DataPropsOptions(seed=1), max_samples=400, k=20)
    logger = CSVLogger(tmp_path, name="csv")
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1, logger=logger)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit.fit(TinyCNN(n_classes=10), datamodule=TensorDataModule(x, y))
    sample = sample_dataset(torch.utils.data.TensorDataset(x, y), max_samples=400, seed=1)
    note = dataset_properties(sample.inputs, sample.targets, k=20).estimates["calibrated"].note
    assert note is not None and "n=400 is outside the calibrated sample sizes" in note
    findings = json.loads((Path(logger.log_dir) / "dataprops" / "findings.json").read_text())
    body = findings["estimator_notes"]["body"]
    assert f"- {names.d_data_estimate('calibrated')}: {note}" in body.splitlines()
    assert float(fit.callback_metrics[names.d_data_estimate("calibrated")]) > 0
