"""Choosing the sample: seeded class quotas, bottom-k priority selection, and its streaming form.

Item ``i`` gets priority ``u_i``, the ``i``-th draw of ``numpy.random.default_rng(seed)``; class
``c`` gets a quota ``q_c`` proportional to its frequency (largest-remainder rounding, every class
at least one item when ``max_samples >= n_classes``); the ``q_c`` items of class ``c`` with the
smallest priorities are kept. Without stratification the ``max_samples`` smallest priorities
overall are kept. The same rule holds whether the labels are known upfront
(:func:`select_indices`) or seen one item at a time (:class:`StreamSampler`).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from lightning_dataprops.functional.targets import item_class_id, normalize_targets

__all__ = [
    "StreamSampler",
    "allocate_quotas",
    "check_max_samples",
    "select_indices",
    "stack_inputs",
]

_PRIORITY_BLOCK = 4096


def check_max_samples(max_samples: int | None) -> None:
    """Raise unless ``max_samples`` is a positive int or None."""
    if max_samples is None:
        return
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)):
        raise TypeError(f"max_samples must be an int or None, got {type(max_samples).__name__}.")
    if max_samples <= 0:
        raise ValueError(
            f"max_samples must be a positive int (or None for all items), got {max_samples}."
        )


def allocate_quotas(counts: np.ndarray, m: int, seed: int) -> np.ndarray:
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


def select_indices(
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
    quotas = allocate_quotas(counts, max_samples, seed)
    picked: list[np.ndarray] = []
    for c in range(classes.shape[0]):
        if quotas[c] == 0:
            continue
        members = np.flatnonzero(inverse == c)
        order = np.argsort(priorities[members], kind="stable")[: quotas[c]]
        picked.append(members[order])
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _own(tensor: Tensor) -> Tensor:
    """Copy a tensor that views a larger storage (a batch, a big array) so it can be kept alone."""
    if tensor.untyped_storage().nbytes() > tensor.numel() * tensor.element_size():
        return tensor.clone()
    return tensor


def stack_inputs(inputs: Sequence[Tensor], indices: Sequence[int]) -> Tensor:
    """Stack the chosen inputs as float32 ``(n, ...)`` on the CPU; one shape or a clear error."""
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


class StreamSampler:
    """Bottom-k priority sampling per class over a stream of (index, input, target)."""

    def __init__(
        self, max_samples: int | None, stratify: bool, seed: int, target_type: str = "auto"
    ) -> None:
        self.max_samples = max_samples
        self.stratify = stratify
        self.seed = seed
        self.target_type = target_type
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
            key = item_class_id(y, self.target_type)
            if key is None:
                self.class_mode = False
                if self.stratify:
                    self._merge_to_single()
            else:
                self.counts[key] = self.counts.get(key, 0) + 1
        if not (self.stratify and self.class_mode and y is not None):
            key = None
        self._push(key, (-priority, index, x, y))

    def finish(self) -> tuple[Tensor, Tensor | None, Tensor]:
        """``(inputs, targets or None, indices)`` of the chosen items, in increasing index order."""
        if self.n_seen == 0:
            raise ValueError("The data source is empty: it yielded no items.")
        m = self.max_samples
        stratified = self.stratify and self.class_mode and bool(self.labelled)
        chosen: list[_Entry] = []
        if stratified and m is not None and m < self.n_seen:
            classes = sorted(self.counts)
            counts = np.array([self.counts[c] for c in classes], dtype=np.int64)
            quotas = allocate_quotas(counts, m, self.seed)
            for c, q in zip(classes, quotas.tolist(), strict=True):
                if q > 0:
                    chosen.extend(heapq.nlargest(q, self.heaps[c], key=lambda e: e[0]))
        else:
            chosen = [e for heap in self.heaps.values() for e in heap]
        chosen.sort(key=lambda e: e[1])
        indices = [e[1] for e in chosen]
        inputs = stack_inputs([e[2] for e in chosen], indices)
        targets: Tensor | None = None
        if self.labelled:
            stacked = torch.stack([e[3] for e in chosen if e[3] is not None])
            targets = normalize_targets(stacked, target_type=self.target_type).values
        return inputs, targets, torch.tensor(indices, dtype=torch.int64)


def _own_target(y: Tensor | None) -> Tensor | None:
    return None if y is None else _own(y)
