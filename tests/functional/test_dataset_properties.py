"""One pass gives the same numbers as the separate estimators."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lightning_dataprops.functional import dataset_properties, intrinsic_dimension, label_sharpness
from tests.conftest import sphere_in_ambient


@pytest.mark.slow
def test_one_pass_matches_separate_estimators(pneumonia) -> None:
    x, y = pneumonia
    props = dataset_properties(x, y, k=20, top_pairs=5)
    assert props.d_data == intrinsic_dimension(x, "mle", k=20).value
    assert props.d_data_twonn == intrinsic_dimension(x, "twonn").value
    assert label_sharpness(x, y).value == props.K_F
    assert props.n == 3882 and props.input_shape == (1, 28, 28)


def test_pneumonia_training_duplicates_are_reported(pneumonia) -> None:
    x, y = pneumonia
    flat = x.reshape(len(x), -1).numpy()
    _, counts = np.unique(flat, axis=0, return_counts=True)
    oracle_pairs = int(sum(c * (c - 1) // 2 for c in counts))
    props = dataset_properties(x, y)
    assert props.duplicates.n_exact_pairs == oracle_pairs == 17
    assert props.duplicates.n_duplicates >= int((counts - 1).sum())
    assert math.isfinite(props.d_data) and math.isfinite(props.d_data_twonn)


def test_without_labels_and_with_regression_targets() -> None:
    x = sphere_in_ambient(1000, intrinsic=4, ambient=30)
    unlabelled = dataset_properties(x, k=10)
    assert unlabelled.K_F is None and unlabelled.label_sharpness_result is None
    regression = dataset_properties(x, x[:, 0].double(), k=10)
    assert pytest.approx(label_sharpness(x, x[:, 0].double()).value) == regression.K_F
    assert regression.label_sharpness_result is not None
    assert regression.label_sharpness_result.target_type == "regression"


def test_to_dict_is_json_with_documented_keys() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, 3, 3, generator=generator)
    y = torch.randint(0, 3, (300,), generator=generator)
    x = torch.cat([x, x[:1]])
    y = torch.cat([y, (y[:1] + 1) % 3])
    with pytest.warns(UserWarning, match="Label conflict"):
        props = dataset_properties(x, y, k=10)
    document = json.loads(json.dumps(props.to_dict()))
    assert document["n"] == 301 and document["input_shape"] == [2, 3, 3]
    assert {"d_data", "d_data_twonn", "mle_result", "twonn_result"} <= set(document)
    assert document["K_F"] == "inf"
    assert document["label_sharpness_result"]["pairs"][0]["i"] == 0


def test_bootstrap_gives_both_standard_errors() -> None:
    x = sphere_in_ambient(1200, intrinsic=5, ambient=20, seed=4)
    props = dataset_properties(x, k=10, n_bootstrap=4, seed=0)
    for result in (props.mle_result, props.twonn_result):
        assert result.n_bootstrap == 4
        assert result.stderr is not None and 0 < result.stderr < 1.0
