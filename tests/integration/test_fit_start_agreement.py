"""The command line and the fit-start callback run the one fit-start measurement
(``measure_dataset``): the same images give the same d_data, K_F and sharp-label statistic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_dataprops import DatasetReport, measure_dataset, names, sample_dataset
from lightning_dataprops.callbacks import DataPropsOptions, DatasetPropertiesMonitor
from lightning_dataprops.cli import main
from tests.conftest import shared_file
from tests.integration.lightning_models import TinyCNN, trainer


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
