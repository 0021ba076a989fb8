"""Class ids that are not classes (-1: scikit-learn's "unlabelled") and class names, on every
K_F entry point, against a float64 brute force over the labelled rows alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from lightning_dataprops import compute_labelsharpness, dataset_properties, label_sharpness
from lightning_dataprops.cli import main
from lightning_dataprops.data import sample_dataset
from lightning_dataprops.data.loaders import load_digits_data
from lightning_dataprops.functional import normalize_targets
from lightning_dataprops.metrics import LabelSharpness
from tests.conftest import brute_force_distances

NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


def _digits_with_unlabelled() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits with 30% of the labels set to -1 (seeded)."""
    data = load_digits_data()
    y = data.targets.clone()
    hidden = torch.rand(len(y), generator=torch.Generator().manual_seed(0)) < 0.3
    y[hidden] = -1
    return data.inputs, y


def _labelled_oracle(x: torch.Tensor, y: torch.Tensor) -> float:
    """1 / (closest differently-labelled pair among the rows with y >= 0), float64."""
    keep = y >= 0
    dist = brute_force_distances(x[keep])
    labels = y[keep]
    return 1.0 / float(dist.masked_fill(labels[:, None] == labels[None, :], math.inf).min())


def test_unlabelled_rows_are_left_out_of_k_f_on_every_entry_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = _digits_with_unlabelled()
    n_unlabelled = int((y < 0).sum())
    expected = _labelled_oracle(x, y)
    counted_as_a_class = 1.0 / float(
        brute_force_distances(x).masked_fill(y[:, None] == y[None, :], math.inf).min()
    )
    assert counted_as_a_class > 1.5 * expected  # the fault this guards against

    with pytest.warns(UserWarning, match=f"left out {n_unlabelled} of {len(y)} samples"):
        result = label_sharpness(x, y)
    assert result.value == pytest.approx(expected, rel=1e-9)
    assert result.n == len(y) - n_unlabelled and result.n_unlabelled == n_unlabelled
    assert result.n_classes == 10
    flat = x.reshape(len(x), -1).double()
    for pair in result.pairs:  # indices among the rows given, both labelled
        assert y[pair.i] >= 0 and y[pair.j] >= 0 and y[pair.i] != y[pair.j]
        assert (pair.label_i, pair.label_j) == (int(y[pair.i]), int(y[pair.j]))
        assert pair.distance == pytest.approx(float((flat[pair.i] - flat[pair.j]).norm()))

    with pytest.warns(UserWarning, match="left out"):
        props = dataset_properties(x, y, k=10)
    assert pytest.approx(expected, rel=1e-9) == props.K_F
    assert props.mle_result.n_input == len(y)  # d_data keeps the unlabelled rows
    assert props.d_data == pytest.approx(dataset_properties(x, k=10).d_data, rel=1e-12)

    with pytest.warns(UserWarning, match="left out"):
        paper = compute_labelsharpness(TensorDataset(x, y))
    assert float(paper) == pytest.approx(expected, rel=1e-9)

    metric = LabelSharpness(max_samples=len(y))
    metric.update(x[:900], y[:900])
    metric.update(x[900:], y[900:])
    with pytest.warns(UserWarning, match="left out"):
        assert float(metric.compute()) == pytest.approx(expected, rel=1e-6)
    assert metric.last_result is not None and metric.last_result.n_unlabelled == n_unlabelled

    path = tmp_path / "digits.npz"
    np.savez(path, images=x[:, 0].numpy(), labels=y.numpy())
    assert main(["measure", str(path), "--json", "--no-progress"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["K_F"] == pytest.approx(expected, rel=1e-6)
    assert document["label_sharpness_result"]["n_unlabelled"] == n_unlabelled


def test_other_spellings_of_unlabelled_and_of_class_ids_give_the_same_k_f() -> None:
    """An all-zero one-hot row is the one-hot form of "no label"; an object array of ints
    (a pandas column) is the ids it holds; -100 (torch's ignore_index) is unlabelled too."""
    x, y = _digits_with_unlabelled()
    expected = _labelled_oracle(x, y)
    one_hot = torch.nn.functional.one_hot(y.clamp(min=0), 10)
    one_hot[y < 0] = 0
    spellings = {
        "one-hot, empty rows": one_hot,
        "one-hot float, class": (one_hot.float(), "class"),
        "object ints": np.array(y.tolist(), dtype=object),
        "-100": torch.where(y < 0, -100, y),
    }
    for name, given in spellings.items():
        labels, target_type = given if isinstance(given, tuple) else (given, "auto")
        with pytest.warns(UserWarning, match="left out"):
            result = label_sharpness(x, labels, target_type=target_type)
        assert result.value == pytest.approx(expected, rel=1e-9), name
    with pytest.warns(UserWarning, match="left out"):
        paper = compute_labelsharpness(TensorDataset(x, one_hot))  # item by item
    assert float(paper) == pytest.approx(expected, rel=1e-9)
    # float one-hot rows with an empty row are regression vectors unless told otherwise
    assert normalize_targets(one_hot.float()).kind == "regression"
    with pytest.raises(TypeError, match="not numeric"):
        label_sharpness(x, np.array([0, None] * (len(y) // 2) + [1], dtype=object))


def test_too_few_labelled_classes_is_a_clear_error() -> None:
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="All 20 samples of `y` are unlabelled"):
        label_sharpness(x, torch.full((20,), -1))
    one_class = torch.tensor([0] * 10 + [-1] * 10)
    with pytest.raises(ValueError, match=r"same label \(0\) \(10 unlabelled samples left out\)"):
        dataset_properties(x, one_class, k=5)
    norm = normalize_targets(torch.tensor([2, -1, 0, -5]))
    assert norm.n_classes == 2 and norm.n_unlabelled == 2
    assert norm.labelled is not None and norm.labelled.tolist() == [True, False, True, False]


def test_class_names_give_the_values_of_their_class_ids(tmp_path: Path, capsys) -> None:
    data = load_digits_data()
    x, ids = data.inputs[:600], data.targets[:600]
    names = NAMES[ids.numpy()]
    # sorted names number the classes: ids of the same partition, other numbers
    sorted_ids = torch.from_numpy(np.unique(names, return_inverse=True)[1].astype(np.int64))
    expected = _labelled_oracle(x, ids)

    assert label_sharpness(x, names, target_type="class").value == pytest.approx(expected)
    assert label_sharpness(x, list(names), target_type="class").value == pytest.approx(expected)
    props = dataset_properties(x, names, k=10, target_type="class")
    assert pytest.approx(expected) == props.K_F
    assert props.label_sharpness_result is not None
    pair = props.label_sharpness_result.pairs[0]
    assert (pair.label_i, pair.label_j) == (int(sorted_ids[pair.i]), int(sorted_ids[pair.j]))
    sample = sample_dataset(x, names, target_type="class")
    assert sample.targets is not None and torch.equal(sample.targets, sorted_ids)
    norm = normalize_targets(names, target_type="class")
    assert norm.class_names == tuple(sorted(NAMES.tolist()))

    path = tmp_path / "named.npz"
    np.savez(path, images=x[:, 0].numpy(), labels=names)
    assert main(["measure", str(path), "--json", "--no-progress", "--targets", "class"]) == 0
    assert json.loads(capsys.readouterr().out)["K_F"] == pytest.approx(expected, rel=1e-6)

    # Without target_type="class": a clear error that says what to pass, on every entry point.
    for call in (
        lambda: label_sharpness(x, names),
        lambda: dataset_properties(x, names, k=10),
        lambda: sample_dataset(x, names),
    ):
        with pytest.raises(TypeError, match="target_type='class'"):
            call()
    with pytest.raises(TypeError, match="mix class names with other values"):
        normalize_targets(np.array(["cat", None, "dog"], dtype=object), target_type="class")
