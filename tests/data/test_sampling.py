"""Tests for lightning_dataprops.data.sample_dataset (items, selection, dispatch)."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

from lightning_dataprops.data import (
    Sample,
    StreamTruncatedWarning,
    UnknownTargetKeyWarning,
    sample_dataset,
)
from lightning_dataprops.data.selection import allocate_quotas
from lightning_dataprops.functional.constants import MIN_STREAM_ITEMS, STREAM_ITEMS_PER_SAMPLE

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# 600 / 300 / 100 items of classes 0 / 1 / 2, in a fixed shuffled order.
N = 1000
_perm = np.random.default_rng(123).permutation(N)
LABELS = torch.from_numpy(np.repeat(np.arange(3), [600, 300, 100])[_perm]).to(torch.int64)
INPUTS = torch.arange(N * 4, dtype=torch.float32).reshape(N, 1, 2, 2)


# --------------------------------------------------------------------------------------------------
# Helper datasets
# --------------------------------------------------------------------------------------------------


class PlainDataset(Dataset[Any]):
    """Map-style dataset without a `targets` attribute; counts reads and live inputs."""

    def __init__(self, x: Tensor, y: Tensor | None, fmt: str = "tuple") -> None:
        self.x, self.y, self.fmt = x, y, fmt
        self.reads: list[int] = []
        self.alive: list[weakref.ref[Tensor]] = []
        self.max_alive = 0

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> Any:
        self.reads.append(int(i))
        x = self.x[i].clone()  # a fresh tensor per read, tracked while alive
        self.alive = [r for r in self.alive if r() is not None]
        self.alive.append(weakref.ref(x))
        self.max_alive = max(self.max_alive, len(self.alive))
        if self.y is None:
            return x
        if self.fmt == "dict":
            return {"image": x, "label": self.y[i]}
        return x, self.y[i]


class StreamDataset(IterableDataset[Any]):
    """Iterable dataset yielding (x, y); counts live inputs."""

    def __init__(self, x: Tensor, y: Tensor | None) -> None:
        self.x, self.y = x, y
        self.alive: list[weakref.ref[Tensor]] = []
        self.max_alive = 0
        self.yielded = 0

    def __iter__(self) -> Iterator[Any]:
        for i in range(self.x.shape[0]):
            x = self.x[i].clone()
            self.alive = [r for r in self.alive if r() is not None]
            self.alive.append(weakref.ref(x))
            self.max_alive = max(self.max_alive, len(self.alive))
            self.yielded += 1
            yield x if self.y is None else (x, self.y[i])


class AttrDataset(Dataset[Any]):
    """torchvision-style dataset: `targets` list attribute, items (x, int)."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x = x
        self.targets = y.tolist()
        self.reads: list[int] = []

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        self.reads.append(int(i))
        return self.x[i], self.targets[i]


def _same(a: Sample, b: Sample) -> None:
    assert torch.equal(a.indices, b.indices)
    assert torch.equal(a.inputs, b.inputs)
    assert (a.targets is None) == (b.targets is None)
    if a.targets is not None and b.targets is not None:
        assert torch.equal(a.targets, b.targets)


# --------------------------------------------------------------------------------------------------
# Stratification, determinism, RNG
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tensor", "numpy", "tensordataset", "plain", "iterable", "attr"])
def test_stratified_proportions_are_exact(kind: str) -> None:
    sources: dict[str, Any] = {
        "tensor": (INPUTS, LABELS),
        "numpy": (INPUTS.numpy(), LABELS.numpy()),
        "tensordataset": TensorDataset(INPUTS, LABELS),
        "plain": PlainDataset(INPUTS, LABELS),
        "iterable": StreamDataset(INPUTS, LABELS),
        "attr": AttrDataset(INPUTS, LABELS),
    }
    s = sample_dataset(sources[kind], max_samples=100, seed=3)
    assert len(s) == 100
    assert s.targets is not None and s.targets.dtype == torch.int64
    assert torch.bincount(s.targets).tolist() == [60, 30, 10]
    assert s.inputs.dtype == torch.float32 and s.input_shape == (1, 2, 2)
    assert s.indices.dtype == torch.int64
    assert bool((s.indices[1:] > s.indices[:-1]).all()), "indices must increase"
    assert torch.equal(s.inputs, INPUTS[s.indices])
    assert torch.equal(s.targets, LABELS[s.indices])


