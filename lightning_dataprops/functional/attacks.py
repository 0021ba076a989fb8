"""Adversarial attacks (L-inf FGSM and PGD) and the robustness probe of the paper.

Konz & Mazurowski (ICLR 2024) attack with FGSM, L-inf, ``eps = 2/255`` on ``[0, 1]`` inputs,
model in eval mode, and report the loss increase (attacked loss - clean loss); it correlates
with label sharpness. This module offers:

* :func:`fgsm` and :func:`pgd`: untargeted L-inf attacks in pixel space (``eps`` in the units
  of ``x``), cross-entropy on logits by default, results clipped to ``data_range``, optional
  per-channel normalisation ``(x - mean) / std`` applied inside the forward pass;
* :func:`make_attack`: ``"fgsm"``, ``"pgd"``, a torchattacks attack instance, a factory taking
  the model (``functools.partial(torchattacks.PGD, eps=4/255)``) or any ``attack(x, y)``
  callable, turned into a :class:`BoundAttack` ``attack(x, y) -> x_adv``;
* :func:`robustness`: clean and attacked loss and accuracy in one typed
  :class:`RobustnessResult`.

Every attack leaves the model as it found it: the gradient is taken with
``torch.autograd.grad`` with respect to the inputs only (parameter ``.grad`` stays exactly as
before, ``None`` included), the model runs in eval mode and every module's training flag is
restored afterwards (also on error), and the global random number generator is never used.
Attacks work when called under ``torch.no_grad()`` or ``torch.inference_mode()`` (Lightning's
validation loops): they re-enable autograd locally and clone inference-mode inputs.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ATTACKS",
    "PAPER_EPS",
    "BoundAttack",
    "RobustnessResult",
    "fgsm",
    "make_attack",
    "pgd",
    "robustness",
]

#: The paper's perturbation budget: 2 on the 0-255 scale, for inputs in [0, 1].
PAPER_EPS = 2.0 / 255.0
#: Names of the built-in attacks accepted by :func:`make_attack`.
ATTACKS = ("fgsm", "pgd")

DataRange = tuple[float, float]
ChannelStats = Sequence[float] | Tensor
LossFn = Callable[[Tensor, Tensor], Tensor]
ForwardContext = Callable[[], AbstractContextManager[Any]]
AttackFn = Callable[[Tensor, Tensor], Tensor]


# --------------------------------------------------------------------------------------------
# Model state and autograd plumbing
# --------------------------------------------------------------------------------------------


def _model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


@contextlib.contextmanager
def _preserved(models: Sequence[nn.Module], *, detach_grads: bool) -> Iterator[None]:
    """Eval mode inside; every module's training flag (and optionally ``.grad``) restored after.

    With ``detach_grads`` every parameter's ``.grad`` is set to ``None`` inside, so a
    ``.backward()`` in third-party code accumulates into fresh tensors that are dropped, and the
    original ``.grad`` objects (``None`` included) are put back untouched afterwards.
    """
    modes: dict[nn.Module, bool] = {}
    grads: dict[nn.Parameter, Tensor | None] = {}
    for model in models:
        for module in model.modules():
            modes.setdefault(module, module.training)
        if detach_grads:
            for parameter in model.parameters():
                grads.setdefault(parameter, parameter.grad)
    try:
        if detach_grads:
            for parameter in grads:
                parameter.grad = None
        for model in models:
            model.eval()
        yield
    finally:
        for module, mode in modes.items():
            module.training = mode
        for parameter, grad in grads.items():
            parameter.grad = grad


@contextlib.contextmanager
def _autograd_on() -> Iterator[None]:
    """Autograd enabled, also inside ``no_grad`` and ``inference_mode`` blocks."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _normal(tensor: Tensor) -> Tensor:
    """A tensor autograd accepts: inference-mode tensors are cloned (call in non-inference mode)."""
    return tensor.clone() if tensor.is_inference() else tensor


def _context(forward_context: ForwardContext | None) -> AbstractContextManager[Any]:
    return contextlib.nullcontext() if forward_context is None else forward_context()


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _real(value: Any, name: str, *, minimum: float | None = 0.0) -> float:
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be a number, got a bool ({value}).")
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"`{name}` must be a number, got {value!r}.") from error
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be finite, got {number}.")
    if minimum is not None and number < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {number}.")
    return number


