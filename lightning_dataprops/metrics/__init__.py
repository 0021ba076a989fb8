"""torchmetrics ``Metric`` classes over the functional layer.

Each metric keeps a bounded, seeded reservoir of the samples it was updated with (DDP sync
concatenates the ranks' reservoirs) and computes the exact estimate on it; the detailed result
of the last ``compute`` is in ``metric.last_result``.
"""

from lightning_dataprops.metrics.intrinsic_dimension import IntrinsicDimension
from lightning_dataprops.metrics.label_sharpness import LabelSharpness
from lightning_dataprops.metrics.reservoir import ReservoirMetric

__all__ = ["IntrinsicDimension", "LabelSharpness", "ReservoirMetric"]
