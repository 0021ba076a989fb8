"""The open estimator set: a user's estimator, registered outside the package in a few lines, is
computed from the same neighbour pass, returned, logged in a real fit, and equals a float64
brute force of its own formula."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_dataprops import (
    Neighbours,
    available_estimators,
    dataset_properties,
    intrinsic_dimension,
    names,
    register_estimator,
    sample_dataset,
)
from lightning_dataprops.callbacks import DataPropsOptions, DatasetPropertiesMonitor
from lightning_dataprops.functional.estimators import unregister_estimator
from tests.integration.lightning_models import TensorDataModule, TinyCNN, trainer

SEEN: list[int] = []


def _mean_log_ratio(nb: Neighbours) -> float:
    """A user's estimator: 1 / mean log(T_3 / T_1) over the samples (k = 3)."""
    SEEN.append(nb.k_max)
    return 1.0 / float(torch.log(nb.distances[:, 2] / nb.distances[:, 0]).mean())


def _brute_force(x: np.ndarray) -> float:
    """The same formula in float64 from all pairwise distances (duplicates absent)."""
    x = x.reshape(len(x), -1).astype(np.float64)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    d.sort(axis=1)
    return 1.0 / float(np.log(d[:, 2] / d[:, 0]).mean())


@pytest.fixture()
def user_estimator() -> Iterator[str]:
    register_estimator("mean_log_ratio", _mean_log_ratio, k=3, description="test estimator")
    SEEN.clear()
    yield "mean_log_ratio"
    unregister_estimator("mean_log_ratio")


def test_user_estimator_equals_float64_brute_force(user_estimator: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(400, 3, generator=g) @ torch.randn(3, 12, generator=g)
    props = dataset_properties(x, k=10, estimators=(user_estimator,))
    assert set(props.estimates) == {"mle", "twonn", user_estimator}
    result = props.estimates[user_estimator]
    assert result.value == pytest.approx(_brute_force(x.numpy()), rel=1e-9)
    assert result.k == 3 and result.n == 400 and result.estimator == user_estimator
    # One pass: the object it received held the call's k = 10 neighbours (the most needed).
    assert SEEN == [10]
    # The classic estimators are unchanged by computing another one beside them.
    alone = dataset_properties(x, k=10)
    assert props.d_data == alone.d_data and props.d_data_twonn == alone.d_data_twonn
    # And by name through intrinsic_dimension (which searches only the 3 neighbours it needs).
    assert intrinsic_dimension(x, user_estimator).value == pytest.approx(result.value, rel=1e-12)


def test_user_estimator_gets_the_largest_k_and_a_bootstrap(user_estimator: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(300, 2, generator=g)
    props = dataset_properties(x, k=2, estimators=(user_estimator,), n_bootstrap=3)
    assert props.mle_result.k == 2 and props.estimates[user_estimator].k == 3
    assert SEEN[0] == 3, "the pass found as many neighbours as the most demanding estimator"
    # One bootstrap serves every estimator: each has a standard error from the same resamples.
    for result in props.estimates.values():
        assert result.n_bootstrap == 3 and result.stderr is not None and result.stderr > 0
    assert len(SEEN) == 1 + 3


def test_registry_refuses_bad_names_and_answers(user_estimator: str) -> None:
    assert user_estimator in available_estimators()
    with pytest.raises(ValueError, match="already registered"):
        register_estimator(user_estimator, _mean_log_ratio)
    with pytest.raises(ValueError, match="lower-case"):
        register_estimator("Bad Name", _mean_log_ratio)
    with pytest.raises(ValueError, match="Unknown estimator 'nope'"):
        dataset_properties(torch.rand(50, 2), k=5, estimators=("nope",))
    register_estimator("broken", lambda nb: math.nan)
    try:
        with pytest.raises(ValueError, match="'broken' returned nan"):
            dataset_properties(torch.rand(50, 2), k=5, estimators=("broken",))
    finally:
        unregister_estimator("broken")


def test_monitor_logs_the_user_estimator_in_a_fit(
    user_estimator: str, mnist: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    x, y = mnist[0][:600], mnist[1][:600]
    monitor = DatasetPropertiesMonitor(
        DataPropsOptions(seed=2), max_samples=300, k=10, estimators=(user_estimator,)
    )
    fit = trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1)
    fit.fit(TinyCNN(n_classes=10), datamodule=TensorDataModule(x, y))
    sample = sample_dataset(torch.utils.data.TensorDataset(x, y), max_samples=300, seed=2)
    logged = float(fit.callback_metrics[names.d_data_estimate(user_estimator)])
    # Oracle: the float64 brute force of the formula on the same seeded sample (no duplicates).
    assert logged == pytest.approx(_brute_force(sample.inputs.numpy()), rel=1e-5)
    assert float(fit.callback_metrics[names.D_DATA_TWONN]) > 0
