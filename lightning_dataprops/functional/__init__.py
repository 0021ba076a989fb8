"""Functional interface: pure tensor math, no Lightning.

Every function takes tensors (or numpy arrays) and returns a small typed result object. The
intrinsic-dimension estimators live one per file in :mod:`.estimators` (a new one is a file there
plus one ``register_estimator`` line), all fed by the same exact neighbour pass.
"""

from lightning_dataprops.functional._validation import ByteImagesWarning, TooFewSamplesError
from lightning_dataprops.functional.attacks import (
    BoundAttack,
    RobustnessResult,
    fgsm,
    make_attack,
    pgd,
    robustness,
)
from lightning_dataprops.functional.config import config_context, get_config, set_config
from lightning_dataprops.functional.dataset_properties import dataset_properties
from lightning_dataprops.functional.duplicates import DuplicateReport
from lightning_dataprops.functional.estimators import (
    Estimate,
    Neighbours,
    available_estimators,
    register_estimator,
)
from lightning_dataprops.functional.intrinsic_dimension import intrinsic_dimension
from lightning_dataprops.functional.knn import NeighborGraph, knn_search
from lightning_dataprops.functional.label_sharpness import label_sharpness
from lightning_dataprops.functional.results import (
    DatasetProperties,
    IntrinsicDimensionResult,
    LabelSharpnessResult,
    RobustSharpness,
    SharpPair,
)
from lightning_dataprops.functional.robust_sharpness import LabelConflictWarning, robust_sharpness
from lightning_dataprops.functional.scaling_law import (
    Calibration,
    ScalingForecast,
    fit_constant,
    forecast,
    loss_ratio,
    samples_for_target,
    scaling_bound,
)
from lightning_dataprops.functional.targets import FloatClassIdsWarning, Targets, normalize_targets

__all__ = [
    "BoundAttack",
    "ByteImagesWarning",
    "Calibration",
    "DatasetProperties",
    "DuplicateReport",
    "Estimate",
    "FloatClassIdsWarning",
    "IntrinsicDimensionResult",
    "LabelConflictWarning",
    "LabelSharpnessResult",
    "NeighborGraph",
    "Neighbours",
    "RobustSharpness",
    "RobustnessResult",
    "ScalingForecast",
    "SharpPair",
    "Targets",
    "TooFewSamplesError",
    "available_estimators",
    "config_context",
    "dataset_properties",
    "fgsm",
    "fit_constant",
    "forecast",
    "get_config",
    "intrinsic_dimension",
    "knn_search",
    "label_sharpness",
    "loss_ratio",
    "make_attack",
    "normalize_targets",
    "pgd",
    "register_estimator",
    "robust_sharpness",
    "robustness",
    "samples_for_target",
    "scaling_bound",
    "set_config",
]
