"""The scaling-law arithmetic, the calibration fit and ``dataprops calibrate``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lightning_dataprops.cli import main
from lightning_dataprops.functional.scaling_law import (
    Calibration,
    append_run_csv,
    fit_constant,
    forecast,
    loss_ratio,
    read_runs_csv,
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
    assert "dataprops/forecast/test_loss" not in plain.metrics()
    calibration = Calibration(constant=2.0, n_runs=3, rmse_log=0.1, source="file.json")
    full = forecast(0.5, 2000, 12.0, constant=calibration, train_loss=0.05)
    assert full.constant_source == "file.json"
    assert full.test_loss == pytest.approx(2.0 * scaling_bound(0.5, 2000, 12.0))
    assert full.gap == pytest.approx(full.test_loss - 0.05)
    assert full.predicted_loss(4000) == pytest.approx(full.test_loss * loss_ratio(12.0))


def test_csv_round_trip_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs.csv"
    for n in (300, 600, 1200):
        append_run_csv(
            runs,
            {
                "n_train": n,
                "d_data": 10.0,
                "label_sharpness": 0.3,
                "test_loss": 0.8 * 0.3 * n**-0.1,
                "dataset": "x",
            },
        )
    assert len(read_runs_csv(runs)) == 3
    out = tmp_path / "calibration.json"
    assert main(["calibrate", str(runs), "--out", str(out), "--regime", "tiny CNN"]) == 0
    assert "C = 0.8" in capsys.readouterr().out
    saved = Calibration.load(out)
    assert saved.constant == pytest.approx(0.8) and saved.regime == "tiny CNN"
    assert json.loads(out.read_text())["n_runs"] == 3


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("n_train,d_data\n1,2\n", "lacks the column"),
        ("n_train,d_data,label_sharpness,test_loss\n100,10,0.3,abc\n", "not a number"),
        ("n_train,d_data,label_sharpness,test_loss\n", "No runs"),
        ("n_train,d_data,label_sharpness,test_loss\n100,10,0.3,-1\n", "positive"),
    ],
)
def test_bad_calibration_input(tmp_path: Path, content: str, match: str, capsys) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(content)
    assert main(["calibrate", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("dataprops: error:") and match in error and "Traceback" not in error


def test_rejects_non_positive_inputs() -> None:
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="positive finite"):
            scaling_bound(bad, 100, 10)


def test_reproduction_constant_is_shipped() -> None:
    from lightning_dataprops.callbacks.forecast import load_constant

    calibration = load_constant("reproduction")
    assert isinstance(calibration, Calibration)
    assert 0.1 < calibration.constant < 10 and calibration.n_runs >= 100
    assert "reproduce_paper" in calibration.source and "CNN" in calibration.regime
