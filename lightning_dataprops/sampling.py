"""Seeded, class-stratified samples of (inputs, targets) from datasets, loaders, tensors or arrays.

:func:`sample_dataset` turns a :class:`~torch.utils.data.Dataset`, a
:class:`~torch.utils.data.DataLoader`, tensors or numpy arrays into a :class:`Sample`: a fixed,
reproducible subset of the data, stratified by class when the targets are class labels.

It streams: the whole dataset is never materialised. When the labels are known upfront (tensors,
arrays, ``TensorDataset``, datasets with a ``targets`` or ``labels`` attribute such as
torchvision's, ``Subset`` of those) the indices are chosen from the labels alone and only the
chosen items are loaded. Otherwise one pass over the items keeps, for every class, the
``max_samples`` items with the smallest random priority (bottom-k priority sampling), so memory
stays bounded by ``max_samples * n_classes`` items.

Selection rule (identical on every path, so a ``TensorDataset`` and a plain ``Dataset`` wrapping the
same data give the same sample): item ``i`` gets priority ``u_i``, the ``i``-th draw of
``numpy.random.default_rng(seed)``; class ``c`` gets a quota ``q_c`` proportional to its frequency
(largest-remainder rounding, every class at least one item when ``max_samples >= n_classes``); the
``q_c`` items of class ``c`` with the smallest priorities are kept. Without stratification (no
targets, regression targets, ``stratify=False``) the ``max_samples`` smallest priorities overall are
kept. The global random state of torch and numpy is never touched.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, Subset, TensorDataset

__all__ = ["Sample", "read_first_item", "sample_dataset"]

INPUT_KEYS: tuple[str, ...] = (
    "image",
    "images",
    "input",
    "inputs",
    "x",
    "data",
    "pixel_values",
    "img",
)
"""Dict keys searched, in order, for the input when ``input_key`` is not given."""

TARGET_KEYS: tuple[str, ...] = ("label", "labels", "target", "targets", "y", "class", "cls")
"""Dict keys searched, in order, for the target when ``target_key`` is not given."""

_PRIORITY_BLOCK = 4096
_PROB_ATOL = 1e-4


@dataclass(frozen=True)
class Sample:
    """A fixed sample of a data source.

    Attributes:
        inputs: ``(n, *input_shape)`` float32 inputs (integer and bool inputs are converted to
            float32 without rescaling), on the CPU, in increasing order of source index.
        targets: ``(n,)`` int64 class ids, or ``(n,)`` / ``(n, t)`` floating regression targets;
            ``None`` when the source has no targets.
        indices: ``(n,)`` int64 positions of the items in the source (dataset index, or running item
            position for iterable sources), increasing.

    Example:
        >>> import torch
        >>> s = sample_dataset(torch.zeros(10, 3, 4, 4), torch.arange(10) % 2, max_samples=4)
        >>> s.input_shape, len(s), sorted(s.targets.tolist())
        ((3, 4, 4), 4, [0, 0, 1, 1])
    """

    inputs: Tensor
    targets: Tensor | None
    indices: Tensor

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (without the sample dimension)."""
        return tuple(int(s) for s in self.inputs.shape[1:])

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


class _Missing:
    """Marker for "this item has no target"."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _describe_value(value: Any) -> str:
    """Short description of one value: ``Tensor(3, 28, 28) uint8``, ``int``..."""
    if isinstance(value, Tensor):
        return f"Tensor{tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape} {value.dtype}"
    return type(value).__name__


def _describe_item(item: Any) -> str:
    """Describe what an item is, for error messages."""
    if isinstance(item, Mapping):
        return f"a {type(item).__name__} with keys {sorted(map(str, item.keys()))}"
    if isinstance(item, (tuple, list)):
        parts = ", ".join(_describe_value(v) for v in item[:6])
        more = ", ..." if len(item) > 6 else ""
        return f"a {type(item).__name__} of {len(item)} element(s) ({parts}{more})"
    return f"a {_describe_value(item)}"


def _is_pil_image(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("PIL.") and hasattr(value, "mode") and hasattr(value, "size")


def _input_to_tensor(value: Any, index: int) -> Tensor:
    """Convert one item's input to a tensor (dtype kept; converted to float32 later)."""
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        if value.dtype == object or value.dtype.kind in "USV":
            raise TypeError(
                f"Item {index}: the input is a numpy array of dtype {value.dtype}; it must be "
                "numeric. Pass input_fn= to convert it."
            )
        return torch.from_numpy(np.array(value, copy=True))
    if _is_pil_image(value):
        array = np.array(value)
        tensor = torch.from_numpy(array)
        # Same layout as torchvision's PILToTensor: (C, H, W), values not rescaled.
        return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
    if isinstance(value, (int, float, bool, np.number, list, tuple)):
        try:
            return torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Item {index}: the input ({_describe_value(value)}) cannot be converted to a "
                f"tensor ({error}); pass input_fn= returning a tensor."
            ) from error
    raise TypeError(
        f"Item {index}: the input is {_describe_item(value)}, not a tensor, numpy array or PIL "
        "image; pass input_fn= (item -> tensor) or input_key= to select it."
    )


