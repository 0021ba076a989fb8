"""Calibration files: runs CSV, calibration JSON, the shipped constant, `dataprops calibrate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning_dataprops.calibration import (
    append_run_csv,
    load_calibration,
    read_runs_csv,
    reproduction_calibration,
    resolve_constant,
    save_calibration,
)
from lightning_dataprops.cli import main
from lightning_dataprops.functional import Calibration, fit_constant


def _run(n: int) -> dict[str, object]:
    return {"n_train": n, "d_data": 10.0, "label_sharpness": 0.3, "test_loss": 0.8 * 0.3 * n**-0.1}


def test_csv_round_trip_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs.csv"
    for n in (300, 600, 1200):
        append_run_csv(runs, {**_run(n), "dataset": "x"})
    rows = read_runs_csv(runs)
    assert [row["n_train"] for row in rows] == [300.0, 600.0, 1200.0]
    assert fit_constant(rows).constant == pytest.approx(0.8)
    out = tmp_path / "calibration.json"
    assert main(["calibrate", str(runs), "--out", str(out), "--regime", "tiny CNN"]) == 0
    assert "C = 0.8" in capsys.readouterr().out
    saved = load_calibration(out)
    assert saved.constant == pytest.approx(0.8) and saved.regime == "tiny CNN"
    assert saved.source == str(runs)
    assert json.loads(out.read_text())["n_runs"] == 3


def test_append_keeps_the_existing_header(tmp_path: Path) -> None:
    runs = tmp_path / "runs.csv"
    append_run_csv(runs, {**_run(300), "seed": 1})
    append_run_csv(runs, {**_run(600), "dataset": "dropped"})  # not in the header: dropped
    lines = runs.read_text().splitlines()
    assert lines[0] == "n_train,d_data,label_sharpness,test_loss,seed"
    assert len(lines) == 3 and lines[2].endswith(",") and "dropped" not in lines[2]


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    calibration = Calibration(0.123456789, 7, 0.25, "file.csv", regime="binary 28x28")
    assert load_calibration(save_calibration(calibration, tmp_path / "c.json")) == calibration


def test_load_errors_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_calibration(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"constant": 1.0, "n_runs": 3}')
    with pytest.raises(ValueError, match=r"not a calibration file.*rmse_log"):
        load_calibration(bad)
    bad.write_text("not json")
    with pytest.raises(ValueError, match="not a calibration file"):
        load_calibration(bad)
    with pytest.raises(FileNotFoundError, match="runs file"):
        read_runs_csv(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("n_train,d_data\n1,2\n", "lacks the column"),
        ("n_train,d_data\n1,2\n", "has ['n_train', 'd_data']"),
        ("n_train,d_data,label_sharpness,test_loss\n100,10,0.3,abc\n", "line 2: not a number"),
        ("n_train,d_data,label_sharpness,test_loss\n1,10,0.3,0.2\n\n9,9,x,1\n", "line 4: not"),
        ("n_train,d_data,label_sharpness,test_loss\n", "No runs"),
        ("n_train,d_data,label_sharpness,test_loss\n100,10,0.3,-1\n", "positive"),
    ],
)
def test_bad_calibration_input(
    tmp_path: Path, content: str, match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(content)
    assert main(["calibrate", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("dataprops: error:") and match in error and "Traceback" not in error


def test_a_header_with_spaces_after_the_commas_is_read(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("n_train, d_data, label_sharpness, test_loss\n500, 10, 0.3, 0.2\n")
    assert read_runs_csv(path) == [
        {"n_train": 500.0, "d_data": 10.0, "label_sharpness": 0.3, "test_loss": 0.2}
    ]


def test_reproduction_constant_is_shipped() -> None:
    calibration = reproduction_calibration()
    assert 0.1 < calibration.constant < 10 and calibration.n_runs >= 100
    assert "reproduce_paper" in calibration.source and "CNN" in calibration.regime
    assert resolve_constant("reproduction") == calibration


def test_resolve_constant(tmp_path: Path) -> None:
    assert resolve_constant(None) is None and resolve_constant(0.5) == 0.5
    calibration = Calibration(2.0, 3, 0.1, "x")
    assert resolve_constant(calibration) is calibration
    path = save_calibration(calibration, tmp_path / "c.json")
    assert resolve_constant(path) == calibration and resolve_constant(str(path)) == calibration
