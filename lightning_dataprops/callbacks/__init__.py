"""Lightning callbacks: pick data, place hooks, schedule the work, and log. No math here.

Each callback does one job and is usable alone; they talk only through
``trainer.callback_metrics`` under the names of :mod:`lightning_dataprops.names`.
:func:`default_callbacks` returns the default set.
"""

from lightning_dataprops.callbacks._base import (
    DataPropsCallback,
    DataPropsOptions,
    MeasurementFailedWarning,
)
from lightning_dataprops.callbacks._budget import overhead_seconds
from lightning_dataprops.callbacks.dataset_properties import (
    DatasetPropertiesMonitor,
    EstimatorsDisagreeWarning,
    SharpLabelsWarning,
)
from lightning_dataprops.callbacks.defaults import default_callbacks
from lightning_dataprops.callbacks.forecast import ScalingForecastMonitor
from lightning_dataprops.callbacks.representation_id import RepresentationIDMonitor
from lightning_dataprops.callbacks.robustness import RobustnessMonitor
from lightning_dataprops.data.find_normalize import UnknownNormalizationWarning

__all__ = [
    "DataPropsCallback",
    "DataPropsOptions",
    "DatasetPropertiesMonitor",
    "EstimatorsDisagreeWarning",
    "MeasurementFailedWarning",
    "RepresentationIDMonitor",
    "RobustnessMonitor",
    "ScalingForecastMonitor",
    "SharpLabelsWarning",
    "UnknownNormalizationWarning",
    "default_callbacks",
    "overhead_seconds",
]
