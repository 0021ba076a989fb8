"""Reference values of label sharpness on natural images, and the "sharp labels" decision.

``K_F`` depends on the sample size ``N``, the resolution, the channel count, the intensity range
and the number of classes, so a raw ``K_F`` says nothing on its own. This subpackage fixes one
**reference protocol** and compares a training set's ``K_F`` with values measured under that same
protocol on natural images (all class pairs of MNIST and Fashion-MNIST, and their 10-class sets;
see ``docs/reference_values.md`` and ``scripts/measure_reference_values.py``).

The protocol (:func:`to_reference_protocol`):

1. a seeded, class-stratified sample of ``N`` items (:func:`~lightning_dataprops.sample_dataset`;
   the callback uses ``N = min(len(dataset), 1000)``, seed 0);
2. grayscale: mean over the RGB channels (alpha ignored);
3. resized to 28 x 28 (block averaging by the largest integer factor, then bilinear,
   antialiased when it still downsamples);
4. intensities min-max scaled to ``[0, 1]`` with the sample's global minimum and maximum;
5. exact ``K_F`` (:func:`~lightning_dataprops.functional.label_sharpness`).

:func:`reference_band` gives the natural-image band (10th to 90th percentile over natural class
pairs) at any ``N``, interpolated linearly in ``log N``; :func:`assess_label_sharpness` flags a
``K_F`` above ``tolerance`` times the band's upper end.

Example:
    >>> import torch
    >>> from lightning_dataprops.references import assess_label_sharpness, reference_band
    >>> band = reference_band(1000, n_classes=2)
    >>> band.n_classes, band.exact_n, band.low < band.median < band.high
    (2, True, True)
    >>> assess_label_sharpness(band.median, 1000, 2).is_sharp
    False
    >>> assess_label_sharpness(float("inf"), 1000, 2).is_sharp
    True
"""

from lightning_dataprops.references.assessment import (
    DEFAULT_TOLERANCE,
    SharpnessAssessment,
    assess_label_sharpness,
)
from lightning_dataprops.references.bands import ReferenceBand, reference_band, reference_values
from lightning_dataprops.references.protocol import (
    REFERENCE_SIZE,
    protocol_label_sharpness,
    to_reference_protocol,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "REFERENCE_SIZE",
    "ReferenceBand",
    "SharpnessAssessment",
    "assess_label_sharpness",
    "protocol_label_sharpness",
    "reference_band",
    "reference_values",
    "to_reference_protocol",
]
