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

Targets follow the package's one rule (:mod:`lightning_dataprops.functional.targets`): integer
dtype means class ids, floating dtype regression (unless ``target_type="class"``), one-hot rows
class ids. Streams (iterable datasets) are read for at most ``max_stream_items`` items, so an
infinite stream never hangs; :attr:`Sample.n_source_how` says how the source's size was obtained.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from lightning_dataprops._warnings import warn_from_rank_zero
from lightning_dataprops.data.find_normalize import find_normalize
from lightning_dataprops.data.items import (
    ItemReader,
    loader_items,
    targets_attribute,
    tensor_dataset_view,
)
from lightning_dataprops.data.selection import (
    StreamSampler,
    check_max_samples,
    select_indices,
    stack_inputs,
)
from lightning_dataprops.functional._progress import progress_bar
from lightning_dataprops.functional.config import resolve_progress
from lightning_dataprops.functional.constants import (
    DEFAULT_MAX_STREAM_ITEMS,
    MIN_STREAM_ITEMS,
    STREAM_ITEMS_PER_SAMPLE,
)
from lightning_dataprops.functional.targets import (
    TARGET_TYPES,
    normalize_targets,
)

__all__ = ["Sample", "SizeHow", "StreamTruncatedWarning", "read_first_item", "sample_dataset"]

SizeHow = Literal["len", "counted", "unknown"]


