"""Opt-in ``lightning.pytorch.callbacks_factory`` entry point.

Lightning adds the callbacks this factory returns to every ``Trainer``. It returns
:func:`~lightning_dataprops.default_callbacks` only when the environment variable
``LIGHTNING_DATAPROPS`` is set to ``1``/``true``/``yes``/``on``, so installing the package
changes nothing by itself.

These callbacks have their own checkpoint state keys, so a callback of the same type that you
attach yourself does not clash with them (Lightning refuses two stateful callbacks with one
key); in ``setup`` a factory callback steps aside for yours, with an info line.
"""

from __future__ import annotations

import os

from lightning.pytorch.callbacks import Callback

ENVIRONMENT_VARIABLE = "LIGHTNING_DATAPROPS"


def enabled() -> bool:
    """Whether ``LIGHTNING_DATAPROPS`` asks for the callbacks."""
    return os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def callbacks_factory() -> list[Callback]:
    """``default_callbacks()`` when ``LIGHTNING_DATAPROPS`` asks for them, else ``[]``.

    Example:
        >>> import os
        >>> from lightning_dataprops.callbacks.factory import callbacks_factory
        >>> os.environ.pop("LIGHTNING_DATAPROPS", None) and None
        >>> callbacks_factory()
        []
    """
    if not enabled():
        return []
    from lightning_dataprops.callbacks._base import DataPropsCallback
    from lightning_dataprops.callbacks.defaults import default_callbacks

    callbacks = default_callbacks()
    for callback in callbacks:
        if isinstance(callback, DataPropsCallback):
            callback.from_factory = True
    return callbacks
