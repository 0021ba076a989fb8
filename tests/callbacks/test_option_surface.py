"""The option surface: every callback parameter reachable, old names warn and still work,
keyword-only arguments, one forward pass in setup, per-fit state reset, TIMED_WORK at import."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from lightning_dataprops.callbacks import (
    DataPropsCallback,
    RepresentationIDMonitor,
    RobustnessMonitor,
    default_callbacks,
)
from lightning_dataprops.callbacks.defaults import DEFAULT_SET, option_name, parameters

VALUES: dict[str, Any] = {
    "max_samples": 301,
    "k": 7,
    "estimators": ("twonn",),
    "top_pairs": 3,
    "warn_sharp_labels": False,
    "alert_wait_s": 5.0,
    "n_train": 123,
    "layers": ["features.1"],
    "every_n_epochs": 3,
    "pool": "avg",
    "batch_size": 17,
    "layer_call": 1,
    "attacks": {"fgsm": "fgsm"},
    "eps": 0.125,
    "pgd_steps": 2,
    "data_range": (0.0, 2.0),
    "normalization": None,
    "name": "mine",
    "scaling_constant": 1.5,
    "target_loss": 0.25,
    "val_loss_key": "v",
    "train_loss_key": "t",
    "calibration_csv": Path("runs.csv"),
    "repr_layer": "fc",
}


@pytest.mark.parametrize(
    ("cls", "parameter"),
    [(cls, p) for cls, _ in DEFAULT_SET for p in parameters(cls)],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_every_parameter_of_every_default_callback_is_reachable(cls: type, parameter: str) -> None:
    assert parameter in VALUES, f"add a test value for {cls.__name__}({parameter}=...)"
    value = VALUES[parameter]
    (callback,) = [
        c for c in default_callbacks(**{option_name(cls, parameter): value}) if type(c) is cls
    ]
    assert getattr(callback, parameter) == value


@pytest.mark.parametrize("cls", [cls for cls, _ in DEFAULT_SET], ids=lambda c: c.__name__)
def test_every_callback_takes_keyword_only_arguments_after_options(cls: type) -> None:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert params[0].name == "options"
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params[1:]), params


@pytest.mark.parametrize(
    ("old", "cls", "attribute", "value"),
    [
        ("every_n_epochs", RepresentationIDMonitor, "every_n_epochs", 4),
        ("repr_samples", RepresentationIDMonitor, "max_samples", 200),
        ("adversarial_every_n_epochs", RobustnessMonitor, "every_n_epochs", 4),
        ("adversarial_samples", RobustnessMonitor, "max_samples", 32),
        ("attack_eps", RobustnessMonitor, "eps", 0.25),
    ],
)
def test_old_default_callbacks_names_warn_and_still_work(
    old: str, cls: type, attribute: str, value: Any
) -> None:
    with pytest.warns(DeprecationWarning, match=old):
        callbacks = default_callbacks(**{old: value})
    (callback,) = [c for c in callbacks if type(c) is cls]
    assert getattr(callback, attribute) == value


@pytest.mark.parametrize("cls", [RepresentationIDMonitor, RobustnessMonitor])
def test_old_n_samples_warns_and_still_works(cls: type) -> None:
    with pytest.warns(DeprecationWarning, match="n_samples"):
        callback = cls(n_samples=50)
    assert callback.max_samples == 50
    with pytest.warns(DeprecationWarning, match="max_samples"):
        assert callback.n_samples == 50
    with pytest.raises(TypeError, match="unexpected keyword"):
        cls(n_sample=50)


def test_every_n_epochs_zero_means_never_in_every_callback() -> None:
    assert RepresentationIDMonitor(every_n_epochs=0).every_n_epochs == 0
    assert RobustnessMonitor(every_n_epochs=0).every_n_epochs == 0
    kinds = [type(c) for c in default_callbacks(repr_every_n_epochs=0, robustness_every_n_epochs=0)]
    assert RepresentationIDMonitor not in kinds and RobustnessMonitor not in kinds


def test_timed_work_missing_from_names_fails_at_class_definition() -> None:
    with pytest.raises(TypeError, match="TIMED_WORK"):

        class Forgetful(DataPropsCallback):
            TIMED_WORK = ("not_listed",)


class _Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)
        self.calls = 0
        self.device = torch.device("cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.head(self.features(x))


@pytest.mark.parametrize("layers", [None, ["features.2"]])
def test_representation_setup_runs_exactly_one_forward_pass(layers: Any) -> None:
    from unittest import mock

    model = _Counting()
    monitor = RepresentationIDMonitor(layers=layers, max_samples=30, k=5)
    trainer = mock.MagicMock()
    trainer.precision_plugin.forward_context.return_value = mock.MagicMock()
    with (
        mock.patch.object(
            RepresentationIDMonitor, "training_data", return_value=(None, torch.randn(4), None)
        ),
        mock.patch.object(type(monitor), "step_aside_for_user_callback", return_value=False),
    ):
        monitor._setup_fit(trainer, model)  # type: ignore[arg-type]
    assert model.calls == 1
    assert monitor.layer_names == ["features.2"]


def test_disabled_measurements_are_reset_at_the_start_of_each_fit() -> None:
    from unittest import mock

    monitor = RepresentationIDMonitor()
    with pytest.warns(UserWarning, match="disabled"):
        monitor.guarded("d_repr", lambda: 1 / 0)
    assert "d_repr" in monitor.disabled
    trainer = mock.MagicMock(callbacks=[monitor])
    assert monitor.start_fit(trainer)
    assert monitor.disabled == {}
    assert monitor.guarded("d_repr", lambda: 2) == 2


def test_a_callback_reused_across_fits_measures_again_after_a_failed_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning_dataprops import names
    from lightning_dataprops.callbacks import DataPropsOptions, representation_id
    from tests.integration.lightning_models import TensorDataModule, TinyCNN, trainer

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 28, 28, generator=generator)
    y = torch.arange(64) % 2
    callbacks = [RepresentationIDMonitor(DataPropsOptions(overhead_budget=None), max_samples=40)]
    real = representation_id.capture_representations

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("first fit fails")

    monkeypatch.setattr(representation_id, "capture_representations", broken)
    with pytest.warns(UserWarning, match="first fit fails"):
        trainer(tmp_path / "1", callbacks, max_epochs=1).fit(TinyCNN(), TensorDataModule(x, y))
    assert "d_repr" in callbacks[0].disabled
    monkeypatch.setattr(representation_id, "capture_representations", real)
    second = trainer(tmp_path / "2", callbacks, max_epochs=1)
    second.fit(TinyCNN(), TensorDataModule(x, y))
    assert callbacks[0].disabled == {}
    assert any(key.startswith(names.d_repr("")) for key in second.callback_metrics)
