"""Findings reach TensorBoard, MLflow and CSV loggers, read back with each tool's own reader."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_dataprops.findings import (
    ForecastFinding,
    HyperparametersFinding,
    ReprProfileFinding,
    SharpPairsFinding,
    TextFinding,
)
from lightning_dataprops.functional import label_sharpness
from lightning_dataprops.integrations.publish import FindingNotLoggedWarning, publish

WARNING_BODY = "K_F is **3.2 x** the natural-image band: check the pairs below for label errors."


def _data(n: int = 64) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()
    x[3] = x[4]  # a label conflict: identical inputs, different labels
    y[3], y[4] = 0, 1
    return x, y


def _pairs(x: Tensor, y: Tensor) -> SharpPairsFinding:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the conflict's own warning
        result = label_sharpness(x, y, top_pairs=4)
    return SharpPairsFinding.from_label_sharpness(
        result, x, index_map=[1000 + i for i in range(len(x))]
    )


class Tiny(pl.LightningModule):
    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 2))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class Publisher(pl.Callback):
    """Publishes findings where the product's callbacks will: pairs, warning and configuration
    at fit start, the d_repr profile each epoch (twice, to check that an
    unchanged profile is not re-logged), the forecast at fit end."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y
        self.rows: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        publish(trainer, _pairs(self.x, self.y), step=trainer.global_step)
        warning = TextFinding("Sharp labels", WARNING_BODY, key="sharp_labels", level="warning")
        publish(trainer, warning, step=trainer.global_step)
        config = {"seed": 0, "k": 20, "layers": ("net.1", "net.3")}
        finding = HyperparametersFinding.from_mapping(config, prefix="dataprops")
        publish(trainer, finding, step=trainer.global_step)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        for depth, layer in enumerate(("net.1", "net.3")):
            self.rows.append(
                {"epoch": trainer.current_epoch, "layer": layer, "depth": depth, "d_repr": 5.0}
            )
        for _ in range(2):
            profile = ReprProfileFinding.from_rows(self.rows)
            publish(trainer, profile, step=trainer.global_step)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = float(trainer.callback_metrics["val_loss"])
        finding = ForecastFinding(n_train=48, d_data=6.0, observed=((48, loss),))
        publish(trainer, finding, step=trainer.global_step)


def _fit(tmp_path: Path, logger: Any, epochs: int = 2) -> None:
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=logger,
        callbacks=[Publisher(x, y)],
        default_root_dir=tmp_path,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Tiny(), loader, loader)


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_tensorboard_fit_records_images_text_and_hparams(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    logger = TensorBoardLogger(tmp_path, name="tb")
    _fit(tmp_path, logger)
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "tensors": 0})
    events.Reload()

    images = events.Tags()["images"]
    for tag in ("dataprops/sharpest_pairs", "dataprops/d_repr_profile", "dataprops/forecast"):
        assert tag in images
        for event in events.Images(tag):
            assert _png(event.encoded_image_string).size == (event.width, event.height)
    # Two epochs, two identical publishes each: one image per change.
    assert [event.step for event in events.Images("dataprops/d_repr_profile")] == [4, 8]
    assert len(events.Images("dataprops/sharpest_pairs")) == 1

    def text(tag: str) -> str:  # add_text stores a string tensor under <tag>/text_summary
        return events.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()

    assert WARNING_BODY in text("dataprops/sharp_labels")
    table = text("dataprops/sharpest_pairs")
    assert "| 1003 | 1004 |" in table  # the conflict, by dataset index

    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    session = HParamsPluginData.FromString(content).session_start_info
    assert session.hparams["dataprops/k"].number_value == 20
    assert session.hparams["lr"].number_value == pytest.approx(0.1)  # the run's own, kept
    saved = (Path(logger.log_dir) / "hparams.yaml").read_text()
    assert "dataprops:" in saved and "lr: 0.1" in saved


