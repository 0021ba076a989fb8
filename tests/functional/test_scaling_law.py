"""The scaling-law arithmetic and the calibration fit (file I/O: tests/data/test_calibration.py)."""

from __future__ import annotations

import math

import pytest

from lightning_dataprops.functional import (
    Calibration,
    fit_constant,
    forecast,
    loss_ratio,
    samples_for_target,
    scaling_bound,
)


def test_parameter_free_quantities() -> None:
    assert scaling_bound(0.4, 1000, 12.5) == pytest.approx(0.4 * 1000 ** (-1 / 12.5))
    assert loss_ratio(10) == pytest.approx(2**-0.1)
    assert loss_ratio(10, factor=4) == pytest.approx(loss_ratio(10) ** 2)
    # Solving the law for N and plugging back in gives the target loss.
    n_needed = samples_for_target(500, 0.3, 0.2, 8.0)
    assert 0.3 * (n_needed / 500) ** (-1 / 8.0) == pytest.approx(0.2)


def test_fit_recovers_a_known_constant() -> None:
    runs = [
        {"n_train": n, "d_data": d, "label_sharpness": kf, "test_loss": 1.7 * kf * n ** (-1 / d)}
        for n, d, kf in [(250, 9.0, 0.2), (1000, 9.0, 0.2), (500, 14.0, 0.55), (4000, 20.0, 0.3)]
    ]
    calibration = fit_constant(runs, source="synthetic", regime="test")
    assert calibration.constant == pytest.approx(1.7)
    assert calibration.rmse_log == pytest.approx(0.0, abs=1e-12)
    assert calibration.n_runs == 4


def test_forecast_with_and_without_constant() -> None:
    plain = forecast(0.5, 2000, 12.0, d_repr=6.0, current_loss=0.4, target_loss=0.2)
    assert plain.test_loss is None and plain.gap is None and plain.constant is None
    assert plain.repr_loss_ratio_2x_data == pytest.approx(2 ** (-1 / 6))
    assert plain.samples_for_target == pytest.approx(2000 * 2**12)
    calibration = Calibration(constant=2.0, n_runs=3, rmse_log=0.1, source="file.json")
    full = forecast(0.5, 2000, 12.0, constant=calibration, train_loss=0.05)
    assert full.constant_source == "file.json"
    assert full.test_loss == pytest.approx(2.0 * scaling_bound(0.5, 2000, 12.0))
    assert full.gap == pytest.approx(full.test_loss - 0.05)
    assert full.predicted_loss(4000) == pytest.approx(full.test_loss * loss_ratio(12.0))


def test_rejects_non_positive_inputs() -> None:
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="positive finite"):
            scaling_bound(bad, 100, 10)
