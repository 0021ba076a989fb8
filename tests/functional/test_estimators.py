"""The estimators of the open set, each against a float64 brute force of its own formula and,
where it computes the same thing, scikit-dimension."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from lightning_dataprops import dataset_properties, intrinsic_dimension
from lightning_dataprops.functional.estimators import unique_neighbours
from tests.conftest import sphere_in_ambient
from tests.threads import on_one_and_two_threads

skdim = pytest.importorskip("skdim")


def _sorted_distances(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs float64 distances, each row sorted, self excluded; and the neighbour order."""
    x = x.reshape(len(x), -1).astype(np.float64)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")
    return np.take_along_axis(d, order, axis=1), order


def _gride_brute(d: np.ndarray, n1: int, n2: int) -> float:
    """Root of the score of Denti et al.'s likelihood, (N - 1) log d convention, DADApy's cut."""
    mu = d[:, n2 - 1] / d[:, n1 - 1]
    q50, q95 = np.percentile(mu, [50, 95])
    mu = mu[mu < 20 * (q95 - q50) + q50]
    n = len(mu)

    def score(dim: float) -> float:
        power = mu**dim
        return float(
            (n - 1) / dim
            + (n2 - n1 - 1) * np.sum(np.log(mu) * power / (power - 1))
            - (n2 - 1) * np.sum(np.log(mu))
        )

    return float(brentq(score, 0.01, 500.0, xtol=1e-13, rtol=1e-13))


@pytest.fixture(scope="module")
def curved() -> np.ndarray:
    return sphere_in_ambient(600, 5, 12, seed=3).numpy()


def test_gride_every_scale_equals_brute_force_and_scikit_dimension(curved: np.ndarray) -> None:
    result = dataset_properties(curved, k=20, estimators=("gride",)).estimates["gride"]
    distances, _ = _sorted_distances(curved)
    assert set(result.details) == {"n1=1", "n1=2", "n1=4", "n1=8"}
    for n1 in (1, 2, 4, 8):
        value = result.details[f"n1={n1}"]
        assert value == pytest.approx(_gride_brute(distances, n1, 2 * n1), rel=1e-8)
        reference = skdim.id.GRIDE(n1=n1, n2=2 * n1).fit(curved.astype(np.float64))
        assert value == pytest.approx(reference.dimension_, rel=1e-8)
    # The reported value is the largest scale's, with its observed-information standard error
    # (ours differentiates the (N - 1) log d likelihood; scikit-dimension writes N / d^2).
    reference = skdim.id.GRIDE(n1=8, n2=16).fit(curved.astype(np.float64))
    assert result.value == result.details["n1=8"] and result.k == 16
    assert result.stderr == pytest.approx(reference.error_, rel=2e-3)


def test_abid_equals_brute_force(curved: np.ndarray) -> None:
    value = intrinsic_dimension(curved, "abid", k=12).value
    _, order = _sorted_distances(curved)
    x = curved.astype(np.float64)
    per_point = []
    for i in range(len(x)):
        v = x[order[i, :12]] - x[i]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        cos2 = (v @ v.T) ** 2
        per_point.append((cos2.sum() - 12) / (12 * 11))
    assert value == pytest.approx(1.0 / np.mean(per_point), rel=1e-5)


def test_abid_reads_the_dimension_of_isotropic_directions() -> None:
    # Known answer: on a flat, boundary-free sample (a large torus patch is flat) the offsets
    # to the nearest neighbours are isotropic, and E[cos^2] = 1/d.
    g = torch.Generator().manual_seed(0)
    angles = torch.rand(3000, 3, generator=g) * 2 * math.pi
    torus = torch.cat([angles.cos(), angles.sin()], dim=1)
    assert intrinsic_dimension(torus, "abid", k=10).value == pytest.approx(3.0, rel=0.08)


@pytest.mark.parametrize("k", [5, 10])
def test_mle_at_several_k_equals_scikit_dimension(curved: np.ndarray, k: int) -> None:
    props = dataset_properties(curved, k=20, estimators=(f"mle_k{k}",))
    reference = skdim.id.MLE().fit(curved.astype(np.float64), n_neighbors=k).dimension_
    assert props.estimates[f"mle_k{k}"].value == pytest.approx(reference, rel=1e-8)
    assert props.estimates[f"mle_k{k}"].k == k


def test_estimators_come_from_one_pass_and_keep_the_classic_values(curved: np.ndarray) -> None:
    everything = dataset_properties(curved, k=20, estimators=("gride", "abid", "mle_k5"))
    classic = dataset_properties(curved, k=20, estimators=())
    assert set(classic.estimates) == {"mle", "twonn"}
    assert everything.d_data == classic.d_data
    assert everything.d_data_twonn == classic.d_data_twonn
    assert everything.d_data == intrinsic_dimension(curved, "mle", k=20).value


def test_abid_on_two_workers_equals_one_thread(curved: np.ndarray) -> None:
    """ABID's chunks run on a pool of workers, each gathering into memory it reuses: the value
    is the one-thread value to the last bit."""
    one, two = on_one_and_two_threads(lambda: intrinsic_dimension(curved, "abid", k=12).value)
    assert one == two


def test_offsets_into_given_memory() -> None:
    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    nb = unique_neighbours(x, 4)
    rows = slice(3, 9)
    fresh = nb.offsets(rows, 3, dtype=torch.float32)
    assert fresh.shape == (6, 3, 7)
    torch.testing.assert_close(fresh, (x[nb.indices[rows, :3]] - x[nb.kept[rows]][:, None, :]))
    buffer = torch.full((200,), float("nan"))
    reused = nb.offsets(rows, 3, dtype=torch.float32, out=buffer)
    assert torch.equal(reused, fresh) and reused.data_ptr() == buffer.data_ptr()
    with pytest.raises(ValueError, match="at least 126 elements"):
        nb.offsets(rows, 3, dtype=torch.float32, out=torch.empty(100))
    with pytest.raises(ValueError, match=r"contiguous torch\.float64"):
        nb.offsets(rows, 3, out=buffer)
    with pytest.raises(ValueError, match="holds 1 to 4"):
        nb.offsets(rows, 5)
