"""DataPropsMonitor in real (tiny, CPU) Lightning fits."""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lightning_dataprops import DataPropsMonitor
from lightning_dataprops.callbacks import SharpLabelsWarning
from tests.integration.lightning_models import TensorDataModule, TinyCNN, binary_task
from tests.integration.wandb_records import find_run_file, read_run


def _trainer(tmp_path: Path, callbacks: list[Any], **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "limit_train_batches": 4,
        "limit_val_batches": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
        "default_root_dir": str(tmp_path),
    }
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)


@pytest.fixture()
def mnist_3_vs_8(mnist):
    return binary_task(*mnist, 3, 8)


@pytest.fixture()
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    import wandb

    if wandb.run is not None:  # a run left open elsewhere would swallow this test's records
        wandb.finish()
    return tmp_path


def _finish_wandb(logger: Any) -> Path:
    """Finish the logger's run and return its ``.wandb`` file.

    wandb keeps process-wide settings from the first run of a process, so a later run's files
    may not be below this test's folder: ask the run where it wrote.
    """
    run = logger.experiment
    run_dir = Path(run.dir).parent
    run.finish()
    return find_run_file(run_dir)


def test_two_epoch_fit_records_everything_in_the_wandb_run(
    mnist_3_vs_8, wandb_offline: Path
) -> None:
    from lightning.pytorch.loggers import WandbLogger

    x, y = mnist_3_vs_8
    monitor = DataPropsMonitor(max_samples=600, repr_samples=300, progress=False)
    logger = WandbLogger(project="dataprops-tests", save_dir=str(wandb_offline), offline=True)
    trainer = _trainer(wandb_offline, [monitor], logger=logger)
    trainer.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    records = read_run(_finish_wandb(logger))
    for name in ("dataprops/label_sharpness", "dataprops/data_id", "dataprops/data_id_twonn"):
        (value,) = records.values(name)
        assert value == pytest.approx(float(trainer.callback_metrics[name]), rel=1e-6)
    layer = monitor._layer_names[0]
    assert layer == "features.5", "the penultimate layer feeds the head"
    repr_values = records.values(f"dataprops/repr_id/{layer}")
    assert len(repr_values) == 2 and all(0 < v < 200 for v in repr_values)
    assert records.values("dataprops/n_samples") == [600]
    assert "dataprops/label_sharpness" in trainer.callback_metrics
    assert records.summary["dataprops/data_id"] == pytest.approx(
        records.values("dataprops/data_id")[0]
    )
    assert any(key.startswith("dataprops/sharpest_pairs") for row in records.history for key in row)
    assert any(
        key.startswith("dataprops/repr_id_profile") for row in records.history for key in row
    )
    assert records.config["dataprops"]["n"] == 600
    assert [h["epoch"] for h in monitor.repr_history] == [0, 1]


def _fit_start_warnings(
    x: torch.Tensor, y: torch.Tensor, tmp_path: Path, **trainer_kwargs: Any
) -> list:
    monitor = DataPropsMonitor(every_n_epochs=0, progress=False)
    trainer = _trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1, **trainer_kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    return [w for w in caught if issubclass(w.category, SharpLabelsWarning)]


def test_sharp_label_warning_and_alert_fire_for_pneumonia(pneumonia, wandb_offline: Path) -> None:
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(project="dataprops-tests", save_dir=str(wandb_offline), offline=True)
    sharp = _fit_start_warnings(*pneumonia, wandb_offline, logger=logger)
    run_file = _finish_wandb(logger)
    assert len(sharp) == 1
    message = str(sharp[0].message)
    assert "sharp" in message and "natural images" in message and "sharpest pair" in message
    alerts = read_run(run_file).alerts
    assert len(alerts) == 1 and "sharp" in alerts[0][1]


@pytest.mark.parametrize(
    ("dataset", "a", "b"), [("mnist", 3, 8), ("fashion", 0, 1), ("fashion", 2, 4)]
)
def test_sharp_label_warning_is_silent_on_natural_images(
    dataset, a, b, request, tmp_path: Path
) -> None:
    x, y = binary_task(*request.getfixturevalue(dataset), a, b, n=1500)
    assert _fit_start_warnings(x, y, tmp_path) == []


