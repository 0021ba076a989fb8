"""Opt-in ``lightning.pytorch.callbacks_factory`` entry point.

Lightning adds the callbacks this factory returns to every ``Trainer``. It returns a
:class:`DataPropsMonitor` only when the environment variable ``LIGHTNING_DATAPROPS`` is set to
``1``/``true``/``yes``/``on``, so installing the package changes nothing by itself.
"""

from __future__ import annotations

import os

from lightning.pytorch.callbacks import Callback

ENVIRONMENT_VARIABLE = "LIGHTNING_DATAPROPS"


def callbacks_factory() -> list[Callback]:
    """``[DataPropsMonitor()]`` when ``LIGHTNING_DATAPROPS`` asks for it, else ``[]``.

    Example:
        >>> import os
        >>> from lightning_dataprops.callbacks.factory import callbacks_factory
        >>> os.environ.pop("LIGHTNING_DATAPROPS", None) and None
        >>> callbacks_factory()
        []
    """
    if os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() not in {"1", "true", "yes", "on"}:
        return []
    from lightning_dataprops.callbacks.data_props_monitor import DataPropsMonitor

    return [DataPropsMonitor()]
