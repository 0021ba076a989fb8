"""The fast pass's kernels (float32, exact int8, bfloat16) all give the exact neighbours."""

from __future__ import annotations

import pytest
import torch

from lightning_dataprops.functional import dataset_properties
from lightning_dataprops.functional.knn import knn_search
from tests.conftest import brute_force_distances

KERNELS = ["float32", "int8", "bfloat16"]


def _pixels(n: int, dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit "images" (``k / 255`` as float32) on a smooth 4-d family, with 3 classes."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.rand(n, 4, generator=generator)
    basis = torch.randn(4, dim, generator=generator)
    raw = torch.sigmoid(z @ basis + 0.3 * torch.randn(n, dim, generator=generator))
    x = torch.round(raw * 255.0).to(torch.uint8).float() / 255.0
    labels = (z[:, 0] * 3).long().clamp(max=2)
    return x, labels


def _check(x: torch.Tensor, labels: torch.Tensor, k: int, n_pairs: int, graph) -> None:
    """kNN, nearest differently-labelled point and closest pairs against float64 brute force."""
    dist = brute_force_distances(x)
    expected = dist.topk(k, largest=False).values
    torch.testing.assert_close(graph.distances, expected, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(torch.gather(dist, 1, graph.indices), expected, rtol=1e-7, atol=1e-9)
    other = dist.masked_fill(labels[:, None] == labels[None, :], float("inf"))
    nearest = other.min(dim=1).values
    torch.testing.assert_close(graph.other_distances, nearest, rtol=1e-7, atol=1e-9)
    chosen = other[torch.arange(len(x)), graph.other_indices]
    torch.testing.assert_close(chosen, nearest, rtol=1e-7, atol=1e-9)
    upper = torch.triu(other, diagonal=1).masked_fill(
        torch.tril(torch.ones_like(other, dtype=torch.bool)), float("inf")
    )
    pairs = upper.flatten().topk(n_pairs, largest=False).values
    torch.testing.assert_close(graph.pair_distances, pairs, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("budget_mb", [0.05, 512.0])
def test_every_kernel_is_exact_on_8bit_pixels(kernel: str, budget_mb: float) -> None:
    x, labels = _pixels(1200, 96)
    graph = knn_search(x, 12, labels=labels, n_pairs=6, kernel=kernel, memory_budget_mb=budget_mb)  # type: ignore[arg-type]
    _check(x, labels, 12, 6, graph)


@pytest.mark.parametrize("kernel", ["float32", "bfloat16"])
def test_continuous_kernels_are_exact_with_cancellation(kernel: str) -> None:
    generator = torch.Generator().manual_seed(3)
    # An offset and a few far points make the norms, and with them the bounds, large.
    x = torch.randn(900, 48, generator=generator) @ torch.randn(48, 300, generator=generator)
    x[:10] *= 40.0
    x += 7.0
    labels = torch.randint(0, 4, (900,), generator=generator)
    graph = knn_search(x, 10, labels=labels, n_pairs=5, kernel=kernel)  # type: ignore[arg-type]
    _check(x, labels, 10, 5, graph)


@pytest.mark.parametrize("kernel", KERNELS)
def test_nearest_other_label_is_exact_among_near_ties(kernel: str) -> None:
    """Two points of another class at distances 1 and 1 + 2^-12 (exact in float32): far
    closer than the fast pass's error bound (far points inflate it), so only the certified
    finish can tell them apart; it must name the nearer one every time."""
    generator = torch.Generator().manual_seed(5)
    n_far, n_queries, dim = 400, 30, 8
    far = torch.randint(0, 256, (n_far, dim), generator=generator).float()
    far_labels = torch.randint(0, 2, (n_far,), generator=generator)
    rows, labels = [far], [far_labels]
    for q in range(n_queries):
        base = torch.full((1, dim), 128.0)
        base[0, q % dim] += 3.0 * (q // dim)  # distinct queries, away from each other
        near = base.clone()
        near[0, (q + 1) % dim] += 1.0
        almost = base.clone()
        almost[0, (q + 2) % dim] += 1.0 + 2.0**-12
        # The slightly farther one comes first, so a float32 tie would pick it.
        rows += [base, almost, near]
        labels.append(torch.tensor([2, 3, 3]))
    x = torch.cat(rows)
    if kernel == "int8":
        x = torch.round(x)  # the int8 kernel needs the grid: ties become exact there
    y = torch.cat(labels)
    graph = knn_search(x, 3, labels=y, n_pairs=3, kernel=kernel)  # type: ignore[arg-type]
    dist = brute_force_distances(x).masked_fill(y[:, None] == y[None, :], float("inf"))
    queries = torch.arange(n_far, len(x), 3)
    nearest, arg = dist[queries].min(dim=1)
    torch.testing.assert_close(graph.other_distances[queries], nearest, rtol=1e-12, atol=0)
    if kernel != "int8":
        assert torch.equal(graph.other_indices[queries], arg)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dim", [1, 3, 17])
def test_every_kernel_is_exact_in_few_dimensions(kernel: str, dim: int) -> None:
    """Narrow inputs too (torch's CPU ``_int_mm`` is wrong for a single column: padded)."""
    generator = torch.Generator().manual_seed(dim)
    x = torch.randint(0, 256, (300, dim), generator=generator).float()
    labels = torch.randint(0, 2, (300,), generator=generator)
    graph = knn_search(x, 4, labels=labels, n_pairs=3, kernel=kernel)  # type: ignore[arg-type]
    _check(x, labels, 4, 3, graph)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("n", "k"), [(10, 5), (100, 95), (100, 80)])
def test_lists_of_every_point_are_still_ranked_exactly(kernel: str, n: int, k: int) -> None:
    """When the candidate lists hold every point (k + margin >= n - 1) but only the first k
    were recomputed, the rest must still be compared: far outliers make the bound wide, so
    the approximate order of a tight cluster is meaningless."""
    generator = torch.Generator().manual_seed(n + k)
    if kernel == "int8":  # a tight cluster of codes with two far ones, on the grid
        x = 120.0 + torch.randint(0, 16, (n, 5), generator=generator).float()
        x[0], x[1] = 0.0, 255.0
    else:
        x = 1000.0 + torch.randint(0, 256, (n, 5), generator=generator).float() / 255.0
        x[:2] *= -50.0
    labels = torch.arange(n) % 2
    graph = knn_search(x, k, labels=labels, n_pairs=3, kernel=kernel)  # type: ignore[arg-type]
    _check(x, labels, k, 3, graph)


def test_data_merely_near_an_8bit_grid_is_not_taken_for_one() -> None:
    """Entries a hair off the grid (here 1e-5 of a step, far more than float rounding) would
    widen the int8 kernel's bound: ``int8`` refuses, ``auto`` stays exact."""
    generator = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (300, 16), generator=generator).float()
    x[::7, 3] += 1e-5
    with pytest.raises(ValueError, match="8-bit grid"):
        knn_search(x, 5, kernel="int8")
    labels = torch.arange(300) % 3
    _check(x, labels, 5, 2, knn_search(x, 5, labels=labels, n_pairs=2))


def test_int8_refuses_data_off_an_8bit_grid() -> None:
    x = torch.randn(200, 16)
    with pytest.raises(ValueError, match="8-bit grid"):
        knn_search(x, 5, kernel="int8")
    with pytest.raises(ValueError, match="kernel must be one of"):
        knn_search(x, 5, kernel="float16")  # type: ignore[arg-type]


def test_normalised_pixels_stay_exact() -> None:
    """A global Normalize keeps the 8-bit grid (the int8 kernel takes it); per-channel
    statistics do not (``auto`` falls back, ``int8`` says why)."""
    x, labels = _pixels(600, 2 * 49)
    normalised = (x - 0.45) / 0.22
    reference = knn_search(normalised, 8, labels=labels, kernel="float32")
    fast = knn_search(normalised, 8, labels=labels, kernel="int8")
    assert torch.equal(fast.distances, reference.distances)
    assert torch.equal(fast.other_distances, reference.other_distances)
    per_channel = x.view(600, 2, 49)
    per_channel = (per_channel - torch.tensor([0.4, 0.5])[:, None]) / torch.tensor([0.2, 0.3])[
        :, None
    ]
    per_channel = per_channel.reshape(600, -1)
    with pytest.raises(ValueError, match="8-bit grid"):
        knn_search(per_channel, 8, kernel="int8")
    _check(per_channel, labels, 8, 1, knn_search(per_channel, 8, labels=labels))


def test_dataset_properties_do_not_depend_on_the_kernel(pneumonia) -> None:
    """Real 8-bit X-rays: ``auto`` (int8 on CPUs with VNNI) equals the float32 kernel."""
    images, labels = pneumonia
    pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:1500]
    x, y = images[pick].reshape(1500, -1), labels[pick]
    assert len(y.unique()) == 2
    auto = knn_search(x, 20, labels=y, n_pairs=10)
    plain = knn_search(x, 20, labels=y, n_pairs=10, kernel="float32")
    assert torch.equal(auto.distances, plain.distances)
    assert torch.equal(auto.other_distances, plain.other_distances)
    assert torch.equal(auto.pair_distances, plain.pair_distances)
    closest = float(plain.pair_distances[0])
    props = dataset_properties(x, y)
    assert (1.0 / closest if closest > 0 else float("inf")) == props.K_F


@pytest.mark.parametrize("intrinsic", [6, 256])
def test_auto_kernel_on_larger_continuous_sets_equals_float32(intrinsic: int) -> None:
    """Large enough for ``auto`` to weigh bfloat16 (4096 x 256). A 6-d manifold takes it; 256-d
    Gaussian noise does not (its k-th and last candidates are too nearly as far for the wider
    bound). Either way the neighbours are the float32 kernel's, to the last bit."""
    generator = torch.Generator().manual_seed(11)
    z = torch.rand(4096, intrinsic, generator=generator)
    x = torch.sin(z @ torch.randn(intrinsic, 256, generator=generator) * 3.0 / intrinsic**0.5)
    labels = (z[:, 0] > 0.5).long()
    auto = knn_search(x, 10, labels=labels, n_pairs=4)
    plain = knn_search(x, 10, labels=labels, n_pairs=4, kernel="float32")
    assert torch.equal(auto.distances, plain.distances)
    assert torch.equal(auto.other_distances, plain.other_distances)
    assert torch.equal(auto.pair_distances, plain.pair_distances)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("scale", [1e-22, 1e-19, 1e19, 1e20])
def test_extreme_scales_are_exact(kernel: str, scale: float) -> None:
    """Float32 squares of tiny data are subnormal and of huge data overflow: the search brings
    the data to a moderate scale by a power of two and the distances back, exactly."""
    generator = torch.Generator().manual_seed(0)
    if kernel == "int8":
        x = torch.randint(0, 256, (400, 4), generator=generator).double() * scale
    else:
        x = torch.randn(400, 4, generator=generator, dtype=torch.float64) * scale
    labels = torch.randint(0, 3, (400,), generator=generator)
    graph = knn_search(x, 3, labels=labels, n_pairs=3, kernel=kernel)  # type: ignore[arg-type]
    _check(x, labels, 3, 3, graph)


def test_dataset_properties_do_not_depend_on_the_scale() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 4, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (400,), generator=generator)
    plain = dataset_properties(x, y, k=10)
    for scale in (2.0**-75, 2.0**65):
        scaled = dataset_properties(x * scale, y, k=10)
        assert scaled.d_data == pytest.approx(plain.d_data, rel=1e-9)
        assert scaled.d_data_twonn == pytest.approx(plain.d_data_twonn, rel=1e-9)
        assert pytest.approx(plain.K_F / scale, rel=1e-9) == scaled.K_F


