"""The "sharp labels" decision: a training set's ``K_F`` against the natural-image band."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lightning_dataprops.references.bands import ReferenceBand, reference_band

__all__ = ["DEFAULT_TOLERANCE", "SharpnessAssessment", "assess_label_sharpness"]

DEFAULT_TOLERANCE = 1.2
"""``K_F`` is sharp when above ``DEFAULT_TOLERANCE`` times the band's upper end (q90).

Justification (docs/reference_values.md): at every measured N at most 5% of the natural
(class pair, seed) draws exceed 1.2 x q90 (the sharpest garment pairs, e.g. T-shirt vs shirt),
while every PneumoniaMNIST and BreastMNIST draw (seeds 0-2, N = 250 to the full training set)
does. At the default N = 1000 the threshold is 0.41: Fashion-MNIST 2 vs 4 (0.34) stays 16%
below it and PneumoniaMNIST (0.56) lies 37% above it.
"""


@dataclass(frozen=True)
class SharpnessAssessment:
    """Is a training set's ``K_F`` sharp compared with natural images at the same ``N``?

    Attributes:
        is_sharp: ``kf > band.high * tolerance`` (always true for an infinite ``K_F``).
        kf: the ``K_F`` assessed (measured under the reference protocol).
        band: the natural-image reference band at the same ``N`` and class count.
        ratio: ``kf / band.high``.
        threshold: ``band.high * tolerance``.
        tolerance: the factor over the band's upper end.
        message: a human-readable verdict (contains the word "sharp", ``K_F`` and the band).
    """

    is_sharp: bool
    kf: float
    band: ReferenceBand
    ratio: float
    threshold: float
    tolerance: float
    message: str


_IMPLICATIONS = (
    "Sharp labels mean the generalization error falls more slowly as training data grows "
    "(test loss scales like K_F * N^(-1/d)), so this task needs more training samples than a "
    "natural-image task of the same intrinsic dimension, and models trained on it tend to be "
    "more fragile under adversarial attack."
)


def assess_label_sharpness(
    kf_protocol: float, n: int, n_classes: int, *, tolerance: float = DEFAULT_TOLERANCE
) -> SharpnessAssessment:
    """Compare a protocol ``K_F`` with the natural-image band at the same ``N`` and class count.

    ``is_sharp`` when ``kf_protocol > tolerance * band.high`` (``high`` = the 90th percentile over
    natural class pairs); an infinite ``K_F`` (a label conflict) is always sharp.

    Args:
        kf_protocol: ``K_F`` measured under the reference protocol
            (:func:`protocol_label_sharpness` on a stratified sample of ``n`` items).
        n: the sample size ``K_F`` was measured on.
        n_classes: classes in the sample.
        tolerance: factor over the band's upper end (> 0); see :data:`DEFAULT_TOLERANCE`.

    Raises:
        ValueError: NaN or negative ``K_F``, bad ``n`` / ``n_classes`` / ``tolerance``.

    Example:
        >>> a = assess_label_sharpness(0.56, n=1000, n_classes=2)
        >>> a.is_sharp, "sharp" in a.message
        (True, True)
        >>> assess_label_sharpness(0.20, n=1000, n_classes=2).is_sharp
        False
    """
    kf = float(kf_protocol)
    if math.isnan(kf) or kf < 0:
        raise ValueError(f"K_F must be a non-negative number (or inf), got {kf_protocol!r}.")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive finite number, got {tolerance!r}.")
    band = reference_band(n, n_classes)
    threshold = band.high * tolerance
    ratio = kf / band.high
    described = band.describe()
    if math.isinf(kf):
        is_sharp = True
        message = (
            "Labels are infinitely sharp (K_F = inf): identical inputs carry different labels "
            f"(a label conflict), far above {described}. Fix the conflicting labels; "
            + _IMPLICATIONS
        )
    elif kf > threshold:
        is_sharp = True
        message = (
            f"Labels are sharp: K_F = {kf:.3f} is {ratio:.2f}x the upper end of the reference "
            f"band for {described} (warning above {threshold:.2f} = {tolerance:g} x q90), "
            f"measured under the same protocol (28x28 grayscale in [0, 1]). " + _IMPLICATIONS
        )
    else:
        is_sharp = False
        message = (
            f"Labels are not sharp: K_F = {kf:.3f} is {ratio:.2f}x the upper end of the "
            f"reference band for {described} (warning above {threshold:.2f} = {tolerance:g} x "
            "q90)."
        )
    return SharpnessAssessment(
        is_sharp=is_sharp,
        kf=kf,
        band=band,
        ratio=ratio,
        threshold=threshold,
        tolerance=float(tolerance),
        message=message,
    )
