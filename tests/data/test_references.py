"""Reference values of label sharpness and the "sharp labels" decision, checked on real data.

The default protocol is the callback's: ``N = min(len(dataset), 1000)``, seed 0, a class-stratified
``sample_dataset``, then :func:`protocol_label_sharpness`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_dataprops.data import load_npz, sample_dataset
from lightning_dataprops.functional import LabelConflictWarning
from lightning_dataprops.references import (
    DEFAULT_TOLERANCE,
    ReferenceBand,
    SharpnessAssessment,
    assess_label_sharpness,
    protocol_label_sharpness,
    reference_band,
    reference_values,
    to_reference_protocol,
)
from tests.conftest import shared_file

PACKAGE = Path(__file__).resolve().parents[2] / "lightning_dataprops"
JSON_PATH = PACKAGE / "references" / "reference_values.json"
DEFAULT_N = 1000


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a busy 2-core machine more threads oversubscribe and crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pair(data: tuple[torch.Tensor, torch.Tensor], a: int, b: int) -> tuple[torch.Tensor, ...]:
    x, y = data
    keep = (y == a) | (y == b)
    return x[keep], (y[keep] == b).long()


def _default_assessment(x: torch.Tensor, y: torch.Tensor) -> tuple[float, SharpnessAssessment]:
    n = min(int(x.shape[0]), DEFAULT_N)
    sample = sample_dataset(x, y, max_samples=n, seed=0)
    assert sample.targets is not None
    kf = protocol_label_sharpness(sample.inputs, sample.targets).value
    n_classes = int(torch.unique(sample.targets).numel())
    return kf, assess_label_sharpness(kf, n, n_classes)


# --------------------------------------------------------------------------------------------------
# The decision on real data
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stem", "expected_kf"), [("pneumoniamnist", 0.558), ("breastmnist", 1.817)]
)
def test_medical_training_sets_are_sharp(stem: str, expected_kf: float) -> None:
    data = load_npz(shared_file(f"medmnist/{stem}.npz"), split="train")
    kf, assessment = _default_assessment(data.inputs, data.targets)
    assert kf == pytest.approx(expected_kf, abs=2e-3)
    assert assessment.is_sharp, assessment.message
    assert assessment.kf > 1.1 * assessment.threshold  # with margin
    message = assessment.message
    assert "sharp" in message and f"{kf:.3f}" in message
    assert f"{assessment.band.low:.2f}-{assessment.band.high:.2f}" in message
    assert "natural images at N=" in message
    assert "more training samples" in message and "adversarial" in message


def test_mnist_3_vs_8_is_not_sharp(mnist: tuple[torch.Tensor, torch.Tensor]) -> None:
    kf, assessment = _default_assessment(*_pair(mnist, 3, 8))
    assert kf == pytest.approx(0.197, abs=2e-3)
    assert not assessment.is_sharp, assessment.message
    assert kf < 0.7 * assessment.threshold
    assert "not sharp" in assessment.message


@pytest.mark.parametrize(("a", "b", "expected_kf"), [(0, 1, 0.335), (2, 4, 0.344)])
def test_fashion_pairs_are_not_sharp(
    fashion: tuple[torch.Tensor, torch.Tensor], a: int, b: int, expected_kf: float
) -> None:
    kf, assessment = _default_assessment(*_pair(fashion, a, b))
    assert kf == pytest.approx(expected_kf, abs=2e-3)
    assert not assessment.is_sharp, assessment.message
    assert kf < 0.9 * assessment.threshold  # with margin


# --------------------------------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_sample(mnist: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    sample = sample_dataset(*_pair(mnist, 3, 8), max_samples=400, seed=0)
    assert sample.targets is not None
    return sample.inputs, sample.targets


def test_protocol_is_invariant_to_scale_channels_and_resolution(
    mnist_sample: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = mnist_sample
    reference = to_reference_protocol(x)
    assert reference.shape == (400, 1, 28, 28) and reference.dtype == torch.float32
    assert float(reference.min()) == 0.0 and float(reference.max()) == 1.0
    kf = protocol_label_sharpness(x, y).value
    variants = {
        "uint8 0-255": (x * 255).round().to(torch.uint8),
        "float 0-255": x * 255.0,
        "normalized": (x - 0.1307) / 0.3081,
        "3 channels": x.repeat(1, 3, 1, 1),
        "RGBA": torch.cat([x.repeat(1, 3, 1, 1), torch.full_like(x, 0.3)], dim=1),
        "channels last": x.permute(0, 2, 3, 1).repeat(1, 1, 1, 3),
        "(n, H, W)": x[:, 0],
        "56x56": F.interpolate(x, scale_factor=2, mode="nearest"),
        "56x56 RGB 0-255": F.interpolate(x * 255, scale_factor=2).repeat(1, 3, 1, 1),
        "84x84": F.interpolate(x, scale_factor=3, mode="nearest"),
    }
    for name, variant in variants.items():
        out = to_reference_protocol(variant)
        assert out.shape == reference.shape, name
        assert float((out - reference).abs().max()) < 1e-5, name
        assert protocol_label_sharpness(variant, y).value == pytest.approx(kf, rel=1e-4), name


def test_protocol_resizes_other_resolutions_smoothly(
    mnist_sample: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, _ = mnist_sample
    reference = to_reference_protocol(x)
    for size in (20, 40, 57, 64):
        resized = F.interpolate(x, size=(size, size), mode="bilinear", antialias=size < 28)
        out = to_reference_protocol(resized)
        assert out.shape == (400, 1, 28, 28)
        assert float(out.min()) == 0.0 and float(out.max()) == 1.0
        assert float((out - reference).abs().mean()) < 0.06, size
    wide = to_reference_protocol(torch.rand(3, 3, 30, 200))
    assert wide.shape == (3, 1, 28, 28)


def test_protocol_rejects_non_images() -> None:
    with pytest.raises(ValueError, match="no image reference"):
        to_reference_protocol(torch.rand(10, 784))
    with pytest.raises(ValueError, match="no image reference"):
        protocol_label_sharpness(torch.rand(10, 5), torch.arange(10) % 2)
    with pytest.raises(ValueError, match="not 2D images"):
        to_reference_protocol(torch.rand(4, 1, 8, 28, 28))
    with pytest.raises(ValueError, match="channels"):
        to_reference_protocol(torch.rand(4, 7, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        to_reference_protocol(torch.full((2, 1, 28, 28), math.nan))


def test_constant_sample_maps_to_zeros() -> None:
    out = to_reference_protocol(torch.full((3, 1, 28, 28), 7.0))
    assert out.shape == (3, 1, 28, 28) and float(out.abs().max()) == 0.0


# --------------------------------------------------------------------------------------------------
# The reference band and the JSON
# --------------------------------------------------------------------------------------------------


def test_json_is_complete_and_matches_package_loader() -> None:
    data = json.loads(JSON_PATH.read_text(encoding="utf-8"))
    assert data == reference_values()
    for key in ("protocol", "sources", "measured_on", "script_version", "runtime_s"):
        assert data[key], key
    rows = data["references"]
    assert {(r["n_classes"], r["n"]) for r in rows} >= {
        (2, n) for n in (250, 500, 1000, 2000, 4000, 8000)
    } | {(10, n) for n in (250, 500, 1000, 2000, 4000)}
    for r in rows:
        assert r["min"] <= r["q10"] <= r["median"] <= r["q90"] <= r["max"]
        assert r["count"] >= 1 and r["n_values"] >= r["count"]
    pairs_1000 = next(r for r in rows if r["n_classes"] == 2 and r["n"] == 1000)
    assert pairs_1000["count"] == 90  # 45 MNIST + 45 Fashion-MNIST class pairs


@pytest.mark.parametrize("n_classes", [2, 10])
def test_band_matches_json_and_is_monotone(n_classes: int) -> None:
    rows = sorted(
        (r for r in reference_values()["references"] if r["n_classes"] == n_classes),
        key=lambda r: r["n"],
    )
    for r in rows:
        band = reference_band(r["n"], n_classes)
        assert (band.low, band.median, band.high) == (r["q10"], r["median"], r["q90"])
        assert band.exact_n and band.exact_n_classes and not band.extrapolated
        assert band.measured_n == (r["n"], r["n"])
    for below, above in itertools.pairwise(rows):
        mid = round(math.sqrt(below["n"] * above["n"]))
        band = reference_band(mid, n_classes)
        assert not band.exact_n and band.measured_n == (below["n"], above["n"])
        assert band.high == pytest.approx((below["q90"] + above["q90"]) / 2, abs=1e-3)
        for key, attr in (("q10", "low"), ("median", "median"), ("q90", "high")):
            lo, hi = sorted((below[key], above[key]))
            assert lo - 1e-9 <= getattr(band, attr) <= hi + 1e-9
    grid = np.unique(np.geomspace(rows[0]["n"], rows[-1]["n"], 60).astype(int))
    highs = [reference_band(int(n), n_classes).high for n in grid]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(highs))


def test_band_clamps_and_picks_nearest_class_count() -> None:
    small, large = reference_band(50, 2), reference_band(100_000, 2)
    assert small.extrapolated and large.extrapolated
    assert small.high == reference_band(250, 2).high
    assert large.high == reference_band(8000, 2).high
    assert "outside the measured range" in small.describe()
    assert reference_band(1000, 3).n_classes == 2
    assert reference_band(1000, 4).n_classes == 2
    for n_classes in (5, 10, 100):
        band = reference_band(1000, n_classes)
        assert band.n_classes == 10 and band.requested_n_classes == n_classes
        assert band.exact_n_classes == (n_classes == 10)
    assert "nearest reference for 100 classes is 10" in reference_band(1000, 100).describe()
    with pytest.raises(ValueError):
        reference_band(1, 2)
    with pytest.raises(ValueError):
        reference_band(1000, 1)


def test_band_describe_format() -> None:
    band = reference_band(1000, 2)
    assert isinstance(band, ReferenceBand)
    expected = f"natural images at N=1000 (2 classes): {band.low:.2f}-{band.high:.2f}"
    assert band.describe() == expected


# --------------------------------------------------------------------------------------------------
# The assessment
# --------------------------------------------------------------------------------------------------


def test_threshold_and_ratio() -> None:
    band = reference_band(1000, 2)
    at = assess_label_sharpness(band.high * DEFAULT_TOLERANCE, 1000, 2)
    assert not at.is_sharp  # strictly above the threshold fires
    above = assess_label_sharpness(band.high * DEFAULT_TOLERANCE * 1.001, 1000, 2)
    assert above.is_sharp and above.ratio == pytest.approx(DEFAULT_TOLERANCE * 1.001)
    assert assess_label_sharpness(band.high * 1.1, 1000, 2, tolerance=1.0).is_sharp
    assert not assess_label_sharpness(0.0, 1000, 2).is_sharp


def test_infinite_kf_is_always_sharp() -> None:
    assessment = assess_label_sharpness(math.inf, 1000, 2, tolerance=1e6)
    assert assessment.is_sharp and math.isinf(assessment.ratio)
    assert "sharp" in assessment.message and "label conflict" in assessment.message


def test_label_conflict_in_images_is_sharp() -> None:
    x = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x[5] = x[4]
    y = torch.arange(20) % 2
    with pytest.warns(LabelConflictWarning):
        kf = protocol_label_sharpness(x, y).value
    assert math.isinf(kf)
    assert assess_label_sharpness(kf, 20, 2).is_sharp


@pytest.mark.parametrize("bad", [math.nan, -0.1])
def test_invalid_kf_raises(bad: float) -> None:
    with pytest.raises(ValueError, match="K_F"):
        assess_label_sharpness(bad, 1000, 2)


@pytest.mark.parametrize("tolerance", [0.0, -1.0, math.inf])
def test_invalid_tolerance_raises(tolerance: float) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        assess_label_sharpness(0.3, 1000, 2, tolerance=tolerance)
