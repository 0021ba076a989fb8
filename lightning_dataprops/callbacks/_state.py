"""Versioned checkpoint state: a state of another version is ignored with a warning."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.utilities import rank_zero_warn


class VersionedState:
    """Subclasses set ``STATE_VERSION`` and implement ``_get_state``/``_set_state``.

    Example:
        >>> class Counter(VersionedState):
        ...     STATE_VERSION = 2
        ...     def _get_state(self):
        ...         return {"count": 3}
        >>> Counter().state_dict()
        {'version': 2, 'count': 3}
    """

    STATE_VERSION = 1

    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        del state

    def state_dict(self) -> dict[str, Any]:
        return {"version": self.STATE_VERSION, **self._get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        version = state_dict.get("version")
        if version != self.STATE_VERSION:
            rank_zero_warn(
                f"{type(self).__name__}: the checkpoint holds state version {version!r}, this "
                f"version reads {self.STATE_VERSION}; the state is ignored and recomputed."
            )
            return
        self._set_state(state_dict)
