"""Unlabelled samples (class id -1) in real fits: the fit-start K_F measures the labelled rows
only, the robustness probe attacks labelled rows only, and setup checks the class-id range."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from lightning_dataprops import dataset_properties, measure_dataset, names, sample_dataset
from lightning_dataprops.callbacks import DatasetPropertiesMonitor, RobustnessMonitor
from lightning_dataprops.data.loaders import load_digits_data
from tests.conftest import brute_force_distances
from tests.integration.lightning_models import TensorDataModule, TinyCNN, trainer


class IgnoringCNN(TinyCNN):
    """TinyCNN whose loss ignores the unlabelled rows (``ignore_index=-1``), as users write it."""

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y, ignore_index=-1)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y, ignore_index=-1))


def _digits(fraction: float = 0.3) -> tuple[Tensor, Tensor]:
    data = load_digits_data()
    y = data.targets.clone()
    y[torch.rand(len(y), generator=torch.Generator().manual_seed(1)) < fraction] = -1
    return data.inputs, y


def test_fit_start_k_f_leaves_the_unlabelled_rows_out(tmp_path: Path) -> None:
    x, y = _digits()
    keep = y >= 0
    dist = brute_force_distances(x[keep])
    expected = 1.0 / float(dist.masked_fill(y[keep][:, None] == y[keep][None, :], math.inf).min())
    monitor = DatasetPropertiesMonitor(max_samples=None, k=10)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(IgnoringCNN(n_classes=10), datamodule=TensorDataModule(x, y))
    assert float(fit.callback_metrics[names.K_F]) == pytest.approx(expected, rel=1e-6)
    assert any(f"left out {int((~keep).sum())} of {len(y)}" in str(w.message) for w in caught)


def test_robustness_probe_attacks_labelled_rows_and_setup_checks_the_id_range(
    tmp_path: Path,
) -> None:
    x, y = _digits()
    monitor = RobustnessMonitor(every_n_epochs=1, max_samples=64, attacks={"fgsm": "fgsm"})
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    fit.fit(IgnoringCNN(n_classes=10), datamodule=TensorDataModule(x, y))
    assert monitor.batch is not None
    probe_targets = monitor.batch[1]
    assert 0 < len(probe_targets) < 64 and int(probe_targets.min()) >= 0
    assert names.adversarial("fgsm", "robust_acc") in fit.callback_metrics

    # A class id past the model's outputs is refused in setup, before the first step.
    too_large = y.clone()
    too_large[too_large >= 0] = 12
    too_large[:2] = torch.tensor([0, 1])
    small = RobustnessMonitor(every_n_epochs=1, max_samples=64, attacks={"fgsm": "fgsm"})
    fit = trainer(tmp_path, [small], max_epochs=1, limit_train_batches=1)
    with pytest.raises(ValueError, match=r"class ids 0\.\.12 but the model has 10 outputs"):
        fit.fit(IgnoringCNN(n_classes=10), datamodule=TensorDataModule(x, too_large))


def test_a_single_class_sample_still_gives_d_data_and_says_why_k_f_is_missing(
    pneumonia: tuple[Tensor, Tensor], tmp_path: Path
) -> None:
    """PneumoniaMNIST's training split is sorted by label: its first 500 images are all
    pneumonia (1), a subset a user takes as ``x[:500]``. The fit-start measurement keeps
    ``d_data`` (it needs no labels), leaves ``K_F`` out and warns why, instead of failing."""
    x, y = pneumonia
    x, y = x[:500], y[:500]
    assert set(y.tolist()) == {1}
    monitor = DatasetPropertiesMonitor(max_samples=None, k=10)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(n_classes=2), datamodule=TensorDataModule(x, y))
    expected = dataset_properties(x, k=10).d_data  # the same images without labels
    assert float(fit.callback_metrics[names.D_DATA]) == pytest.approx(expected, rel=1e-6)
    assert names.K_F not in fit.callback_metrics
    said = [str(w.message) for w in caught if "K_F is not measured" in str(w.message)]
    assert len(said) == 1 and "same label (1)" in said[0] and "sorted by label" in said[0]
    assert not any("failed and is disabled" in str(w.message) for w in caught)


def test_no_labelled_sample_gives_d_data_and_the_reason() -> None:
    x, _ = _digits()
    y = torch.full((len(x),), -1)
    report = measure_dataset(sample_dataset(x, y, max_samples=300), k=10)
    assert report.properties.label_sharpness_result is None and report.check is None
    assert report.check_skipped is not None and "unlabelled" in report.check_skipped
    assert math.isfinite(report.metrics()[names.D_DATA]) and names.K_F not in report.metrics()
