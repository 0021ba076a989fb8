"""The exact kNN engine against brute-force float64 distances."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import torch

from lightning_dataprops.functional.knn import knn_search, merge_pairs
from tests.conftest import brute_force_distances
from tests.threads import on_one_and_two_threads, torch_threads


def _check_against_brute_force(x: torch.Tensor, k: int, graph, queries=None) -> None:
    dist = brute_force_distances(x)
    rows = torch.arange(len(x)) if queries is None else queries
    expected = dist[rows].topk(k, largest=False)
    torch.testing.assert_close(graph.distances, expected.values, rtol=1e-6, atol=1e-9)
    # Neighbours may differ only between exactly tied distances.
    got = torch.gather(dist[rows], 1, graph.indices)
    torch.testing.assert_close(got, expected.values, rtol=1e-6, atol=1e-9)
    assert not (graph.indices == rows[:, None]).any(), "a point was its own neighbour"


def _closest_bichromatic(x: torch.Tensor, labels: torch.Tensor, m: int, rows=None):
    dist = brute_force_distances(x)
    dist = dist.masked_fill(labels[:, None] == labels[None, :], float("inf"))
    if rows is not None:
        keep = torch.zeros(len(x), dtype=torch.bool)
        keep[rows] = True
        dist = dist.masked_fill(~(keep[:, None] | keep[None, :]), float("inf"))
    upper = torch.triu(dist, diagonal=1)
    upper = upper.masked_fill(torch.tril(torch.ones_like(upper, dtype=torch.bool)), float("inf"))
    return upper.flatten().topk(m, largest=False).values


@pytest.mark.parametrize("budget_mb", [0.05, 512.0])
def test_symmetric_search_matches_brute_force(budget_mb: float) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1500, 40, generator=generator) + 5.0  # offset: cancellation-prone
    labels = torch.randint(0, 3, (1500,), generator=generator)
    graph = knn_search(x, 15, labels=labels, n_pairs=6, memory_budget_mb=budget_mb)
    _check_against_brute_force(x, 15, graph)
    torch.testing.assert_close(
        graph.pair_distances, _closest_bichromatic(x, labels, 6), rtol=1e-9, atol=0
    )
    assert bool((labels[graph.pair_first] != labels[graph.pair_second]).all())


def test_query_subset_matches_brute_force_and_shards_merge() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(900, 25, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 4, (900,), generator=generator)
    shards = torch.randperm(900, generator=generator).chunk(3)
    graphs = [
        knn_search(x, 10, labels=labels, n_pairs=5, queries=q, memory_budget_mb=0.1) for q in shards
    ]
    for shard, graph in zip(shards, graphs, strict=True):
        _check_against_brute_force(x, 10, graph, queries=shard)
    _, _, dist = merge_pairs(
        torch.cat([g.pair_first for g in graphs]),
        torch.cat([g.pair_second for g in graphs]),
        torch.cat([g.pair_distances for g in graphs]),
        5,
    )
    torch.testing.assert_close(dist, _closest_bichromatic(x, labels, 5), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("budget_mb", "n_classes", "use_queries"),
    [(0.05, 7, False), (512.0, 3, False), (0.05, 5, True), (512.0, 1, False)],
)
def test_nearest_other_label_matches_brute_force(
    budget_mb: float, n_classes: int, use_queries: bool
) -> None:
    """Each point's nearest differently-labelled neighbour (it feeds the robust sharpness)."""
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(1300, 30, generator=generator) + 4.0
    labels = torch.randint(0, n_classes, (1300,), generator=generator)
    labels[:40] = n_classes + 1  # one class far rarer than the others
    queries = torch.randperm(1300, generator=generator)[:500] if use_queries else None
    graph = knn_search(x, 5, labels=labels, queries=queries, memory_budget_mb=budget_mb)
    rows = torch.arange(1300) if queries is None else queries
    dist = brute_force_distances(x).masked_fill(labels[:, None] == labels[None, :], float("inf"))
    expected = dist[rows].min(dim=1).values
    assert graph.other_distances is not None and graph.other_indices is not None
    # Chosen by the float32 pass: within its error bound of the true nearest (relative ~1e-6).
    torch.testing.assert_close(graph.other_distances, expected, rtol=1e-5, atol=1e-9)
    found = graph.other_indices >= 0
    assert bool((found == torch.isfinite(expected)).all())
    picked = dist[rows[found], graph.other_indices[found]]
    torch.testing.assert_close(picked, graph.other_distances[found], rtol=1e-6, atol=1e-9)


def test_tie_heavy_integer_data_and_duplicates() -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (800, 12), generator=generator).float()
    x = torch.cat([x, x[:50]])  # exact duplicates
    graph = knn_search(x, 8, memory_budget_mb=0.05)
    _check_against_brute_force(x, 8, graph)
    twins = graph.indices[:50, 0]
    assert bool((graph.distances[:50, 0] == 0).all())
    assert not bool((twins == torch.arange(50)).any()), "self must be excluded by index"


