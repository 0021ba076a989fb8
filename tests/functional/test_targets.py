"""The one target rule: whole-number float targets (ages) are regression on every path."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from lightning_dataprops import (
    compute_labelsharpness,
    dataset_properties,
    label_sharpness,
    measure_dataset,
)
from lightning_dataprops.cli import main
from lightning_dataprops.data import sample_dataset
from lightning_dataprops.functional import FloatClassIdsWarning, normalize_targets
from lightning_dataprops.metrics import LabelSharpness


def _ages_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 16, generator=g)
    ages = torch.randint(20, 80, (300,), generator=g).to(torch.float32)
    return x, ages


def _oracle(x: torch.Tensor, y: torch.Tensor) -> float:
    """max |y_i - y_j| / ||x_i - x_j|| over all pairs, brute force in float64."""
    xd, yd = x.double(), y.double()
    dist = torch.cdist(xd, xd)
    ratio = (yd[:, None] - yd[None, :]).abs() / dist
    ratio.fill_diagonal_(0.0)
    return float(ratio.max())


def test_float_ages_give_the_regression_sharpness_on_every_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, ages = _ages_data()
    expected = _oracle(x, ages)
    # a class reading of the same data would be 1 / (closest differently-aged pair): far smaller
    assert expected > 5 * label_sharpness(x, ages, target_type="class").value

    assert label_sharpness(x, ages).value == pytest.approx(expected, rel=1e-5)
    assert pytest.approx(expected, rel=1e-5) == dataset_properties(x, ages, k=10).K_F
    paper = compute_labelsharpness(TensorDataset(x, ages))
    assert float(paper) == pytest.approx(expected, rel=1e-5)
    metric = LabelSharpness()
    metric.update(x[:150], ages[:150])
    metric.update(x[150:], ages[150:])
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-5)

    sample = sample_dataset(TensorDataset(x, ages))
    assert sample.targets is not None and sample.targets.dtype == torch.float32

    path = tmp_path / "ages.npz"
    np.savez(path, images=x.reshape(300, 4, 4).numpy(), labels=ages.numpy())
    assert main(["measure", str(path), "--json", "--no-progress"]) == 0  # float labels: regression
    document = json.loads(capsys.readouterr().out)
    assert document["K_F"] == pytest.approx(expected, rel=1e-5)
    assert document["label_sharpness_result"]["target_type"] == "regression"


def test_float_class_ids_are_regression_values_and_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(90, 8, generator=g)
    ids = torch.arange(90) % 3
    with pytest.warns(FloatClassIdsWarning, match=r"3 whole-number values \(0, 1, 2\).*\.long\(\)"):
        as_floats = label_sharpness(x, ids.float())
    # Read as values, the pairs of classes 0 and 2 count twice: not the classes' K_F.
    assert as_floats.value == pytest.approx(_oracle(x, ids.float()), rel=1e-5)
    assert as_floats.value != pytest.approx(label_sharpness(x, ids).value, rel=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FloatClassIdsWarning)
        label_sharpness(x, ids.float(), target_type="regression")  # said to be values
        assert label_sharpness(x, ids.float(), target_type="class").target_type == "class"
        label_sharpness(x, (ids % 2).float())  # two values: both readings give the same K_F
        label_sharpness(*_ages_data())  # ages: many values
        label_sharpness(x[:3], torch.tensor([20.0, 35.0, 79.0]))  # each value once
        sample = sample_dataset(x, ids.float())  # sampling reads the targets without a word
    # One measurement, one warning: measure_dataset says it once (not for its sampling too),
    # and the metric once at compute, judged on all its targets (not on each batch).
    for measure in (
        lambda: measure_dataset(sample, k=5),
        lambda: _metric_in_batches(x, ids.float(), 3).compute(),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            measure()
        said = [w.category for w in caught]
        assert said == [FloatClassIdsWarning], [str(w.message) for w in caught]
    # Sampled as values, measured as values: nothing to say.
    with warnings.catch_warnings():
        warnings.simplefilter("error", FloatClassIdsWarning)
        values = sample_dataset(x, ids.float(), target_type="regression")
        measure_dataset(values, k=5)
        _metric_in_batches(x, ids.float(), 3, target_type="regression").compute()
    # The command line: said for --targets auto, not for --targets regression.
    path = tmp_path / "grades.npz"
    np.savez(path, images=x.reshape(90, 2, 4).numpy(), labels=ids.float().numpy())
    command = ["measure", str(path), "--json", "--no-progress", "--k", "5"]
    with pytest.warns(FloatClassIdsWarning):
        assert main(command) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", FloatClassIdsWarning)
        assert main([*command, "--targets", "regression"]) == 0
    capsys.readouterr()


def _metric_in_batches(
    x: torch.Tensor, y: torch.Tensor, batches: int, **options: Any
) -> LabelSharpness:
    metric = LabelSharpness(**options)
    for xb, yb in zip(x.chunk(batches), y.chunk(batches), strict=True):
        metric.update(xb, yb)
    return metric


@pytest.mark.parametrize(
    ("y", "kind", "values"),
    [
        (torch.tensor([3, 1, 3]), "class", [3, 1, 3]),
        (np.array([[1], [0], [2]], dtype=np.uint8), "class", [1, 0, 2]),
        (torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), "class", [1, 0, 1]),
        (torch.tensor([20.0, 35.0, 79.0]), "regression", [20.0, 35.0, 79.0]),
        (torch.tensor([True, False, True]), "class", [1, 0, 1]),
    ],
)
def test_rule_by_dtype(y: object, kind: str, values: list[float]) -> None:
    norm = normalize_targets(y, 3)
    assert norm.kind == kind and norm.values.tolist() == values


@pytest.mark.parametrize(
    ("y", "options", "error", "match"),
    [
        (torch.tensor([1.0, float("nan"), 2.0]), {}, ValueError, "NaN"),
        (torch.tensor([0.5, 1.0, 2.0]), {"target_type": "class"}, ValueError, "fractional"),
        (torch.tensor([[1, 2], [0, 3], [1, 1]]), {}, ValueError, "one-hot"),
        (torch.zeros(3, 2, 2), {}, ValueError, "shape"),
        (torch.tensor([1, 1, 1]), {"min_classes": 2}, ValueError, "at least 2 classes"),
        (torch.tensor([1, 2]), {}, ValueError, "mismatched"),
        (np.array(["a", "b", "c"]), {}, TypeError, "not numeric"),
        (torch.tensor([1j, 2j, 3j]), {}, TypeError, "complex"),
    ],
)
def test_bad_targets_get_clear_errors(
    y: object, options: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        normalize_targets(y, 3, **options)  # type: ignore[arg-type]
