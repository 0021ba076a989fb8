"""A model seen from pixel space, so that eps means a fraction of the pixel range.

The usual pipeline normalises inside the Dataset (``Normalize(mean, std)``), so the model, and
any probe reading the dataset, sees ``(pixels - mean) / std``. The paper's budget (2/255) is in
pixel units. :class:`PixelSpaceModel` takes pixel-space inputs, normalises them and runs the
model through a forward function, so that every attack (built-in or third-party) and every
clean or attacked evaluation works on pixels while the model sees what it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from lightning_dataprops.functional.attacks._validation import ChannelStats, _channel_stats
from lightning_dataprops.functional.model_outputs import describe_output, forward_fn_hint

ForwardFn = Callable[[nn.Module, Tensor], Any]


def to_pixels(x: Tensor, mean: ChannelStats | None, std: ChannelStats | None) -> Tensor:
    """Undo ``Normalize(mean, std)`` on ``(n, C, ...)`` inputs: ``x * std + mean`` per channel
    (``x`` itself without statistics). The one copy of this formula.

    Example:
        >>> import torch
        >>> to_pixels(torch.zeros(1, 2, 1, 1), [0.5, 0.25], [2.0, 1.0]).flatten().tolist()
        [0.5, 0.25]
    """
    stats = _channel_stats(mean, std, x)
    return x if stats is None else x * stats[1] + stats[0]


class PixelSpaceModel(nn.Module):
    """``forward(x) = forward_fn(model, (x - mean) / std)``, returning float32 logits.

    Args:
        model: the classifier (kept as a submodule, so guards and devices reach it).
        forward_fn: ``(model, inputs) -> logits``; default ``model(inputs)``. Use it for models
            returning tuples or dicts, e.g. ``lambda m, x: m(x)[0]``.
        mean, std: per-channel statistics of the normalisation the model expects (one value per
            channel, dimension 1 of the inputs); ``None`` for a model that reads pixels.

    Raises:
        ValueError: at call time, when the output is not a tensor (pass ``forward_fn``), or on
            bad ``mean``/``std``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.attacks import PixelSpaceModel
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(3, 2))
        >>> pixel = PixelSpaceModel(net, lambda m, x: m(x), mean=[0.5] * 3, std=[0.25] * 3)
        >>> normalised = torch.randn(4, 3, 1, 1)
        >>> x = pixel.to_pixels(normalised)  # what the Dataset held before Normalize
        >>> torch.allclose(pixel(x), net(normalised), atol=1e-6)
        True
    """

    def __init__(
        self,
        model: nn.Module,
        forward_fn: ForwardFn | None = None,
        *,
        mean: ChannelStats | None = None,
        std: ChannelStats | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.forward_fn = forward_fn
        self.mean = mean
        self.std = std

    def to_pixels(self, x: Tensor) -> Tensor:
        """Undo the normalisation: ``x * std + mean`` (``x`` itself without statistics)."""
        return to_pixels(x, self.mean, self.std)

    def forward(self, x: Tensor) -> Tensor:
        stats = _channel_stats(self.mean, self.std, x)
        if stats is not None:
            x = (x - stats[0]) / stats[1]
        output = self.model(x) if self.forward_fn is None else self.forward_fn(self.model, x)
        if not isinstance(output, Tensor):
            raise ValueError(
                f"The model returned {describe_output(output)}, not a tensor of logits of shape "
                "(n, n_classes); pass forward_fn returning the logits, e.g. "
                f"`{forward_fn_hint(output)}`."
            )
        return output.float()