def _target_to_tensor(value: Any, index: int) -> Tensor:
    """Convert one item's target to a 0-d or 1-d tensor (shape (1,) is ravelled)."""
    if isinstance(value, Tensor):
        tensor = value.detach().cpu()
    elif isinstance(value, (bool, int, float, np.number, np.bool_)):
        tensor = torch.as_tensor(np.asarray(value))
    elif isinstance(value, (np.ndarray, list, tuple)):
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind in "USV":
            raise TypeError(
                f"Item {index}: the target ({_describe_value(value)}) is not numeric; pass "
                "target_fn= mapping it to a class id or a float."
            )
        tensor = torch.from_numpy(array.copy())
    elif isinstance(value, str):
        raise TypeError(
            f"Item {index}: the target is a string ({value!r}); pass target_fn= mapping it to an "
            "integer class id."
        )
    else:
        raise TypeError(
            f"Item {index}: the target is {_describe_item(value)}; pass target_fn= returning an "
            "int class id, a float or a 1-d tensor."
        )
    if tensor.is_complex():
        raise TypeError(f"Item {index}: the target is complex ({tensor.dtype}).")
    if tensor.ndim >= 1 and tensor.numel() == 1:
        tensor = tensor.reshape(())
    if tensor.ndim > 1:
        raise ValueError(
            f"Item {index}: the target has shape {tuple(tensor.shape)}; targets must be a class "
            "id, a one-hot / probability vector or a regression vector. Pass target_fn= to "
            "reduce it."
        )
    return tensor


def _class_key(target: Tensor) -> int | None:
    """Class id of one normalised target, or None when it is not a class label."""
    if target.ndim == 0:
        if not target.is_floating_point():
            return int(target)
        value = float(target)
        if np.isfinite(value) and value == int(value):
            return int(value)
        return None
    if target.numel() < 2:
        return None
    values = target.to(torch.float64)
    if bool((values >= 0).all()) and abs(float(values.sum()) - 1.0) <= _PROB_ATOL:
        return int(values.argmax())
    return None


def _regression_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _bulk_targets_to_tensor(value: Any, name: str) -> Tensor:
    """Convert a whole target collection (tensor, array, list) to a CPU tensor."""
    if isinstance(value, Tensor):
        return value.detach().cpu()
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(
            f"{name} are not numeric (dtype {array.dtype}); map them to integer class ids first."
        )
    return torch.from_numpy(np.array(array, copy=True))


def _normalize_targets(targets: Tensor, n: int, name: str = "targets") -> tuple[Tensor, bool]:
    """Normalise a stack of targets.

    Returns ``(targets, is_class)``: int64 ``(n,)`` class ids when the targets are class labels
    (integers, integral floats, one-hot or probability vectors), else floating regression targets.
    """
    if targets.ndim == 0:
        raise ValueError(f"{name} is a scalar; pass one target per sample (shape (n,)).")
    if targets.shape[0] != n:
        raise ValueError(
            f"{name} has {targets.shape[0]} entries but there are {n} inputs; pass one target per "
            "input (mismatched lengths)."
        )
    if targets.is_complex():
        raise TypeError(f"{name} are complex ({targets.dtype}); pass real class ids or values.")
    if targets.ndim == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if targets.ndim == 1:
        if not targets.is_floating_point():
            return targets.to(torch.int64), True
        finite = torch.isfinite(targets)
        if bool(finite.all()) and bool((targets == targets.round()).all()):
            return targets.to(torch.int64), True
        return targets.to(_regression_dtype(targets.dtype)), False
    if targets.ndim == 2:
        values = targets.to(torch.float64)
        if (
            targets.shape[0] > 0
            and bool((values >= 0).all())
            and bool(((values.sum(dim=1) - 1.0).abs() <= _PROB_ATOL).all())
        ):
            return values.argmax(dim=1).to(torch.int64), True
        return targets.to(_regression_dtype(targets.dtype)), False
    raise ValueError(
        f"{name} has shape {tuple(targets.shape)}; expected (n,) class ids or values, (n, 1), or "
        "(n, C) one-hot / probability / regression vectors. Pass target_fn= to reduce them."
    )


def _check_max_samples(max_samples: int | None) -> None:
    if max_samples is None:
        return
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)):
        raise TypeError(f"max_samples must be an int or None, got {type(max_samples).__name__}.")
    if max_samples <= 0:
        raise ValueError(
            f"max_samples must be a positive int (or None for all items), got {max_samples}."
        )


