"""The command line and the fit-start callback run the one fit-start measurement
(``measure_dataset``): the same images give the same d_data, K_F and sharp-label statistic."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_dataprops import DatasetReport, measure_dataset, names, sample_dataset
from lightning_dataprops.callbacks import (
    DataPropsOptions,
    DatasetPropertiesMonitor,
    MeasurementFailedWarning,
    SharpLabelsWarning,
    UnknownNormalizationWarning,
)
from lightning_dataprops.cli import main
from tests.conftest import shared_file
from tests.integration.lightning_models import TinyCNN, trainer
from tests.transforms import Compose, Normalize


class _Normalized(Dataset):
    """Images normalised inside the Dataset by a ``Normalize``-like transform (mean, std)."""

    class Normalize:
        def __init__(self, mean: list[float], std: list[float]) -> None:
            self.mean, self.std = mean, std

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return (x - self.mean[0]) / self.std[0]

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.transform = self.Normalize([0.5], [0.25])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.x[i]), self.y[i]


def _callback_metrics(dataset: Any, root: Path) -> dict[str, float]:
    monitor = DatasetPropertiesMonitor(DataPropsOptions(seed=0), max_samples=1000)
    fit = trainer(root, [monitor], max_epochs=1, limit_train_batches=1)
    fit.fit(TinyCNN(), train_dataloaders=DataLoader(dataset, batch_size=64))
    assert monitor.fit_start_state is not None
    return {k: float(v) for k, v in monitor.fit_start_state["metrics"].items()}


@pytest.mark.slow
def test_cli_json_equals_the_callback_on_pneumoniamnist(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = shared_file("medmnist/pneumoniamnist.npz")
    code = main(["measure", str(path), "--json", "--max-samples", "1000", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    with np.load(path) as data:
        images, labels = data["train_images"], data["train_labels"].ravel()
    x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    plain = _callback_metrics(torch.utils.data.TensorDataset(x, y), tmp_path / "plain")
    check = document["sharp_label_check"]
    assert plain[names.D_DATA] == pytest.approx(document["d_data"], abs=1e-4)
    assert plain[names.D_DATA_TWONN] == pytest.approx(document["d_data_twonn"], abs=1e-4)
    assert plain[names.K_F] == pytest.approx(document["K_F"], abs=1e-4)
    assert plain[names.K_F_MEDIAN] == pytest.approx(check["value"], abs=1e-4)
    assert plain[names.K_F_RATIO] == pytest.approx(check["ratio"], abs=1e-4)
    # A Normalize inside the Dataset is undone before the check: the same statistic.
    normalized = _callback_metrics(_Normalized(x, y), tmp_path / "normalized")
    assert normalized[names.K_F_MEDIAN] == pytest.approx(check["value"], abs=1e-4)


def _conflicting_vectors(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    y = torch.arange(n) % 2
    x[11] = x[10]  # the same input with the other label
    return x, y


def test_non_image_conflicts_are_reported_with_dataset_indices() -> None:
    x, y = _conflicting_vectors()
    sample = sample_dataset(x, y, max_samples=150, seed=3)
    report = measure_dataset(sample, k=5)
    assert isinstance(report, DatasetReport)
    assert report.check is None and report.check_skipped is not None
    assert "not images" in report.check_skipped
    positions = sample.indices.tolist()
    if 10 in positions and 11 in positions:
        assert report.is_sharp
        message = report.message()
        assert message is not None and "10 and 11" in message
    else:  # the seed dropped one of them: nothing to report
        assert not report.is_sharp and report.message() is None
    # Every pair of the report names dataset items, not sample positions.
    for pair in report.pairs():
        assert pair["index_i"] == positions[pair["i"]]
        assert pair["index_j"] == positions[pair["j"]]


def test_the_check_runs_on_the_references_sample_size() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1500, 1, 8, 8, generator=g)
    y = torch.arange(1500) % 2
    sample = sample_dataset(x, y)
    report = measure_dataset(sample, k=10, check_samples=1000)
    assert report.check is not None and report.check.n == 1000
    assert len(report.check_indices) == 1000 and len(set(report.check_indices)) == 1000
    assert report.properties.n == 1500
    document = report.to_dict()
    assert document["sharp_label_check"]["n"] == 1000
    assert json.dumps(document, allow_nan=False)


def test_a_check_that_cannot_run_is_skipped_with_its_reason() -> None:
    x = torch.rand(100, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    report = measure_dataset(sample_dataset(x, torch.rand(100)), k=5)
    assert report.check is None
    assert report.check_skipped is not None and "regression" in report.check_skipped
    assert report.to_dict()["sharp_label_check"] == {"skipped": report.check_skipped}
    assert names.K_F in report.metrics() and names.K_F_MEDIAN not in report.metrics()


# --------------------------------------------------------------------------------------------
# One K_F and one d_data for the same images, whatever normalisation the pipeline applies
# --------------------------------------------------------------------------------------------

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class Photos(Dataset):
    """uint8 ``(n, H, W[, C])`` images -> float ``(C, H, W)`` in [0, 1] (as ``ToTensor``) ->
    ``transform``: the usual image pipeline, normalisation inside the Dataset."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[i]).float() / 255.0
        x = x.permute(2, 0, 1) if x.ndim == 3 else x[None]
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.labels[i])