def test_all_paths_choose_the_same_items() -> None:
    reference = sample_dataset(INPUTS, LABELS, max_samples=57, seed=11)
    for source in (
        TensorDataset(INPUTS, LABELS),
        PlainDataset(INPUTS, LABELS),
        PlainDataset(INPUTS, LABELS, fmt="dict"),
        StreamDataset(INPUTS, LABELS),
        AttrDataset(INPUTS, LABELS),
        DataLoader(AttrDataset(INPUTS, LABELS), batch_size=16, shuffle=True),
        DataLoader(StreamDataset(INPUTS, LABELS), batch_size=16),
    ):
        _same(sample_dataset(source, max_samples=57, seed=11), reference)


def test_quotas_largest_remainder_and_minimum_one() -> None:
    assert allocate_quotas(np.array([5, 3, 2]), 4, seed=0).tolist() == [2, 1, 1]
    assert allocate_quotas(np.array([97, 2, 1]), 10, seed=0).tolist() == [8, 1, 1]
    assert allocate_quotas(np.array([4, 4]), 100, seed=0).tolist() == [4, 4]
    fewer = allocate_quotas(np.ones(10, dtype=np.int64), 3, seed=0)
    assert fewer.sum() == 3 and set(fewer.tolist()) == {0, 1}


def test_rare_class_is_represented() -> None:
    y = torch.tensor([0] * 97 + [1] * 2 + [2])
    s = sample_dataset(torch.randn(100, 3), y, max_samples=10, seed=0)
    assert s.targets is not None
    assert torch.bincount(s.targets).tolist() == [8, 1, 1]


def test_fewer_samples_than_classes_varies_with_seed() -> None:
    y = torch.arange(10)
    picked = {
        tuple(sample_dataset(torch.randn(10, 2), y, max_samples=3, seed=s).indices.tolist())
        for s in range(6)
    }
    assert len(picked) > 1
    assert all(len(set(p)) == 3 for p in picked)


def test_determinism_and_seed_sensitivity() -> None:
    a = sample_dataset(INPUTS, LABELS, max_samples=50, seed=5)
    b = sample_dataset(INPUTS, LABELS, max_samples=50, seed=5)
    c = sample_dataset(INPUTS, LABELS, max_samples=50, seed=6)
    _same(a, b)
    assert not torch.equal(a.indices, c.indices)
    plain_a = sample_dataset(PlainDataset(INPUTS, LABELS), max_samples=50, seed=5)
    plain_c = sample_dataset(PlainDataset(INPUTS, LABELS), max_samples=50, seed=6)
    _same(plain_a, a)
    assert not torch.equal(plain_a.indices, plain_c.indices)


def test_global_rng_state_untouched() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    torch_state = torch.get_rng_state().clone()
    np_state = np.random.get_state()
    sample_dataset(INPUTS, LABELS, max_samples=30, seed=1)
    sample_dataset(PlainDataset(INPUTS, LABELS), max_samples=30, seed=1)
    sample_dataset(StreamDataset(INPUTS, None), max_samples=30, seed=1)
    sample_dataset(INPUTS, max_samples=30, seed=1, stratify=False)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]


def test_everything_in_index_order_when_max_samples_is_none_or_large() -> None:
    for max_samples in (None, N, 10 * N):
        for source in (TensorDataset(INPUTS, LABELS), PlainDataset(INPUTS, LABELS)):
            s = sample_dataset(source, max_samples=max_samples)
            assert torch.equal(s.indices, torch.arange(N))
            assert torch.equal(s.inputs, INPUTS)


def test_unstratified_sample_is_uniform_bottom_k() -> None:
    s = sample_dataset(INPUTS, LABELS, max_samples=100, seed=2, stratify=False)
    expected = np.sort(np.argsort(np.random.default_rng(2).random(N))[:100])
    assert s.indices.tolist() == expected.tolist()
    assert s.targets is not None and torch.equal(s.targets, LABELS[s.indices])


# --------------------------------------------------------------------------------------------------
# Items and targets
# --------------------------------------------------------------------------------------------------


