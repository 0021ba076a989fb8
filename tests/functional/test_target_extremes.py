"""Regression K_F at the edges of float64: targets near 1e154 (squared differences overflow),
1e200 and 1e-200 (they underflow), against an exact brute force in rational arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from lightning_dataprops import dataset_properties, intrinsic_dimension, label_sharpness
from lightning_dataprops.metrics import IntrinsicDimension, LabelSharpness

N = 40


def _sqrt(value: Fraction) -> float:
    """sqrt of a positive rational, correctly scaled whatever its magnitude."""
    e = (value.numerator.bit_length() - value.denominator.bit_length()) // 2
    scaled = value / Fraction(4) ** e if e >= 0 else value * Fraction(4) ** -e
    return math.ldexp(math.sqrt(float(scaled)), e)


def _exact_oracle(x: torch.Tensor, y: torch.Tensor) -> float:
    """max_{i<j} ||y_i - y_j|| / ||x_i - x_j||, every square and ratio an exact rational."""
    xs = [[Fraction(v) for v in row] for row in x.reshape(len(x), -1).tolist()]
    ys = [[Fraction(v) for v in row] for row in y.reshape(len(y), -1).tolist()]
    best = Fraction(0)
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            dx2 = sum((a - b) ** 2 for a, b in zip(xs[i], xs[j], strict=True))
            dy2 = sum((a - b) ** 2 for a, b in zip(ys[i], ys[j], strict=True))
            best = max(best, dy2 / dx2)
    return _sqrt(best)


@pytest.mark.parametrize("scale", [1e154, 1e200, 1e-200, 1e307])
@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("offset", [-0.5, 1.0])  # centred on 0, or all in [scale, 2 scale]
def test_extreme_targets_give_the_exact_value(scale: float, width: int, offset: float) -> None:
    generator = torch.Generator().manual_seed(width)
    x = torch.rand(N, 3, generator=generator, dtype=torch.float64)
    y = (torch.rand(N, width, generator=generator, dtype=torch.float64) + offset) * scale / 2
    y = y[:, 0] if width == 1 else y
    expected = _exact_oracle(x, y)
    assert math.isfinite(expected) and expected > 0

    assert label_sharpness(x, y).value == pytest.approx(expected, rel=1e-12)
    assert label_sharpness(x, y, method="sampled", n_pairs=20_000).value == pytest.approx(
        expected, rel=1e-12
    )  # 20k random pairs of 780 cover every one
    props = dataset_properties(x, y, k=5)
    assert props.K_F is not None and pytest.approx(expected, rel=1e-12) == props.K_F
    metric = LabelSharpness()
    metric.update(x, y)
    # the value is float64 where float32 cannot hold it
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-6)

    pair = label_sharpness(x, y).pairs[0]  # labels and distance in the units given
    y_rows = y.reshape(N, -1)
    if width == 1:
        assert [pair.label_i, pair.label_j] == [float(y_rows[pair.i, 0]), float(y_rows[pair.j, 0])]
    assert pair.distance == pytest.approx(float((x[pair.i] - x[pair.j]).norm()), rel=1e-12)


def test_extreme_inputs_give_the_exact_value() -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(N, 3, generator=generator, dtype=torch.float64)
    y = torch.rand(N, generator=generator, dtype=torch.float64)
    for scale in (1e200, 1e-200):
        expected = _exact_oracle(x * scale, y)
        assert label_sharpness(x * scale, y).value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("x_scale", [1e-200, 1e200, 1e-42])
def test_metrics_keep_the_range_of_float64_inputs(x_scale: float) -> None:
    """The reservoir metrics once stored float32 rows: 1e-200 became 0 (every pair a label
    conflict, K_F inf; every sample a duplicate), 1e200 became inf (a misleading error)."""
    generator = torch.Generator().manual_seed(5)
    x = torch.rand(N, 3, generator=generator, dtype=torch.float64) * x_scale
    y = torch.rand(N, generator=generator, dtype=torch.float64) * x_scale
    metric = LabelSharpness()
    metric.update(x[:25], y[:25])
    metric.update(x[25:], y[25:])
    assert float(metric.compute()) == pytest.approx(_exact_oracle(x, y), rel=1e-6)  # float32

    z = torch.randn(300, 4, generator=generator, dtype=torch.float64)
    points = z @ torch.randn(4, 12, generator=generator, dtype=torch.float64)
    expected = intrinsic_dimension(points, k=10).value
    id_metric = IntrinsicDimension(k=10)
    id_metric.update(points[:150] * x_scale)
    id_metric.update(points[150:] * x_scale)
    assert float(id_metric.compute()) == pytest.approx(expected, rel=1e-6)


def test_inputs_beyond_the_stored_dtype_are_a_clear_error() -> None:
    metric = LabelSharpness()
    metric.update(torch.rand(10, 3), torch.rand(10))  # float32 rows from here on
    with pytest.raises(ValueError, match=r"beyond the range of torch\.float32.*float64 inputs"):
        metric.update(torch.rand(10, 3, dtype=torch.float64) * 1e200, torch.rand(10))


@pytest.mark.parametrize("offset", [1e12, -1e14])
def test_targets_far_from_zero_give_the_exact_value(offset: float) -> None:
    """Timestamps-like targets (a spread of 1 around 1e12): the all-pairs pass once took
    |y_i - y_j| in the matmul form, whose cancellation gave K_F 44% low."""
    generator = torch.Generator().manual_seed(7)
    x = torch.rand(N, 3, generator=generator, dtype=torch.float64)
    y = torch.rand(N, generator=generator, dtype=torch.float64) + offset
    expected = _exact_oracle(x, y)
    assert label_sharpness(x, y).value == pytest.approx(expected, rel=1e-12)
    both = torch.stack([y, y.flip(0)], dim=1)
    assert label_sharpness(x, both).value == pytest.approx(_exact_oracle(x, both), rel=1e-12)


def test_integer_regression_targets_are_not_rounded() -> None:
    """Integer targets read as regression were once widened to float32: above 2**24 their
    differences were rounded (K_F off, or "all targets are equal")."""
    generator = torch.Generator().manual_seed(6)
    x = torch.rand(N, 3, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 1000, (N,), generator=generator) + 2**40
    expected = _exact_oracle(x, y.to(torch.float64) - 2**40)  # exact: 2**40 + k is a float64
    assert label_sharpness(x, y, target_type="regression").value == pytest.approx(
        expected, rel=1e-12
    )
    beyond = torch.tensor([2**60 + 1, 2**60 + 3] * (N // 2))
    with pytest.raises(ValueError, match=r"beyond 2\*\*53.*subtract an offset"):
        label_sharpness(x, beyond, target_type="regression")


def test_k_f_beyond_float64_and_non_finite_targets_are_clear_errors() -> None:
    generator = torch.Generator().manual_seed(4)
    x = torch.rand(N, 3, generator=generator, dtype=torch.float64) * 1e-200
    y = torch.rand(N, generator=generator, dtype=torch.float64) * 1e200
    with pytest.raises(ValueError, match="beyond the float64 range"):
        label_sharpness(x, y)
    for bad in (math.nan, math.inf, -math.inf):
        y_bad = y.clone()
        y_bad[7] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            label_sharpness(x, y_bad)
        with pytest.raises(ValueError, match="NaN or infinite"):
            LabelSharpness().update(x, y_bad)
