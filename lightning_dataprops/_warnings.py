"""Warnings that every fit shows: Python's per-location registry would silence later fits."""

from __future__ import annotations

import sys
import warnings

import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_only

__all__ = ["rank", "warn_each_time", "warn_from_rank_zero"]


def rank() -> int:
    """This process's rank: the initialised process group's, else Lightning's (which torchrun and
    SLURM set from the environment), else 0."""
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return int(getattr(rank_zero_only, "rank", 0))


def warn_from_rank_zero(
    message: str, category: type[Warning] = UserWarning, stacklevel: int = 2
) -> None:
    """``warnings.warn`` on rank zero only (:func:`rank`): a measurement that every DDP process
    repeats on the same data says its finding once, not once per process. ``stacklevel`` as in
    ``warnings.warn``.

    Example:
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_from_rank_zero("two labels on one image")
        >>> len(caught)
        1
    """
    if rank() == 0:
        warnings.warn(message, category, stacklevel=stacklevel + 1)


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
    if rank() != 0:
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
