"""Bind any attack to a model: built-in names, torchattacks objects, factories, callables."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from lightning_dataprops.functional._device import model_device
from lightning_dataprops.functional.attacks._validation import (
    NO_INPUT_GRADIENT,
    AttackFn,
    ForwardContext,
    NoInputGradientError,
    _check_batch,
    _check_model,
    _context,
    _is_no_input_gradient,
    _normal,
    _real,
    _steps,
)
from lightning_dataprops.functional.attacks.builtin import ATTACKS, fgsm, pgd
from lightning_dataprops.functional.constants import PAPER_EPS
from lightning_dataprops.functional.model_guard import untouched

_BUILTINS: dict[str, Callable[..., Tensor]] = {"fgsm": fgsm, "pgd": pgd}
_BUILTIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "fgsm": {"eps": PAPER_EPS},
    "pgd": {"eps": PAPER_EPS, "steps": 10},
}


def _builtin_settings(name: str) -> list[str]:
    parameters = inspect.signature(_BUILTINS[name]).parameters
    return [p for p in parameters if p not in ("model", "x", "y")]


class BoundAttack:
    """An attack bound to a model: ``attack(x, y) -> x_adv``, built by :func:`make_attack`.

    Calling it never changes the model: training flags and parameter ``.grad`` are restored
    (for third-party attacks too, even those that call ``.backward()``), and the global random
    number generator state is the same afterwards.

    Attributes:
        name: ``"fgsm"``, ``"pgd"``, or the third-party attack's class name.
        settings: the keyword arguments of a built-in attack (empty for third-party ones).
        model: the model the attack is bound to.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        run: AttackFn,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.settings = dict(settings or {})
        self._run = run

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        """The adversarial version of ``x`` (detached, same shape, dtype and device)."""
        return self._run(x, y)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v!r}"
            for k, v in self.settings.items()
            if v is not None and k not in ("forward_context", "generator", "loss_fn")
        )
        return f"BoundAttack({self.name}{', ' if shown else ''}{shown})"


def _is_factory(spec: Any) -> bool:
    """Whether ``spec`` builds an attack from a model (class, partial of a class, f(model))."""
    if inspect.isclass(spec):
        return True
    if isinstance(spec, functools.partial):
        if inspect.isclass(spec.func):
            return True
    elif not inspect.isroutine(spec) and callable(getattr(spec, "forward", None)):
        return False  # an attack object (torchattacks.Attack and the like)
    try:
        signature = inspect.signature(spec)
    except (TypeError, ValueError):
        return False
    required = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(required) == 1


def _run_external(
    attack: Any, model: nn.Module, forward_context: ForwardContext | None
) -> AttackFn:
    """Wrap a third-party ``attack(x, y)`` so that it leaves models and the RNG untouched."""
    inner = getattr(attack, "model", None)
    models = [model] + ([inner] if isinstance(inner, nn.Module) and inner is not model else [])

    def run(x: Tensor, y: Tensor) -> Tensor:
        _check_batch(x, y, class_ids=False)
        with untouched(models, autograd=True), _context(forward_context):
            if isinstance(inner, nn.Module) and hasattr(attack, "device"):
                # torchattacks captures the device at construction; follow the model.
                if callable(getattr(attack, "set_device", None)):
                    attack.set_device(model_device(inner))  # also reaches wrapped attacks
                else:
                    attack.device = model_device(inner)
            try:
                output = attack(_normal(x.detach()), _normal(y.detach()))
            except RuntimeError as error:
                if _is_no_input_gradient(error):
                    raise NoInputGradientError(NO_INPUT_GRADIENT) from error
                raise
        if not isinstance(output, Tensor) or output.shape != x.shape:
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise ValueError(
                f"The attack {type(attack).__name__} returned {shape} for inputs of shape "
                f"{tuple(x.shape)}; an attack must return adversarial inputs of the same shape."
            )
        return output.detach().to(dtype=x.dtype, device=x.device)

    return run


