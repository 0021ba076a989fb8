"""lightning-dataprops: how hard is your dataset to learn, and why.

Measures the intrinsic properties of a training set that govern generalization
(Konz & Mazurowski, ICLR 2024): the intrinsic dimension of the data (d_data), its label
sharpness (K_F) and the intrinsic dimension of learned representations (d_repr).

Example:
    >>> import torch
    >>> from lightning_dataprops import dataset_properties
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(800, 4, generator=g) @ torch.randn(4, 64, generator=g)
    >>> props = dataset_properties(x, (x[:, 0] > 0).long(), k=10)
    >>> 3.0 < props.d_data < 5.0
    True
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from lightning_dataprops.data import Sample, sample_dataset
from lightning_dataprops.dataset_report import DatasetReport, measure_dataset
from lightning_dataprops.functional import (
    DatasetProperties,
    Estimate,
    IntrinsicDimensionResult,
    LabelSharpnessResult,
    Neighbours,
    available_estimators,
    dataset_properties,
    intrinsic_dimension,
    label_sharpness,
    register_estimator,
)
from lightning_dataprops.functional.config import config_context, get_config, set_config
from lightning_dataprops.paper_api import (
    compute_intrinsic_datadim,
    compute_intrinsic_reprdim,
    compute_labelsharpness,
)
from lightning_dataprops.references import SharpnessCheck, check_label_sharpness

if TYPE_CHECKING:
    from lightning_dataprops.callbacks import (
        DataPropsOptions,
        DatasetPropertiesMonitor,
        RepresentationIDMonitor,
        RobustnessMonitor,
        ScalingForecastMonitor,
        default_callbacks,
    )

_CALLBACKS = (
    "DataPropsOptions",
    "DatasetPropertiesMonitor",
    "RepresentationIDMonitor",
    "RobustnessMonitor",
    "ScalingForecastMonitor",
    "default_callbacks",
)


def __getattr__(name: str) -> Any:
    # The callbacks pull in Lightning: import them on first use only.
    if name in _CALLBACKS:
        from lightning_dataprops import callbacks

        return getattr(callbacks, name)
    raise AttributeError(f"module 'lightning_dataprops' has no attribute {name!r}")


try:
    __version__ = version("lightning-dataprops")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "DataPropsOptions",
    "DatasetProperties",
    "DatasetPropertiesMonitor",
    "DatasetReport",
    "Estimate",
    "IntrinsicDimensionResult",
    "LabelSharpnessResult",
    "Neighbours",
    "RepresentationIDMonitor",
    "RobustnessMonitor",
    "Sample",
    "ScalingForecastMonitor",
    "SharpnessCheck",
    "__version__",
    "available_estimators",
    "check_label_sharpness",
    "compute_intrinsic_datadim",
    "compute_intrinsic_reprdim",
    "compute_labelsharpness",
    "config_context",
    "dataset_properties",
    "default_callbacks",
    "get_config",
    "intrinsic_dimension",
    "label_sharpness",
    "measure_dataset",
    "register_estimator",
    "sample_dataset",
    "set_config",
]
