"""A ResNet-style block without Lightning or torchvision: BatchNorm outputs rewritten in place."""

from __future__ import annotations

from torch import Tensor, nn


class BasicBlock(nn.Module):
    """torchvision's ResNet ``BasicBlock``: one ``ReLU(inplace=True)`` run twice, and
    ``out += identity`` rewriting ``bn2``'s output in place."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


def residual_features(channels: int = 8) -> nn.Sequential:
    """Conv -> BatchNorm -> ReLU(inplace=True) -> BasicBlock -> pool(4) -> flatten, for
    ``(n, 1, h, w)`` inputs: ``channels * 16`` features."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        BasicBlock(channels),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
    )