def _allocate_quotas(counts: np.ndarray, m: int, seed: int) -> np.ndarray:
    """Per-class quotas proportional to ``counts`` that sum to ``min(m, counts.sum())``.

    Largest-remainder rounding in exact integer arithmetic; ties broken by larger class, then by a
    seeded random order. When ``m >= n_classes`` every class gets at least one item.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if m >= total:
        return np.array(counts, copy=True)
    n_classes = counts.shape[0]
    scaled = m * counts
    quotas = scaled // total
    remainders = scaled % total
    short = m - int(quotas.sum())
    tie = np.asarray(np.random.default_rng([seed, 1]).random(n_classes))
    order = np.lexsort((tie, -counts, -remainders))  # last key is the primary one
    quotas[order[:short]] += 1
    if m >= n_classes:
        for c in np.flatnonzero(quotas == 0):
            donors = np.flatnonzero(quotas > 1)
            surplus = quotas[donors] * total - scaled[donors]
            best = donors[np.lexsort((-quotas[donors], -surplus))[0]]
            quotas[best] -= 1
            quotas[c] = 1
    return quotas


def _select_indices(
    n: int, class_ids: Tensor | None, max_samples: int | None, stratify: bool, seed: int
) -> np.ndarray:
    """Sorted indices chosen from ``n`` items whose class ids (if any) are known upfront."""
    if max_samples is None or max_samples >= n:
        return np.arange(n, dtype=np.int64)
    priorities = np.random.default_rng(seed).random(n)
    if class_ids is None or not stratify:
        chosen = np.argpartition(priorities, max_samples - 1)[:max_samples]
        return np.sort(chosen).astype(np.int64)
    labels = class_ids.numpy()
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quotas = _allocate_quotas(counts, max_samples, seed)
    picked: list[np.ndarray] = []
    for c in range(classes.shape[0]):
        if quotas[c] == 0:
            continue
        members = np.flatnonzero(inverse == c)
        order = np.argsort(priorities[members], kind="stable")[: quotas[c]]
        picked.append(members[order])
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _progress(items: Iterable[Any], enabled: bool, total: int | None, desc: str) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    bar: Iterable[Any] = tqdm(items, total=total, desc=desc, leave=False, dynamic_ncols=True)
    return bar


def _own(tensor: Tensor) -> Tensor:
    """Copy a tensor that views a larger storage (a batch, a big array) so it can be kept alone."""
    if tensor.untyped_storage().nbytes() > tensor.numel() * tensor.element_size():
        return tensor.clone()
    return tensor


def _stack_inputs(inputs: Sequence[Tensor], indices: Sequence[int]) -> Tensor:
    if not inputs:
        raise ValueError("No items were selected.")
    _check_shapes(inputs, indices)
    return torch.stack([x.cpu() for x in inputs]).to(torch.float32)


def _check_shapes(inputs: Sequence[Tensor], indices: Sequence[int]) -> None:
    first = inputs[0].shape
    for x, i in zip(inputs, indices, strict=True):
        if x.shape != first:
            raise ValueError(
                f"Inputs have inconsistent shapes: item {indices[0]} has shape {tuple(first)} but "
                f"item {i} has shape {tuple(x.shape)}. Resize or crop them to one shape (e.g. in "
                "the dataset's transform) or pass input_fn= doing so."
            )


# --------------------------------------------------------------------------------------------------
# Reading items
# --------------------------------------------------------------------------------------------------


class _ItemReader:
    """Extracts (input, target) from one item following the keys / callables given."""

    def __init__(
        self,
        input_key: str | int | None,
        target_key: str | int | None,
        input_fn: Callable[[Any], Any] | None,
        target_fn: Callable[[Any], Any] | None,
    ) -> None:
        self.input_key = input_key
        self.target_key = target_key
        self.input_fn = input_fn
        self.target_fn = target_fn

    def raw_input(self, item: Any, index: int) -> Any:
        if self.input_fn is not None:
            return self.input_fn(item)
        key = self.input_key
        if isinstance(item, Mapping):
            if key is not None:
                if key not in item:
                    raise ValueError(
                        f"Item {index} is {_describe_item(item)}: input_key={key!r} is not one "
                        "of its keys."
                    )
                return item[key]
            for candidate in INPUT_KEYS:
                if candidate in item:
                    return item[candidate]
            raise ValueError(
                f"Cannot find the input in item {index}: it is {_describe_item(item)} and none of "
                f"{list(INPUT_KEYS)} is a key. Pass input_key='...' (or input_fn=)."
            )
        if isinstance(item, (tuple, list)):
            position = 0 if key is None else key
            if not isinstance(position, int):
                raise ValueError(
                    f"Item {index} is {_describe_item(item)}: input_key must be an int position "
                    f"for tuple items, got {key!r}."
                )
            if not -len(item) <= position < len(item):
                raise ValueError(
                    f"Item {index} is {_describe_item(item)}: input_key={position} is out of range."
                )
            return item[position]
        if isinstance(item, (Tensor, np.ndarray)) or _is_pil_image(item):
            if key is not None:
                raise ValueError(
                    f"Item {index} is {_describe_item(item)}, so input_key={key!r} cannot apply; "
                    "drop input_key (the item is the input) or pass input_fn=."
                )
            return item
        raise ValueError(
            f"Cannot find the input in item {index}: it is {_describe_item(item)}. Pass "
            "input_fn= (item -> tensor)."
        )

    def raw_target(self, item: Any, index: int) -> Any:
        if self.target_fn is not None:
            return self.target_fn(item)
        key = self.target_key
        if isinstance(item, Mapping):
            if key is not None:
                if key not in item:
                    raise ValueError(
                        f"Item {index} is {_describe_item(item)}: target_key={key!r} is not one "
                        "of its keys."
                    )
                return item[key]
            for candidate in TARGET_KEYS:
                if candidate in item:
                    return item[candidate]
            return _MISSING
        if isinstance(item, (tuple, list)):
            if key is None:
                position = 1
                if self.input_key == 1:
                    position = 0
                return item[position] if len(item) >= 2 else _MISSING
            if not isinstance(key, int):
                raise ValueError(
                    f"Item {index} is {_describe_item(item)}: target_key must be an int position "
                    f"for tuple items, got {key!r}."
                )
            if not -len(item) <= key < len(item):
                raise ValueError(
                    f"Item {index} is {_describe_item(item)}: target_key={key} is out of range."
                )
            return item[key]
        if key is not None:
            raise ValueError(
                f"Item {index} is {_describe_item(item)}, which holds no target, so "
                f"target_key={key!r} cannot apply; pass target_fn= or drop target_key."
            )
        return _MISSING

    def input(self, item: Any, index: int) -> Tensor:
        return _input_to_tensor(self.raw_input(item, index), index)

    def read(self, item: Any, index: int) -> tuple[Tensor, Tensor | None]:
        x = self.input(item, index)
        raw_y = self.raw_target(item, index)
        y = None if raw_y is _MISSING or raw_y is None else _target_to_tensor(raw_y, index)
        return x, y


# --------------------------------------------------------------------------------------------------
# Streaming sampler (general map-style datasets, iterables)
# --------------------------------------------------------------------------------------------------


class _PriorityStream:
    """The i-th call returns the i-th draw of ``default_rng(seed).random()`` (drawn in blocks)."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._block = np.empty(0)
        self._pos = 0

    def next(self) -> float:
        if self._pos >= self._block.shape[0]:
            self._block = self._rng.random(_PRIORITY_BLOCK)
            self._pos = 0
        value = float(self._block[self._pos])
        self._pos += 1
        return value


