"""Lightning callbacks: pick data, place hooks, schedule the work, and log. No math here."""

from lightning_dataprops.callbacks.data_props_monitor import DataPropsMonitor, SharpLabelsWarning

__all__ = ["DataPropsMonitor", "SharpLabelsWarning"]
