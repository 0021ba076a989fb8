"""Find the ``Normalize(mean, std)`` a Dataset applies, so measurements can work in pixel space."""

from __future__ import annotations

from typing import Any, Literal

from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from lightning_dataprops.data.find_normalize import find_normalize
from lightning_dataprops.data.normalization import Normalization, check_normalization
from lightning_dataprops.functional.attacks import pixel_space

NormalizationOption = Normalization | Literal["auto"] | None
"""``"auto"`` (find a ``Normalize`` in the Dataset), ``(mean, std)`` (stated), or ``None``
(the inputs are pixels already, or their own units are wanted)."""


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


def to_pixels(inputs: Tensor, stats: tuple[list[float], list[float]]) -> Tensor:
    """Undo ``Normalize(mean, std)`` on ``(n, C, ...)`` inputs (the functional layer's formula)."""
    return pixel_space.to_pixels(inputs, *stats)
