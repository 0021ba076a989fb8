"""The one number formatter and the one label formatter of every finding, picture and report.

Every presentation module (the pictures, the markdown the loggers receive, the W&B captions, the
text and HTML reports) spells numbers and labels through these two functions, so that a value
reads the same wherever it is shown.

Example:
    >>> format_number(0.123456), format_number(float("inf")), format_number(None)
    ('0.1235', 'inf', 'n/a')
    >>> format_number(2.5, fixed=True), format_number(1234.5678, digits=3)
    ('2.5000', '1.23e+03')
    >>> format_label(3), format_label(0.30000000000000004), format_label("cat")
    ('3', '0.3', 'cat')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_label", "format_number", "markdown_cell"]


def format_number(value: float | int | None, digits: int = 4, *, fixed: bool = False) -> str:
    """A number for people: ``digits`` significant digits (``fixed``: ``digits`` decimals, for
    aligned columns); integers as they are; ``inf``, ``-inf``, ``nan`` spelled out; ``None`` as
    ``"n/a"``.

    Example:
        >>> format_number(1 / 3, 3), format_number(7), format_number(float("nan"), fixed=True)
        ('0.333', '7', 'nan')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool) or (isinstance(value, int) and not fixed):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return f"{number:.{digits}f}" if fixed else f"{number:.{digits}g}"


def format_label(value: Any) -> str:
    """A target label for people: class ids as they are, regression targets with four
    significant digits (each value of a vector target, in parentheses), anything else by
    ``str``.

    Example:
        >>> format_label(1), format_label(2.0), format_label(float("inf"))
        ('1', '2', 'inf')
        >>> format_label((0.123456, -2.0)), format_label(0.21693679690361023)
        ('(0.1235, -2)', '0.2169')
    """
    if isinstance(value, tuple | list):
        return "(" + ", ".join(format_label(part) for part in value) + ")"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return format_number(value)


def markdown_cell(value: Any) -> str:
    """``value`` as text for a markdown table cell (``|`` escaped).

    Example:
        >>> print(markdown_cell("a|b"))
        a\\|b
    """
    return str(value).replace("|", "\\|")