def _steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be an integer >= 1, got {steps!r}.")
    return steps


def _data_range(data_range: DataRange | None) -> DataRange | None:
    if data_range is None:
        return None
    try:
        low, high = data_range
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`data_range` must be a pair (low, high) such as (0.0, 1.0), or None for no "
            f"clipping; got {data_range!r}."
        ) from error
    low_f = _real(low, "data_range[0]", minimum=None)
    high_f = _real(high, "data_range[1]", minimum=None)
    if not low_f < high_f:
        raise ValueError(f"`data_range` must satisfy low < high, got {data_range!r}.")
    return low_f, high_f


def _check_batch(x: Any, y: Any, *, class_ids: bool) -> None:
    """Check ``x`` (floating, ``(n, ...)``, finite) and ``y`` (``n`` targets)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"`x` must be a torch.Tensor of shape (n, ...), got {type(x).__name__}.")
    if not isinstance(y, Tensor):
        raise ValueError(f"`y` must be a torch.Tensor of {len(x)} targets, got {type(y).__name__}.")
    if x.ndim < 2:
        raise ValueError(
            f"`x` has shape {tuple(x.shape)}; pass a batch of shape (n, ...) such as (n, C, H, W)."
        )
    if not x.is_floating_point():
        raise ValueError(
            f"`x` has dtype {x.dtype}; attacks need floating inputs (e.g. uint8 images / 255)."
        )
    n = int(x.shape[0])
    if n == 0:
        raise ValueError("`x` is an empty batch; pass at least one sample.")
    if y.ndim == 0 or int(y.shape[0]) != n:
        raise ValueError(
            f"`x` has {n} samples but `y` has shape {tuple(y.shape)}; pass one target per sample."
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError("`x` contains NaN or infinite values; attacks need finite inputs.")
    if class_ids:
        if y.ndim != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise ValueError(
                f"`y` must hold integer class ids of shape ({n},), got dtype {y.dtype} and shape "
                f"{tuple(y.shape)}. For other targets pass a matching `loss_fn`."
            )
        if bool((y < 0).any()):
            raise ValueError(
                f"`y` must hold class ids >= 0, got {int(y.min())}; remap the labels to 0..C-1."
            )


def _check_in_range(x: Tensor, data_range: DataRange | None) -> None:
    if data_range is None:
        return
    low, high = data_range
    x_min, x_max = float(x.min()), float(x.max())
    if x_min < low or x_max > high:
        raise ValueError(
            f"`x` lies in [{x_min:.4g}, {x_max:.4g}], outside data_range=({low:g}, {high:g}). "
            "Attacks work in pixel space: pass unnormalised inputs and give `mean`/`std` (or put "
            "the normalisation inside the model), or set `data_range` to the inputs' range (None "
            "for no clipping)."
        )


def _channel_stats(
    mean: ChannelStats | None, std: ChannelStats | None, x: Tensor
) -> tuple[Tensor, Tensor] | None:
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ValueError("Pass both `mean` and `std` for normalisation, or neither.")
    channels = int(x.shape[1])
    shape = (1, channels) + (1,) * (x.ndim - 2)
    stats = []
    for name, value in (("mean", mean), ("std", std)):
        tensor = torch.as_tensor(
            value.detach() if isinstance(value, Tensor) else value,
            dtype=x.dtype,
            device=x.device,
        )
        tensor = _normal(tensor).flatten()
        if tensor.numel() == 1:
            tensor = tensor.expand(channels)
        if tensor.numel() != channels:
            raise ValueError(
                f"`{name}` has {tensor.numel()} values but `x` has {channels} channels "
                f"(dimension 1 of shape {tuple(x.shape)}); pass one value per channel."
            )
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"`{name}` must be finite, got {tensor.tolist()}.")
        stats.append(tensor.reshape(shape))
    if bool((stats[1] <= 0).any()):
        raise ValueError(f"`std` must be > 0, got {stats[1].flatten().tolist()}.")
    return stats[0], stats[1]


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    if any(p.is_inference() for p in model.parameters()):
        raise ValueError(
            "The model's parameters were created under torch.inference_mode(); autograd cannot "
            "differentiate through them. Create (or load) the model outside inference_mode."
        )


# --------------------------------------------------------------------------------------------
# Built-in attacks
# --------------------------------------------------------------------------------------------


class _Objective:
    """Loss of the (normalised) model output, and its gradient with respect to the inputs."""

    def __init__(
        self,
        model: nn.Module,
        y: Tensor,
        stats: tuple[Tensor, Tensor] | None,
        loss_fn: LossFn | None,
        forward_context: ForwardContext | None,
    ) -> None:
        self.model = model
        self.y = y
        self.stats = stats
        self.loss_fn = loss_fn
        self.forward_context = forward_context
        self.checked = False

    def logits(self, inputs: Tensor) -> Tensor:
        if self.stats is not None:
            inputs = (inputs - self.stats[0]) / self.stats[1]
        output = self.model(inputs)
        if not isinstance(output, Tensor):
            raise ValueError(
                f"The model returned a {type(output).__name__}; attacks need a tensor of logits "
                "of shape (n, n_classes). Wrap the model so that it returns the logits."
            )
        return output

    def _check_logits(self, logits: Tensor) -> None:
        n = int(self.y.shape[0])
        if logits.ndim == 0 or int(logits.shape[0]) != n:
            raise ValueError(
                f"The model returned shape {tuple(logits.shape)} for {n} samples; expected one "
                "row of logits per sample."
            )
        if self.loss_fn is None:
            if logits.ndim != 2:
                raise ValueError(
                    f"The default loss is cross-entropy on logits of shape (n, n_classes), but "
                    f"the model returned shape {tuple(logits.shape)}; pass a matching `loss_fn`."
                )
            n_classes = int(logits.shape[1])
            if int(self.y.max()) >= n_classes:
                raise ValueError(
                    f"`y` holds class id {int(self.y.max())} but the model has {n_classes} "
                    "outputs; class ids must lie in 0..n_classes-1."
                )

    def loss(self, inputs: Tensor) -> Tensor:
        with _context(self.forward_context):
            logits = self.logits(inputs)
            if not self.checked:
                self._check_logits(logits)
                self.checked = True
            if self.loss_fn is None:
                loss = F.cross_entropy(logits, self.y)
            else:
                loss = self.loss_fn(logits, self.y)
        if not isinstance(loss, Tensor):
            raise ValueError(f"`loss_fn` must return a tensor, got {type(loss).__name__}.")
        return loss.mean() if loss.ndim else loss

    def input_grad(self, inputs: Tensor) -> Tensor:
        inputs = inputs.detach().requires_grad_(True)
        loss = self.loss(inputs)
        if not loss.requires_grad:
            raise ValueError(
                "The loss does not depend on the inputs through autograd (does the model detach "
                "its input, or run its forward under no_grad?); it cannot be attacked."
            )
        (grad,) = torch.autograd.grad(loss, inputs, retain_graph=False, create_graph=False)
        return grad


def _clip(x: Tensor, data_range: DataRange | None) -> Tensor:
    return x if data_range is None else torch.clamp(x, min=data_range[0], max=data_range[1])


def _uniform_noise(x: Tensor, eps: float, generator: torch.Generator | None) -> Tensor:
    """Uniform noise in [-eps, eps] from ``generator`` (a private seed-0 one if None)."""
    if generator is None:
        generator = torch.Generator(device="cpu").manual_seed(0)
    if generator.device == x.device:
        return torch.empty_like(x).uniform_(-eps, eps, generator=generator)
    noise = torch.empty(x.shape, dtype=x.dtype, device=generator.device)
    return noise.uniform_(-eps, eps, generator=generator).to(x.device)


def _prepare(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: Any,
    data_range: DataRange | None,
    loss_fn: LossFn | None,
) -> tuple[float, DataRange | None]:
    _check_model(model)
    _check_batch(x, y, class_ids=loss_fn is None)
    eps_f = _real(eps, "eps")
    range_f = _data_range(data_range)
    _check_in_range(x, range_f)
    return eps_f, range_f


def fgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    data_range: DataRange | None = (0.0, 1.0),
    mean: ChannelStats | None = None,
    std: ChannelStats | None = None,
    loss_fn: LossFn | None = None,
    forward_context: ForwardContext | None = None,
) -> Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015), untargeted, L-inf.

    ``x_adv = clip(x + eps * sign(grad_x loss(model(normalise(x)), y)), data_range)``: the
    paper's attack with ``eps = 2/255`` (:data:`PAPER_EPS`). With the defaults it equals
    ``torchattacks.FGSM(model, eps=eps)(x, y)``.

    The model runs in eval mode and every module's training flag is restored afterwards (also on
    error); the gradient is taken with ``torch.autograd.grad`` with respect to ``x`` only, so
    parameter ``.grad`` stays exactly as before. Works under ``torch.no_grad()`` and
    ``torch.inference_mode()``.

    Args:
        model: a classifier returning logits of shape ``(n, n_classes)``.
        x: floating inputs of shape ``(n, ...)`` (e.g. ``(n, C, H, W)``) inside ``data_range``,
            in pixel space (unnormalised).
        y: ``n`` integer class ids (or any targets ``loss_fn`` accepts).
        eps: the L-inf budget, in the units of ``x``; ``eps = 0`` returns a copy of ``x``.
        data_range: the valid input range the result is clipped to (``None``: no clipping).
        mean: per-channel mean (``x.shape[1]`` values, a sequence or tensor); with ``std`` the
            model sees ``(x - mean) / std`` while the attack stays in pixel space.
        std: per-channel standard deviation, > 0.
        loss_fn: ``loss_fn(logits, y)`` to increase; a non-scalar result is averaged. Default:
            mean cross-entropy on logits.
        forward_context: a callable returning a context manager entered around each forward pass
            and loss, e.g. Lightning's ``trainer.precision_plugin.forward_context``.

    Returns:
        The adversarial inputs: detached, same shape, dtype and device as ``x``.

    Raises:
        ValueError: on a negative or non-finite ``eps``, inputs outside ``data_range``, a length
            mismatch between ``x`` and ``y``, class ids out of range, or bad ``mean``/``std``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.attacks import fgsm
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.arange(12.0).reshape(3, 4) / 12)
        >>> x = torch.full((2, 1, 2, 2), 0.5)
        >>> y = torch.tensor([2, 0])
        >>> x_adv = fgsm(model, x, y, eps=0.25)
        >>> x_adv[1].flatten().tolist()  # class 0 has the smallest weights: push every pixel up
        [0.75, 0.75, 0.75, 0.75]
        >>> model[1].weight.grad is None  # parameter gradients untouched
        True
    """
    eps_f, range_f = _prepare(model, x, y, eps, data_range, loss_fn)
    if eps_f == 0.0:
        _channel_stats(mean, std, x)
        return x.detach().clone()
    with _preserved([model], detach_grads=False), _autograd_on():
        x0 = _normal(x.detach())
        objective = _Objective(
            model, _normal(y.detach()), _channel_stats(mean, std, x0), loss_fn, forward_context
        )
        grad = objective.input_grad(x0)
        x_adv = _clip(x0 + eps_f * grad.sign(), range_f).detach()
    return x_adv.to(dtype=x.dtype, device=x.device)


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    alpha: float | None = None,
    steps: int = 10,
    *,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    data_range: DataRange | None = (0.0, 1.0),
    mean: ChannelStats | None = None,
    std: ChannelStats | None = None,
    loss_fn: LossFn | None = None,
    forward_context: ForwardContext | None = None,
) -> Tensor:
    """Projected gradient descent (Madry et al. 2018), untargeted, L-inf.

    Starting from ``x`` (plus uniform noise in ``[-eps, eps]`` if ``random_start``), ``steps``
    times: ``x_adv += alpha * sign(grad)``, then project onto the ``eps``-ball around ``x`` and
    clip to ``data_range``. The update is torchattacks' ``PGD``, so with ``random_start=False``
    and the same ``alpha`` and ``steps`` the results are equal.

    Same guarantees as :func:`fgsm`: eval mode with training flags restored, parameter
    ``.grad`` untouched, works under ``no_grad``/``inference_mode``. The random start draws from
    ``generator`` only, never from the global random number generator.

    Args:
        model: a classifier returning logits of shape ``(n, n_classes)``.
        x: floating inputs of shape ``(n, ...)`` inside ``data_range``, in pixel space.
        y: ``n`` integer class ids (or any targets ``loss_fn`` accepts).
        eps: the L-inf budget, in the units of ``x``; ``eps = 0`` returns a copy of ``x``.
        alpha: the step size; default ``2.5 * eps / steps`` (Madry et al.).
        steps: number of gradient steps, >= 1.
        random_start: start from a uniformly random point of the ``eps``-ball.
        generator: the ``torch.Generator`` for the random start (on any device: the noise is
            drawn on the generator's device and moved). ``None``: a private generator seeded
            with 0, so results are reproducible and the global RNG state is unchanged.
        data_range: the valid input range (``None``: no clipping).
        mean: per-channel mean applied inside the forward pass (see :func:`fgsm`).
        std: per-channel standard deviation, > 0.
        loss_fn: ``loss_fn(logits, y)`` to increase; default mean cross-entropy on logits.
        forward_context: a callable returning a context manager entered around each forward
            pass (e.g. ``trainer.precision_plugin.forward_context``).

    Returns:
        The adversarial inputs: detached, same shape, dtype and device as ``x``, within ``eps``
        of ``x`` in L-inf and inside ``data_range``.

    Raises:
        ValueError: on bad ``eps``, ``alpha`` or ``steps``, inputs outside ``data_range``, a
            length mismatch, class ids out of range, or bad ``mean``/``std``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.attacks import pgd
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.arange(12.0).reshape(3, 4) / 12)
        >>> x = torch.full((2, 1, 2, 2), 0.5)
        >>> y = torch.tensor([2, 0])
        >>> x_adv = pgd(model, x, y, eps=0.25, steps=5, generator=torch.Generator().manual_seed(1))
        >>> bool((x_adv - x).abs().max() <= 0.25 + 1e-6)
        True
        >>> x_adv[1].flatten().tolist()  # the corner of the eps-ball that lowers class 0
        [0.75, 0.75, 0.75, 0.75]
    """
    eps_f, range_f = _prepare(model, x, y, eps, data_range, loss_fn)
    steps_i = _steps(steps)
    alpha_f = 2.5 * eps_f / steps_i if alpha is None else _real(alpha, "alpha")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"`generator` must be a torch.Generator, got {type(generator).__name__}.")
    if eps_f == 0.0:
        _channel_stats(mean, std, x)
        return x.detach().clone()
    with _preserved([model], detach_grads=False), _autograd_on():
        x0 = _normal(x.detach())
        objective = _Objective(
            model, _normal(y.detach()), _channel_stats(mean, std, x0), loss_fn, forward_context
        )
        x_adv = x0.clone()
        if random_start:
            x_adv = _clip(x_adv + _uniform_noise(x0, eps_f, generator), range_f).detach()
        for _ in range(steps_i):
            grad = objective.input_grad(x_adv)
            x_adv = x_adv.detach() + alpha_f * grad.sign()
            delta = torch.clamp(x_adv - x0, min=-eps_f, max=eps_f)
            x_adv = _clip(x0 + delta, range_f).detach()
    return x_adv.to(dtype=x.dtype, device=x.device)


# --------------------------------------------------------------------------------------------
# Binding attacks to a model
# --------------------------------------------------------------------------------------------

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
        devices = sorted(
            {d.index or 0 for d in (x.device, _model_device(models[-1])) if d.type == "cuda"}
        )
        with (
            _preserved(models, detach_grads=True),
            torch.random.fork_rng(devices=devices),
            _autograd_on(),
            _context(forward_context),
        ):
            if isinstance(inner, nn.Module) and hasattr(attack, "device"):
                # torchattacks captures the device at construction; follow the model.
                if callable(getattr(attack, "set_device", None)):
                    attack.set_device(_model_device(inner))  # also reaches wrapped attacks
                else:
                    attack.device = _model_device(inner)
            output = attack(_normal(x.detach()), _normal(y.detach()))
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


# --------------------------------------------------------------------------------------------
# Robustness probe
# --------------------------------------------------------------------------------------------


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
                "the normalisation inside the model."
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
        with _preserved([model], detach_grads=False), torch.no_grad():
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
