"""An open set of intrinsic-dimension estimators, each a function of one neighbours object.

Layout: one estimator per file (:mod:`.mle`, :mod:`.twonn`, ...), each ending in one
:func:`register_estimator` line; :mod:`.neighbours` builds the :class:`Neighbours` object they all
consume (certified distances, indices, the points, the duplicates) from one exact pass;
:mod:`.compute` runs the chosen ones on it and one bootstrap for all of them.

A new estimator is a new file here plus its import below (or, outside the package, one
``register_estimator(name, fn)`` call): ``dataset_properties(x, estimators=(name,))`` then
computes it from the same pass, ``props.estimates[name]`` holds it, and
``DatasetPropertiesMonitor(estimators=(name,))`` logs it as ``dataprops/d_data_<name>``.

Example:
    >>> from lightning_dataprops.functional.estimators import available_estimators
    >>> {"mle", "twonn", "gride", "abid"} <= set(available_estimators())
    True
"""

from lightning_dataprops.functional.estimators import (  # noqa: F401  (registration)
    abid,
    calibrated,
    gride,
    mle,
    twonn,
)
from lightning_dataprops.functional.estimators.compute import (
    bootstrap_resamples,
    chosen_estimators,
    estimate_all,
    estimator_results,
    neighbours_needed,
)
from lightning_dataprops.functional.estimators.neighbours import Neighbours, unique_neighbours
from lightning_dataprops.functional.estimators.registry import (
    Estimate,
    EstimatorFn,
    EstimatorSpec,
    available_estimators,
    get_estimator,
    register_estimator,
    unregister_estimator,
)

__all__ = [
    "Estimate",
    "EstimatorFn",
    "EstimatorSpec",
    "Neighbours",
    "available_estimators",
    "bootstrap_resamples",
    "chosen_estimators",
    "estimate_all",
    "estimator_results",
    "get_estimator",
    "neighbours_needed",
    "register_estimator",
    "unique_neighbours",
    "unregister_estimator",
]
