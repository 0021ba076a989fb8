"""Lightning callbacks: pick data, place hooks, schedule the work, and log. No math here.

Each callback does one job and is usable alone; they talk only through
``trainer.callback_metrics`` under the names of :mod:`lightning_dataprops.names`.
:func:`default_callbacks` returns the default set.
"""

from typing import TYPE_CHECKING, Any

from lightning_dataprops.callbacks._base import (
    DataPropsCallback,
    DataPropsOptions,
    MeasurementFailedWarning,
)
from lightning_dataprops.callbacks.dataset_properties import (
    DatasetPropertiesMonitor,
    SharpLabelsWarning,
)
from lightning_dataprops.callbacks.defaults import default_callbacks
from lightning_dataprops.callbacks.forecast import ScalingForecastMonitor
from lightning_dataprops.callbacks.representation_id import RepresentationIDMonitor

if TYPE_CHECKING:
    from lightning_dataprops.callbacks.robustness import RobustnessMonitor


def __getattr__(name: str) -> Any:
    # TODO(merge): import RobustnessMonitor directly once helper B's module is merged.
    if name == "RobustnessMonitor":
        from lightning_dataprops.callbacks.robustness import RobustnessMonitor

        return RobustnessMonitor
    raise AttributeError(f"module 'lightning_dataprops.callbacks' has no attribute {name!r}")


__all__ = [
    "DataPropsCallback",
    "DataPropsOptions",
    "DatasetPropertiesMonitor",
    "MeasurementFailedWarning",
    "RepresentationIDMonitor",
    "RobustnessMonitor",
    "ScalingForecastMonitor",
    "SharpLabelsWarning",
    "default_callbacks",
]
