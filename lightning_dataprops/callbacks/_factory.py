"""The ``LIGHTNING_DATAPROPS`` factory clash: own state keys, stepping aside for the user's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info


class FactoryClash:
    """``from_factory``/``active``, the state key, and :meth:`step_aside_for_user_callback`.

    Subclasses that can appear several times in one trainer override ``_state_key_parts``.
    """

    from_factory: bool = False
    """Added by the ``LIGHTNING_DATAPROPS`` entry point (then it has its own state key)."""
    active: bool = True
    """``False`` when a factory callback steps aside for one the user attached."""

    if TYPE_CHECKING:

        def _generate_state_key(self, **kwargs: Any) -> str: ...  # from Lightning's Callback

    @property
    def state_key(self) -> str:
        key = self._state_key_parts()
        if self.from_factory:
            key["factory"] = "LIGHTNING_DATAPROPS"
        return self._generate_state_key(**key) if key else type(self).__qualname__

    def _state_key_parts(self) -> dict[str, Any]:
        return {}

    def step_aside_for_user_callback(self, trainer: pl.Trainer) -> bool:
        """A factory callback yields to a user's callback of the same type; ``True`` if it did."""
        if not self.from_factory:
            return False
        for callback in getattr(trainer, "callbacks", []):
            if type(callback) is type(self) and not getattr(callback, "from_factory", False):
                if self.active:
                    rank_zero_info(
                        f"{type(self).__name__} from LIGHTNING_DATAPROPS=1 is not used: the "
                        "trainer already has one you attached, which is used instead."
                    )
                self.active = False
                return True
        return False
