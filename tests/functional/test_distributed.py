"""Real two-process DDP on the CPU (gloo): the sharded kNN, the one-pass estimates, the metrics.

One spawn of two workers (rendezvous through a ``FileStore`` in ``tmp_path``) runs every case;
each worker records, per case, ``"ok"`` or the traceback, and each test checks its case on both
ranks. The process group times out after 60 s and the spawn is joined with a deadline, so a
desynchronised collective fails the tests instead of hanging them.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import lightning_dataprops.functional.distributed as distributed_module
from lightning_dataprops.functional import (
    FloatClassIdsWarning,
    dataset_properties,
    intrinsic_dimension,
    label_sharpness,
)
from lightning_dataprops.functional.distributed import (
    distributed_world_size,
    shard_queries,
    sharded_knn_search,
)
from lightning_dataprops.functional.knn import knn_search
from lightning_dataprops.metrics import IntrinsicDimension, LabelSharpness
from tests.conftest import brute_force_distances

WORLD = 2
JOIN_DEADLINE_S = 150.0
N = 301  # not a multiple of the world size


@contextlib.contextmanager
def _counting_knn_calls() -> Iterator[list[int]]:
    """Record the number of queries of each neighbour search the sharded search runs."""
    calls: list[int] = []
    original = distributed_module.knn_search

    def counting(*args: object, **kwargs: object) -> object:
        queries = kwargs.get("queries")
        calls.append(-1 if queries is None else int(queries.numel()))  # type: ignore[attr-defined]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    distributed_module.knn_search = counting  # type: ignore[assignment]
    try:
        yield calls
    finally:
        distributed_module.knn_search = original


def _points(seed: int = 0, n: int = N) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=generator) @ torch.randn(5, 24, generator=generator)


def _labels(x: torch.Tensor) -> torch.Tensor:
    return (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def _with_duplicates() -> tuple[torch.Tensor, torch.Tensor]:
    x = _points(1)
    x[250:262] = x[:12]  # exact duplicates (same labels: finite K_F)
    x[280] = x[3]  # a triple
    return x, _labels(x)


def _close(a: float, b: float, rtol: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)


# ------------------------------------------------------------------------------------ cases
def _case_sharded_knn(rank: int) -> None:
    x = _points(0)
    y = _labels(x)
    for labels in (None, y):
        for k in (1, 7):
            graph = sharded_knn_search(x, k, labels=labels, n_pairs=9, memory_budget_mb=1.0)
            reference = knn_search(x, k, labels=labels, n_pairs=9)
            assert torch.equal(graph.query_indices, torch.arange(N))
            assert (graph.distances - reference.distances).abs().max() <= 1e-9
            assert torch.equal(graph.indices, reference.indices)
            if labels is None:
                assert graph.pair_first is None and graph.pair_distances is None
                continue
            assert graph.pair_first is not None and reference.pair_first is not None
            assert graph.pair_second is not None and reference.pair_second is not None
            assert graph.pair_distances is not None and reference.pair_distances is not None
            assert torch.equal(graph.pair_first, reference.pair_first)
            assert torch.equal(graph.pair_second, reference.pair_second)
            assert (graph.pair_distances - reference.pair_distances).abs().max() <= 1e-9
    # Each rank searched only its strided share of the queries.
    with _counting_knn_calls() as calls:
        sharded_knn_search(x, 3)
    assert calls == [shard_queries(N, rank, WORLD).numel()] == [151 - rank]
    # Different data or arguments on one rank: every rank raises, nobody hangs.
    with pytest.raises(ValueError, match="differ"):
        sharded_knn_search(x[: N - rank], 3)
    with pytest.raises(ValueError, match="differ"):
        sharded_knn_search(x + rank, 3)
    with pytest.raises(ValueError, match=r"neighbours need|invalid arguments"):
        sharded_knn_search(x, 3 if rank == 0 else N)
    # Still in step afterwards.
    assert torch.equal(sharded_knn_search(x, 2).indices, knn_search(x, 2).indices)


def _case_dataset_properties(rank: int) -> None:
    x, y = _with_duplicates()
    shared = dataset_properties(x, y, k=10, top_pairs=5, distributed=True)
    alone = dataset_properties(x, y, k=10, top_pairs=5)
    assert _close(shared.d_data, alone.d_data, 1e-9)
    assert _close(shared.d_data_twonn, alone.d_data_twonn, 1e-9)
    assert shared.K_F is not None and alone.K_F is not None
    assert _close(shared.K_F, alone.K_F, 1e-9)
    assert shared.duplicates.groups == alone.duplicates.groups
    assert shared.duplicates.n_duplicates == 13
    assert shared.label_sharpness_result is not None and alone.label_sharpness_result is not None
    shared_pairs = [(p.i, p.j) for p in shared.label_sharpness_result.pairs]
    assert shared_pairs == [(p.i, p.j) for p in alone.label_sharpness_result.pairs]
    for estimator in ("mle", "twonn"):
        result = intrinsic_dimension(x, estimator, k=10, distributed=True)
        assert _close(result.value, intrinsic_dimension(x, estimator, k=10).value, 1e-9)
        assert result.duplicates.groups == alone.duplicates.groups


def _case_metrics(rank: int) -> None:
    x = _points(2)
    y = _labels(x)
    half = slice(0, 150) if rank == 0 else slice(150, N)
    mle, twonn = IntrinsicDimension(k=10), IntrinsicDimension(estimator="twonn")
    sharpness = LabelSharpness(top_pairs=4)
    metrics = {"mle": mle, "twonn": twonn, "sharpness": sharpness}
    for start in range(half.start, half.stop, 40):
        batch = slice(start, min(start + 40, half.stop))
        mle.update(x[batch])
        twonn.update(x[batch].reshape(-1, 4, 6))
        sharpness.update(x[batch], y[batch])
    with _counting_knn_calls() as calls:
        values = {name: float(metric.compute()) for name, metric in metrics.items()}
    assert calls == [151 - rank] * 3  # every compute shared its neighbour search
    assert _close(values["mle"], intrinsic_dimension(x, "mle", k=10).value, 1e-6)
    assert _close(values["twonn"], intrinsic_dimension(x, "twonn").value, 1e-6)
    reference = label_sharpness(x, y, top_pairs=4)
    assert _close(values["sharpness"], reference.value, 1e-6)
    result = sharpness.last_result
    assert result is not None and result.n == N
    assert [(p.i, p.j) for p in result.pairs] == [(p.i, p.j) for p in reference.pairs]
    twonn_result = twonn.last_result
    assert twonn_result is not None and twonn_result.input_shape == (4, 6)
    # The local states are restored after the synced compute.
    assert mle.stored_rows() == half.stop - half.start

    # Reservoirs: each rank keeps at most 100 of its 150 samples; the synced estimate is the
    # one of the union of both (deterministic) reservoirs, which every rank can rebuild.
    def reservoir(part: slice) -> torch.Tensor:
        local = IntrinsicDimension(k=10, max_samples=100, seed=3)
        for start in range(part.start, part.stop, 40):
            local.update(x[start : min(start + 40, part.stop)])
        rows = local.gathered("samples")
        assert rows is not None and rows.shape[0] == 100
        return rows

    bounded = IntrinsicDimension(k=10, max_samples=100, seed=3)
    for start in range(half.start, half.stop, 40):
        bounded.update(x[start : min(start + 40, half.stop)])
    union = torch.cat([reservoir(slice(0, 150)), reservoir(slice(150, N))])
    assert _close(float(bounded.compute()), intrinsic_dimension(union, k=10).value, 1e-6)


def _case_empty_rank(rank: int) -> None:
    """One rank holds no data: its metrics never saw a row (fewer batches than ranks, or
    conditional updates). Every compute equals one process on the union; the functional
    entry points raise on every rank instead of leaving one waiting."""
    x = _points(5)
    y = _labels(x)
    partly = y.clone()
    partly[::7] = -1  # unlabelled rows: left out of K_F on the gathered reservoir too
    ages = x[:, 2].double() * 1e200  # regression targets: float64 states, extreme values
    keep = partly >= 0
    dist = brute_force_distances(x[keep])
    labelled_oracle = 1.0 / float(
        dist.masked_fill(partly[keep][:, None] == partly[keep][None, :], math.inf).min()
    )
    for holder in range(WORLD):
        mle, twonn = IntrinsicDimension(k=10), IntrinsicDimension(estimator="twonn")
        sharp, unlabelled, regression = (
            LabelSharpness(top_pairs=4),
            LabelSharpness(),
            LabelSharpness(),
        )
        if rank == holder:
            for start in range(0, N, 50):
                batch = slice(start, min(start + 50, N))
                mle.update(x[batch])
                twonn.update(x[batch].reshape(-1, 4, 6))
                sharp.update(x[batch], y[batch])
                unlabelled.update(x[batch], partly[batch])
                regression.update(x[batch], ages[batch])
        else:
            sharp.update(x[:0], y[:0])  # a conditional update that added nothing
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "compute before update", rows left out
            values = [float(m.compute()) for m in (mle, twonn, sharp, unlabelled, regression)]
        assert _close(values[0], intrinsic_dimension(x, "mle", k=10).value, 1e-6)
        assert _close(values[1], intrinsic_dimension(x, "twonn").value, 1e-6)
        reference = label_sharpness(x, y, top_pairs=4)
        assert _close(values[2], reference.value, 1e-6)
        assert sharp.last_result is not None
        assert [(p.i, p.j) for p in sharp.last_result.pairs] == [
            (p.i, p.j) for p in reference.pairs
        ]
        assert _close(values[3], labelled_oracle, 1e-6)
        assert _close(values[4], label_sharpness(x, ages).value, 1e-6)
    # float64 inputs on one rank, float32 on the other: one process on the union.
    mixed = IntrinsicDimension(k=10)
    mixed.update(x.double() if rank == 0 else x)
    union = torch.cat([x.double(), x.double()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicates: each row on both ranks
        assert _close(float(mixed.compute()), intrinsic_dimension(union, k=10).value, 1e-6)
    # No rank updated: compute raises on every rank, and the metric stays usable.
    for metric in (IntrinsicDimension(k=10), LabelSharpness()):
        for _ in range(2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "compute before update"
                with pytest.raises(ValueError, match="found no samples"):
                    metric.compute()
        metric.reset()
        args = (x,) if isinstance(metric, IntrinsicDimension) else (x, y)
        if rank == 1:
            metric.update(*args)
        expected = intrinsic_dimension(x, "mle", k=10) if not args[1:] else label_sharpness(x, y)
        assert _close(float(metric.compute()), expected.value, 1e-6)
    mine = x if rank == 0 else x[:0]
    for call in (
        lambda: dataset_properties(mine, y[: len(mine)], k=10, distributed=True),
        lambda: intrinsic_dimension(mine, k=10, distributed=True),
        lambda: sharded_knn_search(mine, 3),
    ):
        with pytest.raises(ValueError, match=r"0 sample|refused|neighbours need|invalid arg"):
            call()
    # Still in step afterwards.
    assert torch.equal(sharded_knn_search(x, 2).indices, knn_search(x, 2).indices)


def _case_findings_said_once(rank: int) -> None:
    """Every rank measures the same data; a finding is warned by rank zero alone."""
    x = _points(6)
    y = _labels(x).double()  # class ids as floats: read as regression values, said so
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset_properties(x, y, k=10, distributed=True)
    said = [w for w in caught if issubclass(w.category, FloatClassIdsWarning)]
    assert len(said) == (1 if rank == 0 else 0), [str(w.message) for w in caught]


CASES: dict[str, Callable[[int], None]] = {
    "sharded_knn": _case_sharded_knn,
    "dataset_properties": _case_dataset_properties,
    "metrics": _case_metrics,
    "empty_rank": _case_empty_rank,
    "findings_said_once": _case_findings_said_once,
}


def _worker(rank: int, world: int, store_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    store = dist.FileStore(store_path, world)
    dist.init_process_group(
        "gloo", store=store, rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    outcomes: dict[str, str] = {}
    try:
        assert distributed_world_size() == world
        for name, case in CASES.items():
            started = time.perf_counter()
            try:
                case(rank)
                outcomes[name] = "ok"
            except Exception:
                outcomes[name] = traceback.format_exc()
            outcomes[f"{name}_seconds"] = f"{time.perf_counter() - started:.2f}"
    finally:
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(outcomes))
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_outcomes(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """Run every case in two real gloo ranks; the per-rank outcomes."""
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available")
    tmp = tmp_path_factory.mktemp("ddp")
    context = mp.start_processes(
        _worker,
        args=(WORLD, str(tmp / "store"), str(tmp)),
        nprocs=WORLD,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + JOIN_DEADLINE_S
    while not context.join(timeout=max(0.1, min(5.0, deadline - time.monotonic()))):
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            pytest.fail(f"the DDP workers did not finish within {JOIN_DEADLINE_S:.0f} s")
    return [json.loads((tmp / f"rank{rank}.json").read_text()) for rank in range(WORLD)]


@pytest.mark.parametrize("rank", range(WORLD))
@pytest.mark.slow
def test_sharded_knn_matches_single_process(ddp_outcomes: list[dict[str, str]], rank: int) -> None:
    assert ddp_outcomes[rank]["sharded_knn"] == "ok", ddp_outcomes[rank]["sharded_knn"]


@pytest.mark.slow
@pytest.mark.parametrize("rank", range(WORLD))
def test_distributed_dataset_properties_match(
    ddp_outcomes: list[dict[str, str]], rank: int
) -> None:
    outcome = ddp_outcomes[rank]["dataset_properties"]
    assert outcome == "ok", outcome


@pytest.mark.slow
@pytest.mark.parametrize("rank", range(WORLD))
def test_synced_metrics_match_one_process(ddp_outcomes: list[dict[str, str]], rank: int) -> None:
    assert ddp_outcomes[rank]["metrics"] == "ok", ddp_outcomes[rank]["metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("rank", range(WORLD))
def test_a_rank_without_data_is_safe(ddp_outcomes: list[dict[str, str]], rank: int) -> None:
    assert ddp_outcomes[rank]["empty_rank"] == "ok", ddp_outcomes[rank]["empty_rank"]


@pytest.mark.slow
@pytest.mark.parametrize("rank", range(WORLD))
def test_a_finding_is_warned_by_rank_zero_alone(
    ddp_outcomes: list[dict[str, str]], rank: int
) -> None:
    outcome = ddp_outcomes[rank]["findings_said_once"]
    assert outcome == "ok", outcome


def test_without_process_group_it_is_knn_search() -> None:
    x = _points(4, n=120)
    y = _labels(x)
    assert distributed_world_size() == 1
    graph, reference = sharded_knn_search(x, 4, labels=y, n_pairs=3), knn_search(x, 4, labels=y)
    assert torch.equal(graph.distances, reference.distances)
    assert torch.equal(graph.indices, reference.indices)
    assert graph.pair_first is not None and reference.pair_first is not None
    assert torch.equal(graph.pair_first[:1], reference.pair_first)
    assert shard_queries(7, 2, 3).tolist() == [2, 5]
