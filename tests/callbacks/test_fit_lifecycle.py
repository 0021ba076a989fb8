"""What lives for one fit: callbacks reused across fits (cross-validation, sweeps, notebooks)
start every fit afresh, and the user's metric namespace holds only the product's logged names."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from lightning_dataprops import default_callbacks, names
from lightning_dataprops.callbacks import (
    DatasetPropertiesMonitor,
    MeasurementFailedWarning,
    RepresentationIDMonitor,
    RobustnessMonitor,
    ScalingForecastMonitor,
    SharpLabelsWarning,
    representation_id,
    robustness,
)
from lightning_dataprops.functional import available_estimators
from tests.integration.lightning_models import (
    ON_SCHEDULE,
    TensorDataModule,
    TinyCNN,
    binary_task,
    trainer,
)


def _callbacks() -> list[Any]:
    return [
        DatasetPropertiesMonitor(ON_SCHEDULE, max_samples=200),
        RepresentationIDMonitor(ON_SCHEDULE, max_samples=100),
        RobustnessMonitor(ON_SCHEDULE, every_n_epochs=1, max_samples=32, attacks={"fgsm": "fgsm"}),
        ScalingForecastMonitor(ON_SCHEDULE),
    ]


def _fit(root: Path, callbacks: list[Any], data: tuple[torch.Tensor, torch.Tensor]) -> pl.Trainer:
    torch.manual_seed(0)  # the same initial model in every fit
    fit = trainer(root, callbacks, max_epochs=1, limit_train_batches=2)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(*data))
    return fit


def _ours(fit: pl.Trainer) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in fit.callback_metrics.items()
        if key.startswith(names.PREFIX) and not key.startswith(f"{names.PREFIX}/time/")
    }


def _untimed(state: dict[str, Any] | None) -> dict[str, Any]:
    """The checkpointed fit-start state without its seconds (which differ from fit to fit)."""
    assert state is not None
    metrics = {k: v for k, v in state["metrics"].items() if k != names.seconds("fit_start")}
    return {**state, "metrics": metrics}


def test_callbacks_reused_across_fits_measure_each_fit_as_fresh_ones(
    mnist: tuple[torch.Tensor, torch.Tensor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_data, second_data = binary_task(*mnist, 3, 8), binary_task(*mnist, 1, 7)
    callbacks = _callbacks()
    properties, monitor, probe, forecast = callbacks

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken in the first fit")

    with monkeypatch.context() as patch:
        patch.setattr(representation_id, "capture_representations", broken)
        patch.setattr(robustness, "robustness", broken)
        with pytest.warns(MeasurementFailedWarning, match="broken in the first fit") as caught:
            first = _fit(tmp_path / "1", callbacks, first_data)
    said = [str(w.message) for w in caught if w.category is MeasurementFailedWarning]
    assert len(said) == 2 and all("for the rest of this fit" in text for text in said)
    assert set(monitor.disabled) == {"d_repr"} and set(probe.disabled) == {"attack 'fgsm'"}

    with warnings.catch_warnings():
        warnings.simplefilter("error", MeasurementFailedWarning)
        second = _fit(tmp_path / "2", callbacks, second_data)
    fresh_callbacks = _callbacks()
    fresh = _fit(tmp_path / "3", fresh_callbacks, second_data)

    # The second fit measured everything, on its own data, exactly as fresh callbacks do.
    assert all(callback.disabled == {} for callback in callbacks)
    assert properties.recomputed
    assert _ours(second) == _ours(fresh)
    assert float(second.callback_metrics[names.K_F]) != float(first.callback_metrics[names.K_F])
    assert any(key.startswith(names.d_repr("")) for key in _ours(second))
    assert names.adversarial("fgsm", "loss_increase") in _ours(second)
    assert names.forecast("bound") in _ours(second)
    # Nothing of the first fit is left in what the callbacks keep (and checkpoint).
    assert _untimed(properties.fit_start_state) == _untimed(fresh_callbacks[0].fit_start_state)
    assert monitor.history == fresh_callbacks[1].history and len(monitor.history) == 1
    assert [row["epoch"] for row in probe.history] == [0]
    assert forecast.last_forecast == fresh_callbacks[3].last_forecast


def test_the_same_failure_in_two_fits_is_said_in_each(
    mnist: tuple[torch.Tensor, torch.Tensor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python shows an identical warning once per code location and process (the "default"
    # filter): a second fit meeting the same failure must still say so.
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("fails in every fit")

    monkeypatch.setattr(representation_id, "capture_representations", broken)
    callbacks = [RepresentationIDMonitor(ON_SCHEDULE, max_samples=100)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for run in ("1", "2"):
            _fit(tmp_path / run, callbacks, binary_task(*mnist, 3, 8))
    said = [w for w in caught if w.category is MeasurementFailedWarning]
    assert len(said) == 2, [str(w.message) for w in caught]


def test_sharp_labels_are_said_in_every_fit_that_has_them(
    pneumonia: tuple[torch.Tensor, torch.Tensor],
    mnist: tuple[torch.Tensor, torch.Tensor],
    tmp_path: Path,
) -> None:
    # One callbacks list, three fits: sharp (PneumoniaMNIST), not sharp (MNIST 3 vs 8), sharp.
    callbacks = [DatasetPropertiesMonitor(ON_SCHEDULE)]
    counts = []
    for run, data in enumerate([pneumonia, binary_task(*mnist, 3, 8), pneumonia]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            _fit(tmp_path / str(run), callbacks, data)
        counts.append(len([w for w in caught if w.category is SharpLabelsWarning]))
    assert counts == [1, 0, 1]


# ------------------------------------------------------------------ the user's metric namespace
class _SeenKeys(pl.Callback):
    """Every key of ``trainer.callback_metrics`` at each hook the user's callbacks read it."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def _record(self, trainer: pl.Trainer, *args: Any) -> None:
        self.keys.update(trainer.callback_metrics)

    on_train_start = on_train_epoch_end = on_validation_end = on_fit_end = _record


