"""The reference protocols: bring any sample of images to a fixed size, channel count and range.

Label sharpness depends on resolution, channel count and intensity range, so it is only
comparable with the shipped natural-image values (:mod:`lightning_dataprops.references.bands`)
when measured under the same preprocessing. There are two protocols:

- ``"gray28"`` for grayscale images (1 channel, gray + alpha, or RGB whose three channels are
  equal): 28 x 28, one channel;
- ``"rgb32"`` for colour images (RGB, RGBA): 32 x 32, three channels (alpha ignored). Colour
  carries much of what tells natural photos apart, which a grayscale protocol discards
  (docs/reference_values.md).

Both resize by block averaging with the largest integer factor, then bilinear (antialiased when
it still downsamples), and min-max scale to ``[0, 1]`` with the sample's global minimum and
maximum, so 0-255 data, ``[0, 1]`` data and data normalised with one mean and std all land in
the same ``[0, 1]`` tensor. A *per-channel* ``Normalize`` changes the colour balance, which no
global rescaling undoes: give pixels (the fit-start callback undoes a ``Normalize`` it finds in
the Dataset).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["PROTOCOLS", "protocol_for", "to_reference_protocol"]

PROTOCOLS: dict[str, tuple[int, int]] = {"gray28": (1, 28), "rgb32": (3, 32)}
"""Protocol name -> (channels, side in pixels)."""

_GRAY_TOLERANCE = 1e-6

_CHUNK = 256


def _channels(images: Tensor, protocol: str) -> Tensor:
    """``(n, C, H, W)`` -> the protocol's channels: gray (mean over RGB) or RGB; alpha dropped."""
    channels = int(images.shape[1])
    if PROTOCOLS[protocol][0] == 3:
        if channels < 3:
            return images[:, :1].expand(-1, 3, -1, -1)
        return images[:, :3]
    if channels <= 2:  # gray, or gray + alpha
        return images[:, :1]
    return images[:, :3].mean(dim=1, keepdim=True)


def _resize(images: Tensor, size: int) -> Tensor:
    """``(n, C, H, W)`` -> ``(n, C, size, size)``: integer box reduction, then bilinear.

    Like Pillow's ``reducing_gap``: first average ``k x k`` blocks with the largest integer
    factor ``k = H // size`` (per axis; a remainder row/column is dropped), which exactly inverts
    pixel replication and models a sensor with larger pixels; then bilinear interpolation
    (antialiased when it still downsamples, by a factor below 2) to exactly size x size.
    Bilinear+antialias alone over-blurs integer reductions (a triangle filter twice as wide as
    the pixel), which shrinks distances and inflates ``K_F`` (+27% on MNIST 3 vs 8 upsampled 2x).
    """
    height, width = int(images.shape[2]), int(images.shape[3])
    k_h, k_w = max(1, height // size), max(1, width // size)
    if k_h > 1 or k_w > 1:
        images = F.avg_pool2d(images, kernel_size=(k_h, k_w), stride=(k_h, k_w))
        height, width = int(images.shape[2]), int(images.shape[3])
    if (height, width) == (size, size):
        return images
    downsampling = height > size or width > size
    return F.interpolate(
        images,
        size=(size, size),
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
            "natural images). Compare K_F across your own datasets at equal N."
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


def _is_gray(images: Tensor) -> bool:
    """RGB(A) images whose three colour channels are equal (grayscale stored as RGB)."""
    if int(images.shape[1]) < 3:
        return True
    rgb = images[:, :3].to(torch.float32)
    scale = float(rgb.abs().max()) or 1.0
    spread = (rgb.amax(dim=1) - rgb.amin(dim=1)).abs().max()
    return float(spread) <= _GRAY_TOLERANCE * scale


def protocol_for(x: Any) -> str:
    """``"rgb32"`` for colour images, ``"gray28"`` for grayscale ones (RGB with equal channels
    counts as grayscale).

    Raises:
        ValueError: feature vectors, volumes or unusual channel counts (see
            :func:`to_reference_protocol`).

    Example:
        >>> import torch
        >>> protocol_for(torch.rand(4, 3, 32, 32)), protocol_for(torch.rand(4, 28, 28))
        ('rgb32', 'gray28')
        >>> protocol_for(torch.rand(4, 1, 32, 32).expand(-1, 3, -1, -1))
        'gray28'
    """
    images = _as_nchw(x if isinstance(x, Tensor) else torch.as_tensor(x))
    return "gray28" if _is_gray(images) else "rgb32"


def to_reference_protocol(x: Any, protocol: str | None = None) -> Tensor:
    """Bring a sample of images to a reference protocol: float32 in ``[0, 1]``.

    ``"gray28"`` gives ``(n, 1, 28, 28)`` (mean over RGB, alpha ignored), ``"rgb32"`` gives
    ``(n, 3, 32, 32)`` (alpha ignored; grayscale replicated); ``None`` picks
    :func:`protocol_for`. ``(n, H, W)`` and channels-last ``(n, H, W, C)`` are accepted. Images
    are resized by block averaging with the largest integer factor, then bilinear (antialiased
    when it still downsamples; non-square images are stretched; an image replicated 2x2 comes
    back exactly), then min-max scaled with the **sample's** global minimum and maximum. A
    constant sample maps to zeros. Work is chunked, so large images are fine.

    Args:
        x: ``(n, C, H, W)`` / ``(n, H, W)`` / ``(n, H, W, C)`` images (tensor or array).
        protocol: ``"gray28"``, ``"rgb32"`` or ``None`` (by the images' colour).

    Returns:
        ``(n, C, S, S)`` float32 tensor on ``x``'s device.

    Raises:
        ValueError: feature vectors (``(n, d)``), volumes, unusual channel counts, non-finite
            values, an empty sample or an unknown protocol.

    Example:
        >>> import torch
        >>> x = torch.randint(0, 256, (5, 3, 64, 48), dtype=torch.uint8)
        >>> y = to_reference_protocol(x)
        >>> tuple(y.shape), y.dtype, float(y.min()), float(y.max())
        ((5, 3, 32, 32), torch.float32, 0.0, 1.0)
        >>> tuple(to_reference_protocol(x, "gray28").shape)
        (5, 1, 28, 28)
        >>> to_reference_protocol(torch.zeros(5, 10))
        Traceback (most recent call last):
        ...
        ValueError: Inputs of shape (5, 10) are feature vectors, not images: ...
    """
    images = _as_nchw(x if isinstance(x, Tensor) else torch.as_tensor(x))
    if protocol is None:
        protocol = "gray28" if _is_gray(images) else "rgb32"
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}.")
    n = int(images.shape[0])
    if n == 0:
        raise ValueError("The sample is empty: pass at least one image.")
    size = PROTOCOLS[protocol][1]
    chunks = [
        _resize(_channels(images[start : start + _CHUNK].to(torch.float32), protocol), size)
        for start in range(0, n, _CHUNK)
    ]
    out = torch.cat(chunks).contiguous()
    if not bool(torch.isfinite(out).all()):
        raise ValueError("The images contain NaN or infinite values.")
    low, high = out.min(), out.max()
    if float(high - low) <= 0.0:
        return torch.zeros_like(out)
    return ((out - low) / (high - low)).clamp_(0.0, 1.0)
