"""No ambient precision setting (autocast, TF32, matmul precision, deterministic mode) may change
a measurement: the result inside each setting is bit-identical to the one outside."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from lightning_dataprops import dataset_properties, intrinsic_dimension, label_sharpness
from lightning_dataprops.data import load_npz
from lightning_dataprops.functional import knn_search
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def breastmnist() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_npz(shared_file("medmnist/breastmnist.npz"))
    return data.inputs, data.targets


@contextlib.contextmanager
def _global(get: Callable[[], Any], set_: Callable[[Any], None], value: Any) -> Iterator[None]:
    """A global torch setting set to ``value`` inside the block, restored afterwards."""
    previous = get()
    set_(value)
    try:
        yield
    finally:
        set_(previous)


SETTINGS: dict[str, Callable[[], contextlib.AbstractContextManager[object]]] = {
    "autocast_cpu_bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    "autocast_cpu_fp16": lambda: torch.autocast("cpu", dtype=torch.float16),
    "matmul_precision_medium": lambda: _global(
        torch.get_float32_matmul_precision, torch.set_float32_matmul_precision, "medium"
    ),
    "deterministic": lambda: _global(
        torch.are_deterministic_algorithms_enabled, torch.use_deterministic_algorithms, True
    ),
}


def _measure(x: torch.Tensor, y: torch.Tensor) -> tuple[float, ...]:
    props = dataset_properties(x, y, k=20)
    assert props.K_F is not None
    return (
        props.d_data,
        props.d_data_twonn,
        props.K_F,
        intrinsic_dimension(x, "mle").value,
        intrinsic_dimension(x, "twonn").value,
        label_sharpness(x, y).value,
        label_sharpness(x, y.to(torch.float32)).value,  # regression: the all-pairs pass
    )


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_ambient_settings_never_change_a_measurement(
    breastmnist: tuple[torch.Tensor, torch.Tensor], setting: str
) -> None:
    x, y = breastmnist
    outside = _measure(x, y)
    graph_outside = knn_search(x.reshape(x.shape[0], -1), 20)
    with SETTINGS[setting]():
        inside = _measure(x, y)
        graph_inside = knn_search(x.reshape(x.shape[0], -1), 20)
    assert inside == outside  # bit-identical
    assert torch.equal(graph_inside.distances, graph_outside.distances)
    assert torch.equal(graph_inside.indices, graph_outside.indices)
    # the settings are restored afterwards
    assert torch.get_float32_matmul_precision() == "highest"
    assert not torch.is_autocast_enabled("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_autocast_and_tf32_never_change_a_measurement(
    breastmnist: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = (t.cuda() for t in breastmnist)
    outside = _measure(x, y)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            inside = _measure(x, y)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    assert inside == outside