_Entry = tuple[float, int, Tensor, Tensor | None]  # (-priority, index, input, target)


class _StreamSampler:
    """Bottom-k priority sampling per class over a stream of (index, input, target)."""

    def __init__(self, max_samples: int | None, stratify: bool, seed: int) -> None:
        self.max_samples = max_samples
        self.stratify = stratify
        self.seed = seed
        self.priorities = _PriorityStream(seed)
        self.heaps: dict[int | None, list[_Entry]] = {}
        self.counts: dict[int, int] = {}
        self.n_seen = 0
        self.class_mode = True  # all targets so far are class labels
        self.labelled: bool | None = None
        self.first_index = -1
        self.first_shape: torch.Size | None = None
        self.first_target_shape: torch.Size | None = None

    def _check(self, index: int, x: Tensor, y: Tensor | None) -> None:
        if self.first_shape is None:
            self.first_index, self.first_shape = index, x.shape
            self.labelled = y is not None
            self.first_target_shape = None if y is None else y.shape
            return
        if x.shape != self.first_shape:
            raise ValueError(
                f"Inputs have inconsistent shapes: item {self.first_index} has shape "
                f"{tuple(self.first_shape)} but item {index} has shape {tuple(x.shape)}. Resize or "
                "crop them to one shape (e.g. in the dataset's transform) or pass input_fn=."
            )
        if (y is not None) != self.labelled:
            has, lacks = (self.first_index, index) if self.labelled else (index, self.first_index)
            raise ValueError(
                f"Inconsistent targets: item {has} has a target but item {lacks} has none. Pass "
                "target_fn= or target_key= to read the targets consistently."
            )
        if y is not None and y.shape != self.first_target_shape:
            raise ValueError(
                f"Inconsistent target shapes: item {self.first_index} has a target of shape "
                f"{tuple(self.first_target_shape or ())} but item {index} has shape "
                f"{tuple(y.shape)}. Pass target_fn= returning one kind of target."
            )

    def _push(self, key: int | None, entry: _Entry) -> None:
        heap = self.heaps.setdefault(key, [])
        if self.max_samples is None or len(heap) < self.max_samples:
            heapq.heappush(heap, (entry[0], entry[1], _own(entry[2]), _own_target(entry[3])))
        elif entry[0] > heap[0][0]:  # smaller priority than the largest kept one
            heapq.heapreplace(heap, (entry[0], entry[1], _own(entry[2]), _own_target(entry[3])))

    def _merge_to_single(self) -> None:
        entries = [e for heap in self.heaps.values() for e in heap]
        if self.max_samples is not None:
            entries = heapq.nlargest(self.max_samples, entries, key=lambda e: e[0])
        heapq.heapify(entries)
        self.heaps = {None: entries}

    def add(self, index: int, x: Tensor, y: Tensor | None) -> None:
        self._check(index, x, y)
        priority = self.priorities.next()
        self.n_seen += 1
        key: int | None = None
        if y is not None and self.class_mode:
            key = _class_key(y)
            if key is None:
                self.class_mode = False
                if self.stratify:
                    self._merge_to_single()
            else:
                self.counts[key] = self.counts.get(key, 0) + 1
        if not (self.stratify and self.class_mode and y is not None):
            key = None
        self._push(key, (-priority, index, x, y))

    def finish(self) -> Sample:
        if self.n_seen == 0:
            raise ValueError("The data source is empty: it yielded no items.")
        m = self.max_samples
        stratified = self.stratify and self.class_mode and bool(self.labelled)
        chosen: list[_Entry] = []
        if stratified and m is not None and m < self.n_seen:
            classes = sorted(self.counts)
            counts = np.array([self.counts[c] for c in classes], dtype=np.int64)
            quotas = _allocate_quotas(counts, m, self.seed)
            for c, q in zip(classes, quotas.tolist(), strict=True):
                if q > 0:
                    chosen.extend(heapq.nlargest(q, self.heaps[c], key=lambda e: e[0]))
        else:
            chosen = [e for heap in self.heaps.values() for e in heap]
        chosen.sort(key=lambda e: e[1])
        indices = [e[1] for e in chosen]
        inputs = _stack_inputs([e[2] for e in chosen], indices)
        targets: Tensor | None = None
        if self.labelled:
            raw = [e[3] for e in chosen]
            if self.class_mode:
                targets = torch.tensor(
                    [_class_key(t) for t in raw if t is not None], dtype=torch.int64
                )
            else:
                stacked = torch.stack([t for t in raw if t is not None])
                targets = stacked.to(_regression_dtype(stacked.dtype))
        return Sample(inputs, targets, torch.tensor(indices, dtype=torch.int64))


