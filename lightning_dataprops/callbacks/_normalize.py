"""Find the ``Normalize(mean, std)`` a Dataset applies, so measurements can work in pixel space."""

from __future__ import annotations

import math
from typing import Any, Literal

from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from lightning_dataprops.data.normalization import Normalization, check_normalization
from lightning_dataprops.functional.attacks import pixel_space

NormalizationOption = Normalization | Literal["auto"] | None
"""``"auto"`` (find a ``Normalize`` in the Dataset), ``(mean, std)`` (stated), or ``None``
(the inputs are pixels already, or their own units are wanted)."""

PIXEL_RANGE_TOLERANCE = 1e-3
"""How far outside ``[0, 1]`` image inputs may lie before they are not read as pixels."""


class UnknownNormalizationWarning(UserWarning):
    """Image inputs are not ``[0, 1]`` pixels and no ``Normalize(mean, std)`` is known: the
    fit-start values are in the inputs' own units. Pass ``normalization=(mean, std)``."""


def check_normalization_option(normalization: Any) -> None:
    """``"auto"``, ``None`` or a valid ``(mean, std)``; a clear ``ValueError`` otherwise."""
    if isinstance(normalization, str) and normalization == "auto":
        return
    if normalization is not None:
        check_normalization(normalization)


def resolve_normalization(
    option: NormalizationOption, dataset: Any, owner: str
) -> tuple[list[float], list[float]] | None:
    """The ``(mean, std)`` to undo: the stated one, or (``"auto"``) the ``Normalize`` found in
    ``dataset`` (said once, at info level); ``None`` when there is none to undo."""
    if isinstance(option, str):
        found = find_normalize(dataset)
        if found is not None:
            rank_zero_info(
                f"{owner}: the dataset normalises its inputs (mean={found[0]}, std={found[1]}); "
                "d_data and K_F are measured on the pixels (the normalisation undone), the units "
                "of the references and of `dataprops measure`."
            )
        return found
    return None if option is None else check_normalization(option)


def warn_if_not_pixels(inputs: Tensor, owner: str) -> None:
    """With image inputs outside ``[0, 1]`` and no normalisation known, say once that the values
    are in the inputs' own units and how to state the normalisation."""
    if inputs.ndim < 3 or inputs.numel() == 0:
        return  # not images: there is no pixel space to compare with
    low, high = float(inputs.min()), float(inputs.max())
    if low >= -PIXEL_RANGE_TOLERANCE and high <= 1 + PIXEL_RANGE_TOLERANCE:
        return
    rank_zero_warn(
        f"{owner}: the image inputs lie in [{low:.4g}, {high:.4g}], not in [0, 1], and no "
        "Normalize(mean, std) was found in the Dataset (a hand-written normalisation, such as "
        "a lambda, has no .mean/.std to find). dataprops/d_data and dataprops/K_F are therefore "
        "in these input units, not the pixel units of the references and of `dataprops "
        "measure`. Pass normalization=(mean, std) (the values your transform uses; "
        "(0.0, 1 / 255) for 0-255 pixels) to measure pixels, or normalization=None to keep the "
        "input units and silence this warning.",
        category=UnknownNormalizationWarning,
    )


def find_normalize(dataset: Any, depth: int = 6) -> tuple[list[float], list[float]] | None:
    """``(mean, std)`` of the ``Normalize`` transforms ``dataset`` applies, or ``None``.

    Looks through ``transform``/``transforms`` (torchvision ``Compose`` and ``StandardTransform``
    alike) and wrapped datasets (``Subset.dataset``, ``ConcatDataset.datasets``) for objects
    whose class is called ``Normalize`` with ``mean`` and ``std`` attributes. Several in a row
    (a wrapped dataset's, then the wrapper's; a ``Compose``'s in order) are one ``(mean, std)``:
    their composition. The parts of a ``ConcatDataset`` must agree; ``None`` when they do not.
    """
    found = _normalizations(dataset, depth, set())
    if not found:
        return None
    if any(stats is _DISAGREE for stats in found):
        rank_zero_warn(
            "The parts of a ConcatDataset normalise their inputs differently, so the inputs have "
            "no one pixel space; pass normalization=(mean, std) (or None) to say which to use.",
            category=UnknownNormalizationWarning,
        )
        return None
    mean, std = found[0]
    for next_mean, next_std in found[1:]:
        # x2 = (x1 - m2) / s2 after x1 = (p - m1) / s1: p = x2 * (s1 s2) + (m1 + m2 s1).
        width = max(len(mean), len(next_mean), len(std), len(next_std))
        m1, s1, m2, s2 = (_widen(v, width) for v in (mean, std, next_mean, next_std))
        mean = [a + b * c for a, b, c in zip(m1, m2, s1, strict=True)]
        std = [a * b for a, b in zip(s1, s2, strict=True)]
    return mean, std


_Stats = tuple[list[float], list[float]]
_DISAGREE: _Stats = ([math.nan], [math.nan])


def _widen(values: list[float], width: int) -> list[float]:
    return values * width if len(values) == 1 else values


def _normalizations(node: Any, depth: int, seen: set[int]) -> list[_Stats]:
    """The ``Normalize`` transforms on the way from the stored data to ``node``'s items, in the
    order they apply (``[_DISAGREE]`` for ``ConcatDataset`` parts that differ)."""
    if node is None or id(node) in seen or depth < 0 or isinstance(node, (str, bytes, Tensor)):
        return []
    seen.add(id(node))
    if "Normalize" in type(node).__name__ and hasattr(node, "mean") and hasattr(node, "std"):
        return [(_as_floats(node.mean), _as_floats(node.std))]
    if isinstance(node, (list, tuple)):
        return [s for child in node for s in _normalizations(child, depth - 1, seen)]
    found: list[_Stats] = []
    parts = getattr(node, "datasets", None)
    if isinstance(parts, (list, tuple)) and parts:
        chains = [_normalizations(part, depth - 1, seen.copy()) for part in parts]
        if any(chain != chains[0] for chain in chains):
            return [_DISAGREE]
        found.extend(chains[0])
    # A wrapped dataset's transforms run before the wrapper's own.
    for attribute in ("dataset", "transform", "transforms"):
        found.extend(_normalizations(getattr(node, attribute, None), depth - 1, seen))
    return found


def _as_floats(value: Any) -> list[float]:
    if isinstance(value, Tensor):
        return [float(v) for v in value.flatten()]
    if isinstance(value, (int, float)):
        return [float(value)]
    return [float(v) for v in value]


def to_pixels(inputs: Tensor, stats: tuple[list[float], list[float]]) -> Tensor:
    """Undo ``Normalize(mean, std)`` on ``(n, C, ...)`` inputs (the functional layer's formula)."""
    return pixel_space.to_pixels(inputs, *stats)