_REPR = re.compile(r"[{}()\[\]'\" :,]")
"""Characters of a Python repr (dicts, tuples, strings), never in a metric name."""


def _names_from_names_py(layers: list[str], attacks: list[str]) -> set[str]:
    constants = {
        value
        for key, value in vars(names).items()
        if key.isupper() and isinstance(value, str) and value.startswith(f"{names.PREFIX}/")
    }
    return (
        constants
        | {names.d_repr(layer) for layer in layers}
        | {names.d_data_estimate(name) for name in available_estimators()}
        | {names.adversarial(a, q) for a in attacks for q in names.ADVERSARIAL_QUANTITIES}
        | {names.forecast(q) for q in names.FORECAST_QUANTITIES}
        | {names.seconds(work) for work in names.TIMED_WORK}
        | {names.postponed(work) for work in names.TIMED_WORK}
    )


def test_callback_metrics_hold_only_short_stable_names_from_names_py(
    mnist: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    data = binary_task(*mnist, 3, 8)
    seen = []
    for run, max_samples in enumerate((300, 400)):  # the old ledger keys carried max_samples
        callbacks = default_callbacks(
            max_samples=max_samples,
            repr_max_samples=100,
            robustness_every_n_epochs=1,
            robustness_max_samples=32,
            overhead_budget=None,  # every scheduled value, so both fits log the same names
        )
        spy = _SeenKeys()
        fit = trainer(tmp_path / str(run), [*callbacks, spy], max_epochs=2, limit_train_batches=2)
        torch.manual_seed(0)
        fit.fit(TinyCNN(), datamodule=TensorDataModule(*data))
        (layers,) = [c.layer_names for c in callbacks if isinstance(c, RepresentationIDMonitor)]
        ours = {key for key in spy.keys if key.startswith(names.PREFIX)}
        assert not [key for key in spy.keys if _REPR.search(key)]
        assert not [key for key in ours if len(key) > 60]
        assert ours <= _names_from_names_py(layers, ["fgsm", "pgd"]), ours
        assert not [key for key in ours if "time/spent" in key]
        # The budget still sums every callback's time: fit start, d_repr and the probe.
        total = float(fit.callback_metrics[names.OVERHEAD_SECONDS])
        assert total >= float(fit.callback_metrics[names.seconds("fit_start")]) > 0
        seen.append(ours)
    assert seen[0] == seen[1]  # the same names whatever the configuration