def test_dict_items_auto_and_explicit_keys() -> None:
    items = [{"pixel_values": torch.full((3,), float(i)), "labels": i % 2} for i in range(40)]
    s = sample_dataset(items, max_samples=10, seed=0)
    assert s.targets is not None and torch.bincount(s.targets).tolist() == [5, 5]
    assert torch.equal(s.inputs[:, 0], s.indices.to(torch.float32))

    odd = [{"pix": torch.full((2,), float(i)), "kind": i % 2, "id": i} for i in range(20)]
    with pytest.raises(ValueError, match=r"dict with keys \['id', 'kind', 'pix'\].*input_key"):
        sample_dataset(odd, max_samples=5)
    s2 = sample_dataset(odd, max_samples=6, input_key="pix", target_key="kind")
    assert s2.targets is not None and torch.equal(s2.targets, s2.indices % 2)
    s3 = sample_dataset(odd, input_fn=lambda d: d["pix"], target_fn=lambda d: d["id"] % 3)
    assert s3.targets is not None and torch.equal(s3.targets, torch.arange(20) % 3)
    with pytest.raises(ValueError, match="target_key='nope'"):
        sample_dataset(odd, input_key="pix", target_key="nope")


def test_dict_without_target_is_unlabelled() -> None:
    s = sample_dataset([{"image": torch.zeros(2)} for _ in range(5)])
    assert s.targets is None and len(s) == 5


def test_tuple_items_with_extra_elements_and_positions() -> None:
    items = [(torch.full((2,), float(i)), i % 3, f"meta{i}", {"k": i}) for i in range(30)]
    s = sample_dataset(items, max_samples=9, seed=4)
    assert s.targets is not None and torch.bincount(s.targets).tolist() == [3, 3, 3]
    flipped = [(i % 2, torch.full((2,), float(i))) for i in range(10)]
    s2 = sample_dataset(flipped, input_key=1, target_key=0)
    assert s2.targets is not None and torch.equal(s2.targets, torch.arange(10) % 2)
    with pytest.raises(ValueError, match="int position"):
        sample_dataset(flipped, input_key="image")


def test_one_hot_and_probability_targets() -> None:
    one_hot = torch.nn.functional.one_hot(LABELS, 3).to(torch.float32)
    s = sample_dataset(INPUTS, one_hot, max_samples=100, seed=3)
    assert s.targets is not None and s.targets.dtype == torch.int64
    assert torch.bincount(s.targets).tolist() == [60, 30, 10]
    _same(s, sample_dataset(INPUTS, LABELS, max_samples=100, seed=3))
    # per-item int one-hot vectors through a dataset
    items = [(INPUTS[i], one_hot[i].to(torch.int64)) for i in range(N)]
    _same(sample_dataset(items, max_samples=100, seed=3), s)
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]])
    sp = sample_dataset(torch.zeros(3, 2), probs, target_type="class")
    assert sp.targets is not None and sp.targets.tolist() == [0, 2, 1]
    # without target_type="class", float vectors that are not one-hot are regression vectors
    sv = sample_dataset(torch.zeros(3, 2), probs)
    assert sv.targets is not None and torch.equal(sv.targets, probs)


def test_medmnist_style_n1_labels() -> None:
    y = LABELS.numpy().astype(np.uint8)[:, None]
    s = sample_dataset(INPUTS.numpy().astype(np.uint8), y, max_samples=100, seed=3)
    assert s.targets is not None and s.targets.shape == (100,)
    assert torch.bincount(s.targets).tolist() == [60, 30, 10]
    items = [(INPUTS[i], y[i]) for i in range(N)]  # per-item numpy arrays of shape (1,)
    s2 = sample_dataset(items, max_samples=100, seed=3)
    assert torch.equal(s2.indices, s.indices) and torch.equal(s2.targets, s.targets)  # type: ignore[arg-type]


def test_scalar_target_kinds() -> None:
    items = [
        (torch.zeros(1), 1),
        (torch.zeros(1), torch.tensor(0)),
        (torch.zeros(1), torch.tensor([2])),
        (torch.zeros(1), np.int64(1)),
        (torch.zeros(1), np.uint8(0)),
    ]
    s = sample_dataset(items)
    assert s.targets is not None and s.targets.tolist() == [1, 0, 2, 1, 0]
    assert s.targets.dtype == torch.int64


