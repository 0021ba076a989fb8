"""config_context: one place for the cross-cutting settings, the per-call argument overriding."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from lightning_dataprops import (
    config_context,
    dataset_properties,
    get_config,
    label_sharpness,
    set_config,
)
from lightning_dataprops.functional import knn_search


def _points(n: int = 300, d: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    return x, y


def test_context_scopes_the_setting_and_restores_it_even_on_error() -> None:
    assert get_config().memory_budget_mb == 512.0 and get_config().progress is False
    with config_context(memory_budget_mb=64, progress=True) as inside:
        assert inside.memory_budget_mb == 64.0 and inside.progress is True
        with config_context(progress=False):  # nested: only what is named changes
            assert get_config().memory_budget_mb == 64.0 and get_config().progress is False
        assert get_config().progress is True
    assert get_config().memory_budget_mb == 512.0
    with pytest.raises(RuntimeError), config_context(memory_budget_mb=8):
        raise RuntimeError("boom")
    assert get_config().memory_budget_mb == 512.0


def test_set_config_is_per_thread_context() -> None:
    seen: list[float] = []

    def other() -> None:
        seen.append(get_config().memory_budget_mb)

    with config_context(memory_budget_mb=32):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == [512.0]  # a new thread starts from the defaults
    try:
        set_config(memory_budget_mb=100)
        assert get_config().memory_budget_mb == 100.0
    finally:
        set_config(memory_budget_mb=512)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_budget_is_refused_with_what_to_pass(bad: float) -> None:
    with (
        pytest.raises(ValueError, match="finite number of MiB above 0"),
        config_context(memory_budget_mb=bad),
    ):
        pass
    x, _ = _points()
    with pytest.raises(ValueError, match="memory_budget_mb"):
        knn_search(x, 5, memory_budget_mb=bad)


def test_progress_setting_reaches_every_search_and_the_argument_overrides(
    capsys: pytest.CaptureFixture[str],
) -> None:
    x, y = _points()
    quiet = dataset_properties(x, y)
    assert "neighbours" not in capsys.readouterr().err
    with config_context(progress=True):
        shown = dataset_properties(x, y)
        assert "neighbours" in capsys.readouterr().err
        label_sharpness(x, y, progress=False)  # the call's own argument wins
        assert capsys.readouterr().err == ""
        # Duplicates make the estimators search again: that search obeys the argument too.
        dataset_properties(torch.cat([x, x[:20]]), progress=False)
        assert capsys.readouterr().err == ""
    assert shown.d_data == quiet.d_data and shown.K_F == quiet.K_F


def test_a_small_budget_gives_the_same_exact_answer_as_brute_force() -> None:
    x, y = _points(n=400, d=6)
    with config_context(memory_budget_mb=0.05):  # forces many small blocks
        graph = knn_search(x, 4)
        k_f = label_sharpness(x, y).value
    dist = torch.cdist(x, x)
    dist.fill_diagonal_(float("inf"))
    expected = torch.sort(dist, dim=1).values[:, :4]
    np.testing.assert_allclose(graph.distances.double().numpy(), expected.numpy(), rtol=1e-5)
    other = dist[y[:, None] != y[None, :]]
    assert k_f == pytest.approx(1.0 / float(other.min()), rel=1e-5)
