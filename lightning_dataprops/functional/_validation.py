"""Input checks shared by the functional estimators.

Every check raises a ``ValueError`` (or ``TypeError``) that says what is wrong and what to do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lightning_dataprops._warnings import warn_from_rank_zero


def as_tensor(data: Any, name: str) -> Tensor:
    """Convert ``data`` (tensor, array or nested sequence) to a tensor, copying only if needed."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        if data.dtype == object:
            raise TypeError(
                f"`{name}` is a numpy array of dtype object; pass a numeric array "
                "(stack the items first, e.g. np.stack(list_of_arrays))."
            )
        return torch.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, (list, tuple)):
        try:
            return torch.as_tensor(np.asarray(data))
        except (ValueError, TypeError) as error:
            raise TypeError(
                f"`{name}` is a {type(data).__name__} that cannot be stacked into one numeric "
                f"array "
                f"({error}); pass a tensor or numpy array of shape (n_samples, ...)."
            ) from error
    raise TypeError(
        f"`{name}` must be a torch.Tensor or numpy array of shape (n_samples, ...), "
        f"got {type(data).__name__}. For a Dataset or DataLoader use "
        "lightning_dataprops.data.sample_dataset first."
    )


def as_points(
    data: Any, *, name: str = "x", min_samples: int = 2, device: torch.device | str | None = None
) -> tuple[Tensor, tuple[int, ...]]:
    """Flatten ``data`` to a floating ``(n, D)`` matrix and check it.

    Returns the matrix (float32, or float64 for float64 input) and the shape of one sample.
    """
    # The measurements are of the data, never differentiated: an input that requires grad (a
    # model's output) is taken as its values.
    tensor = as_tensor(data, name).detach()
    if device is not None:
        tensor = tensor.to(device)
    if tensor.ndim == 0:
        raise ValueError(
            f"`{name}` is a scalar; pass a batch of samples of shape (n_samples, ...)."
        )
    if tensor.ndim == 1:
        raise ValueError(
            f"`{name}` has shape {tuple(tensor.shape)}: one dimension is ambiguous. Pass "
            f"(n_samples, n_features); for scalar features use {name}.reshape(-1, 1)."
        )
    if tensor.is_complex():
        raise TypeError(f"`{name}` is complex ({tensor.dtype}); pass real-valued inputs.")
    input_shape = tuple(int(s) for s in tensor.shape[1:])
    n = int(tensor.shape[0])
    if n < min_samples:
        raise ValueError(
            f"`{name}` has {n} sample(s) but at least {min_samples} are needed; pass more samples."
        )
    if tensor.dtype != torch.float64:
        tensor = tensor.to(torch.float32)
    points = tensor.reshape(n, -1)
    if points.shape[1] == 0:
        raise ValueError(f"`{name}` has no features (shape {tuple(tensor.shape)}).")
    bad_rows = nonfinite_rows(points)
    if bad_rows is not None:
        first = bad_rows[:5].tolist()
        raise ValueError(
            f"`{name}` contains NaN or infinite values in {bad_rows.numel()} of {n} samples "
            f"(first at indices {first}); remove or impute them before measuring."
        )
    return points.contiguous(), input_shape


# Ranges outside [2^-40, 2^40] are brought to about 1 by a power of two (exact): squared
# differences of far larger or smaller values overflow or fall into subnormal numbers (float32
# distances, float64 target differences), where the passes' error bounds no longer hold.
_SCALE_LIMIT = 40


def nonfinite_rows(points: Tensor) -> Tensor | None:
    """The indices of the rows of ``(n, d)`` ``points`` holding NaN or infinite values, or
    ``None`` when every value is finite."""
    # A sum is finite only if every entry is (NaN and inf propagate): one cheap reduction, in
    # the points' own precision, instead of an elementwise pass; the elementwise check runs
    # only to find what is wrong (or when the sum merely overflowed).
    if bool(torch.isfinite(points.sum())):
        return None
    bad = (~torch.isfinite(points)).any(dim=1).nonzero().flatten()
    return bad if bad.numel() else None


