"""The default set in real (tiny, CPU) fits: W&B offline records, bit-identical training,
resume without recomputation, two-process DDP equal to one process, LightningCLI."""

from __future__ import annotations

import json
import subprocess
import sys
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
    SharpLabelsWarning,
)
from tests.integration.lightning_models import (
    CompilableCNN,
    TensorDataModule,
    TinyCNN,
    TupleOutputCNN,
    binary_task,
    fit_then_resume,
    trainer,
)
from tests.integration.wandb_records import find_run_file, read_run

PROBE_EVERY_EPOCH = {"robustness_every_n_epochs": 1, "overhead_budget": None}
"""The probe every epoch and every measurement on schedule (no overhead budget)."""


@pytest.fixture()
def mnist_3_vs_8(mnist):
    return binary_task(*mnist, 3, 8)


def _finish_wandb(logger: Any) -> Path:
    """Finish the logger's run and return its ``.wandb`` file (ask the run where it wrote)."""
    run = logger.experiment
    run_dir = Path(run.dir).parent
    run.finish()
    return find_run_file(run_dir)


def _has_key(records: Any, prefix: str) -> bool:
    return any(key.startswith(prefix) for row in records.history for key in row)


@pytest.mark.slow
def test_two_epoch_fit_records_everything_in_the_wandb_run(
    mnist_3_vs_8, wandb_offline: Path
) -> None:
    from lightning.pytorch.loggers import WandbLogger

    x, y = mnist_3_vs_8
    callbacks = default_callbacks(
        max_samples=600, repr_max_samples=300, scaling_constant=0.9, **PROBE_EVERY_EPOCH
    )
    logger = WandbLogger(project="dataprops-tests", save_dir=str(wandb_offline), offline=True)
    fit = trainer(wandb_offline, callbacks, logger=logger)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    files = Path(logger.experiment.dir)
    records = read_run(_finish_wandb(logger))
    # The sharpest pairs' table holds its numbers as numbers (sortable in the W&B UI).
    (table,) = files.glob("media/table/dataprops/sharpest_pairs*.table.json")
    document = json.loads(table.read_text())
    column = document["columns"].index("sharpness")
    assert all(isinstance(row[column], float) for row in document["data"])
    for name in (names.K_F, names.D_DATA, names.D_DATA_TWONN, names.N_TRAIN):
        (value,) = records.values(name)
        assert value == pytest.approx(float(fit.callback_metrics[name]), rel=1e-6), name
        assert records.summary[name] == pytest.approx(value), name
    assert records.values(names.N_SAMPLES) == [600]
    assert records.config["dataprops"]["n"] == 600
    d_repr = records.values(names.d_repr("features.5"))
    assert len(d_repr) == 2 and all(0 < v < 128 for v in d_repr)
    bounds = records.values(names.forecast("bound"))
    kf, d, n = (records.values(key)[0] for key in (names.K_F, names.D_DATA, names.N_TRAIN))
    assert len(bounds) == 2 and bounds[-1] == pytest.approx(kf * n ** (-1 / d), rel=1e-6)
    assert records.values(names.forecast("test_loss"))[-1] == pytest.approx(0.9 * bounds[-1])
    for table in (names.SHARPEST_PAIRS, names.D_REPR_PROFILE, names.D_REPR_PLOT):
        assert _has_key(records, table), table
    assert _has_key(records, names.DATA_SCALING_PLOT)
    for attack in ("fgsm", "pgd"):
        assert len(records.values(names.adversarial(attack, "loss_increase"))) == 2


def test_sharp_labels_raise_one_warning_and_one_wandb_alert(pneumonia, wandb_offline) -> None:
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(project="dataprops-tests", save_dir=str(wandb_offline), offline=True)
    callbacks = default_callbacks(repr_every_n_epochs=0, robustness_every_n_epochs=0)
    fit = trainer(wandb_offline, callbacks, max_epochs=1, limit_train_batches=1, logger=logger)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(), datamodule=TensorDataModule(*pneumonia))
    alerts = read_run(_finish_wandb(logger)).alerts
    sharp = [w for w in caught if issubclass(w.category, SharpLabelsWarning)]
    assert len(sharp) == 1 and "closest differently-labelled pair" in str(sharp[0].message)
    assert len(alerts) == 1 and "sharp" in alerts[0][1]


