"""Failure isolation: a measurement that raises is warned about once and disabled for the fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from lightning_dataprops._warnings import warn_each_time

T = TypeVar("T")


class MeasurementFailedWarning(UserWarning):
    """A measurement raised during training: it is disabled for the rest of the fit."""


class FailureIsolation:
    """``guarded(what, fn, ...)``: run one measurement; ``disabled`` holds what failed this fit.

    Example:
        >>> import warnings
        >>> isolation = FailureIsolation()
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     isolation.guarded("division", lambda: 1 / 0)
        >>> isolation.disabled
        {'division': 'ZeroDivisionError: division by zero'}
        >>> isolation.reset_failures(); isolation.disabled
        {}
    """

    disabled: dict[str, str]
    """Measurement name -> the reason it was disabled during this fit."""

    def reset_failures(self) -> None:
        """A new fit starts: every measurement is enabled again."""
        self.disabled = {}

    def guarded(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run one measurement; on failure warn once, disable it and return ``None``.

        A failure inside a measurement must never end the user's training run.
        """
        if not hasattr(self, "disabled"):
            self.disabled = {}
        if what in self.disabled:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            self.disabled[what] = reason
            warn_each_time(
                f"{type(self).__name__}: {what} failed and is disabled for the rest of this fit "
                f"(a later fit tries again); training continues. Reason: {reason}",
                MeasurementFailedWarning,
            )
            return None
