"""ScalingForecastMonitor: reads only trainer.callback_metrics; says clearly what is missing."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from torch.utils.data import TensorDataset

from lightning_dataprops import intrinsic_dimension, names, sample_dataset
from lightning_dataprops.callbacks import (
    DatasetPropertiesMonitor,
    RepresentationIDMonitor,
    ScalingForecastMonitor,
)
from tests.hook_oracle import cloned
from tests.integration.lightning_models import ON_SCHEDULE, TensorDataModule, TinyCNN, trainer


def _value(fit, name: str) -> float:  # type: ignore[no-untyped-def]
    return float(fit.callback_metrics[name])


def test_alone_it_says_once_which_values_are_missing(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    fit = trainer(tmp_path, [ScalingForecastMonitor()], max_epochs=3, limit_train_batches=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    told = [str(w.message) for w in caught if "ScalingForecastMonitor" in str(w.message)]
    assert len(told) == 1, told
    assert "dataprops/K_F" in told[0] and "DatasetPropertiesMonitor" in told[0]
    assert not any(key.startswith(f"{names.PREFIX}/forecast/") for key in fit.callback_metrics)


def test_follows_the_scaling_law_from_the_logged_values(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    csv = tmp_path / "runs.csv"
    callbacks = [
        DatasetPropertiesMonitor(max_samples=400),
        RepresentationIDMonitor(ON_SCHEDULE, layers=["features.2", "features.5"], max_samples=200),
        ScalingForecastMonitor(scaling_constant=0.9, target_loss=0.05, calibration_csv=csv),
    ]
    fit = trainer(tmp_path, callbacks, max_epochs=2)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    kf, d, n = _value(fit, names.K_F), _value(fit, names.D_DATA), _value(fit, names.N_TRAIN)
    assert n == len(x)
    bound = _value(fit, names.forecast("bound"))
    assert bound == pytest.approx(kf * n ** (-1 / d), rel=1e-6)
    assert _value(fit, names.forecast("loss_ratio_2x_data")) == pytest.approx(2 ** (-1 / d))
    assert _value(fit, names.forecast("test_loss")) == pytest.approx(0.9 * bound, rel=1e-6)
    gap = _value(fit, names.forecast("gap"))
    assert gap == pytest.approx(0.9 * bound - _value(fit, "train_loss"), rel=1e-5)
    val_loss = _value(fit, names.forecast("observed_val_loss"))
    assert val_loss == pytest.approx(_value(fit, "val_loss"))
    assert _value(fit, names.forecast("samples_for_target")) == pytest.approx(
        n * (val_loss / 0.05) ** d, rel=1e-5
    )
    deepest = _value(fit, names.d_repr("features.5"))
    assert _value(fit, names.forecast("repr_loss_ratio_2x_data")) == pytest.approx(
        2 ** (-1 / deepest)
    )
    rows = csv.read_text().splitlines()
    assert rows[0].startswith("n_train,d_data,label_sharpness,test_loss") and len(rows) == 2
    assert rows[0].split(",")[-1] == "epochs" and rows[1].split(",")[-1] == "2"  # max_epochs=2


def test_a_run_left_out_of_the_calibration_csv_says_why(mnist_3_vs_8, tmp_path: Path) -> None:
    """An infinite K_F (one image under two labels) keeps the run out of the CSV: the message
    names K_F, not a validation loss the fit has."""
    x, y = mnist_3_vs_8
    x, y = x.clone(), y.clone()
    x[1], y[1] = x[0], 1 - y[0]
    csv = tmp_path / "runs.csv"
    callbacks = [
        DatasetPropertiesMonitor(max_samples=len(x)),
        ScalingForecastMonitor(calibration_csv=csv),
    ]
    fit = trainer(tmp_path, callbacks, max_epochs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    said = [str(w.message) for w in caught if "not added to" in str(w.message)]
    assert len(said) == 1 and "K_F = inf" in said[0] and "validation" not in said[0], said
    assert not csv.exists()


def test_a_chosen_layer_that_is_not_logged_is_named(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    callbacks = [
        DatasetPropertiesMonitor(max_samples=300),
        ScalingForecastMonitor(repr_layer="features.2"),
    ]
    fit = trainer(tmp_path, callbacks, max_epochs=1)
    with pytest.warns(UserWarning, match="no dataprops/d_repr/features.2"):
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert names.forecast("bound") in fit.callback_metrics
    assert names.forecast("repr_loss_ratio_2x_data") not in fit.callback_metrics


def test_the_reproduction_constant_loads_and_a_bad_file_fails_in_setup(
    mnist_3_vs_8, tmp_path: Path
) -> None:
    x, y = mnist_3_vs_8
    monitor = ScalingForecastMonitor(scaling_constant="reproduction")
    callbacks = [DatasetPropertiesMonitor(max_samples=300), monitor]
    fit = trainer(tmp_path, callbacks, max_epochs=1, limit_train_batches=1)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert names.forecast("test_loss") in fit.callback_metrics
    missing = tmp_path / "no_such_calibration.json"
    fit = trainer(tmp_path, [ScalingForecastMonitor(scaling_constant=missing)])
    with pytest.raises((FileNotFoundError, ValueError)):
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    with pytest.raises(ValueError, match="target_loss must be > 0"):
        ScalingForecastMonitor(target_loss=0.0)


def test_the_repr_forecast_uses_the_head_input_not_the_last_layer_listed(
    mnist_3_vs_8, tmp_path: Path
) -> None:
    x, y = mnist_3_vs_8
    callbacks = [
        DatasetPropertiesMonitor(max_samples=300),
        RepresentationIDMonitor(ON_SCHEDULE, layers=["features.5", "head"], max_samples=200),
        ScalingForecastMonitor(),
    ]
    fit = trainer(tmp_path, callbacks, max_epochs=1)
    model = TinyCNN()
    fit.fit(model, datamodule=TensorDataModule(x, y))
    # Oracle: what the head reads, seen by a reference hook on the head's input.
    probe = sample_dataset(TensorDataset(x, y), max_samples=200, seed=0).inputs
    head_input = intrinsic_dimension(
        cloned(model, model.head, probe, read="input"), "mle", k=20
    ).value
    assert _value(fit, names.D_REPR_HEAD_INPUT) == pytest.approx(head_input, rel=1e-5)
    assert _value(fit, names.d_repr("features.5")) == pytest.approx(head_input, rel=1e-5)
    ratio = _value(fit, names.forecast("repr_loss_ratio_2x_data"))
    assert ratio == pytest.approx(2 ** (-1 / head_input), rel=1e-6)
    assert ratio != pytest.approx(2 ** (-1 / _value(fit, names.d_repr("head"))), rel=1e-3)


def test_without_the_head_input_the_repr_forecast_says_what_to_measure(
    mnist_3_vs_8, tmp_path: Path
) -> None:
    x, y = mnist_3_vs_8
    callbacks = [
        DatasetPropertiesMonitor(max_samples=300),
        RepresentationIDMonitor(ON_SCHEDULE, layers=["features.2", "head"], max_samples=200),
        ScalingForecastMonitor(),
    ]
    fit = trainer(tmp_path, callbacks, max_epochs=2)
    with pytest.warns(UserWarning, match="do not include the output head's input") as caught:
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert len([w for w in caught if "head's input" in str(w.message)]) == 1, "said once"
    assert names.d_repr("head") in fit.callback_metrics
    assert names.forecast("bound") in fit.callback_metrics
    assert names.forecast("repr_loss_ratio_2x_data") not in fit.callback_metrics
