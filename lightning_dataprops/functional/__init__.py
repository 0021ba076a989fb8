"""Functional interface: pure tensor math, no Lightning.

Every function takes tensors (or numpy arrays) and returns a small typed result object.
"""

from lightning_dataprops.functional.dataset_properties import dataset_properties
from lightning_dataprops.functional.duplicates import DuplicateReport
from lightning_dataprops.functional.intrinsic_dimension import intrinsic_dimension
from lightning_dataprops.functional.knn import NeighborGraph, knn_search
from lightning_dataprops.functional.label_sharpness import LabelConflictWarning, label_sharpness
from lightning_dataprops.functional.results import (
    DatasetProperties,
    IntrinsicDimensionResult,
    LabelSharpnessResult,
    SharpPair,
)

__all__ = [
    "DatasetProperties",
    "DuplicateReport",
    "IntrinsicDimensionResult",
    "LabelConflictWarning",
    "LabelSharpnessResult",
    "NeighborGraph",
    "SharpPair",
    "dataset_properties",
    "intrinsic_dimension",
    "knn_search",
    "label_sharpness",
]
