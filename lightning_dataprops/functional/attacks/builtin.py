"""The built-in attacks: L-inf FGSM and PGD in pixel space, matching torchattacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_dataprops.functional.attacks._validation import (
    ChannelStats,
    DataRange,
    ForwardContext,
    LossFn,
    _channel_stats,
    _check_batch,
    _check_in_range,
    _check_model,
    _context,
    _data_range,
    _input_gradient,
    _normal,
    _real,
    _steps,
)
from lightning_dataprops.functional.model_guard import untouched

#: Names of the built-in attacks accepted by :func:`make_attack`.
ATTACKS = ("fgsm", "pgd")


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
        return _input_gradient(self.loss(inputs), inputs)


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


def _run(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    mean: ChannelStats | None,
    std: ChannelStats | None,
    loss_fn: LossFn | None,
    forward_context: ForwardContext | None,
    attack: Callable[[_Objective, Tensor], Tensor],
) -> Tensor:
    """Run ``attack(objective, x)`` on the guarded model; ``eps = 0`` returns a copy of ``x``."""
    if eps == 0.0:
        _channel_stats(mean, std, x)
        return x.detach().clone()
    with untouched(model, autograd=True):
        x0 = _normal(x.detach())
        objective = _Objective(
            model, _normal(y.detach()), _channel_stats(mean, std, x0), loss_fn, forward_context
        )
        x_adv = attack(objective, x0)
    return x_adv.to(dtype=x.dtype, device=x.device)


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


def check_input_gradient(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    mean: ChannelStats | None = None,
    std: ChannelStats | None = None,
    loss_fn: LossFn | None = None,
    forward_context: ForwardContext | None = None,
) -> None:
    """Check, with one forward and backward pass, that gradient attacks can move ``x``.

    The same loss and gradient as :func:`fgsm` and :func:`pgd` (eval mode, parameter ``.grad``
    and training flags left untouched): run it on a small batch before a long job to learn at
    once that a model gives no input gradient (a linear probe whose frozen encoder runs under
    ``torch.no_grad()``, a model that detaches its input), rather than at the first attack.

    Args:
        model: a classifier returning logits of shape ``(n, n_classes)``.
        x: floating inputs of shape ``(n, ...)`` in pixel space (a few samples suffice).
        y: ``n`` integer class ids (or any targets ``loss_fn`` accepts).
        mean, std: per-channel normalisation applied inside the forward pass (see :func:`fgsm`).
        loss_fn: ``loss_fn(logits, y)``; default mean cross-entropy on logits.
        forward_context: a callable returning a context manager entered around the forward pass.

    Raises:
        NoInputGradientError: the loss does not reach ``x`` through autograd (the message says
            what to change); it is a ``ValueError``.
        ValueError: on bad inputs, as :func:`fgsm`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.attacks import (
        ...     NoInputGradientError,
        ...     check_input_gradient,
        ... )
        >>> class Probe(nn.Module):  # a frozen encoder run under no_grad, a trainable head
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.encoder, self.head = nn.Flatten(), nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         with torch.no_grad():
        ...             features = self.encoder(x)
        ...         return self.head(features)
        >>> x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
        >>> check_input_gradient(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), x, y)
        >>> try:
        ...     check_input_gradient(Probe(), x, y)
        ... except NoInputGradientError as error:
        ...     print(str(error)[:52])
        The loss does not depend on the inputs through autog
    """
    _prepare(model, x, y, 0.0, None, loss_fn)
    with untouched(model, autograd=True):
        x0 = _normal(x.detach())
        objective = _Objective(
            model, _normal(y.detach()), _channel_stats(mean, std, x0), loss_fn, forward_context
        )
        objective.input_grad(x0)


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

    def step(objective: _Objective, x0: Tensor) -> Tensor:
        return _clip(x0 + eps_f * objective.input_grad(x0).sign(), range_f).detach()

    return _run(model, x, y, eps_f, mean, std, loss_fn, forward_context, step)


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

    def steps_from(objective: _Objective, x0: Tensor) -> Tensor:
        x_adv = x0.clone()
        if random_start:
            x_adv = _clip(x_adv + _uniform_noise(x0, eps_f, generator), range_f).detach()
        for _ in range(steps_i):
            grad = objective.input_grad(x_adv)
            x_adv = x_adv.detach() + alpha_f * grad.sign()
            delta = torch.clamp(x_adv - x0, min=-eps_f, max=eps_f)
            x_adv = _clip(x0 + delta, range_f).detach()
        return x_adv

    return _run(model, x, y, eps_f, mean, std, loss_fn, forward_context, steps_from)
