"""Intrinsic dimension against independent oracles, known manifolds and duplicates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_dataprops.functional import intrinsic_dimension
from tests.conftest import brute_force_distances, sphere_in_ambient, stratified_subset

skdim = pytest.importorskip(
    "skdim", reason="scikit-dimension is the MLE oracle (pip install scikit-dimension)"
)


def _real(name: str, request: pytest.FixtureRequest) -> torch.Tensor:
    x, y = request.getfixturevalue(name)
    rows = stratified_subset(y.numpy(), per_class=200 if name != "pneumonia" else 800)
    return x[rows].reshape(len(rows), -1)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["mnist", "fashion", "pneumonia"])
def test_mle_equals_scikit_dimension(dataset: str, request: pytest.FixtureRequest) -> None:
    x = _real(dataset, request)
    result = intrinsic_dimension(x, "mle", k=20)
    assert result.kept_indices is not None
    unique = x[result.kept_indices].numpy().astype(np.float64)
    oracle = skdim.id.MLE().fit(unique, n_neighbors=20).dimension_
    assert result.value == pytest.approx(oracle, rel=1e-3)
    assert result.n == len(unique)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["mnist", "fashion", "pneumonia"])
def test_twonn_equals_closed_form(dataset: str, request: pytest.FixtureRequest) -> None:
    x = _real(dataset, request)
    result = intrinsic_dimension(x, "twonn")
    dist = brute_force_distances(x[result.kept_indices])
    nearest = dist.topk(2, largest=False).values
    n = len(nearest)
    oracle = (n - 1) / torch.log(nearest[:, 1] / nearest[:, 0]).sum().item()
    assert result.value == pytest.approx(oracle, rel=1e-3)
    assert result.stderr == pytest.approx(result.value / math.sqrt(n))


def test_known_ten_dimensional_manifold() -> None:
    x = sphere_in_ambient(4000, intrinsic=10, ambient=784)
    mle = intrinsic_dimension(x, "mle", k=20).value
    twonn = intrinsic_dimension(x, "twonn").value
    assert 8.8 <= mle <= 10.5
    assert 9.0 <= twonn <= 10.8


@pytest.mark.slow
def test_exact_and_near_duplicates_are_collapsed_and_reported() -> None:
    clean = sphere_in_ambient(4000, intrinsic=10, ambient=784, seed=1)
    generator = torch.Generator().manual_seed(5)
    exact_copies = clean[torch.randperm(4000, generator=generator)[:200]]
    sources = torch.randperm(4000, generator=generator)[:200]
    near_copies = clean[sources] + 1e-6 * torch.randn(200, 784, generator=generator)
    noisy = torch.cat([clean, exact_copies, near_copies])
    for estimator in ("mle", "twonn"):
        reference = intrinsic_dimension(clean, estimator).value
        result = intrinsic_dimension(noisy, estimator)
        assert result.value == pytest.approx(reference, rel=0.05)
        assert result.duplicates.n_duplicates == 400
        assert result.duplicates.n_exact_pairs >= 200
        assert result.n == 4000
        assert math.isfinite(result.value)


def test_mle_variants_follow_their_formulas() -> None:
    x = sphere_in_ambient(1500, intrinsic=5, ambient=40, seed=2)
    k = 12
    dist = brute_force_distances(x).topk(k, largest=False).values
    log_ratio = torch.log(dist[:, -1:] / dist[:, :-1]).sum(dim=1)
    pooled = (k - 1) * len(x) / log_ratio.sum().item()
    arithmetic = ((k - 2) / log_ratio).mean().item()
    assert intrinsic_dimension(x, "mle", k=k).value == pytest.approx(pooled, rel=1e-7)
    paper = intrinsic_dimension(x, "mle", k=k, mle_variant="paper").value
    assert paper == pytest.approx(pooled * (k - 2) / (k - 1), rel=1e-7)
    levina = intrinsic_dimension(x, "mle", k=k, mle_variant="levina_bickel").value
    assert levina == pytest.approx(arithmetic, rel=1e-7)


def test_twonn_linear_fit_and_bootstrap() -> None:
    x = sphere_in_ambient(2000, intrinsic=6, ambient=50, seed=3)
    closed = intrinsic_dimension(x, "twonn")
    fitted = intrinsic_dimension(x, "twonn", twonn_variant="linear_fit")
    assert fitted.variant == "linear_fit"
    assert fitted.value == pytest.approx(closed.value, rel=0.1)
    boot = intrinsic_dimension(x, "mle", k=10, n_bootstrap=5, seed=1)
    again = intrinsic_dimension(x, "mle", k=10, n_bootstrap=5, seed=1)
    assert boot.stderr is not None and 0 < boot.stderr < 0.5
    assert boot.stderr == again.stderr
    assert boot.ci95 is not None and boot.ci95[0] < boot.value < boot.ci95[1]


def test_result_carries_provenance() -> None:
    x = torch.rand(300, 3, 4, 4)
    result = intrinsic_dimension(x, "mle", k=10)
    assert result.input_shape == (3, 4, 4)
    assert result.n_input == 300
    assert result.estimator == "mle" and result.k == 10
    assert float(result) == result.value
    assert result.to_dict()["input_shape"] == [3, 4, 4]


@pytest.mark.parametrize(
    ("x", "kwargs", "match"),
    [
        (torch.tensor([[0.0, float("nan")], [1.0, 2.0]] * 20), {}, "NaN or infinite"),
        (torch.tensor([[0.0, float("inf")], [1.0, 2.0]] * 20), {}, "NaN or infinite"),
        (torch.randn(15, 3), {"k": 20}, "at least k\\+1=21"),
        (torch.randn(50, 3), {"estimator": "pca"}, "Unknown estimator 'pca'"),
        (torch.randn(50), {}, "ambiguous"),
        (torch.randn(50, 3), {"mle_variant": "oops"}, "Unknown MLE variant"),
    ],
)
def test_bad_input_raises_clear_errors(x: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        intrinsic_dimension(x, **kwargs)


def test_all_duplicates_is_an_error_not_zero() -> None:
    x = torch.cat([torch.ones(30, 5), torch.zeros(30, 5)])
    with pytest.raises(ValueError, match="distinct samples remain"):
        intrinsic_dimension(x, "mle", k=5)


def _grid_variants() -> dict[str, torch.Tensor]:
    """A 40 x 40 integer grid in 5 dims: as is, rotated (float64), rotated + 0.1 (float32)."""
    axis = torch.arange(40, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
    flat = torch.cat([grid, torch.zeros(grid.shape[0], 3, dtype=torch.float64)], dim=1)
    g = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    return {
        "plain": flat,
        "rotated": flat @ rotation,
        "rotated_shifted_float32": (flat @ rotation + 0.1).to(torch.float32),
    }


@pytest.mark.parametrize("variant", ["closed_form", "linear_fit"])
def test_twonn_refuses_tied_lattice_whatever_the_rounding(variant: str) -> None:
    # Every grid point has its first two neighbours at distance 1: TwoNN's ratio is degenerate.
    # Before, float rounding decided between an error, 1e15 and 5e6.
    for name, x in _grid_variants().items():
        with pytest.raises(ValueError, match=r"same distance.*discrete") as error:
            intrinsic_dimension(x, "twonn", twonn_variant=variant)
        assert "1600 of 1600" in str(error.value), name


@pytest.mark.parametrize("variant", ["mackay_ghahramani", "levina_bickel", "paper"])
def test_mle_on_tied_lattice_is_sensible_and_rounding_free(variant: str) -> None:
    values = {
        name: intrinsic_dimension(x, "mle", k=20, mle_variant=variant).value
        for name, x in _grid_variants().items()
    }
    reference = values["plain"]
    assert 1.5 < reference < 3.5  # a 2-d lattice (MLE reads it somewhat high at k = 20)
    for value in values.values():
        assert value == pytest.approx(reference, rel=1e-5)


def test_mle_refuses_when_all_neighbours_tie() -> None:
    # A lattice seen with k = 4: the 4 nearest neighbours of (almost) every point are at 1.
    with pytest.raises(ValueError, match="all 4 nearest neighbours at the same distance"):
        intrinsic_dimension(_grid_variants()["rotated"], "mle", k=4)


def test_a_few_ties_are_reported_and_do_not_distort() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 3, generator=g, dtype=torch.float64)
    # five far-away triplets (c - r e1, c, c + r e1): c's two neighbours tie at distance r
    triplets = []
    for t in range(5):
        centre = torch.tensor([0.0, 0.0, 100.0 * (t + 1)], dtype=torch.float64)
        step = torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)
        triplets.append(torch.stack([centre - step, centre, centre + step]))
    result = intrinsic_dimension(torch.cat([x, *triplets]), "twonn")
    assert result.n_ties == 5 and result.to_dict()["n_ties"] == 5
    clean = intrinsic_dimension(x, "twonn")
    assert clean.n_ties == 0
    assert result.value == pytest.approx(clean.value, rel=0.05)


@pytest.mark.parametrize("variant", ["levina_bickel", "paper"])
def test_k_minus_two_variants_refuse_k_two_instead_of_returning_zero(variant: str) -> None:
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="k >= 3"):
        intrinsic_dimension(x, "mle", 2, mle_variant=variant)
    assert intrinsic_dimension(x, "mle", 2).value > 1  # MacKay-Ghahramani is fine at k = 2
