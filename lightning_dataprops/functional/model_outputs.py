"""What a model returned, said in a sentence, and the ``forward_fn`` that picks its logits.

Models often return more than logits: ``(logits, features)``, ``{"logits": ..., "features":
...}``, or an output object with a ``logits`` attribute (Hugging Face). A message that asks for
``forward_fn`` must show the user what came back and suggest the call that fits it: a tuple's
index does not fit a dict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

__all__ = ["describe_output", "forward_fn_hint"]

_LOGIT_NAMES = ("logits", "logit", "y_hat", "preds", "pred", "output", "out", "scores")


def _part(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"tensor {tuple(value.shape)}"
    return type(value).__name__


def describe_output(output: Any) -> str:
    """A short description of a model's output: its type and, for tensors, shapes.

    Example:
        >>> import torch
        >>> describe_output({"logits": torch.zeros(2, 3), "features": torch.zeros(2, 8)})
        "a dict with keys ['logits', 'features'] (tensor (2, 3), tensor (2, 8))"
        >>> describe_output((torch.zeros(2, 3), 1.0))
        'a tuple of 2 (tensor (2, 3), float)'
    """
    if isinstance(output, Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    if isinstance(output, Mapping):
        keys = [str(key) for key in output]
        parts = ", ".join(_part(value) for value in output.values())
        return f"a {type(output).__name__} with keys {keys} ({parts})"
    if isinstance(output, Sequence) and not isinstance(output, str):
        parts = ", ".join(_part(value) for value in output)
        return f"a {type(output).__name__} of {len(output)} ({parts})"
    if isinstance(getattr(output, "logits", None), Tensor):
        return f"a {type(output).__name__} with a .logits attribute"
    return f"a {type(output).__name__}"


def forward_fn_hint(output: Any) -> str:
    """The ``forward_fn`` that picks the logits out of ``output``, as source text: the key or
    index of the first two-dimensional tensor (a logits-like name preferred), else ``.logits``.

    Example:
        >>> import torch
        >>> forward_fn_hint({"features": torch.zeros(2, 8), "logits": torch.zeros(2, 3)})
        'lambda m, x: m(x)["logits"]'
        >>> forward_fn_hint((torch.zeros(2, 3), torch.zeros(2, 8)))
        'lambda m, x: m(x)[0]'
    """
    if isinstance(output, Mapping):
        keys = list(output)
        named = [key for key in keys if str(key).lower() in _LOGIT_NAMES]
        matrices = [key for key in keys if _is_matrix(output[key])]
        key = (named or matrices or keys or ["logits"])[0]
        return f"lambda m, x: m(x)[{json.dumps(key) if isinstance(key, str) else repr(key)}]"
    if isinstance(output, Sequence) and not isinstance(output, str):
        index = next((i for i, value in enumerate(output) if _is_matrix(value)), 0)
        return f"lambda m, x: m(x)[{index}]"
    if isinstance(getattr(output, "logits", None), Tensor):
        return "lambda m, x: m(x).logits"
    return "lambda m, x: m(x)[0]"


def _is_matrix(value: Any) -> bool:
    return isinstance(value, Tensor) and value.ndim == 2