def test_whole_number_float_targets_stay_regression_unless_told() -> None:
    ages = torch.randint(20, 80, (N,), generator=torch.Generator().manual_seed(0)).float()
    for source in (
        (INPUTS, ages),
        (TensorDataset(INPUTS, ages), None),
        (PlainDataset(INPUTS, ages), None),
        (StreamDataset(INPUTS, ages), None),
    ):
        s = sample_dataset(source[0], source[1], max_samples=50, seed=2)
        assert s.targets is not None and s.targets.dtype == torch.float32
        assert torch.equal(s.targets, ages[s.indices])
        # regression targets are never stratified: the same indices as unlabelled data
        assert torch.equal(s.indices, sample_dataset(INPUTS, max_samples=50, seed=2).indices)
        c = sample_dataset(source[0], source[1], max_samples=50, seed=2, target_type="class")
        assert c.targets is not None and c.targets.dtype == torch.int64
        assert torch.equal(c.targets, ages[c.indices].long())
    with pytest.raises(ValueError, match="NaN"):
        sample_dataset(INPUTS, torch.full((N,), float("nan")))
    with pytest.raises(ValueError, match="fractional"):
        sample_dataset(INPUTS, ages + 0.5, target_type="class")


def test_regression_targets_are_kept_float_and_not_stratified() -> None:
    y = torch.linspace(0.0, 1.0, N, dtype=torch.float64) + 0.001
    s = sample_dataset(INPUTS, y, max_samples=40, seed=8)
    assert s.targets is not None and s.targets.dtype == torch.float64
    assert torch.equal(s.targets, y[s.indices])
    unstratified = sample_dataset(INPUTS, None, max_samples=40, seed=8)
    assert torch.equal(s.indices, unstratified.indices)
    # streaming: the first items look like classes, later ones reveal regression
    y_mixed = torch.cat([torch.ones(500), torch.rand(500) + 0.5])  # float dtype: regression
    s2 = sample_dataset(PlainDataset(INPUTS, y_mixed), max_samples=40, seed=8)
    assert s2.targets is not None and s2.targets.dtype == torch.float32
    assert torch.equal(s2.indices, unstratified.indices)
    multi = torch.rand(N, 2) + 0.1  # (n, t) regression
    s3 = sample_dataset(INPUTS, multi, max_samples=10)
    assert s3.targets is not None and s3.targets.shape == (10, 2)
    assert torch.equal(s3.targets, multi[s3.indices])


def test_uint8_and_bool_inputs_become_float_without_rescaling() -> None:
    x = torch.full((6, 2), 200, dtype=torch.uint8)
    s = sample_dataset(x)
    assert s.inputs.dtype == torch.float32 and float(s.inputs.max()) == 200.0
    sb = sample_dataset([torch.tensor([True, False])] * 3)
    assert sb.inputs.tolist() == [[1.0, 0.0]] * 3 and sb.targets is None


def test_pil_items_are_converted_to_chw() -> None:
    image_module = pytest.importorskip("PIL.Image")
    rgb = image_module.new("RGB", (5, 3), (10, 20, 30))
    s = sample_dataset([(rgb, 0), (rgb, 1)])
    assert s.input_shape == (3, 3, 5)
    assert s.inputs[0, :, 0, 0].tolist() == [10.0, 20.0, 30.0]


# --------------------------------------------------------------------------------------------------
# Streaming: memory bound and single reads
# --------------------------------------------------------------------------------------------------


def test_general_map_dataset_reads_once_and_stays_bounded() -> None:
    ds = PlainDataset(INPUTS, LABELS)
    s = sample_dataset(ds, max_samples=12, seed=0)
    assert sorted(ds.reads) == list(range(N)), "every item read exactly once"
    assert ds.max_alive <= 12 * 3 + 2, f"{ds.max_alive} items alive at once"
    assert s.targets is not None and torch.bincount(s.targets).tolist() == [7, 4, 1]


def test_iterable_dataset_stays_bounded() -> None:
    ds = StreamDataset(INPUTS, LABELS)
    s = sample_dataset(ds, max_samples=12, seed=0)
    assert ds.yielded == N
    assert ds.max_alive <= 12 * 3 + 2, f"{ds.max_alive} items alive at once"
    assert s.targets is not None and torch.bincount(s.targets).tolist() == [7, 4, 1]
    assert torch.equal(s.inputs, INPUTS[s.indices])


def test_unlabelled_map_dataset_loads_only_the_sample() -> None:
    ds = PlainDataset(INPUTS, None)
    s = sample_dataset(ds, max_samples=20, seed=0)
    assert s.targets is None
    # item 0 is peeked at (to learn that items are unlabelled), then only the sample is loaded
    assert ds.reads == [0, *s.indices.tolist()]
    assert torch.equal(s.inputs, INPUTS[s.indices])


