"""The sharp-label check and its references, on real natural and medical images.

The default sample is the callback's: ``N = min(len(dataset), 1000)``, seed 0, class-stratified.
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
from lightning_dataprops.references import (
    PROTOCOLS,
    SharpnessCheck,
    check_label_sharpness,
    protocol_for,
    reference_band,
    reference_rule,
    reference_values,
    to_reference_protocol,
)
from tests.conftest import shared_file
from tests.threads import torch_threads

PACKAGE = Path(__file__).resolve().parents[2] / "lightning_dataprops"
JSON_PATH = PACKAGE / "references" / "reference_values.json"
DEFAULT_N = 1000


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a busy 2-core machine more threads oversubscribe and crawl."""
    with torch_threads(1):
        yield


def _pair(x: torch.Tensor, y: torch.Tensor, a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    keep = (y == a) | (y == b)
    return x[keep], (y[keep] == b).long()


def _check(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> SharpnessCheck:
    sample = sample_dataset(x, y, max_samples=min(len(y), DEFAULT_N), seed=seed)
    assert sample.targets is not None
    return check_label_sharpness(sample.inputs, sample.targets)


@pytest.fixture(scope="module")
def cifar_test() -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10's test split: natural RGB photos the shipped references never saw."""
    data = load_npz(shared_file("cifar10/cifar10.npz"), split="test")
    return data.inputs, data.targets


# --------------------------------------------------------------------------------------------------
# The decision on real data
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", ["pneumoniamnist", "breastmnist"])
def test_medical_training_sets_are_sharp_for_every_seed(stem: str) -> None:
    data = load_npz(shared_file(f"medmnist/{stem}.npz"), split="train")
    for seed in (0, 1, 2):
        check = _check(data.inputs, data.targets, seed)
        assert check.is_sharp and check.statistic_is_sharp, check.explain()
        assert check.protocol == "gray28" and check.statistic == "K_F_q50"
        assert check.value > check.threshold > check.band.maximum
    text = check.explain()
    assert "The labels are sharp" in text and check.band.datasets[0] in text
    assert f"{check.value:.3f}" in text and f"{check.threshold:.3f}" in text
    assert "more training samples" in text and "adversarial" in text
    assert "label review" in text


@pytest.mark.slow
def test_natural_rgb_photos_never_seen_are_silent(cifar_test) -> None:
    x, y = cifar_test
    verdicts = [
        _check(*_pair(x, y, a, b), seed=seed).is_sharp
        for a, b in itertools.combinations(range(10), 2)
        for seed in (0, 1)
    ]
    assert len(verdicts) == 90
    assert sum(verdicts) <= 0.05 * len(verdicts)


def test_a_4000_image_cifar_training_subset_is_silent_for_every_seed() -> None:
    data = load_npz(shared_file("cifar10/cifar10.npz"), split="train")
    subset = sample_dataset(data.inputs, data.targets, max_samples=4000, seed=7)
    assert subset.targets is not None
    for seed in (0, 1, 2):
        check = _check(subset.inputs, subset.targets, seed)
        assert check.protocol == "rgb32" and check.n_classes == 10
        assert not check.is_sharp, check.explain()


def test_fashion_pullover_vs_coat_is_silent_for_every_seed(fashion) -> None:
    x, y = _pair(*fashion, 2, 4)
    for seed in range(5):
        check = _check(x, y, seed)
        assert not check.is_sharp, check.explain()
        assert "not sharper than natural images" in check.explain()


def test_mnist_3_vs_8_is_silent_with_margin(mnist) -> None:
    check = _check(*_pair(*mnist, 3, 8))
    assert not check.is_sharp and check.value < 0.8 * check.threshold


def test_near_duplicates_with_the_other_label_fire(cifar_test) -> None:
    x, y = _pair(*cifar_test, 3, 5)
    sample = sample_dataset(x, y, max_samples=1000, seed=0)
    assert sample.targets is not None
    inputs, targets = sample.inputs.clone(), sample.targets.clone()
    assert not check_label_sharpness(inputs, targets).is_sharp
    generator = torch.Generator().manual_seed(0)
    cats = (targets == 0).nonzero().flatten()[:10]
    dogs = (targets == 1).nonzero().flatten()[:10]
    # 1% of the sample: each of 10 cats replaced by a dog photo plus 1/255 noise, still "cat".
    noise = (torch.rand(inputs[dogs].shape, generator=generator) - 0.5) * (2 / 255)
    inputs[cats] = (inputs[dogs] + noise).clamp(0, 1)
    check = check_label_sharpness(inputs, targets)
    assert check.is_sharp and not check.statistic_is_sharp
    found = {frozenset((p.i, p.j)) for p in check.conflicts}
    assert found == {frozenset((int(c), int(d))) for c, d in zip(cats, dogs, strict=True)}
    text = check.explain()
    assert "Label conflicts: 10 pair(s)" in text and "not for the labels as a whole" in text
    assert "test loss falls more slowly" not in text  # no claim about the labels as a whole


def test_median_sharpness_matches_brute_force(mnist) -> None:
    sample = sample_dataset(*_pair(*mnist, 4, 9), max_samples=600, seed=1)
    assert sample.targets is not None
    check = check_label_sharpness(sample.inputs, sample.targets)
    points = to_reference_protocol(sample.inputs).flatten(1).double()
    distances = torch.cdist(points, points)
    y = sample.targets
    distances[y[:, None] == y[None, :]] = math.inf
    nearest_other = distances.min(dim=1).values
    assert check.value == pytest.approx(1 / float(torch.quantile(nearest_other, 0.5)), rel=1e-5)
    assert pytest.approx(1 / float(nearest_other.min()), rel=1e-5) == check.K_F
    ((pair, (value, count)),) = check.per_class_pair.items()
    assert pair == (0, 1) and count == 600 and value == pytest.approx(check.value)


def test_per_class_pairs_match_brute_force(mnist) -> None:
    x, y = mnist
    sample = sample_dataset(x, y, max_samples=1000, seed=0)
    assert sample.targets is not None
    check = check_label_sharpness(sample.inputs, sample.targets)
    assert check.n_classes == 10 and check.band.n_classes == 10
    points = to_reference_protocol(sample.inputs).flatten(1).double()
    labels = sample.targets
    distances = torch.cdist(points, points)
    distances[labels[:, None] == labels[None, :]] = math.inf
    nearest, other = distances.min(dim=1)
    pair_of = torch.stack([labels, labels[other]], 1).sort(dim=1).values
    expected = {}
    for a, b in torch.unique(pair_of, dim=0).tolist():
        chosen = nearest[(pair_of[:, 0] == a) & (pair_of[:, 1] == b)]
        expected[(a, b)] = (1 / float(torch.quantile(chosen, 0.5)), int(chosen.numel()))
    assert check.per_class_pair.keys() == expected.keys()
    for key, (value, count) in expected.items():
        assert check.per_class_pair[key][1] == count, key
        assert check.per_class_pair[key][0] == pytest.approx(value, rel=1e-5), key


def test_bad_inputs_get_clear_errors() -> None:
    x = torch.rand(50, 1, 28, 28)
    with pytest.raises(ValueError, match="class targets"):
        check_label_sharpness(x, torch.rand(50))
    with pytest.raises(ValueError, match=r"at least two classes|same label"):
        check_label_sharpness(x, torch.zeros(50, dtype=torch.long))
    with pytest.raises(ValueError, match="no image reference"):
        check_label_sharpness(torch.rand(50, 784), torch.arange(50) % 2)
    with pytest.raises(ValueError, match="samples"):
        check_label_sharpness(x, torch.arange(49) % 2)
    one_hot = F.one_hot(torch.arange(50) % 2).float()
    assert check_label_sharpness(x, one_hot).n_classes == 2


# --------------------------------------------------------------------------------------------------
# The protocols
# --------------------------------------------------------------------------------------------------


def test_gray_protocol_is_invariant_to_scale_channels_and_resolution(mnist) -> None:
    x = _pair(*mnist, 3, 8)[0][:300]
    reference = to_reference_protocol(x)
    assert reference.shape == (300, 1, 28, 28) and reference.dtype == torch.float32
    variants = {
        "uint8 0-255": (x * 255).round().to(torch.uint8),
        "normalized": (x - 0.1307) / 0.3081,
        "gray stored as RGB": x.repeat(1, 3, 1, 1),
        "RGBA": torch.cat([x.repeat(1, 3, 1, 1), torch.full_like(x, 0.3)], dim=1),
        "channels last": x.permute(0, 2, 3, 1).repeat(1, 1, 1, 3),
        "(n, H, W)": x[:, 0],
        "56x56": F.interpolate(x, scale_factor=2, mode="nearest"),
    }
    for name, variant in variants.items():
        assert protocol_for(variant) == "gray28", name
        out = to_reference_protocol(variant)
        assert float((out - reference).abs().max()) < 1e-5, name


def test_rgb_protocol_keeps_colour(cifar_test) -> None:
    x = cifar_test[0][:64]
    assert protocol_for(x) == "rgb32"
    out = to_reference_protocol(x)
    assert out.shape == (64, 3, 32, 32) and float(out.min()) == 0.0 and float(out.max()) == 1.0
    again = to_reference_protocol(F.interpolate(x * 255, scale_factor=2, mode="nearest"))
    assert float((again - out).abs().max()) < 1e-5
    gray = to_reference_protocol(x, "gray28")
    assert gray.shape == (64, 1, 28, 28)
    assert set(PROTOCOLS) == {"gray28", "rgb32"}


def test_protocol_rejects_non_images() -> None:
    with pytest.raises(ValueError, match="no image reference"):
        to_reference_protocol(torch.rand(10, 784))
    with pytest.raises(ValueError, match="not 2D images"):
        to_reference_protocol(torch.rand(4, 1, 8, 28, 28))
    with pytest.raises(ValueError, match="channels"):
        to_reference_protocol(torch.rand(4, 7, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        to_reference_protocol(torch.full((2, 1, 28, 28), math.nan))
    with pytest.raises(ValueError, match="protocol"):
        to_reference_protocol(torch.rand(2, 1, 28, 28), "gray64")


# --------------------------------------------------------------------------------------------------
# The shipped references
# --------------------------------------------------------------------------------------------------


def test_json_holds_the_rule_and_both_protocols() -> None:
    data = json.loads(JSON_PATH.read_text(encoding="utf-8"))
    assert data == reference_values()
    rule = reference_rule()
    assert rule["statistic"] == "K_F_q50" and 1 < rule["tolerance"] < 1.5
    assert rule["natural_min_conflict_ratio"] > rule["conflict_rtol"]
    keys = {(r["protocol"], r["n_classes"]) for r in data["references"]}
    assert keys == {("gray28", 2), ("gray28", 10), ("rgb32", 2), ("rgb32", 10)}
    for row in data["references"]:
        band = row["K_F_q50"]
        assert 0 < band["min"] <= band["q10"] <= band["median"] <= band["q90"] <= band["max"]


def test_band_uses_the_largest_measured_n_not_above() -> None:
    assert reference_band(1500, 2).measured_n == 1000
    assert reference_band(300, 2).measured_n == 500
    assert reference_band(1000, 3).n_classes == 2 and reference_band(1000, 7).n_classes == 10
    gray, rgb = reference_band(1000, 2, "gray28"), reference_band(1000, 2, "rgb32")
    assert "CIFAR-10" in gray.datasets and "MNIST" in gray.datasets
    assert rgb.datasets == ("CIFAR-10",)
    assert rgb.maximum < gray.maximum  # distances grow with 3x32x32 pixels
    with pytest.raises(ValueError, match="statistic"):
        reference_band(1000, 2, statistic="K_F_q99")
    with pytest.raises(ValueError, match="protocol"):
        reference_band(1000, 2, "hsv")


def test_study_csv_reproduces_the_shipped_bands() -> None:
    rows = list(
        np.genfromtxt(
            PACKAGE.parent / "docs" / "reference_study.csv",
            delimiter=",",
            names=True,
            dtype=None,
            encoding="utf-8",
        )
    )
    natural = [
        r
        for r in rows
        if r["domain"] == "natural"
        and r["protocol"] == "gray28"
        and r["n_classes"] == 2
        and r["n"] == 1000
    ]
    band = reference_band(1000, 2)
    assert max(float(r["K_F_q50"]) for r in natural) == pytest.approx(band.maximum)
