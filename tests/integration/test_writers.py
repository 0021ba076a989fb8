"""The writer registry behind publish(), and W&B as one writer behind it (offline runs, read
back from their .wandb files): tables, plots, summary, config and alerts, kept per run."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lightning_dataprops import default_callbacks, names
from lightning_dataprops.callbacks import SharpLabelsWarning
from lightning_dataprops.findings import (
    ForecastFinding,
    HyperparametersFinding,
    PairExample,
    ReprProfileFinding,
    RunSummaryFinding,
    SharpPairsFinding,
    TextFinding,
)
from lightning_dataprops.integrations import publish as publishing
from lightning_dataprops.integrations.publish import publish, register_writer, writer_for
from tests.integration.lightning_models import TensorDataModule, TinyCNN, binary_task, trainer
from tests.integration.wandb_records import find_run_file, read_run


class _NotebookLogger:
    """A logger type of a user's own, not a Lightning logger."""

    def __init__(self) -> None:
        self.received: list[tuple[str, int, bool]] = []


class _SubNotebookLogger(_NotebookLogger):
    pass


def _notebook_writer(
    logger: _NotebookLogger, finding: Any, figure: Any, *, step: int, **context: Any
) -> list[str]:
    logger.received.append((finding.key, step, figure is not None))
    return [f"cell {finding.key}"]


@pytest.fixture()
def restore_registry():
    saved = dict(publishing._WRITERS)
    yield
    publishing._WRITERS.clear()
    publishing._WRITERS.update(saved)


def test_a_registered_logger_type_receives_findings_through_publish(restore_registry) -> None:
    register_writer(_NotebookLogger, _notebook_writer)
    mine, derived = _NotebookLogger(), _SubNotebookLogger()
    profile = ReprProfileFinding.from_rows([{"epoch": 0, "layer": "fc", "depth": 0, "d_repr": 3.0}])
    done = publish([mine, derived], profile, step=7)
    assert done == {
        "_NotebookLogger": ["cell d_repr_profile"],
        "_SubNotebookLogger": ["cell d_repr_profile"],  # subclasses too (MRO)
    }
    assert mine.received == [("d_repr_profile", 7, True)]  # the figure was drawn for it
    assert publish(mine, profile, step=8) == {}  # unchanged content: not written again
    assert writer_for(derived) is _notebook_writer


def test_a_writer_registered_by_name_is_imported_on_first_use(restore_registry) -> None:
    register_writer(f"{__name__}._NotebookLogger", "tests.integration.test_writers")
    assert writer_for(_SubNotebookLogger()) is log_finding


def log_finding(logger: Any, finding: Any, figure: Any, *, step: int, **context: Any) -> list[str]:
    """This module as a writer (for the test above)."""
    return []


# ---------------------------------------------------------------------------------------- W&B
def _wandb_logger(root: Path) -> Any:
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(project="dataprops-tests", save_dir=str(root), offline=True)


def _finish(logger: Any) -> Any:
    run = logger.experiment
    run_dir = Path(run.dir).parent
    run.finish()
    return read_run(find_run_file(run_dir))


def _has_key(records: Any, prefix: str) -> bool:
    return any(key.startswith(prefix) for row in records.history for key in row)


def test_wandb_is_one_writer_behind_publish(wandb_offline: Path) -> None:
    logger = _wandb_logger(wandb_offline / "a")
    pair = PairExample(
        3, 9, 0, 1, 0.5, 2.0, input_i=torch.zeros(1, 4, 4), input_j=torch.ones(1, 4, 4)
    )
    summary = RunSummaryFinding({names.K_F: 2.0, names.D_DATA: 7.5}, {"n": 120, "k": 20})
    warning = TextFinding("Sharp labels", "the labels are sharp", key="sharp", level="warning")
    findings = [
        HyperparametersFinding({"dataprops/k": 20}),  # W&B has no panel for it: nothing written
        summary,
        SharpPairsFinding((pair,), K_F=2.0, n=120),
        ReprProfileFinding.from_rows(
            [{"epoch": e, "layer": "fc", "depth": 0, "d_repr": 3.0 + e} for e in range(2)]
        ),
        ForecastFinding(n_train=1000, d_data=10.0, K_F=2.0, constant=0.5),
        TextFinding("Note", "just information", key="note"),  # info: no alert
        warning,
    ]
    done = [publish(logger, finding, step=5).get("WandbLogger", []) for finding in findings]
    assert done[0] == [] and done[5] == []
    assert done[6] == ["alert Sharp labels"]
    assert publish(logger, warning, step=6, force=True) == {}  # within alert_wait_s: no second
    records = _finish(logger)
    assert records.summary[names.K_F] == 2.0 and records.summary[names.D_DATA] == 7.5
    assert records.config["dataprops"] == {"n": 120, "k": 20, names.K_F: 2.0, names.D_DATA: 7.5}
    for key in (
        names.SHARPEST_PAIRS,
        names.D_REPR_PROFILE,
        names.D_REPR_PLOT,
        names.DATA_SCALING_PLOT,
    ):
        assert _has_key(records, key), key
    assert records.alerts == [("Sharp labels", "the labels are sharp")]