def test_targets_attribute_fast_path_loads_only_the_sample() -> None:
    ds = AttrDataset(INPUTS, LABELS)
    s = sample_dataset(ds, max_samples=30, seed=0, progress=True)
    assert sorted(ds.reads) == s.indices.tolist()
    sub_indices = list(range(0, N, 2))
    sub = Subset(AttrDataset(INPUTS, LABELS), sub_indices)
    ss = sample_dataset(sub, max_samples=30, seed=0)
    ref = sample_dataset(INPUTS[::2], LABELS[::2], max_samples=30, seed=0)
    _same(ss, ref)
    assert len(sub.dataset.reads) == 30  # type: ignore[attr-defined]


def test_subset_of_tensor_dataset() -> None:
    sub = Subset(
        Subset(TensorDataset(INPUTS, LABELS), list(range(100, 900))), list(range(0, 800, 3))
    )
    expected_rows = torch.arange(100, 900)[torch.arange(0, 800, 3)]
    ref = sample_dataset(INPUTS[expected_rows], LABELS[expected_rows], max_samples=25, seed=9)
    _same(sample_dataset(sub, max_samples=25, seed=9), ref)


def test_dataloader_is_not_iterated_for_map_datasets() -> None:
    ds = PlainDataset(INPUTS, LABELS)
    loader = DataLoader(ds, batch_size=32, shuffle=True)
    s = sample_dataset(loader, max_samples=40, seed=1)
    _same(s, sample_dataset(PlainDataset(INPUTS, LABELS), max_samples=40, seed=1))
    assert sorted(ds.reads) == list(range(N))  # one ordered pass, not the loader's shuffled order
    assert ds.reads == list(range(N))


def test_dataloader_over_iterable_with_dict_batches() -> None:
    class DictStream(IterableDataset[dict[str, Tensor]]):
        def __iter__(self) -> Iterator[dict[str, Tensor]]:
            for i in range(N):
                yield {"image": INPUTS[i], "label": LABELS[i]}

    s = sample_dataset(DataLoader(DictStream(), batch_size=64), max_samples=50, seed=2)
    _same(s, sample_dataset(INPUTS, LABELS, max_samples=50, seed=2))
    s_unbatched = sample_dataset(DataLoader(DictStream(), batch_size=None), max_samples=50, seed=2)
    _same(s_unbatched, s)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def test_error_empty_sources() -> None:
    with pytest.raises(ValueError, match="empty"):
        sample_dataset(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="empty"):
        sample_dataset(PlainDataset(torch.zeros(0, 3), None))
    with pytest.raises(ValueError, match="empty"):
        sample_dataset(StreamDataset(torch.zeros(0, 3), None))


@pytest.mark.parametrize("bad", [0, -3])
def test_error_max_samples_not_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_samples must be a positive int"):
        sample_dataset(INPUTS, LABELS, max_samples=bad)


def test_error_max_samples_type() -> None:
    with pytest.raises(TypeError, match="max_samples"):
        sample_dataset(INPUTS, max_samples=2.5)  # type: ignore[arg-type]


def test_error_inconsistent_input_shapes() -> None:
    items = [(torch.zeros(3), 0), (torch.zeros(3), 1), (torch.zeros(4), 0)]
    with pytest.raises(ValueError, match=r"item 0 has shape \(3,\) but item 2 has shape \(4,\)"):
        sample_dataset(items)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        sample_dataset(iter(items))


def test_error_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="1000 samples"):
        sample_dataset(INPUTS, LABELS[:10])
    with pytest.raises(ValueError, match="mismatched"):
        sample_dataset((INPUTS.numpy(), LABELS.numpy()[:-1]))


def test_error_require_targets_on_unlabelled() -> None:
    for source in (
        INPUTS,
        PlainDataset(INPUTS, None),
        StreamDataset(INPUTS, None),
        TensorDataset(INPUTS),
    ):
        with pytest.raises(ValueError, match="require_targets=True"):
            sample_dataset(source, max_samples=10, require_targets=True)


