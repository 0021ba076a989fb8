"""DatasetPropertiesMonitor alone, in tiny real fits."""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from lightning_dataprops import (
    check_label_sharpness,
    dataset_properties,
    default_callbacks,
    names,
    sample_dataset,
)
from lightning_dataprops.callbacks import (
    DataPropsOptions,
    DatasetPropertiesMonitor,
    MeasurementFailedWarning,
    RepresentationIDMonitor,
    SharpLabelsWarning,
)
from tests.conftest import shared_file
from tests.integration.lightning_models import (
    ON_SCHEDULE,
    TensorDataModule,
    TinyCNN,
    binary_task,
    fit_then_resume,
    trainer,
)


def _metric(trainer_: Any, name: str) -> float:
    return float(trainer_.callback_metrics[name])


def test_logs_the_functional_values_of_the_seeded_sample(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    monitor = DatasetPropertiesMonitor(DataPropsOptions(seed=4), max_samples=500, k=10)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=2)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    # Oracle: the same seeded sample through the functional layer.
    sample = sample_dataset(torch.utils.data.TensorDataset(x, y), max_samples=500, seed=4)
    props = dataset_properties(sample.inputs, sample.targets, k=10)
    assert _metric(fit, names.D_DATA) == pytest.approx(props.d_data, rel=1e-6)
    assert _metric(fit, names.D_DATA_TWONN) == pytest.approx(props.d_data_twonn, rel=1e-6)
    assert props.K_F is not None
    assert _metric(fit, names.K_F) == pytest.approx(props.K_F, rel=1e-6)
    assert _metric(fit, names.N_SAMPLES) == 500
    assert _metric(fit, names.N_TRAIN) == len(x)
    assert 0 < _metric(fit, names.K_F_RATIO) < 1, "MNIST 3 vs 8 is within the natural band"
    assert _metric(fit, names.seconds("fit_start")) > 0
    assert monitor.recomputed


