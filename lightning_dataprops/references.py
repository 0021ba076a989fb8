"""Reference values of label sharpness on natural images, and the "sharp labels" decision.

``K_F`` depends on the sample size ``N``, the resolution, the channel count, the intensity range
and the number of classes, so a raw ``K_F`` says nothing on its own. This module fixes one
**reference protocol** and compares a training set's ``K_F`` with values measured under that same
protocol on natural images (all class pairs of MNIST and Fashion-MNIST, and their 10-class sets;
see ``docs/reference_values.md`` and ``benchmarks/measure_reference_values.py``).

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

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_dataprops.functional.label_sharpness import label_sharpness
from lightning_dataprops.functional.results import LabelSharpnessResult

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

REFERENCE_SIZE = 28
"""Side (pixels) of the square grayscale images of the reference protocol."""

LOW_QUANTILE = "q10"
"""Quantile of the natural-image values used as the band's lower end."""

HIGH_QUANTILE = "q90"
"""Quantile of the natural-image values used as the band's upper end."""

DEFAULT_TOLERANCE = 1.2
"""``K_F`` is sharp when above ``DEFAULT_TOLERANCE`` times the band's upper end (q90).

Justification (docs/reference_values.md): at every measured N at most 5% of the natural
(class pair, seed) draws exceed 1.2 x q90 (the sharpest garment pairs, e.g. T-shirt vs shirt),
while every PneumoniaMNIST and BreastMNIST draw (seeds 0-2, N = 250 to the full training set)
does. At the default N = 1000 the threshold is 0.41: Fashion-MNIST 2 vs 4 (0.34) stays 16%
below it and PneumoniaMNIST (0.56) lies 37% above it.
"""

_JSON_NAME = "reference_values.json"
_QUANTILE_KEYS: tuple[str, ...] = ("min", "q10", "median", "q90", "max")
_CHUNK = 256


# --------------------------------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------------------------------


def _grayscale(images: Tensor) -> Tensor:
    """``(n, C, H, W)`` -> ``(n, 1, H, W)``: mean over RGB, alpha ignored."""
    channels = int(images.shape[1])
    if channels == 1:
        return images
    if channels == 2:  # gray + alpha
        return images[:, :1]
    return images[:, :3].mean(dim=1, keepdim=True)


