"""Reading one item of a data source: finding its input and its target, converting them to tensors.

Items may be tuples ``(x, y, ...)``, dicts (keys auto-detected among :data:`INPUT_KEYS` and
:data:`TARGET_KEYS`, or given as ``input_key`` / ``target_key``) or bare inputs (unlabelled).
Collated batches of a ``DataLoader`` over a stream are split back into items here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset, TensorDataset

from lightning_dataprops._warnings import warn_from_rank_zero
from lightning_dataprops.functional.targets import as_target_tensor

__all__ = [
    "INPUT_KEYS",
    "TARGET_KEYS",
    "ItemReader",
    "UnknownTargetKeyWarning",
    "loader_items",
    "targets_attribute",
    "tensor_dataset_view",
]

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


class UnknownTargetKeyWarning(UserWarning):
    """A dict item has none of the known target keys: the data is read as unlabelled."""


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


def _by_key(item: Any, key: str | int, option: str, index: int) -> Any:
    """``item[key]`` of a dict or tuple item, or a ValueError naming the ``option`` to fix."""
    if isinstance(item, Mapping):
        if key not in item:
            raise ValueError(
                f"Item {index} is {_describe_item(item)}: {option}={key!r} is not one of its keys."
            )
        return item[key]
    if not isinstance(key, int):
        raise ValueError(
            f"Item {index} is {_describe_item(item)}: {option} must be an int position for "
            f"tuple items, got {key!r}."
        )
    if not -len(item) <= key < len(item):
        raise ValueError(f"Item {index} is {_describe_item(item)}: {option}={key} is out of range.")
    return item[key]


class ItemReader:
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
        self._warned_unlabelled = False

    def _warn_unknown_target(self, item: Mapping[Any, Any]) -> None:
        """Dict items with keys besides the input but no known target key: say so, once."""
        input_keys = {self.input_key} if self.input_key is not None else set(INPUT_KEYS)
        others = sorted(str(k) for k in item if k not in input_keys)
        if self._warned_unlabelled or self.input_fn is not None or not others:
            return
        self._warned_unlabelled = True
        warn_from_rank_zero(
            f"Dict items have keys {sorted(map(str, item.keys()))} but none of the known target "
            f"keys {list(TARGET_KEYS)}, so the data is read as unlabelled (no K_F). If one of "
            f"{others} is the target, pass target_key='{others[0]}' (or target_fn=).",
            UnknownTargetKeyWarning,
            stacklevel=2,
        )

    def raw_input(self, item: Any, index: int) -> Any:
        if self.input_fn is not None:
            return self.input_fn(item)
        key = self.input_key
        if isinstance(item, Mapping):
            if key is not None:
                return _by_key(item, key, "input_key", index)
            for candidate in INPUT_KEYS:
                if candidate in item:
                    return item[candidate]
            raise ValueError(
                f"Cannot find the input in item {index}: it is {_describe_item(item)} and none of "
                f"{list(INPUT_KEYS)} is a key. Pass input_key='...' (or input_fn=)."
            )
        if isinstance(item, (tuple, list)):
            return _by_key(item, 0 if key is None else key, "input_key", index)
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
                return _by_key(item, key, "target_key", index)
            for candidate in TARGET_KEYS:
                if candidate in item:
                    return item[candidate]
            self._warn_unknown_target(item)
            return _MISSING
        if isinstance(item, (tuple, list)):
            if key is None:
                position = 1
                if self.input_key == 1:
                    position = 0
                return item[position] if len(item) >= 2 else _MISSING
            return _by_key(item, key, "target_key", index)
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


def loader_items(loader: DataLoader[Any]) -> Iterator[Any]:
    """Items of a loader over an iterable dataset: batches unbound when the loader collates."""
    batched = loader.batch_sampler is not None or loader.batch_size is not None
    for batch in loader:
        if batched:
            yield from _unbind_batch(batch)
        else:
            yield batch


def tensor_dataset_view(
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
        inner = tensor_dataset_view(dataset.dataset, input_key, target_key)
        if inner is None:
            return None
        x, y, index_map = inner
        sub = np.asarray(list(dataset.indices), dtype=np.int64)
        return x, y, sub if index_map is None else index_map[sub]
    return None


def targets_attribute(dataset: Any) -> Tensor | None:
    """The dataset's ``targets`` / ``labels`` attribute as a tensor of length ``len(dataset)``."""
    if isinstance(dataset, Subset):
        base = targets_attribute(dataset.dataset)
        if base is None:
            return None
        sub = torch.as_tensor(np.asarray(list(dataset.indices), dtype=np.int64))
        return base[sub]
    for name in ("targets", "labels"):
        value = getattr(dataset, name, None)
        if value is None or callable(value):
            continue
        try:
            tensor = as_target_tensor(value, name)
            n = len(dataset)
        except (TypeError, ValueError):
            continue
        if tensor.ndim >= 1 and tensor.shape[0] == n:
            return tensor
    return None