def _warnings_of(x: torch.Tensor, y: torch.Tensor, tmp_path: Path) -> list[Any]:
    fit = trainer(tmp_path, [DatasetPropertiesMonitor()], max_epochs=1, limit_train_batches=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    return [w for w in caught if issubclass(w.category, SharpLabelsWarning)]


def test_sharp_labels_warn_on_pneumonia_and_not_on_mnist(pneumonia, mnist, tmp_path) -> None:
    sharp = _warnings_of(*pneumonia, tmp_path)
    assert len(sharp) == 1
    message = str(sharp[0].message)
    assert "The labels are sharp" in message and "natural images (" in message
    # The pair to inspect is named by dataset indices: two differently-labelled training items.
    found = re.search(r"pair is samples (\d+) and (\d+) \(labels (\d+) vs (\d+)", message)
    assert found is not None, message
    i, j, label_i, label_j = (int(v) for v in found.groups())
    _, y = pneumonia
    assert (int(y[i]), int(y[j])) == (label_i, label_j) and label_i != label_j
    assert _warnings_of(*binary_task(*mnist, 3, 8, n=1500), tmp_path) == []


def test_resume_restores_the_values_without_recomputing(
    mnist_3_vs_8, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, (first, *_), fit2, (resumed, *_) = fit_then_resume(
        tmp_path, lambda: [DatasetPropertiesMonitor(max_samples=300)], *mnist_3_vs_8, monkeypatch
    )
    assert not resumed.recomputed
    assert resumed.fit_start_state == first.fit_start_state
    assert first.fit_start_state is not None
    assert _metric(fit2, names.K_F) == pytest.approx(first.fit_start_state["metrics"][names.K_F])


def _tensorboard_and_csv(root: Path, name: str) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    return [TensorBoardLogger(root, name=name), CSVLogger(root, name=name)]


def _events(logger: Any) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.mark.slow
def test_a_resumed_run_gets_the_findings_at_the_resumed_step_without_recomputing(
    pneumonia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    import lightning_dataprops.callbacks.dataset_properties as module

    x, y = pneumonia
    first = DatasetPropertiesMonitor()
    fit = trainer(
        tmp_path,
        [first],
        max_epochs=1,
        enable_checkpointing=True,
        logger=_tensorboard_and_csv(tmp_path, "first"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SharpLabelsWarning)
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert fit.checkpoint_callback is not None and first.fit_start_state is not None
    resumed_step = fit.global_step
    assert resumed_step == 4

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fit-start properties were recomputed on resume")

    monkeypatch.setattr(module, "measure_dataset", refuse)
    resumed = DatasetPropertiesMonitor()
    loggers = _tensorboard_and_csv(tmp_path, "resumed")
    fit2 = trainer(tmp_path, [resumed], max_epochs=2, logger=loggers)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit2.fit(
            TinyCNN(),
            datamodule=TensorDataModule(x, y),
            ckpt_path=fit.checkpoint_callback.best_model_path,
        )
    assert not [w for w in caught if issubclass(w.category, MeasurementFailedWarning)]
    assert len([w for w in caught if issubclass(w.category, SharpLabelsWarning)]) == 1
    assert not resumed.recomputed and resumed.fit_start_state == first.fit_start_state

    # TensorBoard, read back with its own reader: the values, the picture and the warning text
    # of the restored report, all at the resumed step; the picture is the first run's.
    events, before = _events(loggers[0]), _events(fit.loggers[0])
    for name in (names.D_DATA, names.K_F, names.K_F_MEDIAN):
        (scalar,) = events.Scalars(name)
        assert scalar.step == resumed_step
        assert scalar.value == pytest.approx(first.fit_start_state["metrics"][name], rel=1e-6)
    (image,) = events.Images("dataprops/sharpest_pairs")
    assert image.step == resumed_step
    (original,) = before.Images("dataprops/sharpest_pairs")
    assert image.encoded_image_string == original.encoded_image_string
    (text,) = events.Tensors("dataprops/sharp_labels/text_summary")
    assert text.step == resumed_step
    assert "The labels are sharp" in text.tensor_proto.string_val[0].decode()

    # CSVLogger: the scalars on a row of the resumed step, the picture and text as files.
    with open(Path(loggers[1].log_dir) / "metrics.csv", newline="") as table:
        rows = [row for row in csv.DictReader(table) if row.get(names.K_F)]
    assert [int(row["step"]) for row in rows] == [resumed_step]
    folder = Path(loggers[1].log_dir) / "dataprops"
    assert (folder / "sharpest_pairs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "The labels are sharp" in (folder / "sharp_labels.md").read_text()
    findings = json.loads((folder / "findings.json").read_text())
    assert findings["sharpest_pairs"]["step"] == resumed_step
    assert findings["sharp_labels"]["step"] == resumed_step


def test_values_measured_in_a_resumed_fit_also_land_at_the_resumed_step(
    mnist_3_vs_8, tmp_path: Path
) -> None:
    from lightning.pytorch.loggers import CSVLogger

    x, y = mnist_3_vs_8
    fit = trainer(tmp_path, [], max_epochs=1, enable_checkpointing=True)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert fit.checkpoint_callback is not None
    # The monitor joins at resume: nothing to restore, so it measures, at the resumed step.
    monitor = DatasetPropertiesMonitor(max_samples=300)
    logger = CSVLogger(tmp_path, name="resumed")
    fit2 = trainer(tmp_path, [monitor], max_epochs=2, logger=logger)
    fit2.fit(
        TinyCNN(),
        datamodule=TensorDataModule(x, y),
        ckpt_path=fit.checkpoint_callback.best_model_path,
    )
    assert monitor.recomputed
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as table:
        rows = [row for row in csv.DictReader(table) if row.get(names.K_F)]
    assert [(int(row["step"]), int(row["epoch"])) for row in rows] == [(fit.global_step, 1)]


def test_without_targets_no_kf_and_float_targets_are_regression(mnist_3_vs_8, tmp_path) -> None:
    x, y = mnist_3_vs_8
    unlabelled = DatasetPropertiesMonitor(DataPropsOptions(target_fn=lambda item: None))
    fit = trainer(tmp_path, [unlabelled], max_epochs=1, limit_train_batches=1)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert names.D_DATA in fit.callback_metrics and names.K_F not in fit.callback_metrics

    brightness = DataPropsOptions(target_fn=lambda item: item[0].mean())
    fit = trainer(tmp_path, [DatasetPropertiesMonitor(brightness, max_samples=300)], max_epochs=1)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert math.isfinite(_metric(fit, names.K_F)) and names.K_F_MEDIAN not in fit.callback_metrics


class Stream(IterableDataset):
    """A finite stream without ``len``: 600 MNIST items."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from zip(self.x[:600], self.y[:600], strict=True)


def test_a_stream_without_len_counts_n_and_never_invents_it(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    loader = DataLoader(Stream(x, y), batch_size=64)
    fit = trainer(tmp_path, [DatasetPropertiesMonitor(max_samples=300)], max_epochs=1)
    fit.fit(TinyCNN(), train_dataloaders=loader)
    assert _metric(fit, names.N_TRAIN) == 600  # the finite stream was counted to its end

    class Endless(IterableDataset):
        def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            return itertools.cycle(zip(x[:600], y[:600], strict=True))

    endless = DataLoader(Endless(), batch_size=64)
    fit = trainer(tmp_path, [DatasetPropertiesMonitor(max_samples=300)], max_steps=2)
    with pytest.warns(UserWarning, match="stream"):
        fit.fit(TinyCNN(), train_dataloaders=endless)
    assert names.D_DATA in fit.callback_metrics and names.N_TRAIN not in fit.callback_metrics
    given = DatasetPropertiesMonitor(max_samples=300, n_train=600)
    fit = trainer(tmp_path, [given], max_steps=2)
    fit.fit(TinyCNN(), train_dataloaders=endless)
    assert _metric(fit, names.N_TRAIN) == 600

    # The bound the warning names is an option of the callbacks: each reads at most that many.
    read: list[int] = []

    class Counted(IterableDataset):
        def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for index, item in enumerate(itertools.cycle(zip(x[:600], y[:600], strict=True))):
                read.append(index)
                yield item

    bounded = default_callbacks(
        max_samples=300, repr_max_samples=100, robustness_every_n_epochs=0, max_stream_items=700
    )
    fit = trainer(tmp_path, bounded, max_steps=2)
    with pytest.warns(UserWarning, match=r"max_stream_items=700.*default_callbacks"):
        fit.fit(TinyCNN(), train_dataloaders=DataLoader(Counted(), batch_size=64))
    assert names.D_DATA in fit.callback_metrics
    passes = [i for i, index in enumerate(read) if index == 0]
    lengths = [b - a for a, b in zip(passes, [*passes[1:], len(read)], strict=True)]
    assert max(lengths) <= 701 and sum(lengths) < 3 * 701 + 2 * 64, lengths


def test_misconfiguration_fails_before_training(mnist_3_vs_8, tmp_path: Path) -> None:
    x, y = mnist_3_vs_8
    fit = trainer(tmp_path, [DatasetPropertiesMonitor(DataPropsOptions(input_key="pixels"))])
    with pytest.raises(ValueError, match=r"input_key='pixels'.*keys"):
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y, as_dict=True))
    with pytest.raises(ValueError, match="max_samples=10 must exceed k=20"):
        DatasetPropertiesMonitor(max_samples=10)
    with pytest.raises(TypeError, match="DataPropsOptions"):
        DatasetPropertiesMonitor({"seed": 1})  # type: ignore[arg-type]


def test_a_failing_measurement_warns_and_training_goes_on(
    mnist_3_vs_8, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightning_dataprops.callbacks.dataset_properties as module

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the neighbour search ran out of memory (on purpose)")

    monkeypatch.setattr(module, "measure_dataset", broken)
    x, y = mnist_3_vs_8
    callbacks = [
        DatasetPropertiesMonitor(ON_SCHEDULE),
        RepresentationIDMonitor(ON_SCHEDULE, max_samples=200),
    ]
    fit = trainer(tmp_path, callbacks, max_epochs=2)
    with pytest.warns(MeasurementFailedWarning, match="out of memory \\(on purpose\\)"):
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    assert fit.current_epoch == 2 and fit.state.finished
    assert names.D_DATA not in fit.callback_metrics
    assert names.d_repr("features.5") in fit.callback_metrics


class _Normalize:
    """A torchvision-style per-channel ``Normalize`` (``.mean``/``.std``)."""

    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean).view(3, 1, 1)
        return (x - mean) / torch.tensor(self.std).view(3, 1, 1)


class _Photos(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels, self.transform = images, labels, _Normalize()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[index]), self.labels[index]


def test_normalize_in_the_dataset_is_undone_before_the_sharp_label_check(tmp_path: Path) -> None:
    with np.load(shared_file("cifar10/cifar10.npz")) as data:
        labels = data["test_labels"].ravel()
        keep = np.flatnonzero((labels == 2) | (labels == 4))  # bird vs deer, natural photos
        images = torch.from_numpy(data["test_images"][keep]).permute(0, 3, 1, 2).float() / 255
    targets = torch.from_numpy((labels[keep] == 4).astype(np.int64))
    photos = _Photos(images, targets)
    monitor = DatasetPropertiesMonitor(max_samples=1000)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(channels=3), train_dataloaders=DataLoader(photos, batch_size=64))
    assert not [w for w in caught if issubclass(w.category, SharpLabelsWarning)]
    sample = sample_dataset(images, targets, max_samples=1000, seed=0)
    assert sample.targets is not None
    pixels = check_label_sharpness(sample.inputs, sample.targets)
    assert _metric(fit, names.K_F_MEDIAN) == pytest.approx(pixels.value, rel=1e-5)


def test_too_few_distinct_inputs_for_d_data_still_measure_k_f(tmp_path: Path) -> None:
    """One image under two labels: d_data needs k+1 distinct inputs and cannot be measured, but
    K_F (infinite: label conflicts) and the conflicts are the finding; they are logged, with one
    warning that says why d_data is missing, and training goes on."""
    torch.manual_seed(0)
    image = torch.rand(1, 1, 28, 28)
    x = torch.cat([image.repeat(150, 1, 1, 1), torch.rand(10, 1, 28, 28)])
    y = torch.arange(160) % 2
    monitor = DatasetPropertiesMonitor(max_samples=160)
    fit = trainer(tmp_path, [monitor], max_epochs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    said = [str(w.message) for w in caught if "d_data is not measured" in str(w.message)]
    assert len(said) == 1 and "11 distinct samples" in said[0] and "K_F = inf" in said[0], said
    assert not [w for w in caught if issubclass(w.category, MeasurementFailedWarning)]
    assert _metric(fit, names.K_F) == math.inf
    assert _metric(fit, names.N_LABEL_CONFLICTS) >= 149
    assert names.D_DATA not in fit.callback_metrics
    assert fit.current_epoch == 1  # trained to the end
    state = monitor.fit_start_state
    assert state is not None and state["pairs"] and state["pairs"][0]["distance"] == 0.0
    assert state["pairs"][0]["index_i"] < 150 and state["pairs"][0]["index_j"] < 150


def test_duplicated_inputs_are_counted_and_said(
    mnist_3_vs_8, tmp_path: Path, lightning_log: pytest.LogCaptureFixture
) -> None:
    """Every image twice: d_data is measured on the distinct half, and the count is logged."""
    x, y = mnist_3_vs_8
    pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:200]
    x, y = torch.cat([x[pick], x[pick]]), torch.cat([y[pick], y[pick]])
    fit = trainer(tmp_path, [DatasetPropertiesMonitor(max_samples=400)], max_epochs=1)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    said = lightning_log.text
    assert _metric(fit, names.N_DUPLICATES) == 200 and _metric(fit, names.N_SAMPLES) == 400
    assert "200 of the 400 sampled inputs duplicate others (200 groups)" in said
    props = dataset_properties(x, y)
    assert _metric(fit, names.D_DATA) == pytest.approx(props.d_data, rel=1e-5)
    assert props.duplicates.n_duplicates == 200


def test_several_training_loaders_say_which_one_is_measured(
    mnist_3_vs_8, tmp_path: Path, lightning_log: pytest.LogCaptureFixture
) -> None:
    """A list of training loaders: the first one's dataset is measured (N = its size), and the
    fit says so once, however many callbacks read the data."""
    x, y = mnist_3_vs_8
    first = DataLoader(TensorDataset(x[:400], y[:400]), batch_size=64)
    second = DataLoader(TensorDataset(x[400:600], y[400:600]), batch_size=64)
    callbacks = default_callbacks(
        max_samples=300, repr_max_samples=100, robustness_every_n_epochs=0
    )
    fit = trainer(tmp_path, callbacks, max_epochs=1, limit_train_batches=1)

    class TwoLoaders(TinyCNN):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            losses = [TinyCNN.training_step(self, part, batch_idx) for part in batch]
            return torch.stack(losses).sum()

    fit.fit(TwoLoaders(), train_dataloaders=[first, second])
    assert _metric(fit, names.N_TRAIN) == 400
    said = [line for line in lightning_log.text.splitlines() if "has 2 loaders" in line]
    assert len(said) == 1 and "n_train=" in said[0], said
