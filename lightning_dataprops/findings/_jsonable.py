"""JSON-safe plain values: ``inf``/``nan`` spelled as strings, containers as dicts and lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from lightning_dataprops.functional._json import json_float

PlainValue = str | int | float | bool | None


def to_jsonable(value: Any) -> Any:
    """``value`` with floats made JSON-safe (``"inf"``, ``"-inf"``, ``"nan"``) and containers
    turned into dicts and lists; tensors and numpy scalars become Python numbers or lists.

    Example:
        >>> to_jsonable({"a": (1.0, float("inf")), "b": None})
        {'a': [1.0, 'inf'], 'b': None}
    """
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, Tensor):
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, Sequence):
        return [to_jsonable(item) for item in value]
    if hasattr(value, "item"):  # numpy scalars
        return to_jsonable(value.item())
    return str(value)