def make_attack(spec: Any, model: nn.Module, **defaults: Any) -> BoundAttack:
    """Turn an attack specification into a callable ``attack(x, y) -> x_adv`` bound to ``model``.

    Accepted specifications:

    * ``"fgsm"`` or ``"pgd"`` (case-insensitive): :func:`fgsm` / :func:`pgd` with the paper's
      ``eps = 2/255`` (PGD: ``steps = 10``, ``alpha = 2.5 * eps / steps``); ``defaults``
      override any of their keyword arguments (``eps``, ``alpha``, ``steps``, ``data_range``,
      ``mean``, ``std``, ``loss_fn``, ``forward_context``, ``generator``, ``random_start``).
    * a torchattacks attack instance, or any object with ``forward`` called as
      ``attack(images, labels)``; it already carries its settings, so ``defaults`` may hold only
      ``forward_context``.
    * a factory taking the model: an attack class or a ``functools.partial`` of one (e.g.
      ``functools.partial(torchattacks.PGD, eps=4/255)``), or a function with one required
      argument; it is called as ``factory(model, **defaults)`` (``forward_context`` excepted).
    * any callable ``attack(x, y) -> x_adv`` (two required arguments); ``defaults`` may hold only
      ``forward_context``.
    * a :class:`BoundAttack`, returned unchanged (no ``defaults`` allowed).

    Third-party attacks are wrapped: every module's training flag and every parameter's
    ``.grad`` are restored after each call (torchattacks switches the model to eval itself and,
    for a few attacks such as DeepFool, JSMA, EAD and FAB, calls ``.backward()``), the global RNG
    state is restored (torchattacks' random starts draw from it), autograd is re-enabled under
    ``no_grad``/``inference_mode``, inference-mode inputs are cloned, and a torchattacks
    object's ``device`` is set to its model's current device (it is captured at construction).
    Inputs must then be what the third-party attack expects (torchattacks: NCHW in [0, 1]).

    Args:
        spec: the attack, as above.
        model: the model to attack (for torchattacks objects, the model they were built with or
            the model inside it; both are protected).
        **defaults: settings for built-in attacks, keyword arguments for factories, and
            ``forward_context`` for every kind.

    Returns:
        A :class:`BoundAttack`.

    Raises:
        ValueError: on an unknown attack name, a setting the attack does not take, or settings
            given with an attack object that already carries its own.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.attacks import make_attack
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> attack = make_attack("pgd", model, steps=3)
        >>> attack
        BoundAttack(pgd, eps=0.00784314, steps=3)
        >>> x, y = torch.full((2, 1, 2, 2), 0.5), torch.tensor([0, 1])
        >>> bool((attack(x, y) - x).abs().max() <= 2 / 255 + 1e-6)
        True
    """
    _check_model(model)
    if isinstance(spec, BoundAttack):
        if defaults:
            raise ValueError(
                f"{spec!r} is already bound with its settings; got extra {sorted(defaults)}."
            )
        return spec
    if isinstance(spec, str):
        name = spec.strip().lower()
        if name not in _BUILTINS:
            raise ValueError(
                f"Unknown attack {spec!r}; use one of {list(ATTACKS)}, a torchattacks attack, a "
                "factory taking the model, or a callable attack(x, y) -> x_adv."
            )
        valid = _builtin_settings(name)
        unknown = sorted(set(defaults) - set(valid))
        if unknown:
            raise ValueError(
                f"Attack {name!r} takes no setting {unknown}; valid settings: {valid}."
            )
        settings = {**_BUILTIN_DEFAULTS[name], **defaults}
        _real(settings["eps"], "eps")
        if "steps" in settings:
            _steps(settings["steps"])
        function = _BUILTINS[name]

        def run_builtin(x: Tensor, y: Tensor) -> Tensor:
            return function(model, x, y, **settings)

        return BoundAttack(name, model, run_builtin, settings)
    if not callable(spec):
        raise ValueError(
            f"`spec` must be an attack name {list(ATTACKS)}, a torchattacks attack, a factory "
            f"taking the model, or a callable attack(x, y) -> x_adv; got {type(spec).__name__}."
        )
    forward_context = defaults.pop("forward_context", None)
    if _is_factory(spec):
        attack = spec(model, **defaults)
        if not callable(attack):
            raise ValueError(
                f"The factory {spec!r} returned a {type(attack).__name__}, not a callable attack."
            )
    else:
        if defaults:
            raise ValueError(
                f"The attack {type(spec).__name__} already carries its settings; got extra "
                f"{sorted(defaults)}. Pass a factory (e.g. functools.partial(torchattacks.PGD, "
                "eps=4/255)) to configure it here."
            )
        attack = spec
    name = type(attack).__name__ if not inspect.isroutine(attack) else attack.__name__
    return BoundAttack(name, model, _run_external(attack, model, forward_context))