class StreamTruncatedWarning(UserWarning):
    """A stream did not end within ``max_stream_items``: the sample comes from its first items."""


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
        n_source: the number of items in the source (the training-set size N), ``None`` when
            unknown (a stream that did not end within ``max_stream_items``: pass N yourself).
        n_source_how: how ``n_source`` was obtained: ``"len"`` (``len()`` of the source),
            ``"counted"`` (a stream read to its end) or ``"unknown"``.
        normalization: the ``(mean, std)`` of the ``Normalize`` the source Dataset applies to
            its inputs (found in its ``transform``/``transforms`` and wrapped datasets, as the
            callbacks find it), ``None`` when it has none or the source is tensors or arrays.
            :func:`~lightning_dataprops.measure_dataset` undoes it by default, so the same
            images give the same values as the callbacks and ``dataprops measure``.
        target_type: how the targets were read (``sample_dataset``'s ``target_type``):
            :func:`~lightning_dataprops.measure_dataset` reads them the same way.

    Example:
        >>> import torch
        >>> s = sample_dataset(torch.zeros(10, 3, 4, 4), torch.arange(10) % 2, max_samples=4)
        >>> s.input_shape, len(s), sorted(s.targets.tolist())
        ((3, 4, 4), 4, [0, 0, 1, 1])
        >>> s.n_source, s.n_source_how
        (10, 'len')
    """

    inputs: Tensor
    targets: Tensor | None
    indices: Tensor
    n_source: int | None = None
    n_source_how: SizeHow = "unknown"
    normalization: tuple[list[float], list[float]] | None = None
    target_type: str = "auto"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (without the sample dimension)."""
        return tuple(int(s) for s in self.inputs.shape[1:])

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


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
    target_type: str = "auto",
    require_targets: bool = False,
    max_stream_items: int | None = None,
    progress: bool | None = None,
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
            :data:`~lightning_dataprops.data.items.INPUT_KEYS` and
            :data:`~lightning_dataprops.data.items.TARGET_KEYS`) or bare inputs (unlabelled).
        targets: targets ``(n,)`` / ``(n, 1)`` / ``(n, C)`` when ``source`` is a tensor or array
            of inputs.
        max_samples: size of the sample; ``None`` (or at least the source's size) takes every
            item, in index order.
        seed: seed of the private random generator (the global RNG state is not touched).
        stratify: keep class proportions when the targets are class labels (never for
            regression targets).
        input_key: dict key or tuple position of the input in each item.
        target_key: dict key or tuple position of the target in each item.
        input_fn: callable ``item -> input`` (overrides ``input_key``).
        target_fn: callable ``item -> target`` (overrides ``target_key``).
        target_type: ``"auto"`` (integer dtype or one-hot: classes; float: regression),
            ``"class"`` (whole-number floats become class ids) or ``"regression"``.
        require_targets: raise when the source has no targets.
        max_stream_items: the most items read from a stream (iterable dataset or a loader over
            one); ``None``: ``max(20 * max_samples, 10_000)``
            (``STREAM_ITEMS_PER_SAMPLE``, ``MIN_STREAM_ITEMS``), or
            ``DEFAULT_MAX_STREAM_ITEMS`` when ``max_samples`` is ``None``. A stream that does not
            end within the bound is sampled from its first items, with a
            :class:`StreamTruncatedWarning`, and its size is unknown.
        progress: show a tqdm progress bar while reading items.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (off unless changed).

    Returns:
        A :class:`Sample`: float32 inputs, int64 class ids or floating regression targets, the
        source indices (all in increasing index order), the source's size and how it was
        obtained, the ``Normalize`` the source Dataset applies (``normalization``) and the
        ``target_type`` the targets were read by.

    Raises:
        ValueError: empty source, ``max_samples <= 0``, inconsistent input or target shapes,
            mismatched lengths, undetectable inputs, NaN targets, ``require_targets`` on
            unlabelled data.
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
        >>> ages = torch.arange(100, dtype=torch.float32)  # whole-number floats: regression
        >>> sample_dataset(x, ages, max_samples=5).targets.dtype
        torch.float32
    """
    check_max_samples(max_samples)
    if target_type not in TARGET_TYPES:
        raise ValueError(f"target_type must be one of {list(TARGET_TYPES)}, got {target_type!r}.")
    m = None if max_samples is None else int(max_samples)
    reader = ItemReader(input_key, target_key, input_fn, target_fn)
    options = _Options(m, seed, stratify, target_type, require_targets, resolve_progress(progress))
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
        return replace(_sample_arrays(source, targets, options), target_type=target_type)
    if targets is not None:
        raise ValueError(
            "targets= is only for tensor/array inputs; a Dataset or DataLoader provides its own "
            "targets (use target_key= or target_fn= to select them)."
        )
    sample = _sample_items(source, reader, options, _stream_bound(max_stream_items, m))
    # A list of items has no transforms (and walking it would read every item).
    found = None if isinstance(source, (list, tuple)) else find_normalize(source, warn=False)
    return replace(sample, normalization=found, target_type=target_type)


def _sample_items(source: Any, reader: ItemReader, options: _Options, bound: int) -> Sample:
    """The sample of a ``Dataset``, ``IterableDataset``, ``DataLoader`` or other iterable."""
    if isinstance(source, DataLoader):
        if not isinstance(source.dataset, IterableDataset):
            return _sample_map_dataset(source.dataset, reader, options)
        return _sample_stream(loader_items(source), _length(source.dataset), reader, options, bound)
    if isinstance(source, IterableDataset) or (
        not hasattr(source, "__getitem__") and isinstance(source, Iterable)
    ):
        return _sample_stream(source, _length(source), reader, options, bound)
    if not (hasattr(source, "__getitem__") and hasattr(source, "__len__")):
        raise TypeError(
            f"Cannot sample from a {type(source).__name__}: pass a Dataset (with __len__ and "
            "__getitem__), an IterableDataset, a DataLoader, a tensor / numpy array, or a tuple "
            "(inputs, targets)."
        )
    return _sample_map_dataset(source, reader, options)


@dataclass(frozen=True)
class _Options:
    max_samples: int | None
    seed: int
    stratify: bool
    target_type: str
    require_targets: bool
    progress: bool

    def select(self, n: int, class_ids: Tensor | None) -> np.ndarray:
        return select_indices(n, class_ids, self.max_samples, self.stratify, self.seed)

    def normalize(self, y: Any, n: int, name: str = "targets") -> tuple[Tensor, Tensor | None]:
        """``(targets, class ids or None)`` by the one target rule."""
        norm = normalize_targets(y, n, self.target_type, name=name)
        return norm.values, (norm.values if norm.is_class else None)

    def stream_sampler(self) -> StreamSampler:
        return StreamSampler(self.max_samples, self.stratify, self.seed, self.target_type)


def _stream_bound(max_stream_items: int | None, max_samples: int | None) -> int:
    if max_stream_items is None:
        if max_samples is None:
            return DEFAULT_MAX_STREAM_ITEMS
        return max(STREAM_ITEMS_PER_SAMPLE * max_samples, MIN_STREAM_ITEMS)
    if isinstance(max_stream_items, bool) or not isinstance(max_stream_items, int):
        raise TypeError(f"max_stream_items must be an int or None, got {max_stream_items!r}.")
    if max_stream_items < 1:
        raise ValueError(f"max_stream_items must be >= 1, got {max_stream_items}.")
    return max_stream_items


def _length(source: Any) -> int | None:
    """``len(source)`` when the source defines it (streams may not), else None."""
    try:
        return len(source)
    except (TypeError, NotImplementedError):
        return None


def _sample_stream(
    items: Iterable[Any], length: int | None, reader: ItemReader, options: _Options, bound: int
) -> Sample:
    sampler = options.stream_sampler()
    bounded = itertools.islice(items, bound + 1)
    for index, item in enumerate(progress_bar(bounded, enabled=options.progress, desc="sampling")):
        if index == bound:
            warn_from_rank_zero(
                f"The stream did not end within max_stream_items={bound} items: the sample is "
                f"drawn from its first {bound} items and the dataset size N is unknown. Pass "
                "max_stream_items= to read more (to the callbacks: DataPropsOptions("
                "max_stream_items=...), or default_callbacks(max_stream_items=...)), or give N "
                "where it is needed.",
                StreamTruncatedWarning,
                stacklevel=3,
            )
            how: SizeHow = "len" if length is not None else "unknown"
            return _finish_stream(sampler, options, length, how)
        x, y = reader.read(item, index)
        sampler.add(index, x, y)
    if length is not None:
        return _finish_stream(sampler, options, length, "len")
    return _finish_stream(sampler, options, sampler.n_seen, "counted")


def _finish_stream(
    sampler: StreamSampler, options: _Options, n_source: int | None, how: SizeHow
) -> Sample:
    if sampler.n_seen > 0 and options.require_targets and not sampler.labelled:
        raise _unlabelled_error()
    inputs, targets, indices = sampler.finish()
    return Sample(inputs, targets, indices, n_source, how)


def _unlabelled_error() -> ValueError:
    return ValueError(
        "require_targets=True but the data source has no targets (items hold only inputs). Pass "
        "target_key= / target_fn= to read them, or targets= with tensor inputs."
    )


def _sample_arrays(inputs: Tensor | np.ndarray, targets: Any, options: _Options) -> Sample:
    if isinstance(inputs, np.ndarray) and (inputs.dtype == object or inputs.dtype.kind in "USV"):
        raise TypeError(f"inputs must be numeric, got a numpy array of dtype {inputs.dtype}.")
    if inputs.ndim == 0:
        raise ValueError("inputs is a scalar; pass an array of shape (n_samples, ...).")
    n = int(inputs.shape[0])
    if n == 0:
        raise ValueError("The data source is empty: inputs has 0 samples.")
    norm: Tensor | None = None
    class_ids: Tensor | None = None
    if targets is not None:
        norm, class_ids = options.normalize(targets, n)
    elif options.require_targets:
        raise _unlabelled_error()
    chosen = options.select(n, class_ids)
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
    n = int(inputs.shape[0]) if targets is None else int(targets.shape[0])
    return Sample(x, y, torch.as_tensor(chosen, dtype=torch.int64), n, "len")


def _sample_map_dataset(dataset: Any, reader: ItemReader, options: _Options) -> Sample:
    n = len(dataset)
    if n == 0:
        raise ValueError(f"The data source is empty: {type(dataset).__name__} has length 0.")
    m, progress = options.max_samples, options.progress

    # Fast path 1: TensorDataset (or Subset of one): everything is in tensors.
    if reader.input_fn is None and reader.target_fn is None:
        view = tensor_dataset_view(dataset, reader.input_key, reader.target_key)
        if view is not None:
            x_all, y_all, index_map = view
            norm: Tensor | None = None
            class_ids: Tensor | None = None
            if y_all is not None:
                y_src = y_all if index_map is None else y_all[torch.as_tensor(index_map)]
                norm, class_ids = options.normalize(y_src.detach().cpu(), n)
            elif options.require_targets:
                raise _unlabelled_error()
            chosen = options.select(n, class_ids)
            rows = chosen if index_map is None else index_map[chosen]
            sample = _sample_from_tensors(x_all, norm, chosen, rows)
            return Sample(sample.inputs, sample.targets, sample.indices, n, "len")

    # Fast path 2: labels exposed as a `targets` / `labels` attribute (torchvision, MedMNIST).
    if reader.target_fn is None and reader.target_key is None:
        attr = targets_attribute(dataset)
        known: tuple[Tensor, Tensor | None] | None = None
        if attr is not None:
            try:
                known = options.normalize(attr, n, "the dataset's targets attribute")
            except (TypeError, ValueError):
                known = None  # unusable attribute: read the items' own targets below
        if known is not None:
            attr_targets, attr_ids = known
            chosen = options.select(n, attr_ids)
            loaded = [
                reader.input(dataset[int(i)], int(i))
                for i in progress_bar(chosen, enabled=progress, desc="loading sample")
            ]
            return Sample(
                stack_inputs(loaded, chosen.tolist()),
                attr_targets[torch.as_tensor(chosen)],
                torch.as_tensor(chosen, dtype=torch.int64),
                n,
                "len",
            )

    # General path. Peek at item 0: unlabelled (or unstratified) data needs no full pass.
    first = dataset[0]
    x0, y0 = reader.read(first, 0)
    if y0 is None and options.require_targets:
        raise _unlabelled_error()
    if (y0 is None or not options.stratify) and m is not None and m < n:
        chosen = options.select(n, None)
        read = [
            (x0, y0) if i == 0 else reader.read(dataset[int(i)], int(i))
            for i in progress_bar(chosen, enabled=progress, desc="loading sample")
        ]
        labelled = [y is not None for _, y in read]
        if any(labelled) != all(labelled):
            bad = chosen[labelled.index(not labelled[0])]
            raise ValueError(
                f"Inconsistent targets: item {chosen[0]} and item {bad} differ in having a target."
                " Pass target_fn= or target_key= to read the targets consistently."
            )
        inputs = stack_inputs([x for x, _ in read], chosen.tolist())
        y_out: Tensor | None = None
        if all(labelled):
            ys = [y for _, y in read if y is not None]
            shapes = {tuple(y.shape) for y in ys}
            if len(shapes) > 1:
                raise ValueError(
                    f"Inconsistent target shapes {sorted(shapes)}; pass target_fn= returning one "
                    "kind of target."
                )
            y_out, _ = options.normalize(torch.stack(ys), len(ys))
        return Sample(inputs, y_out, torch.as_tensor(chosen, dtype=torch.int64), n, "len")

    sampler = options.stream_sampler()
    sampler.add(0, x0, y0)
    del first, x0, y0
    for i in progress_bar(range(1, n), enabled=progress, desc="sampling", total=n - 1):
        x, y = reader.read(dataset[i], i)
        sampler.add(i, x, y)
    return _finish_stream(sampler, options, n, "len")


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
        >>> from lightning_dataprops.data import read_first_item
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
    reader = ItemReader(input_key, target_key, input_fn, target_fn)
    return reader.read(item, 0)