def _own_target(y: Tensor | None) -> Tensor | None:
    return None if y is None else _own(y)


# --------------------------------------------------------------------------------------------------
# Dataset structure helpers
# --------------------------------------------------------------------------------------------------


def _tensor_dataset_view(
    dataset: Any, input_key: str | int | None, target_key: str | int | None
) -> tuple[Tensor, Tensor | None, np.ndarray | None] | None:
    """``(inputs, targets, index_map)`` for a TensorDataset or a (nested) Subset of one."""
    if isinstance(dataset, TensorDataset):
        for name, key in (("input_key", input_key), ("target_key", target_key)):
            if key is not None and not isinstance(key, int):
                raise ValueError(
                    f"TensorDataset items are tuples of {len(dataset.tensors)} tensors: {name} "
                    f"must be an int position, got {key!r}."
                )
        tensors = dataset.tensors
        xi = 0 if input_key is None else int(input_key)
        if not -len(tensors) <= xi < len(tensors):
            raise ValueError(
                f"input_key={xi} is out of range for a TensorDataset of {len(tensors)} tensors."
            )
        if target_key is None:
            yi: int | None = (0 if xi == 1 else 1) if len(tensors) >= 2 else None
        else:
            yi = int(target_key)
            if not -len(tensors) <= yi < len(tensors):
                raise ValueError(
                    f"target_key={yi} is out of range for a TensorDataset of {len(tensors)} "
                    "tensors."
                )
        return tensors[xi], None if yi is None else tensors[yi], None
    if isinstance(dataset, Subset):
        inner = _tensor_dataset_view(dataset.dataset, input_key, target_key)
        if inner is None:
            return None
        x, y, index_map = inner
        sub = np.asarray(list(dataset.indices), dtype=np.int64)
        return x, y, sub if index_map is None else index_map[sub]
    return None


def _targets_attribute(dataset: Any) -> Tensor | None:
    """The dataset's ``targets`` / ``labels`` attribute as a tensor of length ``len(dataset)``."""
    if isinstance(dataset, Subset):
        base = _targets_attribute(dataset.dataset)
        if base is None:
            return None
        sub = torch.as_tensor(np.asarray(list(dataset.indices), dtype=np.int64))
        return base[sub]
    for name in ("targets", "labels"):
        value = getattr(dataset, name, None)
        if value is None or callable(value):
            continue
        try:
            tensor = _bulk_targets_to_tensor(value, name)
            n = len(dataset)
        except (TypeError, ValueError):
            continue
        if tensor.ndim >= 1 and tensor.shape[0] == n:
            return tensor
    return None