def _resize(images: Tensor) -> Tensor:
    """``(n, 1, H, W)`` -> ``(n, 1, 28, 28)``: integer box reduction, then bilinear.

    Like Pillow's ``reducing_gap``: first average ``k x k`` blocks with the largest integer
    factor ``k = H // 28`` (per axis; a remainder row/column is dropped), which exactly inverts
    pixel replication and models a sensor with larger pixels; then bilinear interpolation
    (antialiased when it still downsamples, by a factor below 2) to exactly 28 x 28.
    Bilinear+antialias alone over-blurs integer reductions (a triangle filter twice as wide as
    the pixel), which shrinks distances and inflates ``K_F`` (+27% on MNIST 3 vs 8 upsampled 2x).
    """
    height, width = int(images.shape[2]), int(images.shape[3])
    k_h, k_w = max(1, height // REFERENCE_SIZE), max(1, width // REFERENCE_SIZE)
    if k_h > 1 or k_w > 1:
        images = F.avg_pool2d(images, kernel_size=(k_h, k_w), stride=(k_h, k_w))
        height, width = int(images.shape[2]), int(images.shape[3])
    if (height, width) == (REFERENCE_SIZE, REFERENCE_SIZE):
        return images
    downsampling = height > REFERENCE_SIZE or width > REFERENCE_SIZE
    return F.interpolate(
        images,
        size=(REFERENCE_SIZE, REFERENCE_SIZE),
        mode="bilinear",
        align_corners=False,
        antialias=downsampling,
    )


def _as_nchw(x: Tensor) -> Tensor:
    """Accept ``(n, H, W)``, ``(n, C, H, W)`` and channels-last ``(n, H, W, C)``."""
    if x.ndim < 3:
        raise ValueError(
            f"Inputs of shape {tuple(x.shape)} are feature vectors, not images: no image reference "
            "exists for label sharpness of non-image data (the reference values are measured on "
            "28x28 grayscale natural images). Compare K_F across your own datasets at equal N."
        )
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if int(x.shape[1]) not in (1, 2, 3, 4) and int(x.shape[-1]) in (1, 2, 3, 4):
            x = x.permute(0, 3, 1, 2)
        if int(x.shape[1]) not in (1, 2, 3, 4):
            raise ValueError(
                f"Inputs of shape {tuple(x.shape)} have {int(x.shape[1])} channels: the image "
                "reference covers grayscale, gray+alpha, RGB and RGBA images only."
            )
    else:
        raise ValueError(
            f"Inputs of shape {tuple(x.shape)} are not 2D images ((n, H, W) or (n, C, H, W)): no "
            "image reference exists for them."
        )
    if int(x.shape[2]) < 2 or int(x.shape[3]) < 2:
        raise ValueError(f"Images of shape {tuple(x.shape[1:])} are too small to be images.")
    return x


def to_reference_protocol(x: Any) -> Tensor:
    """Bring a sample of images to the reference protocol: ``(n, 1, 28, 28)`` float32 in ``[0, 1]``.

    Grayscale (mean over RGB channels, alpha ignored; ``(n, H, W)`` and channels-last
    ``(n, H, W, C)`` accepted), resized to 28 x 28 (block averaging by the largest integer
    factor, then bilinear, antialiased when it still downsamples; non-square images are
    stretched; an image replicated 2x2 comes back exactly), then min-max scaled with the
    **sample's** global minimum and maximum, so 0-255 data, ``[0, 1]`` data and
    mean/std-normalized data all land in ``[0, 1]``. A constant sample maps to zeros. Work is
    chunked, so large images are fine.

    Args:
        x: ``(n, C, H, W)`` / ``(n, H, W)`` / ``(n, H, W, C)`` images (tensor or array).

    Returns:
        ``(n, 1, 28, 28)`` float32 tensor on ``x``'s device.

    Raises:
        ValueError: feature vectors (``(n, d)``), volumes, unusual channel counts, non-finite
            values or an empty sample.

    Example:
        >>> import torch
        >>> x = torch.randint(0, 256, (5, 3, 64, 48), dtype=torch.uint8)
        >>> y = to_reference_protocol(x)
        >>> tuple(y.shape), y.dtype, float(y.min()), float(y.max())
        ((5, 1, 28, 28), torch.float32, 0.0, 1.0)
        >>> to_reference_protocol(torch.zeros(5, 10))
        Traceback (most recent call last):
        ...
        ValueError: Inputs of shape (5, 10) are feature vectors, not images: ...
    """
    images = x if isinstance(x, Tensor) else torch.as_tensor(x)
    images = _as_nchw(images)
    n = int(images.shape[0])
    if n == 0:
        raise ValueError("The sample is empty: pass at least one image.")
    chunks = [
        _resize(_grayscale(images[start : start + _CHUNK].to(torch.float32)))
        for start in range(0, n, _CHUNK)
    ]
    out = torch.cat(chunks).contiguous()
    if not bool(torch.isfinite(out).all()):
        raise ValueError("The images contain NaN or infinite values.")
    low, high = out.min(), out.max()
    span = float(high - low)
    if span <= 0.0:
        return torch.zeros_like(out)
    return ((out - low) / (high - low)).clamp_(0.0, 1.0)


def protocol_label_sharpness(x: Any, y: Any, **kwargs: Any) -> LabelSharpnessResult:
    """Exact ``K_F`` of ``(x, y)`` under the reference protocol (:func:`to_reference_protocol`).

    ``x`` should already be the sample (``N`` items, e.g. from
    :func:`~lightning_dataprops.sample_dataset`): the intensity scaling uses its min and max.
    Keyword arguments go to :func:`~lightning_dataprops.functional.label_sharpness`.

    Example:
        >>> import torch
        >>> x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        >>> y = torch.arange(40) % 2
        >>> in_unit = protocol_label_sharpness(x, y).value
        >>> abs(protocol_label_sharpness(x * 255, y).value - in_unit) < 1e-6  # same K_F
        True
    """
    return label_sharpness(to_reference_protocol(x), y, **kwargs)


# --------------------------------------------------------------------------------------------------
# Reference values
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _load_reference_values() -> dict[str, Any]:
    text = resources.files("lightning_dataprops").joinpath(_JSON_NAME).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def reference_values() -> dict[str, Any]:
    """The measured reference values (``reference_values.json``, package data), as a new dict.

    Example:
        >>> data = reference_values()
        >>> sorted({row["n_classes"] for row in data["references"]})
        [2, 10]
    """
    return json.loads(json.dumps(_load_reference_values()))


def _rows(n_classes: int) -> list[dict[str, Any]]:
    rows = [r for r in _load_reference_values()["references"] if r["n_classes"] == n_classes]
    return sorted(rows, key=lambda r: int(r["n"]))


def _reference_classes(n_classes: int) -> int:
    """The measured class count nearest to ``n_classes`` on a log scale."""
    measured = sorted({int(r["n_classes"]) for r in _load_reference_values()["references"]})
    return min(measured, key=lambda c: (abs(math.log(n_classes) - math.log(c)), c))


@dataclass(frozen=True)
class ReferenceBand:
    """Natural-image ``K_F`` at sample size ``n`` under the reference protocol.

    Attributes:
        n: the sample size asked for.
        n_classes: the class count of the reference used (2 or 10: the measured one nearest to
            ``requested_n_classes`` on a log scale).
        requested_n_classes: the class count asked for.
        low: lower end of the band (10th percentile over natural tasks and seeds).
        median: median over natural tasks and seeds.
        high: upper end of the band (90th percentile).
        minimum: smallest natural value.
        maximum: largest natural value.
        n_tasks: natural tasks (class pairs / datasets) behind the nearest measured ``N``.
        measured_n: the measured sample sizes interpolated between (equal when exact/clamped).
        exact_n: ``n`` is one of the measured sample sizes.
        exact_n_classes: ``requested_n_classes`` is the reference's class count.
        extrapolated: ``n`` lies outside the measured range; the nearest end is used (below it
            the band is too high, above it too low, since ``K_F`` grows with ``N``).
        source: one line saying where the values come from.
    """

    n: int
    n_classes: int
    requested_n_classes: int
    low: float
    median: float
    high: float
    minimum: float
    maximum: float
    n_tasks: int
    measured_n: tuple[int, int]
    exact_n: bool
    exact_n_classes: bool
    extrapolated: bool
    source: str

    def describe(self) -> str:
        """``"natural images at N=1000 (2 classes): 0.18-0.36"`` plus caveats.

        Example:
            >>> reference_band(1000, 2).describe()[:36]
            'natural images at N=1000 (2 classes)'
        """
        text = (
            f"natural images at N={self.n} ({self.n_classes} classes): "
            f"{self.low:.2f}-{self.high:.2f}"
        )
        notes = []
        if not self.exact_n_classes:
            notes.append(
                f"nearest reference for {self.requested_n_classes} classes is {self.n_classes}"
            )
        if self.extrapolated:
            lo, hi = self.measured_n
            notes.append(f"N outside the measured range {lo}-{hi}, nearest end used")
        return text + (f" ({'; '.join(notes)})" if notes else "")


def _check_int(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


def reference_band(n: int, n_classes: int) -> ReferenceBand:
    """The natural-image band of ``K_F`` at sample size ``n`` for ``n_classes`` classes.

    Quantiles are interpolated linearly in ``log N`` between the measured sample sizes and clamped
    (``extrapolated=True``) outside them; the class count is the measured one (2 or 10) nearest
    to ``n_classes`` on a log scale (2-4 classes -> 2, 5 or more -> 10).

    Example:
        >>> band = reference_band(700, n_classes=3)
        >>> band.n_classes, band.exact_n_classes, band.exact_n, band.measured_n
        (2, False, False, (500, 1000))
        >>> reference_band(500, 2).high < band.high < reference_band(1000, 2).high
        True
    """
    _check_int(n, "n", 2)
    _check_int(n_classes, "n_classes", 2)
    ref_classes = _reference_classes(n_classes)
    rows = _rows(ref_classes)
    sizes = [int(r["n"]) for r in rows]
    if n <= sizes[0] or n >= sizes[-1]:
        row = rows[0] if n <= sizes[0] else rows[-1]
        values = {k: float(row[k]) for k in _QUANTILE_KEYS}
        bracket = (int(row["n"]), int(row["n"]))
        n_tasks = int(row["count"])
    else:
        upper = next(i for i, s in enumerate(sizes) if s >= n)
        below, above = rows[upper - 1], rows[upper]
        n0, n1 = int(below["n"]), int(above["n"])
        t = (math.log(n) - math.log(n0)) / (math.log(n1) - math.log(n0))
        values = {
            k: float(below[k]) + t * (float(above[k]) - float(below[k])) for k in _QUANTILE_KEYS
        }
        bracket = (n0, n1)
        near = below if t < 0.5 else above
        n_tasks = int(near["count"])
    if n in sizes:
        bracket = (n, n)
    data = _load_reference_values()
    return ReferenceBand(
        n=n,
        n_classes=ref_classes,
        requested_n_classes=n_classes,
        low=values[LOW_QUANTILE],
        median=values["median"],
        high=values[HIGH_QUANTILE],
        minimum=values["min"],
        maximum=values["max"],
        n_tasks=n_tasks,
        measured_n=bracket if sizes[0] <= n <= sizes[-1] else (sizes[0], sizes[-1]),
        exact_n=n in sizes,
        exact_n_classes=ref_classes == n_classes,
        extrapolated=n < sizes[0] or n > sizes[-1],
        source=str(data.get("source_summary", "reference_values.json")),
    )


# --------------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------------


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
