"""A bias-corrected intrinsic dimension: the statistics of one pass matched to reference families.

Every distance-based estimator reads low at high intrinsic dimension (the 70-dimensional cube
reads 35 by MLE at n = 2000), by an amount that depends on the sample size, on the boundary and
on the curvature: one correction curve cannot serve all data (mapping TwoNN through its
expectation on balls over-corrects on closed manifolds). So this estimator asks which kind of
data the sample looks like before correcting:

1. from the one exact pass (k = 20) it computes five statistics: ``log`` of TwoNN, of MLE at
   k = 5, 10 and 20, and of ABID (angle concentration, which a boundary or a density gradient
   changes differently from the distance ratios);
2. a table made offline (``scripts/calibrate_estimator.py``, shipped as ``calibration.json``)
   holds the mean of each statistic on synthetic reference families (uniform cubes and balls;
   spheres and flat tori, without boundary; isotropic Gaussians), for intrinsic dimensions
   1-80 and sample sizes 500-8000, interpolated linearly in ``log n`` and ``log d``;
3. for each family it finds the ``d`` whose expected statistics are closest to the observed
   ones (least squares in log units, tolerance 0.05 each), and returns the ``d`` of the family
   that fits best (:attr:`Estimate.details` holds every family's misfit and ``d``);
4. when no family fits (the best one misses by more than 0.10 RMS in log units: strongly
   non-uniform densities, very curved or noisy data), it returns raw TwoNN and says so in
   :attr:`Estimate.note`; sample sizes or dimensions outside the table are noted too.

Limits: it corrects the biases of those families; data unlike all of them get raw TwoNN.
Measured accuracy, method and sources: ``docs/methods.md`` and ``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from lightning_dataprops.functional.estimators.abid import mean_squared_cosines
from lightning_dataprops.functional.estimators.mle import mle_from_distances
from lightning_dataprops.functional.estimators.neighbours import Neighbours
from lightning_dataprops.functional.estimators.registry import Estimate, register_estimator
from lightning_dataprops.functional.estimators.twonn import twonn_from_distances

__all__ = ["FAMILIES", "FEATURES", "calibrated", "statistics"]

FAMILIES: tuple[str, ...] = ("cube", "ball", "sphere", "torus", "gaussian")
"""The synthetic reference families of the table."""
FEATURES: tuple[str, ...] = ("twonn", "mle_k5", "mle_k10", "mle", "abid")
"""The statistics matched (each the log of that estimator at k = 20)."""
K = 20
TOLERANCE = 0.05
"""Each statistic's tolerance, in log units, in the misfit."""
MAX_RMS_MISFIT = 0.10
"""No family fits when the best one misses by more than this RMS (log units): raw TwoNN."""
AMBIGUITY = 1.0
"""Families whose misfit (sum over the statistics of squared tolerances) is within this of the
best one's fit the data about as well: at n = 2000 the statistics' sampling noise moves two
families' misfits apart by about that much. Their ``d`` range widens the standard error and,
when it is wider than 10% of the estimate, is said in the note."""
_FINE = 2000


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    path = resources.files("lightning_dataprops.functional.estimators") / "calibration.json"
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def statistics(neighbours: Neighbours) -> dict[str, float]:
    """The log of each of :data:`FEATURES` from the neighbours (at least 20 each)."""
    d = neighbours.distances
    twonn, _, _ = twonn_from_distances(d[:, 0], d[:, 1])
    return {
        "twonn": math.log(twonn),
        "mle_k5": math.log(mle_from_distances(d[:, :5])[0]),
        "mle_k10": math.log(mle_from_distances(d[:, :10])[0]),
        "mle": math.log(mle_from_distances(d[:, :K])[0]),
        "abid": -math.log(float(mean_squared_cosines(neighbours, K).mean())),
    }


