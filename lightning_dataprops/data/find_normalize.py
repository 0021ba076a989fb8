"""Find the ``Normalize(mean, std)`` a Dataset applies, so measurements can work in pixel space.

A torchvision-style ``Normalize`` inside a Dataset changes the units every fit-start value is
measured in (:mod:`lightning_dataprops.data.normalization`). :func:`find_normalize` reads it off
the Dataset, so the callbacks and :func:`~lightning_dataprops.measure_dataset` (through
:attr:`Sample.normalization <lightning_dataprops.data.Sample.normalization>`) measure the same
images in the same pixel units whatever pipeline surrounds them.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lightning_dataprops.data.normalization import Normalization, pixel_inputs

__all__ = [
    "UnknownNormalizationWarning",
    "auto_normalization",
    "find_normalize",
    "fitting_normalization",
]

Stats = TypeVar("Stats", bound=Normalization)
PIXEL_RANGE_TOLERANCE = 1e-3
"""How far outside ``[0, 1]`` image inputs may lie before they are not read as pixels."""


class UnknownNormalizationWarning(UserWarning):
    """Image inputs are not ``[0, 1]`` pixels and no ``Normalize(mean, std)`` is known: the
    fit-start values are in the inputs' own units. Pass ``normalization=(mean, std)``."""


def find_normalize(
    dataset: Any, depth: int = 6, *, warn: bool = True
) -> tuple[list[float], list[float]] | None:
    """``(mean, std)`` of the ``Normalize`` transforms ``dataset`` applies, or ``None``.

    Looks through ``transform``/``transforms`` (torchvision ``Compose`` and ``StandardTransform``
    alike) and wrapped datasets (``Subset.dataset``, ``ConcatDataset.datasets``) for objects
    whose class is called ``Normalize`` with ``mean`` and ``std`` attributes. Several in a row
    (a wrapped dataset's, then the wrapper's; a ``Compose``'s in order) are one ``(mean, std)``:
    their composition. The parts of a ``ConcatDataset`` must agree; ``None`` when they do not
    (with an :class:`UnknownNormalizationWarning`).

    Args:
        dataset: a Dataset, a DataLoader (its ``dataset``), or any object with those
            attributes; tensors and arrays have none.
        depth: how many attribute levels to follow.
        warn: warn when the parts of a ``ConcatDataset`` disagree (``sample_dataset`` looks
            quietly: the measurement that would undo the normalisation says it).

    Returns:
        ``(mean, std)``, lists of floats (one value, or one per channel), or ``None``.

    Example:
        >>> import torch
        >>> from torch.utils.data import Subset, TensorDataset
        >>> class Normalize:  # torchvision's keeps .mean and .std alike
        ...     def __init__(self, mean, std):
        ...         self.mean, self.std = mean, std
        >>> data = TensorDataset(torch.zeros(4, 3, 2, 2))
        >>> data.transform = Normalize((0.5, 0.4, 0.3), (0.25, 0.25, 0.25))
        >>> find_normalize(Subset(data, [0, 1]))
        ([0.5, 0.4, 0.3], [0.25, 0.25, 0.25])
        >>> find_normalize(torch.zeros(4, 3)) is None
        True
    """
    found = _normalizations(dataset, depth, set())
    if not found:
        return None
    if any(stats is _DISAGREE for stats in found):
        if not warn:
            return None
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


def fitting_normalization(
    found: Stats | None, inputs: Tensor, owner: str, fix: str
) -> Stats | None:
    """``found`` (a ``Normalize`` read off the Dataset) if it fits ``inputs``, else ``None``
    with an :class:`UnknownNormalizationWarning` saying so: an ``input_fn`` that flattens the
    items, or channels-last inputs, leave the per-channel statistics nothing to apply to. A
    found normalisation that does not fit is not the user's mistake, so it never raises.

    Args:
        found: ``(mean, std)`` from :func:`find_normalize`, or ``None``.
        inputs: ``(n, C, ...)`` sampled inputs, as the measurement will see them.
        owner: who measures, for the message (a callback's or a function's name).
        fix: the option that states the normalisation, for the message.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True):
        ...     warnings.simplefilter("always")
        ...     fitting_normalization(([0.5] * 3, [0.2] * 3), torch.zeros(4, 12), "f", "n")
        >>> fitting_normalization(([0.5], [0.2]), torch.zeros(4, 12), "f", "n")
        ([0.5], [0.2])
    """
    if found is None:
        return None
    try:
        pixel_inputs(inputs[:1], found)
    except ValueError as error:
        rank_zero_warn(
            f"{owner}: the Dataset applies Normalize(mean={found[0]}, std={found[1]}), but it "
            f"does not fit the inputs ({error}); they are measured as given, in their own "
            f"units. Pass {fix}=(mean, std) that fits them, or {fix}=None to say the units "
            "are meant.",
            category=UnknownNormalizationWarning,
        )
        return None
    return found


def auto_normalization(found: Stats | None, inputs: Tensor, owner: str) -> Stats | None:
    """What ``normalization="auto"`` undoes: ``found`` when it fits ``inputs``
    (:func:`fitting_normalization`, which says so when it does not); with nothing found, a word
    when image inputs are not ``[0, 1]`` pixels. One rule for the callbacks and
    :func:`~lightning_dataprops.measure_dataset`.

    Example:
        >>> auto_normalization(None, torch.rand(4, 3, 2, 2), "f") is None
        True
    """
    if found is None:
        _warn_if_not_pixels(inputs, owner)
        return None
    return fitting_normalization(found, inputs, owner, "normalization")


def _warn_if_not_pixels(inputs: Tensor, owner: str) -> None:
    """With image inputs outside ``[0, 1]`` and no normalisation known, say once that the values
    are in the inputs' own units and how to state the normalisation (nothing for non-images,
    or for non-finite inputs: the measurement refuses those with its own message)."""
    if inputs.ndim < 3 or inputs.numel() == 0:
        return
    low, high = (float(v) for v in torch.aminmax(inputs))  # NaN and inf propagate
    if not (math.isfinite(low) and math.isfinite(high)):
        return
    if low >= -PIXEL_RANGE_TOLERANCE and high <= 1 + PIXEL_RANGE_TOLERANCE:
        return
    rank_zero_warn(
        f"{owner}: the image inputs lie in [{low:.4g}, {high:.4g}], not in [0, 1], and no "
        "Normalize(mean, std) was found in the Dataset (only objects whose class name contains "
        "Normalize, with .mean and .std, are: a lambda or a class of another name is not; "
        "uint8 images stay in 0-255). d_data and K_F are "
        "therefore in these input units, not the pixel units of the references and of "
        "`dataprops measure`. Pass normalization=(mean, std) (the values your transform uses; "
        "(0.0, 1 / 255) for 0-255 pixels) to measure pixels, or normalization=None to keep the "
        "input units and silence this warning.",
        category=UnknownNormalizationWarning,
    )