def test_repeated_queries_get_the_same_nearest_other_label_point() -> None:
    generator = torch.Generator().manual_seed(0)
    cluster = torch.randn(20, 8, generator=generator) * 0.01
    cluster[0] = 0.0
    x = torch.cat([cluster, torch.eye(8) * 10, -torch.eye(8) * 10])
    labels = torch.cat([torch.zeros(20), torch.ones(16)]).long()
    queries = torch.tensor([0, 0, 3])
    graph = knn_search(x, 5, labels=labels, queries=queries)
    other = brute_force_distances(x).masked_fill(labels[:, None] == labels[None, :], float("inf"))
    nearest = other[queries].min(dim=1).values
    torch.testing.assert_close(graph.other_distances, nearest, rtol=1e-7, atol=0)
    assert bool((graph.other_indices >= 0).all() and (graph.other_indices < len(x)).all())


def test_bad_inputs_get_clear_errors_or_exact_answers() -> None:
    x, labels = _pixels(300, 16)
    broken = x.clone()
    broken[7, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        knn_search(broken, 5)
    broken[7, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        knn_search(broken, 5, kernel="int8")
    reference = knn_search(x, 5, labels=labels, kernel="float32")
    codes = torch.round(x * 255.0)  # k / 255 is not exact in half precision; the codes are
    for dtype in (torch.float16, torch.bfloat16, torch.uint8):
        graph = knn_search(codes.to(dtype), 5, labels=labels)
        torch.testing.assert_close(graph.distances, reference.distances * 255.0, rtol=1e-6, atol=0)


def test_grid_with_a_large_offset_stays_exact() -> None:
    """``1e6 + k`` in float32: the offset's rounding is a third of a step, so the int8 kernel's
    bound would be useless; the grid is refused and the float32 kernel answers."""
    generator = torch.Generator().manual_seed(4)
    x = 1e6 + torch.randint(0, 256, (500, 8), generator=generator).float()
    with pytest.raises(ValueError, match="8-bit grid"):
        knn_search(x, 4, kernel="int8")
    labels = torch.arange(500) % 2
    _check(x, labels, 4, 2, knn_search(x, 4, labels=labels, n_pairs=2))