def test_reduced_precision_matmul_does_not_leak_and_is_restored() -> None:
    """Lightning users call set_float32_matmul_precision("medium"): TF32 / bf16 matmul."""
    mkldnn_matmul = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    torch.set_float32_matmul_precision("medium")
    try:
        before_cuda = getattr(torch.backends.cuda.matmul, "fp32_precision", None)
        before_mkldnn = getattr(mkldnn_matmul, "fp32_precision", None)
        generator = torch.Generator().manual_seed(4)
        x = torch.randn(600, 300, generator=generator) + 3.0
        graph = knn_search(x, 10)
        _check_against_brute_force(x, 10, graph)
        assert graph.n_refined == 0, "the fast pass ran at reduced precision"
        assert getattr(torch.backends.cuda.matmul, "fp32_precision", None) == before_cuda
        assert getattr(mkldnn_matmul, "fp32_precision", None) == before_mkldnn
    finally:
        torch.set_float32_matmul_precision("highest")


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k\\+1"):
        knn_search(torch.randn(5, 2), 5)
    with pytest.raises(ValueError, match="matrix"):
        knn_search(torch.randn(5), 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(3000, 64, generator=generator)
    labels = torch.randint(0, 2, (3000,), generator=generator)
    cpu = knn_search(x, 20, labels=labels, n_pairs=5)
    torch.backends.cuda.matmul.allow_tf32 = True  # must not leak into the search
    gpu = knn_search(x.cuda(), 20, labels=labels.cuda(), n_pairs=5)
    torch.testing.assert_close(gpu.distances.cpu(), cpu.distances, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(gpu.pair_distances.cpu(), cpu.pair_distances, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("use_queries", [False, True])
def test_blocks_spread_over_workers_give_the_one_thread_result(use_queries: bool) -> None:
    """With two torch threads the blocks and the exact recompute run on a pool of two
    single-threaded workers sharing the candidate lists: same neighbours, same pairs, same
    nearest other-labelled points as on one thread and as the brute force; the thread count is
    restored."""
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(1400, 30, generator=generator) + 3.0
    labels = torch.randint(0, 4, (1400,), generator=generator)
    queries = torch.randperm(1400, generator=generator)[:600] if use_queries else None
    # A small budget: blocks of about 100 points, dozens of them per worker.
    one, two = on_one_and_two_threads(
        lambda: knn_search(x, 9, labels=labels, n_pairs=4, queries=queries, memory_budget_mb=0.8)
    )
    _check_against_brute_force(x, 9, two, queries=queries)
    torch.testing.assert_close(two.distances, one.distances, rtol=0, atol=0)
    torch.testing.assert_close(two.pair_distances, one.pair_distances, rtol=0, atol=0)
    torch.testing.assert_close(two.other_distances, one.other_distances, rtol=0, atol=0)
    rows = torch.arange(1400) if queries is None else queries
    dist = brute_force_distances(x).masked_fill(labels[:, None] == labels[None, :], float("inf"))
    torch.testing.assert_close(two.other_distances, dist[rows].min(dim=1).values, rtol=1e-6, atol=0)


def test_re_search_of_uncertified_rows_on_two_workers_is_exact() -> None:
    """A lattice (every point has many neighbours at the same distance) with no candidate margin:
    most rows cannot be certified from their candidates and are searched again, on a pool of two
    workers with a small budget (many row ranges); the result is the brute force's, and the
    same as on one thread."""
    axes = [torch.arange(8.0)] * 3
    x = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3) + 0.5
    labels = (x.sum(dim=1) % 3).long()
    one, two = on_one_and_two_threads(
        lambda: knn_search(x, 6, labels=labels, n_pairs=3, candidate_margin=0, memory_budget_mb=0.2)
    )
    assert two.n_refined > 256, "the lattice's rows were expected to need the re-search"
    _check_against_brute_force(x, 6, two)
    torch.testing.assert_close(two.distances, one.distances, rtol=0, atol=0)
    dist = brute_force_distances(x).masked_fill(labels[:, None] == labels[None, :], float("inf"))
    torch.testing.assert_close(two.other_distances, dist.min(dim=1).values, rtol=0, atol=0)


def _overlapping_searches(x: torch.Tensor) -> dict[int, Any]:
    """``knn_search(x, 5)`` in two user threads, the second starting while the first runs."""
    start = threading.Barrier(2)
    graphs: dict[int, Any] = {}

    def search(slot: int) -> None:
        start.wait()
        time.sleep(0.01 * slot)
        graphs[slot] = knn_search(x, 5)

    workers = [threading.Thread(target=search, args=(slot,)) for slot in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return graphs


def _threads_of_a_new_thread() -> int:
    seen: list[int] = []
    fresh = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    fresh.start()
    fresh.join()
    return seen[0]


def test_searches_at_once_from_two_threads_restore_the_thread_count() -> None:
    """torch's thread count is process-wide and each search runs its calling thread on one:
    two searches overlapping in two user threads give the brute force's answer and leave the
    user's count in force afterwards, for new threads too."""
    x = torch.randn(3000, 20, generator=torch.Generator().manual_seed(3))
    with torch_threads(2):
        for _ in range(3):
            graphs = _overlapping_searches(x)
            assert torch.get_num_threads() == 2
            assert _threads_of_a_new_thread() == 2, "new threads were left on one torch thread"
            torch.testing.assert_close(graphs[0].distances, graphs[1].distances, rtol=0, atol=0)
        _check_against_brute_force(x, 5, graphs[0])
