"""Natural-image references of label sharpness, and the one sharp-label decision.

Label sharpness depends on the sample size ``N``, the resolution, the channel count, the
intensity range and the number of classes, so a raw ``K_F`` says nothing on its own. This
subpackage brings a sample to a fixed **reference protocol** (:func:`to_reference_protocol`:
``gray28`` for grayscale, ``rgb32`` for colour images) and compares its sharpness with values
measured under the same protocol on natural images (:func:`reference_band`; every class pair
and the 10-class sets of MNIST, Fashion-MNIST and CIFAR-10; ``docs/reference_values.md``).
:func:`check_label_sharpness` makes the decision that the fit-start callback and
``dataprops measure`` report.
"""

from lightning_dataprops.references.bands import (
    ReferenceBand,
    reference_band,
    reference_rule,
    reference_values,
)
from lightning_dataprops.references.check import SharpnessCheck, check_label_sharpness
from lightning_dataprops.references.protocol import (
    PROTOCOLS,
    protocol_for,
    to_reference_protocol,
)

__all__ = [
    "PROTOCOLS",
    "ReferenceBand",
    "SharpnessCheck",
    "check_label_sharpness",
    "protocol_for",
    "reference_band",
    "reference_rule",
    "reference_values",
    "to_reference_protocol",
]
