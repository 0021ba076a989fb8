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
from lightning_dataprops.functional import (
    DatasetProperties,
    IntrinsicDimensionResult,
    LabelSharpnessResult,
    dataset_properties,
    intrinsic_dimension,
    label_sharpness,
)
from lightning_dataprops.paper_api import (
    compute_intrinsic_datadim,
    compute_intrinsic_reprdim,
    compute_labelsharpness,
)

if TYPE_CHECKING:
    from lightning_dataprops.callbacks import DataPropsMonitor


def __getattr__(name: str) -> Any:
    # The callback pulls in Lightning: import it on first use only.
    if name == "DataPropsMonitor":
        from lightning_dataprops.callbacks import DataPropsMonitor

        return DataPropsMonitor
    raise AttributeError(f"module 'lightning_dataprops' has no attribute {name!r}")


try:
    __version__ = version("lightning-dataprops")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "DataPropsMonitor",
    "DatasetProperties",
    "IntrinsicDimensionResult",
    "LabelSharpnessResult",
    "Sample",
    "__version__",
    "compute_intrinsic_datadim",
    "compute_intrinsic_reprdim",
    "compute_labelsharpness",
    "dataset_properties",
    "intrinsic_dimension",
    "label_sharpness",
    "sample_dataset",
]