def test_the_alert_rate_limit_is_kept_per_wandb_run(wandb_offline: Path) -> None:
    warning = TextFinding("Sharp labels", "the labels are sharp", key="sharp", level="warning")
    for run in ("first", "second"):
        logger = _wandb_logger(wandb_offline / run)
        assert publish(logger, warning, step=0) == {"WandbLogger": ["alert Sharp labels"]}
        assert _finish(logger).alerts == [("Sharp labels", "the labels are sharp")], run


@pytest.mark.slow
def test_two_fits_in_one_process_each_record_the_sharp_label_alert(
    pneumonia, wandb_offline: Path
) -> None:
    for run in ("first", "second"):
        logger = _wandb_logger(wandb_offline / run)
        callbacks = default_callbacks(every_n_epochs=0, adversarial_every_n_epochs=0)
        fit = trainer(
            wandb_offline / run, callbacks, max_epochs=1, limit_train_batches=1, logger=logger
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit.fit(TinyCNN(), datamodule=TensorDataModule(*pneumonia))
        records = _finish(logger)
        assert [w for w in caught if issubclass(w.category, SharpLabelsWarning)], run
        assert len(records.alerts) == 1 and "sharp" in records.alerts[0][1], run
        assert records.summary[names.K_F] == pytest.approx(float(fit.callback_metrics[names.K_F]))


def _breast() -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np

    from tests.conftest import shared_file

    with np.load(shared_file("medmnist/breastmnist.npz")) as data:
        images, labels = data["train_images"], data["train_labels"].ravel()
    x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def _sharp_fit(root: Path, logger: Any) -> Any:
    """A one-epoch trainer with the fit-start callback only."""
    callbacks = default_callbacks(repr_every_n_epochs=0, robustness_every_n_epochs=0)
    return trainer(root, callbacks, max_epochs=1, limit_train_batches=1, logger=logger)


def _fit_and_count_sharp(
    root: Path, logger: Any, data: tuple[torch.Tensor, torch.Tensor], fit: Any = None
) -> int:
    """One fit (on a new trainer unless ``fit`` is given); how many sharp-label warnings it gave."""
    fit = _sharp_fit(root, logger) if fit is None else fit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(), datamodule=TensorDataModule(*data))
    return len([w for w in caught if issubclass(w.category, SharpLabelsWarning)])


@pytest.mark.slow
def test_every_fit_in_one_process_records_its_alert_whatever_ran_before(
    pneumonia, mnist, wandb_offline: Path
) -> None:
    # Sharp, not sharp, sharp, sharp again (the same data as the first): each its own run.
    datasets = [
        ("pneumonia", pneumonia),
        ("mnist", binary_task(*mnist, 3, 8)),
        ("breast", _breast()),
        ("pneumonia_again", pneumonia),
    ]
    for run, data in datasets:
        logger = _wandb_logger(wandb_offline / run)
        fired = _fit_and_count_sharp(wandb_offline / run, logger, data)
        alerts = _finish(logger).alerts
        assert fired == (run != "mnist"), run
        assert len(alerts) == fired and all("sharp" in text for _, text in alerts), run


@pytest.mark.slow
def test_fits_sharing_one_wandb_run_each_record_their_alert(
    pneumonia, mnist, wandb_offline: Path
) -> None:
    # A loop that never calls wandb.finish(): every new WandbLogger reuses the open run (Lightning
    # says so); a cross-validation loop may also hand one logger to every fold's trainer, and a
    # notebook may fit one trainer twice. Each fit whose check fires records its alert in the run.
    first = _wandb_logger(wandb_offline / "shared")
    plan = [(first, pneumonia), (first, binary_task(*mnist, 3, 8)), (first, pneumonia)]
    plan.append((_wandb_logger(wandb_offline / "reused"), pneumonia))  # reuses the open run
    fired = [_fit_and_count_sharp(wandb_offline, logger, data) for logger, data in plan]
    assert plan[-1][0].experiment is first.experiment  # one run for all these fits
    twice = _sharp_fit(wandb_offline, first)
    fired += [_fit_and_count_sharp(wandb_offline, first, pneumonia, twice) for _ in range(2)]
    alerts = _finish(first).alerts
    assert fired == [1, 0, 1, 1, 1, 1]
    assert len(alerts) == 5 and all("sharp" in text for _, text in alerts)


def test_the_pair_picture_reaches_wandb_with_its_brightness() -> None:
    """wandb.Image does not rescale float arrays in [0, 1]: a float picture was stored black."""
    wandb = pytest.importorskip("wandb")
    from lightning_dataprops.integrations.wandb import pair_image

    generator = torch.Generator().manual_seed(0)
    picture = pair_image(torch.rand(3, 32, 32, generator=generator), torch.ones(3, 32, 32))
    assert picture is not None and picture.dtype == np.uint8
    stored = np.asarray(wandb.Image(picture).image)
    assert stored.max() == 255 and stored[:, :32].mean() > 100
    assert stored[:, -32:].min() == 255  # the all-ones image, white
