"""default_callbacks routing, the LIGHTNING_DATAPROPS entry point, the progress bar setting."""

from __future__ import annotations

import inspect
from pathlib import Path

import lightning.pytorch as pl
import pytest

import lightning_dataprops
from lightning_dataprops import names
from lightning_dataprops.callbacks import (
    DataPropsOptions,
    DatasetPropertiesMonitor,
    RepresentationIDMonitor,
    ScalingForecastMonitor,
    default_callbacks,
)
from tests.integration.lightning_models import TensorDataModule, TinyCNN, trainer

PUBLIC_CALLBACKS = [
    DatasetPropertiesMonitor,
    RepresentationIDMonitor,
    ScalingForecastMonitor,
    lightning_dataprops.RobustnessMonitor,
]


@pytest.mark.parametrize("cls", PUBLIC_CALLBACKS, ids=lambda cls: cls.__name__)
def test_every_callback_takes_at_most_ten_arguments(cls: type) -> None:
    parameters = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert len(parameters) <= 10, parameters
    assert "options" in parameters


def test_the_probe_runs_before_d_repr_and_the_forecast_last() -> None:
    """Lightning runs the hooks in list order: at an epoch end where both are due, d_repr's
    budget decision must see the probe's cost (the first probe is never postponed), and the
    forecast must see the epoch's d_repr."""
    kinds = [type(c) for c in default_callbacks()]
    assert kinds == [
        DatasetPropertiesMonitor,
        lightning_dataprops.RobustnessMonitor,
        RepresentationIDMonitor,
        ScalingForecastMonitor,
    ]


def test_options_are_routed_to_the_callback_they_belong_to() -> None:
    def forward(module, x):  # type: ignore[no-untyped-def]
        return module(x)[0]

    callbacks = default_callbacks(
        seed=3,
        forward_fn=forward,
        max_samples=700,
        repr_max_samples=300,
        layers=["a", "b"],
        repr_every_n_epochs=2,
        k=10,
        target_loss=0.2,
        val_loss_key="valid/loss",
    )
    by_type = {type(c): c for c in callbacks}
    properties = by_type[DatasetPropertiesMonitor]
    d_repr = by_type[RepresentationIDMonitor]
    forecast = by_type[ScalingForecastMonitor]
    assert isinstance(properties, DatasetPropertiesMonitor)
    assert isinstance(d_repr, RepresentationIDMonitor)
    assert isinstance(forecast, ScalingForecastMonitor)
    assert (properties.max_samples, properties.k) == (700, 10)
    assert (d_repr.max_samples, d_repr.layers, d_repr.every_n_epochs, d_repr.k) == (
        300,
        ["a", "b"],
        2,
        10,
    )
    assert (forecast.target_loss, forecast.val_loss_key) == (0.2, "valid/loss")
    assert properties.options is d_repr.options is forecast.options
    assert properties.options == DataPropsOptions(seed=3, forward_fn=forward)
    assert isinstance(callbacks[-1], ScalingForecastMonitor), "the forecast reads the others"


def test_zero_schedules_leave_callbacks_out_and_unknown_names_are_listed() -> None:
    kinds = [type(c) for c in default_callbacks(repr_every_n_epochs=0, robustness_every_n_epochs=0)]
    assert kinds == [DatasetPropertiesMonitor, ScalingForecastMonitor]
    with pytest.raises(TypeError, match=r"unknown option\(s\) max_sample;.*max_samples"):
        default_callbacks(max_sample=100)


def test_zero_configuration_default_set_fits(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    fit = trainer(tmp_path, default_callbacks(), max_epochs=1)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    for name in (names.D_DATA, names.K_F, names.d_repr("features.5"), names.forecast("bound")):
        assert name in fit.callback_metrics, name


def test_environment_variable_and_an_explicit_callback_do_not_clash(
    mnist_3_vs_8, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lightning_log
) -> None:
    x, y = mnist_3_vs_8
    monkeypatch.setenv("LIGHTNING_DATAPROPS", "1")
    mine = RepresentationIDMonitor(layers=["features.2"], max_samples=200)
    fit = trainer(tmp_path, [mine], max_epochs=1, enable_checkpointing=True)
    kinds = [type(c).__name__ for c in fit.callbacks]
    assert kinds.count("RepresentationIDMonitor") == 2 and "DatasetPropertiesMonitor" in kinds
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert "RepresentationIDMonitor from LIGHTNING_DATAPROPS=1 is not used" in lightning_log.text
    (factory,) = [c for c in fit.callbacks if isinstance(c, RepresentationIDMonitor) and c != mine]
    assert not factory.active and factory.history == []
    assert [row["layer"] for row in mine.history] == ["features.2"]
    assert names.d_repr("features.5") not in fit.callback_metrics, "the factory one stepped aside"
    assert names.K_F in fit.callback_metrics, "the factory's other callbacks still run"
    assert fit.checkpoint_callback is not None
    resumed = trainer(tmp_path, [RepresentationIDMonitor(layers=["features.2"])], max_epochs=2)
    resumed.fit(
        TinyCNN(),
        datamodule=TensorDataModule(x, y),
        ckpt_path=fit.checkpoint_callback.best_model_path,
    )
    monkeypatch.setenv("LIGHTNING_DATAPROPS", "0")
    assert not any(
        isinstance(c, DatasetPropertiesMonitor) for c in pl.Trainer(logger=False).callbacks
    )


@pytest.mark.parametrize("show", [False, True])
def test_progress_bars_follow_the_trainer(mnist_3_vs_8, tmp_path: Path, capfd, show) -> None:
    x, y = mnist_3_vs_8
    monitor = DatasetPropertiesMonitor(max_samples=1000)
    fit = trainer(
        tmp_path, [monitor], max_epochs=1, limit_train_batches=1, enable_progress_bar=show
    )
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    err = capfd.readouterr().err
    assert ("neighbours" in err) is show, err[-2000:]
