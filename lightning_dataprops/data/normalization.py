"""A ``Normalize(mean, std)`` undone: the pixel space every fit-start value is measured in.

``K_F`` is ``1 /`` a distance between inputs, so it changes with the inputs' units: a
``Normalize(mean, std)`` with ``std = 0.25`` makes every distance 4 times longer and ``K_F`` 4
times smaller, and a per-channel one also changes ``d_data`` (it stretches the channels
unequally). The shipped references and ``dataprops measure`` (which reads uint8 files as
``pixels / 255``) are in ``[0, 1]`` pixel space; :func:`pixel_inputs` brings normalised inputs
back there, with the one formula of
:func:`~lightning_dataprops.functional.attacks.pixel_space.to_pixels`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from lightning_dataprops.functional.attacks.pixel_space import to_pixels

__all__ = ["Normalization", "check_normalization", "pixel_inputs"]

Normalization = tuple[Sequence[float] | float, Sequence[float] | float]
"""``(mean, std)`` of a ``Normalize``, each one number or one per channel."""


def pixel_inputs(inputs: torch.Tensor, normalization: Normalization | None) -> torch.Tensor:
    """``inputs`` with ``Normalize(mean, std)`` undone (``x * std + mean``, per channel: dimension
    1 of ``(n, C, ...)`` inputs); ``inputs`` themselves for ``normalization=None``.

    Args:
        inputs: ``(n, C, ...)`` normalised inputs (``(n, d)``: one statistic per feature).
        normalization: ``(mean, std)``, each one number or one per channel; ``std > 0``.

    Raises:
        ValueError: ``normalization`` is not a ``(mean, std)`` pair, has another number of
            values than the inputs have channels, or a ``std <= 0``.

    Example:
        >>> x = torch.zeros(2, 3, 4, 4)
        >>> pixel_inputs(x, ((0.5, 0.4, 0.3), (0.2, 0.2, 0.2)))[0, :, 0, 0].tolist()
        [0.5, 0.4000000059604645, 0.30000001192092896]
    """
    if normalization is None:
        return inputs
    mean, std = check_normalization(normalization)
    if inputs.ndim < 2:
        raise ValueError(
            f"normalization=(mean, std) needs (n, C, ...) inputs, got shape {tuple(inputs.shape)}."
        )
    channels = int(inputs.shape[1])
    for name, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise ValueError(
                f"normalization: {name} has {len(values)} values but the inputs have {channels} "
                f"channels (dimension 1 of shape {tuple(inputs.shape)}); give one value, or one "
                "per channel, as the Normalize(mean, std) of the Dataset does."
            )
    # Per-channel normalisation changes colour balance, which no global rescaling undoes:
    # measure the pixels, as the references and the command line do.
    return to_pixels(inputs, mean, std)


def check_normalization(normalization: Any) -> tuple[list[float], list[float]]:
    """``(mean, std)`` as two lists of floats; a clear ``ValueError`` for anything else.

    Each of ``mean`` and ``std`` is a number, a sequence or a tensor of finite numbers, and every
    ``std`` is ``> 0``.

    Example:
        >>> check_normalization((0.5, [0.25]))
        ([0.5], [0.25])
    """
    if isinstance(normalization, (str, bytes)) or not isinstance(normalization, Sequence):
        raise ValueError(
            "normalization must be (mean, std), e.g. ((0.4914, 0.4822, 0.4465), (0.2470, "
            f"0.2435, 0.2616)) or (0.5, 0.25), got {normalization!r}."
        )
    if len(normalization) != 2:
        raise ValueError(f"normalization must be a pair (mean, std), got {normalization!r}.")
    stats: list[list[float]] = []
    for name, value in zip(("mean", "std"), normalization, strict=True):
        try:
            values = (
                [float(v) for v in value.detach().flatten().tolist()]
                if isinstance(value, torch.Tensor)
                else [float(value)]
                if isinstance(value, (int, float))
                else [float(v) for v in value]
            )
        except (TypeError, ValueError):
            raise ValueError(
                f"normalization: {name} must be a number or a sequence of numbers, got {value!r}."
            ) from None
        if not values or not all(math.isfinite(v) for v in values):
            raise ValueError(f"normalization: {name} must hold finite numbers, got {values}.")
        stats.append(values)
    if any(v <= 0 for v in stats[1]):
        raise ValueError(f"normalization: std must be > 0, got {stats[1]}.")
    return stats[0], stats[1]
