"""The run report: written at fit end for every logger (CSV, TensorBoard, MLflow, W&B), with the
fit-start card and pictures, d_repr, robustness, the forecast, the warnings and the overhead;
``dataprops report LOG_DIR`` rebuilds it from what the logger recorded."""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lightning_dataprops import default_callbacks
from lightning_dataprops.cli import main
from tests.integration.lightning_models import TensorDataModule, TinyCNN, trainer
from tests.report.pages import decoded, position, read_page

SECTIONS = (
    "Fit start: warnings and the pairs to look at",
    "d_repr per layer",
    "Robustness",
    "Forecast",
    "Overhead",
)


class _NamedClasses(TensorDataModule):
    """Its datasets name their classes, as torchvision's do (``classes``)."""

    def _dataset(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        dataset = super()._dataset(x, y)
        dataset.classes = ["normal", "pneumonia"]  # type: ignore[attr-defined]
        return dataset


def _fit(pneumonia: tuple[torch.Tensor, torch.Tensor], root: Path, logger: Any) -> None:
    """Two epochs of a tiny CNN on 480 PneumoniaMNIST images, the default callbacks, the
    robustness probe every epoch."""
    x, y = pneumonia
    x, y = x[::8][:480], y[::8][:480]
    callbacks = default_callbacks(
        max_samples=300,
        repr_max_samples=100,
        robustness_max_samples=16,
        robustness_every_n_epochs=1,
        overhead_budget=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(root, callbacks, logger=logger, max_epochs=2).fit(
            TinyCNN(), _NamedClasses(x, y, batch_size=32)
        )


def _headings(path: Path) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", path.read_text(encoding="utf-8"))


def _check_page(path: Path) -> None:
    page = read_page(path)
    assert page.external == []
    assert len(page.images) >= 3
    assert all(min(decoded(src).size) > 100 for src in page.images)
    words = page.words
    assert position(words, "Sharp labels in the training set") < 0.15  # the warning leads
    for heading in SECTIONS:
        assert heading in _headings(path), heading


@pytest.mark.slow
def test_a_fit_leaves_a_run_report_per_logger_that_the_command_line_rebuilds(
    pneumonia: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger
    from mlflow.tracking import MlflowClient

    logger = CSVLogger(tmp_path, name="csv")
    board = TensorBoardLogger(tmp_path, name="tb")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    flow = MLFlowLogger(
        experiment_name="run-report",
        tracking_uri=uri,
        artifact_location=(tmp_path / "artifacts").as_uri(),
    )
    _fit(pneumonia, tmp_path, [logger, board, flow])

    # The pairs carry the dataset's class names.
    findings = json.loads((Path(logger.log_dir) / "dataprops" / "findings.json").read_text())
    assert findings["sharpest_pairs"]["class_names"] == ["normal", "pneumonia"]
    assert "1 (pneumonia)" in (Path(logger.log_dir) / "dataprops" / "sharpest_pairs.md").read_text()
    # CSV: in the log folder, the card's numbers the logged ones.
    written = Path(logger.log_dir) / "dataprops" / "run_report.html"
    _check_page(written)
    words = read_page(written).words
    rows = list(csv.DictReader((Path(logger.log_dir) / "metrics.csv").open()))
    d_data = next(float(r["dataprops/d_data"]) for r in rows if r.get("dataprops/d_data"))
    val = [float(r["val_loss"]) for r in rows if r.get("val_loss")]
    assert f"{d_data:.3g} by MLE" in words and f"{val[-1]:.4g}" in words
    # Rebuilt from the log folder alone: the same page; without --out, where the fit put it.
    rebuilt = tmp_path / "rebuilt.html"
    assert main(["report", str(tmp_path / "csv"), "--out", str(rebuilt)]) == 0
    assert _headings(rebuilt) == _headings(written)
    assert len(read_page(rebuilt).images) == len(read_page(written).images)
    assert read_page(rebuilt).words == words
    assert main(["report", logger.log_dir]) == 0
    assert written.read_text() == rebuilt.read_text()

    # TensorBoard: from its event files.
    written = Path(board.log_dir) / "dataprops" / "run_report.html"
    _check_page(written)
    rebuilt = tmp_path / "tb.html"
    assert main(["report", board.log_dir, "--out", str(rebuilt)]) == 0
    assert _headings(rebuilt) == _headings(written)
    assert len(read_page(rebuilt).images) == len(read_page(written).images)

    # MLflow: a run artifact, rebuilt from the tracking store.
    client = MlflowClient(tracking_uri=uri)
    local = Path(client.download_artifacts(flow.run_id, "dataprops/run_report.html", str(tmp_path)))
    _check_page(local)
    from_store = tmp_path / "mlflow.html"
    assert main(["report", str(tmp_path / "mlflow.db"), "--out", str(from_store)]) == 0
    assert _headings(from_store) == _headings(local)


@pytest.mark.slow
def test_wandb_alone_gets_the_run_report_as_html(
    pneumonia: tuple[torch.Tensor, torch.Tensor], wandb_offline: Path
) -> None:
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(project="run-report", save_dir=str(wandb_offline))
    _fit(pneumonia, wandb_offline, logger)
    logger.experiment.finish()  # the run file is complete only then
    logged = list(wandb_offline.rglob("media/html/dataprops/run_report*.html"))
    assert len(logged) == 1  # wandb.Html under dataprops/run_report
    copy = next(wandb_offline.rglob("files/dataprops_run_report.html"))
    _check_page(copy)
    assert logged[0].read_text().strip() == copy.read_text().strip()
    # Its history row is on the run's step axis, like every other dataprops row.
    from tests.integration.wandb_records import find_run_file, read_run

    history = read_run(find_run_file(wandb_offline)).history
    rows = [row for row in history if "dataprops/run_report/_type" in row]
    assert len(rows) == 1 and rows[0]["dataprops/run_report/_type"] == "html-file"
    assert "trainer/global_step" in rows[0]


def test_report_of_a_folder_without_a_run_says_what_it_expects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "metrics.csv" in error and "tfevents" in error and "mlflow.db" in error


def test_a_run_report_that_fails_warns_once_and_the_fit_ends_normally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning_dataprops.callbacks import RepresentationIDMonitor
    from lightning_dataprops.integrations import readers
    from lightning_dataprops.integrations.publish import FindingNotLoggedWarning

    def broken(log_dir: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(readers, "read_csv_run", broken)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(128, 1, 8, 8, generator=g), torch.arange(128) % 2
    logger = CSVLogger(tmp_path, name="csv")
    fit = trainer(tmp_path, [RepresentationIDMonitor(max_samples=64)], logger=logger)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(), TensorDataModule(x, y, batch_size=32))
    assert fit.state.finished
    told = [str(w.message) for w in caught if w.category is FindingNotLoggedWarning]
    assert len(told) == 1 and "run_report" in told[0] and "disk full" in told[0]
    assert not (Path(logger.log_dir) / "dataprops" / "run_report.html").exists()


def test_the_command_line_rebuilds_a_report_from_an_mlflow_file_store(
    mnist: tuple[torch.Tensor, torch.Tensor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning's MLFlowLogger writes a file store (./mlruns) by default; MLflow 3 refuses
    that backend unless MLFLOW_ALLOW_FILE_STORE is set, which a run writing one had set. The
    report command reads the store, or one of its run folders, without that variable."""
    pytest.importorskip("mlflow")
    from lightning.pytorch.loggers import MLFlowLogger

    from lightning_dataprops.callbacks import DatasetPropertiesMonitor

    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    flow = MLFlowLogger(experiment_name="file-store", tracking_uri=store.as_uri())
    x, y = mnist[0][:400], mnist[1][:400]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(tmp_path, [DatasetPropertiesMonitor(max_samples=300)], logger=flow).fit(
            TinyCNN(n_classes=10), TensorDataModule(x, y)
        )
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    run_folder = next(store.glob(f"*/{flow.run_id}"))
    for source in (store, run_folder):
        out = tmp_path / f"{source.name}.html"
        assert main(["report", str(source), "--out", str(out)]) == 0
        assert "Fit start: warnings and the pairs to look at" in _headings(out)
        assert "by MLE" in read_page(out).words
    assert main(["report", str(store)]) == 0  # beside the store by default
    assert (tmp_path / "run_report.html").is_file()
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