def test_monitor_does_not_change_the_training_trajectory(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8

    def final_weights(callbacks: list[Any]) -> dict[str, torch.Tensor]:
        pl.seed_everything(7, verbose=False)
        model = TinyCNN()
        trainer = _trainer(tmp_path, callbacks, deterministic=True)
        trainer.fit(model, datamodule=TensorDataModule(x, y))
        return {k: v.clone() for k, v in model.state_dict().items()}

    plain = final_weights([])
    monitor = DataPropsMonitor(
        max_samples=300, repr_samples=200, adversarial_every_n_epochs=1, progress=False
    )
    monitored = final_weights([monitor])
    assert monitor.repr_history and "dataprops/adv/pgd/loss_increase" in monitor.last_metrics
    for key, value in plain.items():
        assert torch.equal(value, monitored[key]), key


def test_resume_restores_without_recomputing(mnist_3_vs_8, tmp_path: Path, monkeypatch) -> None:
    x, y = mnist_3_vs_8
    first = DataPropsMonitor(max_samples=300, repr_samples=200, progress=False)
    trainer = _trainer(tmp_path, [first], max_epochs=1, enable_checkpointing=True)
    trainer.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    checkpoint = trainer.checkpoint_callback.best_model_path
    assert first.recomputed

    import lightning_dataprops.callbacks.data_props_monitor as module

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fit-start properties were recomputed on resume")

    monkeypatch.setattr(module, "dataset_properties", refuse)
    resumed = DataPropsMonitor(max_samples=300, repr_samples=200, progress=False)
    trainer2 = _trainer(tmp_path, [resumed], max_epochs=2)
    trainer2.fit(TinyCNN(), datamodule=TensorDataModule(x, y), ckpt_path=checkpoint)
    assert not resumed.recomputed
    assert resumed.fit_start_state == first.fit_start_state
    assert float(trainer2.callback_metrics["dataprops/label_sharpness"]) == pytest.approx(
        first.fit_start_state["metrics"]["dataprops/label_sharpness"]
    )
    assert [h["epoch"] for h in resumed.repr_history] == [0, 1]


def test_two_monitors_keep_separate_state() -> None:
    a = DataPropsMonitor(name="a")
    b = DataPropsMonitor(name="b")
    assert a.state_key != b.state_key


def test_csv_logger_dict_items_regression_and_no_labels(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    monitor = DataPropsMonitor(
        max_samples=300, repr_samples=200, layers=["features.*"], pool="avg", progress=False
    )
    trainer = _trainer(tmp_path, [monitor], logger=CSVLogger(str(tmp_path)), max_epochs=1)
    trainer.fit(TinyCNN(), datamodule=TensorDataModule(x, y, as_dict=True))
    metrics_file = Path(trainer.logger.log_dir) / "metrics.csv"
    header = metrics_file.read_text().splitlines()[0]
    assert "dataprops/label_sharpness" in header and "dataprops/repr_id/features.0" in header
    assert {h["layer"] for h in monitor.repr_history} == {f"features.{i}" for i in range(6)}

    unlabelled = DataPropsMonitor(
        max_samples=300, every_n_epochs=0, target_fn=lambda item: None, progress=False
    )
    trainer = _trainer(tmp_path, [unlabelled], max_epochs=1, limit_train_batches=1)
    trainer.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert "dataprops/data_id" in trainer.callback_metrics
    assert "dataprops/label_sharpness" not in trainer.callback_metrics

    regression = DataPropsMonitor(
        max_samples=300, every_n_epochs=0, target_fn=lambda item: item[0].mean(), progress=False
    )
    trainer = _trainer(tmp_path, [regression], max_epochs=1, limit_train_batches=1)
    trainer.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert math.isfinite(float(trainer.callback_metrics["dataprops/label_sharpness"]))


def test_misconfiguration_fails_in_setup_listing_what_is_available(
    mnist_3_vs_8, tmp_path: Path
) -> None:
    x, y = mnist_3_vs_8
    trainer = _trainer(tmp_path, [DataPropsMonitor(layers=["backbone.fc"])])
    with pytest.raises(ValueError, match=r"no module named 'backbone.fc'.*features\.0.*head"):
        trainer.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    trainer = _trainer(tmp_path, [DataPropsMonitor(input_key="pixels")])
    with pytest.raises(ValueError, match=r"input_key='pixels'.*keys"):
        trainer.fit(TinyCNN(), datamodule=TensorDataModule(x, y, as_dict=True))
    with pytest.raises(ValueError, match="max_samples=10 must exceed k=20"):
        DataPropsMonitor(max_samples=10)


def test_no_logger_still_computes_and_fills_callback_metrics(pneumonia, tmp_path: Path) -> None:
    sharp = _fit_start_warnings(*pneumonia, tmp_path)
    assert len(sharp) == 1


def test_lightning_cli_and_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jsonargparse")
    from lightning.pytorch.cli import LightningCLI

    cli = LightningCLI(
        TinyCNN,
        run=False,
        args=[
            "--trainer.callbacks+=lightning_dataprops.DataPropsMonitor",
            "--trainer.callbacks.every_n_epochs=3",
            "--trainer.logger=false",
        ],
    )
    monitors = [c for c in cli.trainer.callbacks if isinstance(c, DataPropsMonitor)]
    assert len(monitors) == 1 and monitors[0].every_n_epochs == 3

    monkeypatch.setenv("LIGHTNING_DATAPROPS", "1")
    trainer = pl.Trainer(logger=False, enable_progress_bar=False)
    assert any(isinstance(c, DataPropsMonitor) for c in trainer.callbacks)
    monkeypatch.setenv("LIGHTNING_DATAPROPS", "0")
    trainer = pl.Trainer(logger=False, enable_progress_bar=False)
    assert not any(isinstance(c, DataPropsMonitor) for c in trainer.callbacks)


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_two_process_ddp_gives_the_single_process_values(strategy: str, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from tests.integration.ddp_fit import run

    single = run("auto", 1, str(tmp_path / "single"))
    out = tmp_path / f"{strategy}.json"
    script = Path(__file__).resolve().parent / "ddp_fit.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--strategy", strategy, "--devices", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    distributed = json.loads(out.read_text())
    names = [n for n in single if not n.startswith("dataprops/time")]
    assert any(n.startswith("dataprops/repr_id/") for n in names)
    for name in names:
        assert distributed[name] == pytest.approx(single[name], rel=1e-4), name


def test_probe_and_forecast_are_recorded_and_follow_their_formulas(
    mnist_3_vs_8, wandb_offline: Path
) -> None:
    from lightning.pytorch.loggers import WandbLogger

    attacks: dict[str, Any] = {"fgsm": "fgsm"}
    torchattacks = pytest.importorskip("torchattacks", reason="torchattacks is an optional extra")
    attacks["ta_pgd"] = functools.partial(torchattacks.PGD, eps=4 / 255, alpha=1 / 255, steps=3)
    x, y = mnist_3_vs_8
    monitor = DataPropsMonitor(
        max_samples=400,
        repr_samples=200,
        adversarial_every_n_epochs=1,
        adversarial_samples=64,
        attacks=attacks,
        scaling_constant=0.9,
        target_loss=0.05,
        calibration_csv=str(wandb_offline / "runs.csv"),
        progress=False,
    )
    logger = WandbLogger(project="dataprops-tests", save_dir=str(wandb_offline), offline=True)
    trainer = _trainer(wandb_offline, [monitor], logger=logger, max_epochs=2)
    trainer.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    records = read_run(_finish_wandb(logger))
    for attack in ("fgsm", "ta_pgd"):
        for quantity in (
            "clean_loss",
            "adv_loss",
            "loss_increase",
            "clean_acc",
            "robust_acc",
            "success_rate",
        ):
            values = records.values(f"dataprops/adv/{attack}/{quantity}")
            assert len(values) == 2, (attack, quantity)
        increase = records.values(f"dataprops/adv/{attack}/loss_increase")[-1]
        clean = records.values(f"dataprops/adv/{attack}/clean_loss")[-1]
        adv = records.values(f"dataprops/adv/{attack}/adv_loss")[-1]
        assert increase == pytest.approx(adv - clean, abs=1e-6) and increase > 0

    kf = records.values("dataprops/label_sharpness")[0]
    d = records.values("dataprops/data_id")[0]
    n = records.values("dataprops/forecast/n_train")[-1]
    assert n == len(x)
    bound = records.values("dataprops/forecast/bound")[-1]
    assert bound == pytest.approx(kf * n ** (-1 / d), rel=1e-9)
    assert records.values("dataprops/forecast/loss_ratio_2x_data")[-1] == pytest.approx(
        2 ** (-1 / d)
    )
    assert records.values("dataprops/forecast/test_loss")[-1] == pytest.approx(0.9 * bound)
    train_loss = float(trainer.callback_metrics["train_loss"])
    assert records.values("dataprops/forecast/gap")[-1] == pytest.approx(
        0.9 * bound - train_loss, rel=1e-5
    )
    val_loss = records.values("dataprops/forecast/observed_val_loss")[-1]
    assert records.values("dataprops/forecast/samples_for_target")[-1] == pytest.approx(
        n * (val_loss / 0.05) ** d, rel=1e-6
    )
    layer = monitor._layer_names[0]
    d_repr = records.values(f"dataprops/repr_id/{layer}")[-1]
    assert records.values("dataprops/forecast/repr_loss_ratio_2x_data")[-1] == pytest.approx(
        2 ** (-1 / d_repr)
    )
    assert any(
        key.startswith("dataprops/forecast/data_scaling") for row in records.history for key in row
    )
    rows = (wandb_offline / "runs.csv").read_text().splitlines()
    assert rows[0].startswith("n_train,d_data,label_sharpness,test_loss") and len(rows) == 2
