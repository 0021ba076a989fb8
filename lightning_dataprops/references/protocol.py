"""The reference protocol: bring any sample of images to 28 x 28 grayscale in ``[0, 1]``.

``K_F`` depends on resolution, channel count and intensity range, so it is only comparable with
the shipped natural-image values (:mod:`lightning_dataprops.references.bands`) when measured under
the same preprocessing: grayscale (mean over RGB, alpha ignored), resized to 28 x 28 (block
averaging by the largest integer factor, then bilinear, antialiased when it still downsamples),
min-max scaled to ``[0, 1]`` with the sample's global minimum and maximum, then exact ``K_F``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_dataprops.functional.label_sharpness import label_sharpness
from lightning_dataprops.functional.results import LabelSharpnessResult

__all__ = ["REFERENCE_SIZE", "protocol_label_sharpness", "to_reference_protocol"]

REFERENCE_SIZE = 28
"""Side (pixels) of the square grayscale images of the reference protocol."""

_CHUNK = 256


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
