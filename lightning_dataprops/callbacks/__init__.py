"""Lightning callbacks: pick data, place hooks, schedule the work, and log. No math here."""

from lightning_dataprops.callbacks._base import (
    DataPropsCallback,
    DataPropsOptions,
    MeasurementFailedWarning,
)
from lightning_dataprops.callbacks.data_props_monitor import DataPropsMonitor, SharpLabelsWarning
from lightning_dataprops.callbacks.robustness import RobustnessMonitor

__all__ = [
    "DataPropsCallback",
    "DataPropsMonitor",
    "DataPropsOptions",
    "MeasurementFailedWarning",
    "RobustnessMonitor",
    "SharpLabelsWarning",
]
