"""torchvision-style transforms for tests that put a Normalize inside the Dataset (torchvision is
optional here)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class Normalize:
    """torchvision-style ``Normalize`` on one ``(C, H, W)`` tensor (torchvision is optional)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean, self.std = list(mean), list(std)

    def __call__(self, x: Tensor) -> Tensor:
        mean = torch.tensor(self.mean).reshape(-1, 1, 1)
        return (x - mean) / torch.tensor(self.std).reshape(-1, 1, 1)


class Compose:
    def __init__(self, transforms: list[Any]) -> None:
        self.transforms = transforms

    def __call__(self, x: Any) -> Any:
        for transform in self.transforms:
            x = transform(x)
        return x
