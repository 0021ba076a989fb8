"""The values the dataset report draws beside a dataset's own: shipped, reproducible, taken at
the nearest measured N."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from lightning_dataprops.references.report_values import d_data_references, medical_sharpness
from tests.conftest import REPO_ROOT, shared_file


def test_medical_sharpness_is_the_studys_median_over_seeds() -> None:
    draws: dict[tuple[str, int], list[float]] = {}
    with (REPO_ROOT / "docs/reference_study.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["domain"] == "medical" and row["protocol"] == "gray28":
                draws.setdefault((row["dataset"], int(row["n"])), []).append(float(row["K_F_q50"]))
    shown = {known.dataset: known for known in medical_sharpness("gray28", 2, 1000)}
    assert set(shown) == {"PneumoniaMNIST", "BreastMNIST"}
    pneumonia = shown["PneumoniaMNIST"]
    assert pneumonia.n == 1000
    assert pneumonia.value == pytest.approx(statistics.median(draws[("PneumoniaMNIST", 1000)]))
    assert shown["BreastMNIST"].n == 546  # its whole training split, the nearest to 1000
    assert medical_sharpness("rgb32", 10, 1000) == []  # no medical colour reference


@pytest.mark.parametrize(("n", "measured"), [(300, 500), (700, 500), (900, 1000), (3882, 5000)])
def test_d_data_references_use_the_nearest_measured_n(n: int, measured: int) -> None:
    rows = {row.dataset: row for row in d_data_references(n)}
    assert [name for name in rows][:3] == ["MNIST", "Fashion-MNIST", "CIFAR-10"]
    assert rows["CIFAR-10"].n == measured
    assert rows["CIFAR-10"].low <= rows["CIFAR-10"].value <= rows["CIFAR-10"].high
    # Photos have more intrinsic dimensions than digits at the same N (Pope et al. 2021).
    assert rows["CIFAR-10"].value > rows["MNIST"].value


def test_shipped_mnist_d_data_is_what_the_product_measures() -> None:
    from lightning_dataprops import sample_dataset
    from lightning_dataprops.data import load_source
    from lightning_dataprops.functional import dataset_properties

    data = load_source(Path(shared_file("mnist5k.npz")))
    values = [
        dataset_properties(
            sample_dataset(data.inputs, data.targets, max_samples=500, seed=seed).inputs, k=20
        ).d_data
        for seed in (0, 1, 2)
    ]
    shipped = next(row for row in d_data_references(500) if row.dataset == "MNIST")
    assert shipped.value == pytest.approx(statistics.median(values), rel=1e-6)
    assert (shipped.low, shipped.high) == pytest.approx((min(values), max(values)), rel=1e-6)
