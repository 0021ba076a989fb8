"""Find the ``Normalize(mean, std)`` a Dataset applies, so measurements can work in pixel space."""

from __future__ import annotations

from typing import Any, Literal

from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from lightning_dataprops.data.find_normalize import UnknownNormalizationWarning, find_normalize
from lightning_dataprops.data.normalization import Normalization, check_normalization
from lightning_dataprops.functional.attacks import pixel_space

NormalizationOption = Normalization | Literal["auto"] | None
"""``"auto"`` (find a ``Normalize`` in the Dataset), ``(mean, std)`` (stated), or ``None``
(the inputs are pixels already, or their own units are wanted)."""

PIXEL_RANGE_TOLERANCE = 1e-3
"""How far outside ``[0, 1]`` image inputs may lie before they are not read as pixels."""


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


def to_pixels(inputs: Tensor, stats: tuple[list[float], list[float]]) -> Tensor:
    """Undo ``Normalize(mean, std)`` on ``(n, C, ...)`` inputs (the functional layer's formula)."""
    return pixel_space.to_pixels(inputs, *stats)