def _unbind_batch(batch: Any) -> list[Any]:
    """Split a collated batch back into items."""
    if isinstance(batch, Tensor):
        if batch.ndim == 0:
            raise ValueError("Cannot split a 0-d tensor batch into items.")
        return list(batch.unbind(0))
    if isinstance(batch, np.ndarray):
        return list(batch)
    if isinstance(batch, Mapping):
        keys = list(batch.keys())
        columns = [_unbind_batch(batch[k]) for k in keys]
        _check_batch_columns(columns, keys)
        return [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]
    if isinstance(batch, (tuple, list)):
        columns = [
            _unbind_batch(v)
            if isinstance(v, (Tensor, np.ndarray, Mapping, tuple, list))
            else _not_splittable(v)
            for v in batch
        ]
        _check_batch_columns(columns, list(range(len(columns))))
        return [tuple(values) for values in zip(*columns, strict=True)]
    return _not_splittable(batch)


def _not_splittable(value: Any) -> NoReturn:
    raise TypeError(
        f"Cannot split a batch element of type {type(value).__name__} into items; make the "
        "DataLoader yield tensors, tuples or dicts of tensors, or pass its dataset instead."
    )


def _check_batch_columns(columns: list[list[Any]], keys: list[Any]) -> None:
    sizes = {len(c) for c in columns}
    if len(sizes) > 1:
        detail = ", ".join(f"{k!r}: {len(c)}" for k, c in zip(keys, columns, strict=True))
        raise ValueError(f"Batch elements have different batch sizes ({detail}).")


def _loader_items(loader: DataLoader[Any]) -> Iterator[Any]:
    """Items of a loader over an iterable dataset: batches unbound when the loader collates."""
    batched = loader.batch_sampler is not None or loader.batch_size is not None
    for batch in loader:
        if batched:
            yield from _unbind_batch(batch)
        else:
            yield batch


# --------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------


def sample_dataset(
    source: Any,
    targets: Any = None,
    *,
    max_samples: int | None = None,
    seed: int = 0,
    stratify: bool = True,
    input_key: str | int | None = None,
    target_key: str | int | None = None,
    input_fn: Callable[[Any], Any] | None = None,
    target_fn: Callable[[Any], Any] | None = None,
    require_targets: bool = False,
    progress: bool = False,
) -> Sample:
    """Draw a seeded, class-stratified sample of (inputs, targets) from a data source.

    The source is streamed, never materialised as a whole: memory is bounded by
    ``max_samples * n_classes`` items. A :class:`~torch.utils.data.DataLoader` over a map-style
    dataset is never iterated (it may shuffle, augment or shard); its ``dataset`` is sampled
    instead. See the module docstring for the exact selection rule.

    Args:
        source: a map-style or iterable ``Dataset``, a ``DataLoader``, a tensor or numpy array of
            inputs ``(n, ...)``, or a tuple ``(inputs, targets)`` of tensors / arrays. Items may be
            tuples ``(x, y, ...)``, dicts (input and target keys auto-detected among
            :data:`INPUT_KEYS` and :data:`TARGET_KEYS`) or bare inputs (unlabelled).
        targets: targets ``(n,)`` / ``(n, 1)`` / ``(n, C)`` when ``source`` is a tensor or array
            of inputs.
        max_samples: size of the sample; ``None`` (or at least the source's size) takes every
            item, in index order.
        seed: seed of the private random generator (the global RNG state is not touched).
        stratify: keep class proportions when the targets are class labels.
        input_key: dict key or tuple position of the input in each item.
        target_key: dict key or tuple position of the target in each item.
        input_fn: callable ``item -> input`` (overrides ``input_key``).
        target_fn: callable ``item -> target`` (overrides ``target_key``).
        require_targets: raise when the source has no targets.
        progress: show a tqdm progress bar while reading items.

    Returns:
        A :class:`Sample`: float32 inputs, int64 class ids (from integers, integral floats,
        ``(n, 1)`` labels, one-hot or probability vectors) or floating regression targets, and the
        source indices, all in increasing index order.

    Raises:
        ValueError: empty source, ``max_samples <= 0``, inconsistent input or target shapes,
            mismatched lengths, undetectable inputs, ``require_targets`` on unlabelled data.
        TypeError: unsupported source or item types.

    Example:
        >>> import torch
        >>> x = torch.randn(100, 2)
        >>> y = torch.tensor([0] * 80 + [1] * 20)
        >>> s = sample_dataset(x, y, max_samples=10, seed=1)
        >>> s.inputs.shape, torch.bincount(s.targets).tolist()
        (torch.Size([10, 2]), [8, 2])
        >>> bool((s.inputs == x[s.indices]).all())
        True
    """
    _check_max_samples(max_samples)
    m = None if max_samples is None else int(max_samples)
    reader = _ItemReader(input_key, target_key, input_fn, target_fn)
    if (
        isinstance(source, tuple)
        and len(source) == 2
        and isinstance(source[0], (Tensor, np.ndarray))
    ):
        if targets is not None:
            raise ValueError(
                "source is a tuple (inputs, targets) and targets= was given too; pass only one."
            )
        source, targets = source
    if isinstance(source, (Tensor, np.ndarray)):
        if input_fn is not None or target_fn is not None or input_key is not None:
            raise ValueError(
                "input_key, input_fn and target_fn apply to dataset items; for tensors/arrays pass "
                "the inputs and targets directly."
            )
        return _sample_arrays(
            source,
            targets,
            max_samples=m,
            seed=seed,
            stratify=stratify,
            require_targets=require_targets,
        )
    if targets is not None:
        raise ValueError(
            "targets= is only for tensor/array inputs; a Dataset or DataLoader provides its own "
            "targets (use target_key= or target_fn= to select them)."
        )
    if isinstance(source, DataLoader):
        if not isinstance(source.dataset, IterableDataset):
            return sample_dataset(
                source.dataset,
                max_samples=max_samples,
                seed=seed,
                stratify=stratify,
                input_key=input_key,
                target_key=target_key,
                input_fn=input_fn,
                target_fn=target_fn,
                require_targets=require_targets,
                progress=progress,
            )
        stream = _StreamSampler(m, stratify, seed)
        items = _progress(_loader_items(source), progress, None, "sampling")
        return _finish_stream(_stream(items, reader, stream), require_targets)
    if isinstance(source, IterableDataset) or (
        not hasattr(source, "__getitem__") and isinstance(source, Iterable)
    ):
        stream = _StreamSampler(m, stratify, seed)
        items = _progress(source, progress, None, "sampling")
        return _finish_stream(_stream(items, reader, stream), require_targets)
    if not (hasattr(source, "__getitem__") and hasattr(source, "__len__")):
        raise TypeError(
            f"Cannot sample from a {type(source).__name__}: pass a Dataset (with __len__ and "
            "__getitem__), an IterableDataset, a DataLoader, a tensor / numpy array, or a tuple "
            "(inputs, targets)."
        )
    return _sample_map_dataset(
        source,
        reader,
        max_samples=m,
        seed=seed,
        stratify=stratify,
        progress=progress,
        require_targets=require_targets,
    )