def _cli_document(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(["measure", str(path), "--json", "--max-samples", "1000", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document: dict[str, Any] = json.loads(captured.out)
    return document


def _fit_start(
    dataset: Dataset, root: Path, channels: int, n_classes: int, **options: Any
) -> dict[str, float]:
    """The fit-start values a real fit logs: read back from its CSVLogger's metrics.csv."""
    from lightning.pytorch.loggers import CSVLogger

    monitor = DatasetPropertiesMonitor(DataPropsOptions(seed=0), max_samples=1000, **options)
    logger = CSVLogger(root, name="run")
    fit = trainer(root, [monitor], max_epochs=1, limit_train_batches=1, logger=logger)
    model = TinyCNN(channels=channels, n_classes=n_classes)
    fit.fit(model, train_dataloaders=DataLoader(dataset, batch_size=64))
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    logged = {
        name: float(row[name]) for row in rows for name in (names.D_DATA, names.K_F) if row[name]
    }
    for name, value in logged.items():  # the loggers and callback_metrics hold one value
        assert float(fit.callback_metrics[name]) == pytest.approx(value, rel=1e-6)
    return logged


def _assert_agrees(values: dict[str, float], document: dict[str, Any]) -> None:
    assert values[names.D_DATA] == pytest.approx(document["d_data"], abs=1e-4)
    assert values[names.K_F] == pytest.approx(document["K_F"], abs=1e-4)


def _hand_written(mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    """A normalisation without ``.mean``/``.std``: nothing can find it."""
    m, s = torch.tensor(mean).reshape(-1, 1, 1), torch.tensor(std).reshape(-1, 1, 1)
    return lambda x: (x - m) / s


@pytest.mark.slow
def test_cifar10_logs_the_cli_values_whatever_the_normalisation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = shared_file("cifar10/cifar10.npz")
    document = _cli_document(path, capsys)
    assert document["sample"]["n_source"] == 10_000 and document["n"] == 1000
    with np.load(path) as data:
        images, labels = data["train_images"], data["train_labels"].ravel()
    plain = _fit_start(Photos(images, labels), tmp_path / "plain", 3, 10)
    _assert_agrees(plain, document)
    # torchvision's usual pipeline: a per-channel Normalize inside the Dataset, found and undone.
    normalised = Photos(images, labels, Compose([Normalize(CIFAR_MEAN, CIFAR_STD)]))
    _assert_agrees(_fit_start(normalised, tmp_path / "normalize", 3, 10), document)
    # A hand-written normalisation cannot be found: stated with normalization=(mean, std).
    lambda_set = Photos(images, labels, _hand_written(CIFAR_MEAN, CIFAR_STD))
    stated = _fit_start(
        lambda_set, tmp_path / "stated", 3, 10, normalization=(CIFAR_MEAN, CIFAR_STD)
    )
    _assert_agrees(stated, document)


@pytest.mark.slow
def test_pneumoniamnist_logs_the_cli_values_and_says_when_the_units_are_unknown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = shared_file("medmnist/pneumoniamnist.npz")
    document = _cli_document(path, capsys)
    with np.load(path) as data:
        images, labels = data["train_images"], data["train_labels"].ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SharpLabelsWarning)  # PneumoniaMNIST's labels are sharp
        _assert_agrees(_fit_start(Photos(images, labels), tmp_path / "plain", 1, 2), document)
        normalised = Photos(images, labels, Compose([Normalize((0.5,), (0.25,))]))
        _assert_agrees(_fit_start(normalised, tmp_path / "normalize", 1, 2), document)
        hand_written = Photos(images, labels, _hand_written((0.5,), (0.25,)))
        stated = _fit_start(
            hand_written, tmp_path / "stated", 1, 2, normalization=((0.5,), (0.25,))
        )
        _assert_agrees(stated, document)
        # Not stated: one warning that names the fix, and the values in the inputs' own units.
        # Known answer: every distance is 1 / 0.25 = 4 times the pixels' one, so K_F is a
        # quarter of the pixels' K_F, and the MLE of d_data does not change with the scale.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            as_given = _fit_start(hand_written, tmp_path / "unknown", 1, 2)
    units = [w for w in caught if issubclass(w.category, UnknownNormalizationWarning)]
    assert len(units) == 1, [str(w.message) for w in caught]
    assert "normalization=(mean, std)" in str(units[0].message)
    assert as_given[names.K_F] == pytest.approx(document["K_F"] * 0.25, rel=1e-5)
    assert as_given[names.D_DATA] == pytest.approx(document["d_data"], rel=1e-5)


def test_measure_dataset_undoes_a_stated_normalization_before_every_value() -> None:
    g = torch.Generator().manual_seed(5)
    pixels = torch.rand(240, 3, 6, 6, generator=g)
    y = torch.arange(240) % 3
    mean, std = (0.2, 0.5, 0.7), (0.1, 0.3, 0.9)
    normalised = (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    truth = measure_dataset(sample_dataset(pixels, y), k=8)
    undone = measure_dataset(sample_dataset(normalised, y), k=8, normalization=(mean, std))
    as_given = measure_dataset(sample_dataset(normalised, y), k=8)
    assert truth.properties.K_F is not None and undone.properties.K_F is not None
    assert pytest.approx(truth.properties.K_F, rel=1e-5) == undone.properties.K_F
    assert undone.properties.d_data == pytest.approx(truth.properties.d_data, rel=1e-5)
    assert undone.normalization == ([0.2, 0.5, 0.7], [0.1, 0.3, 0.9])
    # Unequal channel scales change both values: measured as given they differ.
    assert pytest.approx(truth.properties.K_F, rel=1e-2) != as_given.properties.K_F
    assert as_given.properties.d_data != pytest.approx(truth.properties.d_data, rel=1e-3)


def test_measure_dataset_of_a_normalising_dataset_gives_the_pixels_values() -> None:
    """Same images, two pipelines: a per-channel Normalize inside the Dataset is found by
    sample_dataset and undone by measure_dataset, as the callbacks do (default "auto")."""
    from torch.utils.data import Subset

    g = torch.Generator().manual_seed(6)
    pixels = torch.rand(240, 3, 6, 6, generator=g)
    y = torch.arange(240) % 3
    mean, std = (0.2, 0.5, 0.7), (0.1, 0.3, 0.9)
    images = (pixels.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    plain = Photos(images, y.numpy())
    normalised = Subset(Photos(images, y.numpy(), Compose([Normalize(mean, std)])), range(240))
    truth = measure_dataset(sample_dataset(plain, max_samples=200), k=8)
    sample = sample_dataset(normalised, max_samples=200)
    assert sample.normalization == (list(mean), list(std))
    assert sample_dataset(plain).normalization is None
    found = measure_dataset(sample, k=8)
    assert truth.properties.K_F is not None and found.properties.K_F is not None
    assert pytest.approx(truth.properties.K_F, rel=1e-5) == found.properties.K_F
    assert found.properties.d_data == pytest.approx(truth.properties.d_data, rel=1e-5)
    assert found.normalization == (list(mean), list(std))
    # normalization=None measures the normalised inputs as given: other values.
    as_given = measure_dataset(sample, k=8, normalization=None)
    assert as_given.normalization is None
    assert pytest.approx(truth.properties.K_F, rel=1e-2) != as_given.properties.K_F
    with pytest.raises(ValueError, match=r"\(mean, std\), 'auto' or None"):
        measure_dataset(sample, k=8, normalization="imagenet")  # type: ignore[arg-type]
    # A Normalize that does not fit what input_fn makes of the items: said, measured as given.
    flat = sample_dataset(normalised, max_samples=200, input_fn=lambda item: item[0].flatten())
    with pytest.warns(UnknownNormalizationWarning, match="does not fit the inputs"):
        flat_report = measure_dataset(flat, k=8)
    assert flat_report.normalization is None
    # Channels-last images: said once, as not fitting (not also as "no Normalize found").
    channels_last = lambda item: item[0].permute(1, 2, 0)  # noqa: E731
    hwc = sample_dataset(normalised, max_samples=200, input_fn=channels_last)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        measure_dataset(hwc, k=8)
    said = [str(w.message) for w in caught if w.category is UnknownNormalizationWarning]
    assert len(said) == 1 and "does not fit the inputs" in said[0], said
    assert (
        pytest.approx(measure_dataset(flat, k=8, normalization=None).properties.K_F, rel=1e-6)
        == flat_report.properties.K_F
    )


class _FlatModel(TinyCNN):
    """An MLP over flattened RGB images (the callbacks' input_fn flattens the items too)."""

    def __init__(self) -> None:
        super().__init__(channels=3, n_classes=3)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)


@pytest.mark.parametrize(
    ("model", "d_repr_fails"), [(_FlatModel, False), (lambda: TinyCNN(3, n_classes=3), True)]
)
def test_a_found_normalize_that_does_not_fit_never_ends_the_fit(
    tmp_path: Path, model: Any, d_repr_fails: bool
) -> None:
    """input_fn flattens the items, so the Dataset's per-channel Normalize fits nothing the
    callbacks read: each says so and measures as given; the fit runs to its end."""
    from lightning_dataprops import default_callbacks

    g = torch.Generator().manual_seed(2)
    images = (torch.rand(240, 8, 8, 3, generator=g) * 255).to(torch.uint8).numpy()
    dataset = Photos(images, np.arange(240) % 3, Compose([Normalize((0.5, 0.4, 0.3), (0.2,) * 3)]))
    callbacks = default_callbacks(
        input_fn=lambda item: item[0].flatten(), max_samples=200, robustness_every_n_epochs=1
    )
    fit = trainer(tmp_path, callbacks, max_epochs=1, limit_train_batches=2)
    # A CNN cannot run on the flattened items at all: d_repr and the probe fail, are said
    # (MeasurementFailedWarning) and switched off for the fit, which still runs to its end.
    with pytest.warns(UnknownNormalizationWarning) as caught:
        fit.fit(model(), train_dataloaders=DataLoader(dataset, batch_size=32))
    said = [str(w.message) for w in caught if w.category is UnknownNormalizationWarning]
    for owner in ("DatasetPropertiesMonitor", "RobustnessMonitor"):
        assert any(m.startswith(f"{owner}: the Dataset applies Normalize") for m in said), said
    assert fit.state.finished and names.K_F in fit.callback_metrics
    failed = any("d_repr failed" in str(w.message) for w in caught)
    assert failed == d_repr_fails
    assert any(key.startswith(names.d_repr("")) for key in fit.callback_metrics) != d_repr_fails


def test_nan_inputs_are_refused_naming_dataset_items(tmp_path: Path) -> None:
    """The error names dataset indices, not positions in the sample, in the function and in
    the callback's failure warning; the fit goes on."""
    import re

    g = torch.Generator().manual_seed(4)
    x = torch.rand(100, 3, 4, 4, generator=g)
    x[7::10] = float("nan")  # items 7, 17, ..., 97
    y = torch.arange(100) % 2
    sample = sample_dataset(TensorDataset(x, y), max_samples=50)
    with pytest.raises(ValueError, match="dataset indices") as raised:
        measure_dataset(sample, k=5)
    named = [int(i) for i in re.findall(r"\d+", str(raised.value).split("indices")[1])[:5]]
    assert named and all(i % 10 == 7 and i in sample.indices.tolist() for i in named), named
    monitor = DatasetPropertiesMonitor(DataPropsOptions(seed=0), max_samples=50)
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    with pytest.warns(MeasurementFailedWarning, match="dataset indices"):
        fit.fit(
            TinyCNN(channels=3), train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=16)
        )
    assert fit.state.finished


def test_measure_dataset_says_when_image_inputs_are_not_pixels() -> None:
    g = torch.Generator().manual_seed(3)
    raw = (torch.rand(120, 4, 4, 3, generator=g) * 255).round().numpy()  # 0-255, as stored
    y = np.arange(120) % 2
    with pytest.warns(UnknownNormalizationWarning, match=r"\(0.0, 1 / 255\) for 0-255 pixels"):
        in_bytes = measure_dataset(sample_dataset(raw, y), k=5)
    pixels = measure_dataset(sample_dataset(raw / 255, y), k=5)
    assert in_bytes.properties.K_F is not None and pixels.properties.K_F is not None
    assert pytest.approx(pixels.properties.K_F / 255, rel=1e-5) == in_bytes.properties.K_F
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownNormalizationWarning)
        stated = measure_dataset(sample_dataset(raw, y), k=5, normalization=(0.0, 1 / 255))
        measure_dataset(sample_dataset(raw, y), k=5, normalization=None)  # units meant
    assert pytest.approx(pixels.properties.K_F, rel=1e-5) == stated.properties.K_F


@pytest.mark.parametrize(
    ("normalization", "match"),
    [
        (((0.5, 0.5), (0.25, 0.25)), "mean has 2 values but the inputs have 3 channels"),
        ((0.5,), "pair"),
        ((0.5, 0.0), "std must be > 0"),
        ("imagenet", "normalization must be \\(mean, std\\)"),
    ],
)
def test_a_normalization_that_does_not_fit_is_refused_clearly(
    normalization: Any, match: str
) -> None:
    x = torch.rand(60, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=match):
        measure_dataset(sample_dataset(x, torch.arange(60) % 2), k=5, normalization=normalization)


def test_the_callback_refuses_a_malformed_normalization_at_construction() -> None:
    with pytest.raises(ValueError, match="normalization must be"):
        DatasetPropertiesMonitor(normalization="imagenet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="std must be > 0"):
        DatasetPropertiesMonitor(normalization=((0.5,), (-1.0,)))


@pytest.mark.slow
def test_normalize_behind_wrappers_and_chains_is_undone(tmp_path: Path) -> None:
    """A Normalize inside a Subset or a ConcatDataset, or two in one Compose: the fit-start
    values equal those of the same images as plain [0, 1] pixels (the unwrapped dataset)."""
    from torch.utils.data import ConcatDataset, Subset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(240, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(240) % 3
    halves = (slice(0, 120), slice(120, 240))
    plain = _fit_start(Photos(images, labels), tmp_path / "plain", 3, 3)

    def normalised(part: slice = slice(None)) -> Photos:
        return Photos(images[part], labels[part], Compose([Normalize(CIFAR_MEAN, CIFAR_STD)]))

    chained = Compose([Normalize((0.5,), (0.5,)), Normalize((0.1, 0.2, 0.3), (2.0, 1.0, 0.5))])
    variants = {
        "subset": Subset(normalised(), list(range(240))),
        "concat": ConcatDataset([normalised(part) for part in halves]),
        "chain": Photos(images, labels, chained),
    }
    for name, dataset in variants.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnknownNormalizationWarning)
            values = _fit_start(dataset, tmp_path / name, 3, 3)
        for metric in (names.D_DATA, names.K_F):
            assert values[metric] == pytest.approx(plain[metric], rel=1e-5), (name, metric)
    # Parts that normalise differently have no one pixel space: said, not guessed.
    other = Photos(images[120:], labels[120:], Compose([Normalize((0.5,), (0.5,))]))
    with pytest.warns(UnknownNormalizationWarning, match="ConcatDataset normalise"):
        _fit_start(ConcatDataset([normalised(halves[0]), other]), tmp_path / "mixed", 3, 3)
