"""The name of each class id of a dataset, when the dataset says (``classes``, as torchvision's).

Example:
    >>> class Pets:
    ...     classes = ["cat", "dog"]
    >>> class_names_of(Pets())
    ('cat', 'dog')
    >>> class Wrapped:
    ...     dataset = Pets()
    >>> class_names_of(Wrapped()), class_names_of([1, 2])
    (('cat', 'dog'), None)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["class_names_of"]

_MAX_WRAPS = 8


def class_names_of(dataset: Any) -> tuple[str, ...] | None:
    """``dataset.classes`` (a sequence of names by class id, or a ``{name: id}`` mapping),
    looking through wrappers' ``.dataset`` (e.g. ``torch.utils.data.Subset``); ``None`` when the
    dataset gives no names."""
    current = dataset
    for _ in range(_MAX_WRAPS):
        if current is None:
            return None
        names = getattr(current, "classes", None)
        if isinstance(names, Mapping):  # name -> id
            ordered = sorted(names.items(), key=lambda item: item[1])
            return tuple(str(name) for name, _ in ordered)
        if isinstance(names, Sequence) and not isinstance(names, str) and names:
            return tuple(str(name) for name in names)
        current = getattr(current, "dataset", None)
    return None