def _curves(family: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(log d on a fine grid, expected statistics (grid, features))`` of a family at ``n``."""
    table = _table()
    log_dims = np.log(np.asarray(table["dimensions"], dtype=np.float64))
    log_ns = np.log(np.asarray(table["sample_sizes"], dtype=np.float64))
    column = [table["features"].index(name) for name in FEATURES]
    log_n = min(max(math.log(n), log_ns[0]), log_ns[-1])
    upper = int(np.clip(np.searchsorted(log_ns, log_n), 1, len(log_ns) - 1))
    weight = (log_n - log_ns[upper - 1]) / (log_ns[upper] - log_ns[upper - 1])
    rows = table["table"][family]
    sizes = table["sample_sizes"]
    low = np.asarray(rows[str(sizes[upper - 1])]["mean"], dtype=np.float64)[:, column]
    high = np.asarray(rows[str(sizes[upper])]["mean"], dtype=np.float64)[:, column]
    mean = (1 - weight) * low + weight * high
    fine = np.linspace(log_dims[0], log_dims[-1], _FINE)
    return fine, np.stack([np.interp(fine, log_dims, mean[:, j]) for j in range(len(column))], 1)


def calibrated(neighbours: Neighbours) -> Estimate:
    """The family-matched, bias-corrected estimate (raw TwoNN where no family fits)."""
    observed = statistics(neighbours)
    values = np.array([observed[name] for name in FEATURES])
    n = neighbours.n
    fits: list[tuple[float, float, str]] = []
    for family in FAMILIES:
        grid, expected = _curves(family, n)
        misfits = (((expected - values) / TOLERANCE) ** 2).sum(axis=1)
        best = int(misfits.argmin())
        fits.append((float(misfits[best]), float(grid[best]), family))
    fits.sort()
    rms = {family: TOLERANCE * math.sqrt(fit / len(FEATURES)) for fit, _, family in fits}
    details = {f"misfit_{family}": value for family, value in rms.items()}
    twonn = twonn_from_distances(neighbours.distances[:, 0], neighbours.distances[:, 1])[0]
    details["twonn"] = twonn
    notes: list[str] = []
    sizes = _table()["sample_sizes"]
    if not sizes[0] <= n <= sizes[-1]:
        notes.append(
            f"n={n} is outside the calibrated sample sizes {sizes[0]}-{sizes[-1]}; the nearest "
            "one's table was used"
        )
    stderr_fraction = 1.0 / math.sqrt(n)
    best_family = fits[0][2]
    if rms[best_family] > MAX_RMS_MISFIT:
        notes.insert(
            0,
            f"no reference family fits these data (best: {best_family}, misfit "
            f"{rms[best_family]:.2f} > {MAX_RMS_MISFIT}); this is raw TwoNN, uncorrected",
        )
        return Estimate(
            twonn,
            twonn * stderr_fraction,
            "fallback:twonn",
            K,
            note="; ".join(notes) + ".",
            details=details,
        )
    value = math.exp(fits[0][1])
    dims = _table()["dimensions"]
    if value >= 0.98 * dims[-1]:
        notes.append(
            f"the estimate is at the top of the calibrated range ({dims[-1]}); the true value "
            "may be higher"
        )
    for _, family_log_d, family in fits:
        details[f"d_{family}"] = math.exp(family_log_d)
    close = {
        family: math.exp(log_d) for fit, log_d, family in fits if fit - fits[0][0] <= AMBIGUITY
    }
    low, high = min(close.values()), max(close.values())
    if high - low > 0.1 * value:
        readings = ", ".join(f"{family} {d:.1f}" for family, d in close.items())
        notes.append(
            f"reference families with different corrections fit these data about equally well "
            f"({readings}): d is uncertain across {low:.1f}-{high:.1f}, and the standard error "
            "says so"
        )
    return Estimate(
        value,
        max(value * stderr_fraction, (high - low) / 2),
        f"family:{best_family}",
        K,
        note="; ".join(notes) + "." if notes else None,
        details=details,
    )


register_estimator(
    "calibrated",
    calibrated,
    k=K,
    description="bias-corrected: TwoNN, MLE (k=5,10,20) and ABID matched to reference families",
)