def test_training_is_bit_identical_with_and_without_the_callbacks(
    mnist_3_vs_8, tmp_path: Path
) -> None:
    x, y = mnist_3_vs_8

    def final_weights(callbacks: list[Any]) -> dict[str, torch.Tensor]:
        pl.seed_everything(7, verbose=False)
        model = TinyCNN()
        fit = trainer(tmp_path, callbacks, deterministic=True)
        fit.fit(model, datamodule=TensorDataModule(x, y))
        return {k: v.clone() for k, v in model.state_dict().items()}

    plain = final_weights([])
    callbacks = default_callbacks(max_samples=300, repr_max_samples=200, **PROBE_EVERY_EPOCH)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MeasurementFailedWarning)
        monitored = final_weights(callbacks)
    d_repr = next(c for c in callbacks if isinstance(c, RepresentationIDMonitor))
    assert len(d_repr.history) == 2
    for key, value in plain.items():
        assert torch.equal(value, monitored[key]), key


def test_resume_restores_the_default_set_without_recomputing(
    mnist_3_vs_8, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit, _, fit2, second = fit_then_resume(
        tmp_path,
        lambda: default_callbacks(max_samples=300, repr_max_samples=200, **PROBE_EVERY_EPOCH),
        *mnist_3_vs_8,
        monkeypatch,
    )
    properties = next(c for c in second if isinstance(c, DatasetPropertiesMonitor))
    d_repr = next(c for c in second if isinstance(c, RepresentationIDMonitor))
    assert not properties.recomputed
    assert [row["epoch"] for row in d_repr.history] == [0, 1], "history restored, then extended"
    assert names.forecast("bound") in fit2.callback_metrics
    assert float(fit2.callback_metrics[names.K_F]) == pytest.approx(
        float(fit.callback_metrics[names.K_F])
    )


def test_lightning_cli_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jsonargparse")
    from lightning.pytorch.cli import LightningCLI

    cli = LightningCLI(
        TinyCNN,
        run=False,
        args=[
            "--trainer.callbacks+=lightning_dataprops.RepresentationIDMonitor",
            "--trainer.callbacks.every_n_epochs=3",
            "--trainer.callbacks+=lightning_dataprops.DatasetPropertiesMonitor",
            "--trainer.logger=false",
        ],
    )
    (monitor,) = [c for c in cli.trainer.callbacks if isinstance(c, RepresentationIDMonitor)]
    assert monitor.every_n_epochs == 3
    assert any(isinstance(c, DatasetPropertiesMonitor) for c in cli.trainer.callbacks)


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
@pytest.mark.slow
def test_two_process_ddp_gives_the_single_process_values(strategy: str, tmp_path: Path) -> None:
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
    compared = [n for n in single if not n.startswith(f"{names.PREFIX}/time")]
    assert names.d_repr("features.5") in compared and names.forecast("bound") in compared
    for name in compared:
        assert distributed[name] == pytest.approx(single[name], rel=1e-4), name


def _fit_default_set(model: pl.LightningModule, data: Any, root: Path, **kwargs: Any) -> Any:
    options = kwargs.pop("options", {})
    callbacks = default_callbacks(
        max_samples=400, repr_max_samples=200, **PROBE_EVERY_EPOCH, **options
    )
    fit = trainer(root, callbacks, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MeasurementFailedWarning)
        fit.fit(model, datamodule=TensorDataModule(*data))
    return fit


def test_tuple_output_model_with_forward_fn(mnist_3_vs_8, tmp_path: Path) -> None:
    options = {"forward_fn": lambda module, inputs: module(inputs)[0]}
    fit = _fit_default_set(TupleOutputCNN(), mnist_3_vs_8, tmp_path, options=options)
    for name in (names.K_F, names.d_repr("features.5"), names.forecast("bound")):
        assert name in fit.callback_metrics, name
    assert names.adversarial("fgsm", "clean_acc") in fit.callback_metrics


def test_compiled_model_with_the_default_set(mnist_3_vs_8, tmp_path: Path) -> None:
    model = torch.compile(CompilableCNN(), backend="aot_eager")
    fit = _fit_default_set(model, mnist_3_vs_8, tmp_path)  # type: ignore[arg-type]
    assert names.d_repr("features.5") in fit.callback_metrics


def test_bf16_mixed_precision_fit_measures_the_same_data(mnist_3_vs_8, tmp_path: Path) -> None:
    full = _fit_default_set(TinyCNN(), mnist_3_vs_8, tmp_path / "32", max_epochs=1)
    mixed = _fit_default_set(
        TinyCNN(), mnist_3_vs_8, tmp_path / "bf16", max_epochs=1, precision="bf16-mixed"
    )
    for name in (names.D_DATA, names.D_DATA_TWONN, names.K_F):
        assert float(mixed.callback_metrics[name]) == float(full.callback_metrics[name]), name
    assert 0 < float(mixed.callback_metrics[names.d_repr("features.5")]) < 128