def test_error_undetectable_items_and_targets() -> None:
    class Thing:
        pass

    with pytest.raises(ValueError, match=r"Thing.*input_fn"):
        sample_dataset([Thing(), Thing()])
    with pytest.raises(TypeError, match="string"):
        sample_dataset([(torch.zeros(2), "cat"), (torch.zeros(2), "dog")])
    with pytest.raises(ValueError, match="Inconsistent target shapes"):
        sample_dataset([(torch.zeros(2), 1), (torch.zeros(2), torch.tensor([0.2, 0.3, 0.5]))])
    with pytest.raises(ValueError, match="has a target but item 1 has none"):
        sample_dataset([{"x": torch.zeros(2), "y": 1}, {"x": torch.zeros(2)}])
    with pytest.raises(ValueError, match="only one"):
        sample_dataset((INPUTS, LABELS), LABELS)
    with pytest.raises(ValueError, match="targets= is only for tensor"):
        sample_dataset(PlainDataset(INPUTS, LABELS), LABELS)
    with pytest.raises(TypeError, match="Cannot sample from a int"):
        sample_dataset(3)


# --------------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------------


def test_real_pneumoniamnist_sample() -> None:
    path = DATA_DIR / "medmnist" / "pneumoniamnist.npz"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data is absent in a fresh clone)")
    with np.load(path) as archive:
        x, y = archive["train_images"], archive["train_labels"]
    s = sample_dataset(x, y, max_samples=290, seed=0)
    assert s.input_shape == (28, 28) and s.targets is not None
    # 388 normal / 3494 pneumonia -> 29 / 261 of 290
    assert torch.bincount(s.targets).tolist() == [29, 261]
    assert float(s.inputs.max()) > 1.0  # no rescaling


class InfiniteStream(IterableDataset[Any]):
    """An endless stream (a standard pattern trained with max_steps); counts what it yielded."""

    def __init__(self) -> None:
        self.yielded = 0

    def __iter__(self) -> Iterator[Any]:
        g = torch.Generator().manual_seed(0)
        while True:
            self.yielded += 1
            yield torch.randn(3, generator=g), self.yielded % 2


class SizedStream(StreamDataset):
    def __len__(self) -> int:
        return int(self.x.shape[0])


def test_infinite_stream_is_read_a_bounded_number_of_items() -> None:
    stream = InfiniteStream()
    with pytest.warns(StreamTruncatedWarning, match="max_stream_items=500"):
        s = sample_dataset(stream, max_samples=20, max_stream_items=500)
    assert stream.yielded == 501  # one look past the bound tells it did not end
    assert len(s) == 20 and int(s.indices.max()) < 500
    assert s.n_source is None and s.n_source_how == "unknown"
    # the default bound: 20 x max_samples, at least MIN_STREAM_ITEMS
    stream = InfiniteStream()
    with pytest.warns(StreamTruncatedWarning):
        sample_dataset(stream, max_samples=1000)
    assert stream.yielded == max(STREAM_ITEMS_PER_SAMPLE * 1000, MIN_STREAM_ITEMS) + 1
    loader_stream = InfiniteStream()
    with pytest.warns(StreamTruncatedWarning):
        s2 = sample_dataset(
            DataLoader(loader_stream, batch_size=8), max_samples=5, max_stream_items=64
        )
    assert len(s2) == 5 and s2.n_source_how == "unknown"
    assert loader_stream.yielded <= 64 + 8


def test_dataset_size_says_how_it_was_obtained() -> None:
    counted = sample_dataset(StreamDataset(INPUTS, LABELS), max_samples=10)
    assert (counted.n_source, counted.n_source_how) == (N, "counted")
    sized = sample_dataset(SizedStream(INPUTS, LABELS), max_samples=10)
    assert (sized.n_source, sized.n_source_how) == (N, "len")
    for source in (PlainDataset(INPUTS, LABELS), TensorDataset(INPUTS, LABELS), INPUTS):
        s = sample_dataset(source, max_samples=10)
        assert (s.n_source, s.n_source_how) == (N, "len")
    sub = sample_dataset(Subset(TensorDataset(INPUTS, LABELS), list(range(0, N, 2))), max_samples=7)
    assert (sub.n_source, sub.n_source_how) == (N // 2, "len")


def test_unknown_target_key_is_not_silently_unlabelled() -> None:
    items = [{"image": torch.full((2,), float(i)), "diagnosis": i % 2} for i in range(20)]
    with pytest.warns(UnknownTargetKeyWarning, match=r"diagnosis.*target_key='diagnosis'"):
        s = sample_dataset(items, max_samples=6)
    assert s.targets is None
    labelled = sample_dataset(items, max_samples=6, target_key="diagnosis")
    assert labelled.targets is not None and torch.equal(labelled.targets, labelled.indices % 2)
    with pytest.warns(UnknownTargetKeyWarning), pytest.raises(ValueError, match="target_key="):
        sample_dataset(items, require_targets=True)
