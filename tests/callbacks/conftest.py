"""Fixtures of the callback tests: a small real binary task (MNIST 3 vs 8)."""

from __future__ import annotations

import pytest
import torch

from tests.integration.lightning_models import binary_task


@pytest.fixture()
def mnist_3_vs_8(mnist: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return binary_task(*mnist, 3, 8)