@pytest.mark.slow
def test_mlflow_fit_records_artifacts_and_params(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = MLFlowLogger(
        experiment_name="dataprops-test",
        tracking_uri=uri,
        artifact_location=(tmp_path / "artifacts").as_uri(),
    )
    _fit(tmp_path, logger, epochs=1)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(logger.run_id)
    assert run.data.params["dataprops/k"] == "20"
    assert run.data.params["lr"] == "0.1"

    names = {Path(item.path).name for item in client.list_artifacts(logger.run_id, "dataprops")}
    assert {"sharpest_pairs.png", "d_repr_profile.png", "forecast.png"} <= names
    assert {"sharp_labels.md", "sharpest_pairs.json", "hparams.json"} <= names
    local = Path(client.download_artifacts(logger.run_id, "dataprops", str(tmp_path / "down")))
    for png in ("sharpest_pairs.png", "d_repr_profile.png", "forecast.png"):
        assert _png((local / png).read_bytes()).size[0] > 100
    pairs = json.loads((local / "sharpest_pairs.json").read_text())
    assert pairs["pairs"][0]["conflict"] is True and pairs["K_F"] == "inf"
    assert WARNING_BODY in (local / "sharp_labels.md").read_text()


def test_csv_fit_writes_png_and_json_files(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="csv")
    _fit(tmp_path, logger)
    folder = Path(logger.log_dir) / "dataprops"
    for png in ("sharpest_pairs.png", "d_repr_profile.png", "forecast.png"):
        assert _png((folder / png).read_bytes()).format == "PNG"
    document = json.loads((folder / "findings.json").read_text())
    assert set(document) == {
        "sharpest_pairs",
        "sharp_labels",
        "hparams",
        "d_repr_profile",
        "forecast",
    }
    assert [row["epoch"] for row in document["d_repr_profile"]["rows"]] == [0, 0, 1, 1]
    assert document["hparams"]["params"]["dataprops/layers"] == "('net.1', 'net.3')"
    assert WARNING_BODY in (folder / "sharp_labels.md").read_text()
    assert "dataprops:" in (Path(logger.log_dir) / "hparams.yaml").read_text()


class _BrokenLogger(CSVLogger):
    def log_hyperparams(self, params: Any = None) -> None:
        raise RuntimeError("store is read-only")


def test_a_failing_logger_warns_once_and_the_others_still_receive(tmp_path: Path) -> None:
    broken, healthy = _BrokenLogger(tmp_path / "a"), CSVLogger(tmp_path / "b")
    finding = HyperparametersFinding({"dataprops/seed": 0})
    with pytest.warns(FindingNotLoggedWarning, match="read-only") as caught:
        done = publish([broken, healthy], finding, step=0)
        publish([broken, healthy], finding, step=1)  # healthy: unchanged; broken: warned once
    assert len([w for w in caught if w.category is FindingNotLoggedWarning]) == 1
    assert list(done) == ["CSVLogger"]
    assert "seed: 0" in (Path(healthy.log_dir) / "hparams.yaml").read_text()


_WITHOUT_MATPLOTLIB = """
import json, sys, warnings
from lightning.pytorch.loggers import CSVLogger
for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
    sys.modules[name] = None  # as if it were not installed
sys.modules["matplotlib"] = None
from lightning_dataprops.findings import ReprProfileFinding, TextFinding
from lightning_dataprops.integrations.publish import publish
from lightning_dataprops.findings.render import PlotsUnavailableWarning
logger = CSVLogger(sys.argv[1])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for epoch in range(3):
        row = {"epoch": epoch, "layer": "fc", "depth": 0, "d_repr": 3.0 + epoch}
        publish(logger, ReprProfileFinding.from_rows([row]), step=epoch)
    publish(logger, TextFinding("Sharp labels", "check the pairs", key="warning"), step=0)
messages = [str(w.message) for w in caught if w.category is PlotsUnavailableWarning]
print(json.dumps({"messages": messages, "log_dir": logger.log_dir}))
"""


@pytest.mark.slow
def test_without_matplotlib_texts_and_json_with_one_message_per_process(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_MATPLOTLIB, str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["messages"]) == 1 and "scalars" in result["messages"][0]
    folder = Path(result["log_dir"]) / "dataprops"
    assert sorted(p.name for p in folder.iterdir()) == ["findings.json", "warning.md"]
    document = json.loads((folder / "findings.json").read_text())
    assert document["d_repr_profile"]["rows"][0]["d_repr"] == 5.0  # the latest profile