def _stream(items: Iterable[Any], reader: _ItemReader, sampler: _StreamSampler) -> _StreamSampler:
    for index, item in enumerate(items):
        x, y = reader.read(item, index)
        sampler.add(index, x, y)
    return sampler


def _finish_stream(sampler: _StreamSampler, require_targets: bool) -> Sample:
    if sampler.n_seen > 0 and require_targets and not sampler.labelled:
        raise _unlabelled_error()
    return sampler.finish()


def _unlabelled_error() -> ValueError:
    return ValueError(
        "require_targets=True but the data source has no targets (items hold only inputs). Pass "
        "target_key= / target_fn= to read them, or targets= with tensor inputs."
    )


def _sample_arrays(
    inputs: Tensor | np.ndarray,
    targets: Any,
    *,
    max_samples: int | None,
    seed: int,
    stratify: bool,
    require_targets: bool,
) -> Sample:
    if isinstance(inputs, np.ndarray) and (inputs.dtype == object or inputs.dtype.kind in "USV"):
        raise TypeError(f"inputs must be numeric, got a numpy array of dtype {inputs.dtype}.")
    if inputs.ndim == 0:
        raise ValueError("inputs is a scalar; pass an array of shape (n_samples, ...).")
    n = int(inputs.shape[0])
    if n == 0:
        raise ValueError("The data source is empty: inputs has 0 samples.")
    class_ids: Tensor | None = None
    norm: Tensor | None = None
    is_class = False
    if targets is not None:
        norm, is_class = _normalize_targets(_bulk_targets_to_tensor(targets, "targets"), n)
        class_ids = norm if is_class else None
    elif require_targets:
        raise _unlabelled_error()
    chosen = _select_indices(n, class_ids, max_samples, stratify, seed)
    return _sample_from_tensors(inputs, norm, chosen, chosen)


def _sample_from_tensors(
    inputs: Tensor | np.ndarray,
    targets: Tensor | None,
    chosen: np.ndarray,
    rows: np.ndarray,
) -> Sample:
    """A Sample of ``inputs[rows]`` and ``targets[chosen]`` (``rows``: ``chosen`` in storage)."""
    if isinstance(inputs, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(inputs[rows]))
    else:
        x = inputs.detach()[torch.as_tensor(rows, device=inputs.device)].cpu()
    x = x.to(torch.float32)
    y = None if targets is None else targets[torch.as_tensor(chosen)]
    return Sample(x, y, torch.as_tensor(chosen, dtype=torch.int64))


