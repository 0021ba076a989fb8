"""The one guard that leaves a model exactly as it found it.

Every pass the product runs over a user's model (attacks, representation capture, probing a
layer's shape) goes through :func:`untouched`. Afterwards, also when the body raises:

* every module's ``training`` flag is as before;
* every buffer holds its old values in its old tensor object (BatchNorm running statistics and
  ``num_batches_tracked`` included), and buffers added inside are gone;
* every parameter's ``.grad`` is the same object as before (``None`` included): inside the
  guard ``.grad`` is ``None``, so a third-party ``.backward()`` accumulates into fresh tensors
  that are dropped afterwards;
* every module's hook dictionaries (forward, forward-pre, backward, state-dict hooks ...) hold
  exactly the hooks they held before: no hook is left behind;
* the global random states of torch (CPU and every initialised CUDA device), numpy and
  Python's ``random`` are as before, so the training trajectory does not depend on whether a
  measurement ran.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["untouched"]

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])


class _Snapshot:
    """What :func:`untouched` puts back: modes, buffers, grads and hooks of some modules."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        modules: dict[int, nn.Module] = {}
        for model in models:
            for module in model.modules():
                modules.setdefault(id(module), module)
        self.modules = list(modules.values())
        self.modes = [module.training for module in self.modules]
        self.buffers = [dict(module._buffers) for module in self.modules]
        with torch.no_grad():
            self.values = [
                {name: b.detach().clone() for name, b in saved.items() if b is not None}
                for saved in self.buffers
            ]
        self.hooks = [
            {name: dict(getattr(module, name)) for name in _HOOK_DICTS if hasattr(module, name)}
            for module in self.modules
        ]
        parameters: dict[int, nn.Parameter] = {}
        for model in models:
            for parameter in model.parameters():
                parameters.setdefault(id(parameter), parameter)
        self.grads: list[tuple[nn.Parameter, Tensor | None]] = [
            (parameter, parameter.grad) for parameter in parameters.values()
        ]

    def hide_grads(self) -> None:
        for parameter, _ in self.grads:
            parameter.grad = None

    def restore(self) -> None:
        for module, mode, buffers, values, hooks in zip(
            self.modules, self.modes, self.buffers, self.values, self.hooks, strict=True
        ):
            module.training = mode
            module._buffers.clear()
            module._buffers.update(buffers)
            with torch.no_grad():
                for name, value in values.items():
                    buffer = buffers[name]
                    assert buffer is not None
                    if buffer.shape != value.shape:  # resized inside (e.g. load_state_dict)
                        buffer.resize_(value.shape)
                    buffer.copy_(value)
            for name, saved in hooks.items():
                current = getattr(module, name)
                current.clear()
                current.update(saved)
        for parameter, grad in self.grads:
            parameter.grad = grad


@contextlib.contextmanager
def untouched(
    models: nn.Module | Sequence[nn.Module],
    *,
    eval_mode: bool = True,
    autograd: bool | None = None,
) -> Iterator[None]:
    """Run the body on ``models`` and leave them, and the global RNGs, exactly as they were.

    Args:
        models: a module or several (e.g. a model and a third-party attack's copy of it).
        eval_mode: put every module in eval mode inside (Dropout off, BatchNorm on running
            statistics); ``False`` keeps the current flags inside.
        autograd: ``True`` enables autograd inside, also within ``torch.no_grad()`` and
            ``torch.inference_mode()`` blocks (Lightning's validation loops), as attacks need;
            ``False`` runs the body under ``torch.no_grad()``; ``None`` keeps the ambient mode.

    The restored state is listed in the module docstring. Parameter values are not copied
    (nothing here writes them); a body that steps an optimizer is out of scope.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.model_guard import untouched
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
        >>> running = model[1].running_mean.clone()
        >>> with untouched(model, eval_mode=False, autograd=False):
        ...     _ = model(torch.randn(8, 3))  # train mode: would update the running stats
        ...     _ = model[0].register_forward_hook(lambda *args: None)
        >>> torch.equal(model[1].running_mean, running), model.training
        (True, True)
        >>> len(model[0]._forward_hooks)  # the hook placed inside is gone
        0
    """
    group = [models] if isinstance(models, nn.Module) else list(models)
    rng = _rng_states()
    snapshot = _Snapshot(group)
    try:
        snapshot.hide_grads()
        if eval_mode:
            for model in group:
                model.eval()
        with contextlib.ExitStack() as stack:
            if autograd is True:
                stack.enter_context(torch.inference_mode(False))
                stack.enter_context(torch.enable_grad())
            elif autograd is False:
                stack.enter_context(torch.no_grad())
            yield
    finally:
        snapshot.restore()
        _restore_rng(rng)
