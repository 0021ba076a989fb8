"""Cross-cutting settings in one place, the way scikit-learn's ``config_context`` works.

The working-memory bound of every neighbour search and whether long work shows a progress bar
are set once, for a block of code or for the process, instead of being passed to every call::

    with config_context(memory_budget_mb=128, progress=True):
        props = dataset_properties(x, y)   # every search inside uses 128 MiB and shows a bar

A function's own ``memory_budget_mb=`` or ``progress=`` argument still overrides the setting for
that call; ``None`` (every function's default) means "the current setting". The settings live in
a :class:`contextvars.ContextVar`, so threads and asyncio tasks each see their own.

Callbacks take the same settings from :class:`~lightning_dataprops.callbacks.DataPropsOptions`;
their ``progress=None`` follows the trainer's progress bar.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from lightning_dataprops.functional.constants import DEFAULT_MEMORY_BUDGET_MB

__all__ = [
    "DataPropsConfig",
    "config_context",
    "get_config",
    "resolve_memory_budget",
    "resolve_progress",
    "set_config",
]


def check_memory_budget(value: float) -> float:
    """``value`` as a float, or a ``ValueError`` saying what a memory budget must be."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"memory_budget_mb must be a number of MiB, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"memory_budget_mb must be a finite number of MiB above 0, got {value!r}; "
            f"the default is {DEFAULT_MEMORY_BUDGET_MB:g}"
        )
    return float(value)


@dataclass(frozen=True)
class DataPropsConfig:
    """The settings in force.

    Attributes:
        memory_budget_mb: bound on the working memory of one block of a neighbour search, in
            MiB (> 0). No ``n x n`` matrix is ever built whatever the bound.
        progress: show tqdm progress bars on stderr during long searches.
    """

    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB
    progress: bool = False

    def __post_init__(self) -> None:
        check_memory_budget(self.memory_budget_mb)
        if not isinstance(self.progress, bool):
            raise TypeError(f"progress must be True or False, got {self.progress!r}")


_CONFIG: ContextVar[DataPropsConfig] = ContextVar(
    "dataprops_config",
    default=DataPropsConfig(),  # noqa: B039 (frozen: never mutated)
)


def get_config() -> DataPropsConfig:
    """The settings in force in this context.

    Example:
        >>> from lightning_dataprops import get_config
        >>> get_config().memory_budget_mb
        512.0
    """
    return _CONFIG.get()


def set_config(*, memory_budget_mb: float | None = None, progress: bool | None = None) -> None:
    """Change the settings for the rest of this context (the process, unless called inside a
    :func:`config_context` block or another thread). Arguments left ``None`` keep their value.

    Raises:
        ValueError: ``memory_budget_mb`` is not a finite number above 0.
        TypeError: ``progress`` is not a bool.
    """
    _CONFIG.set(_updated(memory_budget_mb, progress))


@contextmanager
def config_context(
    *, memory_budget_mb: float | None = None, progress: bool | None = None
) -> Iterator[DataPropsConfig]:
    """Settings for the block inside ``with``; the previous ones come back on leaving it, even
    on an exception. Arguments left ``None`` keep their value. Yields the settings in force.

    Raises:
        ValueError: ``memory_budget_mb`` is not a finite number above 0.
        TypeError: ``progress`` is not a bool.

    Example:
        >>> from lightning_dataprops import config_context, get_config
        >>> with config_context(memory_budget_mb=64):
        ...     get_config().memory_budget_mb
        64.0
        >>> get_config().memory_budget_mb
        512.0
    """
    token = _CONFIG.set(_updated(memory_budget_mb, progress))
    try:
        yield _CONFIG.get()
    finally:
        _CONFIG.reset(token)


def _updated(memory_budget_mb: float | None, progress: bool | None) -> DataPropsConfig:
    changes: dict[str, float | bool] = {}
    if memory_budget_mb is not None:
        changes["memory_budget_mb"] = check_memory_budget(memory_budget_mb)
    if progress is not None:
        changes["progress"] = progress
    return replace(_CONFIG.get(), **changes)  # type: ignore[arg-type]


def resolve_memory_budget(value: float | None) -> float:
    """A call's ``memory_budget_mb``: its own value, or the setting in force when ``None``."""
    return get_config().memory_budget_mb if value is None else check_memory_budget(value)


def resolve_progress(value: bool | None) -> bool:
    """A call's ``progress``: its own value, or the setting in force when ``None``."""
    return get_config().progress if value is None else bool(value)
