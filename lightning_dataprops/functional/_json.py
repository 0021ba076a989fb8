"""The one JSON-float helper: JSON has no inf / nan, so they are spelled as strings."""

from __future__ import annotations

import math

__all__ = ["json_float"]


def json_float(value: float | None) -> float | str | None:
    """``value`` unchanged when finite (or None), else ``"inf"``, ``"-inf"`` or ``"nan"``.

    Example:
        >>> json_float(1.5), json_float(float("inf")), json_float(float("nan")), json_float(None)
        (1.5, 'inf', 'nan', None)
    """
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"
