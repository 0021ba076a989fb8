"""Real fits of the default callbacks on PneumoniaMNIST with TensorBoard, MLflow and CSV loggers:
the pictures, the sharp-label text and the configuration arrive beside the scalars, read back
with each tool's own reader, and the scalars sit on Lightning's own epoch rows."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, Logger
from PIL import Image

from lightning_dataprops import default_callbacks, names
from lightning_dataprops.callbacks import RepresentationIDMonitor, SharpLabelsWarning
from tests.integration.lightning_models import TensorDataModule, TinyCNN, trainer

IMAGES = ("sharpest_pairs", "d_repr_profile", "forecast")


def _fit(pneumonia: tuple[torch.Tensor, torch.Tensor], root: Path, logger: Any) -> dict[str, Any]:
    """Two epochs of a tiny CNN on 480 PneumoniaMNIST images with the default callbacks."""
    x, y = pneumonia
    x, y = x[::8][:480], y[::8][:480]
    callbacks = default_callbacks(
        max_samples=300, repr_max_samples=100, robustness_max_samples=16, overhead_budget=None
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = trainer(root, callbacks, logger=logger, max_epochs=2)
        fit.fit(TinyCNN(), TensorDataModule(x, y, batch_size=32))
    sharp = [str(w.message) for w in caught if w.category is SharpLabelsWarning]
    assert len(sharp) == 1, "PneumoniaMNIST's labels are sharp: the warning must fire once"
    monitor = next(c for c in callbacks if isinstance(c, RepresentationIDMonitor))
    return {"warning": sharp[0], "layer": monitor.layer_names[0], "trainer": fit}


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG" and min(image.size) > 100
    return image


def test_tensorboard_fit_records_pictures_text_and_hyperparameters(
    pneumonia: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard")
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    logger = TensorBoardLogger(tmp_path, name="tb")
    fit = _fit(pneumonia, tmp_path, logger)
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "tensors": 0})
    events.Reload()

    for key in IMAGES:
        shown = events.Images(f"dataprops/{key}")
        assert shown, f"no image dataprops/{key}"
        for event in shown:
            assert _png(event.encoded_image_string).size == (event.width, event.height)
    # One profile image per measured epoch, at the step of that epoch's scalars.
    profile_steps = [event.step for event in events.Images("dataprops/d_repr_profile")]
    d_repr_steps = [event.step for event in events.Scalars(names.d_repr(fit["layer"]))]
    assert profile_steps == d_repr_steps and len(d_repr_steps) == 2

    text = events.Tensors("dataprops/sharp_labels/text_summary")[-1]
    assert fit["warning"] in text.tensor_proto.string_val[0].decode()

    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["dataprops/RepresentationIDMonitor/max_samples"].number_value == 100
    assert hparams["dataprops/DatasetPropertiesMonitor/max_samples"].number_value == 300
    assert hparams["dataprops/RobustnessMonitor/max_samples"].number_value == 16
    assert hparams["dataprops/options/seed"].number_value == 0
    assert hparams["lr"].number_value == pytest.approx(0.05)  # the module's own, kept

    # The product's epoch scalars share steps with Lightning's validation loss.
    val_steps = {event.step for event in events.Scalars("val_loss")}
    assert set(d_repr_steps) == val_steps


def test_mlflow_fit_records_artifacts_params_and_aligned_metrics(
    pneumonia: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    pytest.importorskip("mlflow")
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = MLFlowLogger(
        experiment_name="dataprops-fit",
        tracking_uri=uri,
        artifact_location=(tmp_path / "artifacts").as_uri(),
    )
    fit = _fit(pneumonia, tmp_path, logger)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(logger.run_id)
    params = run.data.params
    assert params["dataprops/RepresentationIDMonitor/max_samples"] == "100"
    assert params["dataprops/ScalingForecastMonitor/val_loss_key"] == "val_loss"
    assert params["lr"] == "0.05"

    local = Path(client.download_artifacts(logger.run_id, "dataprops", str(tmp_path / "down")))
    for key in IMAGES:
        _png((local / f"{key}.png").read_bytes())
    assert fit["warning"] in (local / "sharp_labels.md").read_text()
    pairs = json.loads((local / "sharpest_pairs.json").read_text())
    assert len(pairs["pairs"]) >= 1 and pairs["n"] == 300
    assert all(0 <= p["index_i"] < 480 and p["label_i"] != p["label_j"] for p in pairs["pairs"])

    d_repr = client.get_metric_history(logger.run_id, names.d_repr(fit["layer"]))
    val = client.get_metric_history(logger.run_id, "val_loss")
    assert sorted(m.step for m in d_repr) == sorted(m.step for m in val)


def test_csv_fit_rows_share_lightnings_epoch_and_step(
    pneumonia: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    logger = CSVLogger(tmp_path, name="csv")
    fit = _fit(pneumonia, tmp_path, logger)
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    val_rows = {(row["epoch"], row["step"]) for row in rows if row["val_loss"]}
    ours = [row for row in rows if any(row[k] for k in row if k.startswith("dataprops/"))]
    assert all(row["epoch"] != "" for row in ours), "every dataprops row carries its epoch"
    fit_start = [row for row in ours if row[names.D_DATA]]
    assert [(row["epoch"], row["step"]) for row in fit_start] == [("0", "0")]
    periodic = [row for row in ours if row[names.d_repr(fit["layer"])]]
    assert {(row["epoch"], row["step"]) for row in periodic} == val_rows == {("0", "3"), ("1", "7")}
    forecast = [row for row in ours if row[names.forecast("bound")]]
    assert {(row["epoch"], row["step"]) for row in forecast} == val_rows

    folder = Path(logger.log_dir) / "dataprops"
    for key in IMAGES:
        _png((folder / f"{key}.png").read_bytes())
    document = json.loads((folder / "findings.json").read_text())
    assert {"sharpest_pairs", "sharp_labels", "hparams", "d_repr_profile", "forecast"} <= set(
        document
    )
    assert [row["epoch"] for row in document["d_repr_profile"]["rows"]] == [0, 1]
    assert document["forecast"]["observed"][0][0] == 480  # N, with the observed loss
    assert fit["warning"] in (folder / "sharp_labels.md").read_text()
    saved = (Path(logger.log_dir) / "hparams.yaml").read_text()
    assert "RepresentationIDMonitor:" in saved and "lr: 0.05" in saved


class _UnwritableLogger(Logger):
    """A logger whose findings folder cannot be created: its ``log_dir`` is a file."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        root.mkdir(parents=True, exist_ok=True)
        self.blocker = root / "not_a_folder"
        self.blocker.touch()

    @property
    def name(self) -> str:
        return "unwritable"

    @property
    def version(self) -> int:
        return 0

    @property
    def log_dir(self) -> str:
        return str(self.blocker)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


def test_a_logger_that_refuses_findings_warns_once_and_training_goes_on(tmp_path: Path) -> None:
    from lightning_dataprops.data import load_digits_data
    from lightning_dataprops.integrations.publish import FindingNotLoggedWarning

    digits = load_digits_data()
    healthy = CSVLogger(tmp_path, name="healthy")
    callbacks = default_callbacks(
        max_samples=200, repr_max_samples=100, robustness_every_n_epochs=0, overhead_budget=None
    )
    fit = trainer(
        tmp_path, callbacks, logger=[healthy, _UnwritableLogger(tmp_path / "x")], max_epochs=2
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(n_classes=10), TensorDataModule(digits.inputs[:400], digits.targets[:400]))
    assert fit.current_epoch == 2, "training ran to the end"
    refused = [str(w.message) for w in caught if w.category is FindingNotLoggedWarning]
    keys = [message.split("'")[1] for message in refused]
    assert refused and len(keys) == len(set(keys)), f"one warning per finding: {refused}"
    assert all("_UnwritableLogger" in message for message in refused)
    written = json.loads((Path(healthy.log_dir) / "dataprops" / "findings.json").read_text())
    assert {"hparams", "sharpest_pairs", "d_repr_profile", "forecast"} <= set(written)
