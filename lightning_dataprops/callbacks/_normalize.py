"""Find the ``Normalize(mean, std)`` a Dataset applies, so measurements can work in pixel space."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lightning_dataprops.functional.attacks import pixel_space


def find_normalize(dataset: Any, depth: int = 6) -> tuple[list[float], list[float]] | None:
    """``(mean, std)`` of a ``Normalize`` transform applied by ``dataset``, or ``None``.

    Looks through ``transform``/``transforms`` (torchvision ``Compose`` and ``StandardTransform``
    alike) and wrapped datasets (``Subset.dataset``) for an object whose class is called
    ``Normalize`` with ``mean`` and ``std`` attributes.
    """
    seen: set[int] = set()
    queue: list[tuple[Any, int]] = [(dataset, 0)]
    while queue:
        node, level = queue.pop(0)
        if node is None or id(node) in seen or level > depth:
            continue
        seen.add(id(node))
        if "Normalize" in type(node).__name__ and hasattr(node, "mean") and hasattr(node, "std"):
            mean, std = node.mean, node.std
            return _as_floats(mean), _as_floats(std)
        if isinstance(node, (list, tuple)):
            queue.extend((child, level + 1) for child in node)
            continue
        for attribute in ("transform", "transforms", "dataset"):
            child = getattr(node, attribute, None)
            if child is not None and not isinstance(child, (str, bytes, Tensor)):
                queue.append((child, level + 1))
    return None


def _as_floats(value: Any) -> list[float]:
    if isinstance(value, Tensor):
        return [float(v) for v in value.flatten()]
    if isinstance(value, (int, float)):
        return [float(value)]
    return [float(v) for v in value]


def to_pixels(inputs: Tensor, stats: tuple[list[float], list[float]]) -> Tensor:
    """Undo ``Normalize(mean, std)`` on ``(n, C, ...)`` inputs (the functional layer's formula)."""
    return pixel_space.to_pixels(inputs, *stats)
