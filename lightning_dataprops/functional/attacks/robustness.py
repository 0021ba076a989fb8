"""Clean against attacked loss and accuracy: the paper's robustness measure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_dataprops.functional.attacks._validation import (
    ChannelStats,
    ForwardContext,
    LossFn,
    _channel_stats,
    _check_batch,
    _check_model,
    _context,
)
from lightning_dataprops.functional.attacks.adapters import BoundAttack, make_attack
from lightning_dataprops.functional.attacks.builtin import _Objective
from lightning_dataprops.functional.model_guard import untouched


@dataclass(frozen=True)
class RobustnessResult:
    """Clean and attacked performance on one set of samples.

    Attributes:
        clean_loss: mean loss on the clean inputs.
        adv_loss: mean loss on the attacked inputs.
        loss_increase: ``adv_loss - clean_loss``, the paper's robustness measure (higher: more
            fragile).
        clean_acc: fraction of samples classified correctly (argmax of the logits) when clean.
        robust_acc: fraction classified correctly after the attack (over all ``n`` samples).
        success_rate: among the samples classified correctly when clean, the fraction
            misclassified after the attack; ``0.0`` when no sample is correct when clean
            (``n_clean_correct == 0``), never NaN.
        n: number of samples.
        n_clean_correct: number of samples classified correctly when clean.
        attack: the attack's description.
    """

    clean_loss: float
    adv_loss: float
    loss_increase: float
    clean_acc: float
    robust_acc: float
    success_rate: float
    n: int
    n_clean_correct: int = 0
    attack: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (non-finite losses spelled as strings)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
            out[key] = value
        return out


def robustness(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    attack: Any = "fgsm",
    *,
    loss_fn: LossFn | None = None,
    mean: ChannelStats | None = None,
    std: ChannelStats | None = None,
    forward_context: ForwardContext | None = None,
    batch_size: int | None = None,
) -> RobustnessResult:
    """Attack ``x`` and compare clean with attacked loss and accuracy.

    ``success_rate`` is defined on the samples the model classifies correctly when clean:
    ``|{i : clean correct and attacked wrong}| / |{i : clean correct}|``, and ``0.0`` when no
    sample is correct when clean (check ``n_clean_correct``). ``robust_acc`` is the plain
    accuracy on the attacked inputs over all ``n`` samples. Losses are means over the samples.

    The model runs in eval mode with every module's training flag, and parameter ``.grad``,
    restored afterwards; works under ``no_grad`` and ``inference_mode``.

    Args:
        model: a classifier returning logits of shape ``(n, n_classes)``.
        x: inputs of shape ``(n, ...)`` in pixel space.
        y: ``n`` integer class ids.
        attack: anything :func:`make_attack` accepts (``"fgsm"``: the paper's FGSM at 2/255), or
            an ``attack(x, y) -> x_adv`` callable.
        loss_fn: ``loss_fn(logits, y)``, averaged if not scalar; default mean cross-entropy. It
            is also handed to built-in attacks.
        mean: per-channel mean applied inside the forward pass (built-in attacks only).
        std: per-channel standard deviation (built-in attacks only).
        forward_context: a callable returning a context manager entered around forward passes.
        batch_size: attack and evaluate in chunks of this many samples (default: one batch).

    Returns:
        A :class:`RobustnessResult`.

    Raises:
        ValueError: on bad inputs, or ``mean``/``std`` with a third-party attack (put the
            normalisation inside the model instead).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.attacks import robustness
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.tensor([[1.0, 1, 1, 1], [-1, -1, -1, -1]]))
        ...     _ = model[1].bias.zero_()
        >>> x = torch.tensor([0.4, 0.505, 0.9]).reshape(3, 1, 1, 1).repeat(1, 1, 2, 2)
        >>> y = torch.tensor([0, 0, 0])
        >>> result = robustness(model, x, y, "fgsm", mean=[0.5], std=[1.0])
        >>> result.clean_acc, result.robust_acc, result.success_rate, result.n  # 0.505 flips
        (0.6666666666666666, 0.3333333333333333, 0.5, 3)
        >>> result.loss_increase > 0
        True
    """
    _check_model(model)
    _check_batch(x, y, class_ids=True)
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"`batch_size` must be a positive integer or None, got {batch_size!r}.")
    if isinstance(attack, str):
        settings = {"loss_fn": loss_fn, "mean": mean, "std": std}
        settings = {k: v for k, v in settings.items() if v is not None}
        bound = make_attack(attack, model, forward_context=forward_context, **settings)
    else:
        if mean is not None or std is not None:
            raise ValueError(
                "`mean`/`std` apply to the built-in attacks only; with a third-party attack put "
                "the normalisation inside the model: attack and evaluate "
                "PixelSpaceModel(model, mean=mean, std=std) on pixel-space inputs."
            )
        bound = (
            attack
            if isinstance(attack, BoundAttack)
            else make_attack(attack, model, forward_context=forward_context)
        )
    stats = _channel_stats(mean, std, x)
    n = int(x.shape[0])
    size = n if batch_size is None else batch_size
    clean_loss = adv_loss = 0.0
    clean_right: list[Tensor] = []
    adv_right: list[Tensor] = []
    for start in range(0, n, size):
        xb, yb = x[start : start + size], y[start : start + size]
        x_adv = bound(xb, yb)
        with untouched(model, autograd=False):
            objective = _Objective(model, yb, stats, loss_fn, forward_context)
            losses = []
            for inputs in (xb, x_adv):
                with _context(forward_context):
                    logits = objective.logits(inputs)
                    if logits.ndim != 2 or int(logits.shape[0]) != int(yb.shape[0]):
                        raise ValueError(
                            f"Accuracy needs logits of shape (n, n_classes); the model "
                            f"returned {tuple(logits.shape)} for {int(yb.shape[0])} samples."
                        )
                    if loss_fn is None:
                        objective._check_logits(logits)
                        loss = F.cross_entropy(logits, yb)
                    else:
                        loss = loss_fn(logits, yb)
                losses.append(float(loss.float().mean()))
                target = yb.to(logits.device)
                right = (logits.argmax(dim=1) == target).cpu()
                (clean_right if inputs is xb else adv_right).append(right)
        weight = int(xb.shape[0]) / n
        clean_loss += losses[0] * weight
        adv_loss += losses[1] * weight
    clean = torch.cat(clean_right)
    adv = torch.cat(adv_right)
    n_correct = int(clean.sum())
    flipped = int((clean & ~adv).sum())
    return RobustnessResult(
        clean_loss=clean_loss,
        adv_loss=adv_loss,
        loss_increase=adv_loss - clean_loss,
        clean_acc=n_correct / n,
        robust_acc=int(adv.sum()) / n,
        success_rate=flipped / n_correct if n_correct else 0.0,
        n=n,
        n_clean_correct=n_correct,
        attack=repr(bound),
    )