def nonfinite_items(inputs: Tensor, indices: Tensor) -> tuple[Tensor, str] | None:
    """The positions of the ``(n, ...)`` ``inputs`` holding NaN or infinite values and a
    sentence naming them by their ``(n,)`` dataset ``indices`` (a sample can only name its own
    positions otherwise), or ``None`` when every value is finite."""
    n = int(inputs.shape[0])
    bad = nonfinite_rows(inputs.reshape(n, -1))
    if bad is None:
        return None
    items = indices[bad.cpu()][:5].tolist()
    more = ", ..." if bad.numel() > 5 else ""
    return bad, (
        f"the inputs of {bad.numel()} of {n} sampled items contain NaN or infinite values "
        f"(dataset indices {items}{more})"
    )


def power_of_two_scale(values: Tensor) -> tuple[Tensor, int]:
    """``values * 2^-e`` and ``e``: ``e = 0`` unless the largest column range of the ``(n, D)``
    ``values`` is outside ``[2^-40, 2^40]``.

    Differences (and their norms) of the result times ``2^e`` are those of ``values``, exactly:
    the scale is a power of two. Used for inputs (before every distance pass) and for
    regression targets (before ``|y_i - y_j|``).

    Example:
        >>> import torch
        >>> scaled, e = power_of_two_scale(torch.tensor([[0.0], [3e200]], dtype=torch.float64))
        >>> e, float(scaled[1, 0]) * 2.0**e == 3e200
        (666, True)
    """
    if values.numel() == 0:
        return values, 0
    low, high = torch.aminmax(values, dim=0)
    span = float((high.double() - low.double()).max())
    if span == 0.0 or 2.0**-_SCALE_LIMIT <= span <= 2.0**_SCALE_LIMIT:
        return values, 0
    if math.isinf(span):  # finite values whose range overflows float64
        exponent = math.frexp(float(high.double().abs().max()))[1] + 1
    else:
        exponent = math.frexp(span)[1]
    return (values.double() * 2.0**-exponent).to(values.dtype), exponent


def times_power_of_two(values: Tensor, exponent: int) -> Tensor:
    """``values * 2^exponent``, exact short of overflow (in two steps: ``2^exponent`` itself may
    not be a float64 when :func:`power_of_two_scale` met a range near the float64 limit)."""
    half = exponent // 2
    return values * 2.0**half * 2.0 ** (exponent - half)


class ByteImagesWarning(UserWarning):
    """Images given as whole numbers in 0-255: ``K_F`` is then in 1 / those units."""


def warn_if_byte_images(points: Tensor, input_shape: tuple[int, ...], owner: str) -> None:
    """Say once when image inputs (``input_shape`` of two or more dimensions) hold whole numbers
    in 0-255 (uint8 pixels): ``K_F`` is in 1 / byte units, 255 times smaller than for the same
    images in ``[0, 1]``, the paper's and the callbacks' units (``d_data`` does not change)."""
    if len(input_shape) < 2 or points.numel() == 0:
        return
    low, high = (float(v) for v in torch.aminmax(points))
    if not (low >= 0 and 1 < high <= 255 and bool((points == points.round()).all())):
        return
    warn_from_rank_zero(
        f"{owner}: the images hold whole numbers in [{low:g}, {high:g}] (0-255 pixels): K_F is "
        "in 1 / those units, 255 times smaller than for the same images in [0, 1], the units "
        "of the paper, the references and the callbacks. Divide the inputs by 255 to compare "
        "(d_data does not change).",
        ByteImagesWarning,
        stacklevel=3,
    )


class TooFewSamplesError(ValueError):
    """Fewer distinct samples than a neighbour-based estimate needs (``k + 1``): a property of
    the data, not of the call. Measurements that need no neighbours (``K_F``) can still be
    made on the same samples."""


def check_k(k: int, n: int, *, what: str = "the estimate") -> None:
    """Check the neighbour count against the number of samples."""
    if not isinstance(k, int) or isinstance(k, bool):
        raise TypeError(f"`k` must be an int, got {type(k).__name__}.")
    if k < 2:
        raise ValueError(f"`k` must be at least 2 for {what}, got {k}.")
    if n < k + 1:
        # k >= 2 whatever the data, so with fewer than 3 samples only more samples help.
        fix = "pass at least 3 samples"
        if n >= 3:
            fix = f"pass more samples or lower k (2 <= k <= {n - 1})"
        raise TooFewSamplesError(
            f"{what} with k={k} neighbours needs at least k+1={k + 1} distinct samples, got {n}; "
            f"{fix}."
        )


def check_choice(value: str, name: str, choices: tuple[str, ...]) -> None:
    """Raise a ValueError listing the valid choices when ``value`` is not one of them."""
    if value not in choices:
        raise ValueError(
            f"Unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}."
        )
