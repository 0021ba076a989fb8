"""Label sharpness against brute-force float64 all-pairs computations."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch

from lightning_dataprops.functional import LabelConflictWarning, label_sharpness
from tests.conftest import brute_force_distances, stratified_subset


def _brute_force_class(x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    dist = brute_force_distances(x)
    dist = dist.masked_fill(y[:, None] == y[None, :], math.inf)
    closest = torch.triu(dist, diagonal=1).masked_fill(
        torch.tril(torch.ones_like(dist, dtype=torch.bool)), math.inf
    )
    top = closest.flatten().topk(5, largest=False).values
    return 1.0 / top[0].item(), top


def _binary_and_multiclass(name: str, request: pytest.FixtureRequest):
    x, y = request.getfixturevalue(name)
    rows = stratified_subset(y.numpy(), per_class=150 if name != "pneumonia" else 600)
    x, y = x[rows], y[rows]
    classes = torch.unique(y)
    binary = (y == classes[0]) | (y == classes[1])
    return [(x[binary], y[binary]), (x, y)]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["mnist", "fashion", "pneumonia"])
def test_exact_equals_brute_force(dataset: str, request: pytest.FixtureRequest) -> None:
    for x, y in _binary_and_multiclass(dataset, request):
        expected, top = _brute_force_class(x, y)
        result = label_sharpness(x, y, top_pairs=5)
        assert result.value == pytest.approx(expected, rel=1e-5)
        distances = torch.tensor([pair.distance for pair in result.pairs], dtype=torch.float64)
        torch.testing.assert_close(distances, top, rtol=1e-5, atol=0)
        for pair in result.pairs:
            assert y[pair.i].item() == pair.label_i != pair.label_j == y[pair.j].item()
        assert result.n == len(x) and result.input_shape == (1, 28, 28)
        assert result.n_classes == len(torch.unique(y))


def test_one_hot_targets_equal_class_ids() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 10, generator=generator)
    y = torch.randint(0, 4, (400,), generator=generator)
    one_hot = torch.nn.functional.one_hot(y, 4)
    assert label_sharpness(x, one_hot).value == label_sharpness(x, y).value
    assert label_sharpness(x, y[:, None]).value == label_sharpness(x, y).value


def test_regression_targets_equal_brute_force() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(500, 8, generator=generator)
    y = x[:, 0] + 0.1 * torch.randn(500, generator=generator)
    dist = brute_force_distances(x)
    ratio = (y[:, None] - y[None, :]).abs().double() / dist
    result = label_sharpness(x, y, top_pairs=3)
    assert result.target_type == "regression"
    assert result.value == pytest.approx(ratio.max().item(), rel=1e-6)
    best = (result.pairs[0].i, result.pairs[0].j)
    flat = int(ratio.argmax())
    assert sorted(best) == sorted((flat // 500, flat % 500))


def test_label_conflict_is_infinite_and_names_the_pair() -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(100, 5, generator=generator)
    y = torch.randint(0, 2, (100,), generator=generator)
    x = torch.cat([x, x[7:8]])
    y = torch.cat([y, 1 - y[7:8]])
    with pytest.warns(LabelConflictWarning, match=r"\(7, 100"):
        result = label_sharpness(x, y)
    assert result.value == math.inf
    assert (result.conflicts[0].i, result.conflicts[0].j) == (7, 100)
    assert result.to_dict()["value"] == "inf"


def test_same_label_duplicates_are_not_conflicts() -> None:
    x = torch.cat([torch.eye(6), torch.eye(6)[:2]])
    y = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = label_sharpness(x, y)
    assert result.value == pytest.approx(1 / math.sqrt(2))
    assert result.conflicts == ()


def test_sampled_method_is_a_lower_bound_with_multiclass_fixed() -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(300, 6, generator=generator)
    y = torch.randint(0, 5, (300,), generator=generator)
    exact = label_sharpness(x, y).value
    sampled = label_sharpness(x, y, method="sampled", n_pairs=2000, seed=0)
    assert 0 < sampled.value <= exact
    assert sampled.n_pairs_evaluated == 2000
    assert all(pair.label_i != pair.label_j for pair in sampled.pairs)
    assert label_sharpness(x, y, method="sampled", seed=0).value == sampled.value


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (torch.zeros(50, dtype=torch.long), "same label"),
        (torch.zeros(49, dtype=torch.long), "50 samples but `y` has 49"),
        (torch.tensor([0.0, float("nan")] * 25), "NaN"),
        (torch.zeros(50, 2, 2), "shape"),
    ],
)
def test_bad_targets_raise_clear_errors(y: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        label_sharpness(torch.randn(50, 3), y)


def test_unknown_method_and_fractional_class_targets() -> None:
    with pytest.raises(ValueError, match="Unknown method"):
        label_sharpness(torch.randn(10, 2), torch.arange(10) % 2, method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fractional"):
        label_sharpness(torch.randn(10, 2), torch.rand(10), target_type="class")


def test_byte_images_say_their_units_once_and_pixels_do_not(mnist) -> None:
    """uint8 pixels give K_F in 1 / byte units (255x smaller than in [0, 1]): measured as given,
    and said; the same images in [0, 1] (and non-image features in 0-255) are not warned."""
    from lightning_dataprops.functional import ByteImagesWarning, dataset_properties

    x, y = mnist[0][::16][:300], mnist[1][::16][:300]
    assert len(set(y.tolist())) > 2
    as_bytes = (x * 255).round().to(torch.uint8)
    with pytest.warns(ByteImagesWarning, match=r"255 times smaller.*Divide the inputs by 255"):
        in_bytes = label_sharpness(as_bytes, y).value
    assert in_bytes == pytest.approx(label_sharpness(as_bytes.float() / 255, y).value / 255)
    with pytest.warns(ByteImagesWarning):
        dataset_properties(as_bytes.numpy(), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ByteImagesWarning)
        label_sharpness(x, y)
        label_sharpness(as_bytes.reshape(300, -1), y)  # features, not images
        dataset_properties(as_bytes)  # no labels: d_data is scale-free


def test_vector_targets_report_their_vectors() -> None:
    """(n, t) regression targets: a pair's labels are the target vectors, so that
    ||y_i - y_j|| / distance is its sharpness (they were reported as the vectors' norms)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=generator, dtype=torch.float64)
    y = torch.randn(300, 2, generator=generator, dtype=torch.float64)
    result = label_sharpness(x, y)
    for pair in result.pairs:
        assert isinstance(pair.label_i, tuple) and len(pair.label_i) == 2
        assert (
            tuple(y[pair.i].tolist()) == pair.label_i and tuple(y[pair.j].tolist()) == pair.label_j
        )
        gap = float(torch.linalg.vector_norm(y[pair.i] - y[pair.j]))
        assert gap / pair.distance == pytest.approx(pair.sharpness, rel=1e-9)
    assert result.pairs[0].sharpness == pytest.approx(result.value, rel=1e-12)
    assert json.loads(json.dumps(result.to_dict()))["pairs"][0]["label_i"] == list(
        result.pairs[0].label_i
    )
