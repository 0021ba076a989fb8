"""Warnings that every fit shows: Python's per-location registry would silence later fits."""

from __future__ import annotations

import sys
import warnings

from lightning.pytorch.utilities import rank_zero_only

__all__ = ["warn_each_time"]


def warn_each_time(
    message: str, category: type[Warning] = UserWarning, stacklevel: int = 2
) -> None:
    """Warn from rank zero, each time: in every fit (and run) that meets the problem.

    ``warnings.warn`` shows an identical message once per code location and process, so a
    later fit reusing the callbacks (cross-validation, sweeps, notebooks) that meets the same
    problem would stay silent. This warning bypasses that registry; the filters a user set
    (``ignore``, ``error``, ``once``) still apply. Callers that should say a thing once per fit
    keep their own per-fit record of what they said. ``stacklevel`` as in ``warnings.warn``.

    Example:
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("default")
        ...     for fit in range(2):
        ...         warn_each_time("d_repr failed")
        >>> len(caught)
        2
    """
    if getattr(rank_zero_only, "rank", 0) != 0:
        return
    frame = sys._getframe(1)
    for _ in range(stacklevel - 1):
        if frame.f_back is None:
            break
        frame = frame.f_back
    warnings.warn_explicit(
        message,
        category,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=frame.f_globals.get("__name__"),
        registry=None,
        module_globals=frame.f_globals,
    )