def _sample_map_dataset(
    dataset: Any,
    reader: _ItemReader,
    *,
    max_samples: int | None,
    seed: int,
    stratify: bool,
    progress: bool,
    require_targets: bool,
) -> Sample:
    n = len(dataset)
    if n == 0:
        raise ValueError(f"The data source is empty: {type(dataset).__name__} has length 0.")

    # Fast path 1: TensorDataset (or Subset of one): everything is in tensors.
    if reader.input_fn is None and reader.target_fn is None:
        view = _tensor_dataset_view(dataset, reader.input_key, reader.target_key)
        if view is not None:
            x_all, y_all, index_map = view
            y_src: Tensor | None = None
            if y_all is not None:
                y_src = y_all if index_map is None else y_all[torch.as_tensor(index_map)]
            elif require_targets:
                raise _unlabelled_error()
            norm, is_class = (None, False)
            if y_src is not None:
                norm, is_class = _normalize_targets(y_src.detach().cpu(), n)
            chosen = _select_indices(n, norm if is_class else None, max_samples, stratify, seed)
            rows = chosen if index_map is None else index_map[chosen]
            return _sample_from_tensors(x_all, norm, chosen, rows)

    # Fast path 2: labels exposed as a `targets` / `labels` attribute (torchvision, MedMNIST).
    if reader.target_fn is None and reader.target_key is None:
        attr = _targets_attribute(dataset)
        if attr is not None:
            try:
                norm, is_class = _normalize_targets(attr, n, "the dataset's targets attribute")
            except (TypeError, ValueError):
                norm = None
            if norm is not None:
                chosen = _select_indices(n, norm if is_class else None, max_samples, stratify, seed)
                loaded = [
                    reader.input(dataset[int(i)], int(i))
                    for i in _progress(chosen, progress, len(chosen), "loading sample")
                ]
                return Sample(
                    _stack_inputs(loaded, chosen.tolist()),
                    norm[torch.as_tensor(chosen)],
                    torch.as_tensor(chosen, dtype=torch.int64),
                )

    # General path. Peek at item 0: unlabelled (or unstratified) data needs no full pass.
    first = dataset[0]
    x0, y0 = reader.read(first, 0)
    if y0 is None and require_targets:
        raise _unlabelled_error()
    if (y0 is None or not stratify) and max_samples is not None and max_samples < n:
        chosen = _select_indices(n, None, max_samples, stratify, seed)
        read = [
            (x0, y0) if i == 0 else reader.read(dataset[int(i)], int(i))
            for i in _progress(chosen, progress, len(chosen), "loading sample")
        ]
        labelled = [y is not None for _, y in read]
        if any(labelled) != all(labelled):
            bad = chosen[labelled.index(not labelled[0])]
            raise ValueError(
                f"Inconsistent targets: item {chosen[0]} and item {bad} differ in having a target."
                " Pass target_fn= or target_key= to read the targets consistently."
            )
        inputs = _stack_inputs([x for x, _ in read], chosen.tolist())
        y_out: Tensor | None = None
        if all(labelled):
            ys = [y for _, y in read if y is not None]
            shapes = {tuple(y.shape) for y in ys}
            if len(shapes) > 1:
                raise ValueError(
                    f"Inconsistent target shapes {sorted(shapes)}; pass target_fn= returning one "
                    "kind of target."
                )
            y_out, _ = _normalize_targets(torch.stack(ys), len(ys))
        return Sample(inputs, y_out, torch.as_tensor(chosen, dtype=torch.int64))

    sampler = _StreamSampler(max_samples, stratify, seed)
    sampler.add(0, x0, y0)
    del first, x0, y0
    indices = _progress(range(1, n), progress, n - 1, "sampling")
    items = ((i, dataset[i]) for i in indices)
    for i, item in items:
        x, y = reader.read(item, i)
        sampler.add(i, x, y)
    return _finish_stream(sampler, require_targets)


def read_first_item(
    source: Any,
    *,
    input_key: str | int | None = None,
    target_key: str | int | None = None,
    input_fn: Callable[[Any], Any] | None = None,
    target_fn: Callable[[Any], Any] | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Extract ``(input, target or None)`` from the first item of a dataset, as sampling would.

    A cheap check of the extraction settings before any sampling: the ValueError it raises on a
    bad item says what the item holds and which argument to pass.

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> from lightning_dataprops.sampling import read_first_item
        >>> x, y = read_first_item(TensorDataset(torch.zeros(3, 2), torch.tensor([4, 5, 6])))
        >>> tuple(x.shape), int(y)
        ((2,), 4)
    """
    dataset = source.dataset if isinstance(source, DataLoader) else source
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__getitem__"):
        iterator = iter(dataset)
        try:
            item = next(iterator)
        except StopIteration:
            raise ValueError("The dataset is empty: it yielded no item.") from None
    else:
        if hasattr(dataset, "__len__") and len(dataset) == 0:
            raise ValueError("The dataset is empty: it has no item.")
        item = dataset[0]
    reader = _ItemReader(input_key, target_key, input_fn, target_fn)
    return reader.read(item, 0)
