"""The one model guard: a model in train mode, with grads and hooks, comes out bit-identical."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from lightning_dataprops.functional.model_guard import untouched


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5)
    )
    model.train()
    model(torch.randn(4, 3, 6, 6)).sum().backward()  # real grads, one running-stats update
    model[4].eval()  # a frozen Dropout inside a training model: flags differ per module
    return model


def _snapshot(model: nn.Module) -> dict[str, Any]:
    hooks = {
        name: {
            attr: list(getattr(module, attr))
            for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")
        }
        for name, module in model.named_modules()
    }
    return {
        "flags": [m.training for m in model.modules()],
        "grads": [p.grad for p in model.parameters()],
        "grad_values": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "buffers": {k: (b, b.clone()) for k, b in model.named_buffers()},
        "params": [p.detach().clone() for p in model.parameters()],
        "hooks": hooks,
        "rng": (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()),
    }


def _assert_same(model: nn.Module, before: dict[str, Any]) -> None:
    assert [m.training for m in model.modules()] == before["flags"]
    for parameter, grad, value in zip(
        model.parameters(), before["grads"], before["grad_values"], strict=True
    ):
        assert parameter.grad is grad  # the same tensor object, never replaced
        assert grad is None or torch.equal(parameter.grad, value)
    named = dict(model.named_buffers())
    assert named.keys() == before["buffers"].keys()
    for name, (obj, value) in before["buffers"].items():
        assert named[name] is obj and torch.equal(obj, value), name
    for parameter, value in zip(model.parameters(), before["params"], strict=True):
        assert torch.equal(parameter, value)
    hooks = {
        name: {
            attr: list(getattr(module, attr))
            for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")
        }
        for name, module in model.named_modules()
    }
    assert hooks == before["hooks"]
    torch_state, numpy_state, python_state = before["rng"]
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    assert random.getstate() == python_state


def _body(model: nn.Sequential, seen: dict[str, Any]) -> None:
    """Everything a careless measurement does to a model and to the global random state."""
    seen["training"] = [m.training for m in model.modules()]
    seen["grad_enabled"] = torch.is_grad_enabled()
    seen["grads_inside"] = [p.grad for p in model.parameters()]
    model.train()  # running statistics are updated by the forward below
    model[0].register_forward_hook(lambda *args: None)
    model[2].register_forward_pre_hook(lambda *args: None)
    with torch.enable_grad():
        model(torch.randn(8, 3, 6, 6)).square().mean().backward()  # grads accumulate
    model[1].register_buffer("extra", torch.zeros(1))
    torch.rand(3)
    np.random.rand(3)
    random.random()


def test_guard_leaves_everything_bit_identical() -> None:
    model = _model()
    user_hook = model[0].register_forward_hook(lambda *args: None)  # the user's own hook stays
    before = _snapshot(model)
    seen: dict[str, Any] = {}
    with untouched(model, autograd=False):
        _body(model, seen)
    _assert_same(model, before)
    assert seen["training"] == [False] * len(seen["training"])  # eval inside
    assert seen["grad_enabled"] is False
    assert seen["grads_inside"] == [None] * len(seen["grads_inside"])  # .grad hidden inside
    assert model[1].num_batches_tracked.item() == 1  # the one step taken in _model()
    assert len(model[0]._forward_hooks) == 1
    user_hook.remove()


def test_guard_restores_when_the_body_raises() -> None:
    model = _model()
    before = _snapshot(model)
    seen: dict[str, Any] = {}
    with pytest.raises(RuntimeError, match="boom"), untouched(model, autograd=False):
        _body(model, seen)
        raise RuntimeError("boom")
    _assert_same(model, before)


@pytest.mark.parametrize("ambient", ["no_grad", "inference_mode"])
def test_guard_autograd_and_mode_options(ambient: str) -> None:
    model = _model()
    before = _snapshot(model)
    context = torch.no_grad() if ambient == "no_grad" else torch.inference_mode()
    with context:
        with untouched(model, autograd=True, eval_mode=False):
            assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
            assert model.training  # eval_mode=False keeps the flags
            x = torch.rand(2, 3, 6, 6, requires_grad=True)
            (grad,) = torch.autograd.grad(model(x).sum(), x)
        assert not torch.is_grad_enabled()
    assert isinstance(grad, Tensor) and grad.shape == x.shape
    _assert_same(model, before)


def test_guard_over_several_models_sharing_modules() -> None:
    model = _model()
    wrapper = nn.Sequential(model, nn.Linear(64, 2))  # shares every module of ``model``
    before = _snapshot(model)
    with untouched([wrapper, model], autograd=False):
        wrapper.train()
        wrapper(torch.randn(2, 3, 6, 6))
    _assert_same(model, before)
