"""Disagreement is a finding: every result carries the spread of its estimators, and says so
when they disagree beyond their uncertainty (on CIFAR-10 photos, and not on a clean cube)."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
import torch

from lightning_dataprops import dataset_properties, measure_dataset, names, sample_dataset
from lightning_dataprops.functional.estimators.spread import DISAGREEMENT_RTOL
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def cifar_photos() -> torch.Tensor:
    with np.load(shared_file("cifar10/cifar10.npz")) as data:
        images = data["train_images"][:1000]
    return torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2)


def _rule(values: dict[str, float], stderrs: dict[str, float]) -> bool:
    low, high = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
    beyond_noise = values[high] - values[low] > 2 * math.hypot(stderrs[low], stderrs[high])
    return beyond_noise and values[high] / values[low] - 1 > DISAGREEMENT_RTOL


@pytest.mark.slow
def test_spread_and_flag_on_cifar_photos(cifar_photos: torch.Tensor) -> None:
    props = dataset_properties(cifar_photos, estimators=("gride", "calibrated", "abid"))
    spread = props.spread
    assert spread is not None
    values = {name: result.value for name, result in props.estimates.items()}
    assert dict(spread.values) == values and set(values) >= {"mle", "twonn", "abid"}
    assert spread.relative == pytest.approx(
        (max(values.values()) - min(values.values())) / statistics.median(values.values())
    )
    # On photos the angle statistic and the distance ratios read very different dimensions.
    assert spread.disagree == _rule(values, dict(spread.uncertainties)) is True
    assert spread.message is not None
    assert spread.low_name in spread.message and spread.high_name in spread.message
    document = json.loads(json.dumps(props.to_dict()))
    assert document["spread"]["disagree"] is True
    assert document["spread"]["values"]["abid"] == pytest.approx(values["abid"])
    # The default set (MLE, TwoNN, GRIDE, calibrated) also carries its spread, by the same rule.
    default = dataset_properties(cifar_photos)
    assert default.spread is not None
    assert set(default.spread.values) == {"mle", "twonn", "gride", "calibrated"}
    assert default.spread.disagree == _rule(
        dict(default.spread.values), dict(default.spread.uncertainties)
    )
    # Photos fit no synthetic reference family: the calibrated estimator says it fell back.
    calibrated = default.estimates["calibrated"]
    assert calibrated.value == pytest.approx(default.d_data_twonn)
    assert calibrated.note is not None and "raw TwoNN" in calibrated.note


def test_spread_agrees_on_a_clean_cube_and_reaches_the_report() -> None:
    g = torch.Generator().manual_seed(11)
    x = torch.rand(1000, 3, generator=g)
    y = (x[:, 0] > 0.5).long()
    report = measure_dataset(sample_dataset(x, y, max_samples=1000))
    spread = report.properties.spread
    assert spread is not None and not spread.disagree and spread.message is None
    assert spread.high / spread.low - 1 < DISAGREEMENT_RTOL
    assert report.estimators_disagree is None
    assert report.metrics()[names.D_DATA_SPREAD] == pytest.approx(spread.relative)
    assert report.metrics()[names.d_data_estimate("gride")] == pytest.approx(
        report.properties.estimates["gride"].value
    )
    document = json.loads(json.dumps(report.to_dict()))
    assert document["spread"]["disagree"] is False and document["estimators_disagree"] is None
