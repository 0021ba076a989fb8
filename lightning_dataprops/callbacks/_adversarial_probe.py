"""The monitor's periodic adversarial-robustness probe on a fixed, seeded batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from lightning_dataprops.functional.attacks import make_attack, robustness

PAPER_EPS = 2.0 / 255.0
DEFAULT_ATTACKS: dict[str, Any] = {"fgsm": "fgsm", "pgd": "pgd"}
"""FGSM at the paper's eps = 2/255, and a short PGD (3 steps) at the same eps."""


class AdversarialProbe:
    """Attacks a fixed batch and reports clean/attacked loss and accuracy per attack.

    Args:
        attacks: name -> ``"fgsm"``/``"pgd"``, an attack instance (e.g. torchattacks), or a
            factory taking the model (e.g. ``functools.partial(torchattacks.PGD, eps=4/255)``).
        eps: L-inf budget of the built-in attacks, in input units (pixel space).
        pgd_steps: steps of the built-in PGD.
        data_range: valid input range; attacked inputs are clipped to it.
        mean, std: normalisation applied inside the forward pass by the built-in attacks.
        seed: seed of PGD's random start (a private generator, reseeded every probe).
    """

    def __init__(
        self,
        attacks: Mapping[str, Any] | None,
        *,
        eps: float = PAPER_EPS,
        pgd_steps: int = 3,
        data_range: tuple[float, float] | None = (0.0, 1.0),
        mean: Any = None,
        std: Any = None,
        seed: int = 0,
    ) -> None:
        self.attacks = dict(DEFAULT_ATTACKS if attacks is None else attacks)
        if not self.attacks:
            raise ValueError(
                "attacks is empty: give at least one, or set adversarial_every_n_epochs=0."
            )
        for name in self.attacks:
            if not name or "/" in name:
                raise ValueError(
                    f"Attack names become metric names: {name!r} must be non-empty, no '/'."
                )
        self.eps = eps
        self.pgd_steps = pgd_steps
        self.data_range = data_range
        self.mean = mean
        self.std = std
        self.seed = seed

    def _bind(
        self, name: str, spec: Any, model: torch.nn.Module, forward_context: Callable[[], Any]
    ) -> Any:
        if isinstance(spec, str):
            options: dict[str, Any] = {"eps": self.eps, "data_range": self.data_range}
            if self.mean is not None:
                options.update(mean=self.mean, std=self.std)
            if spec.lower() == "pgd":
                generator = torch.Generator(device="cpu").manual_seed(self.seed)
                options.update(steps=self.pgd_steps, generator=generator)
            return make_attack(spec, model, forward_context=forward_context, **options)
        return make_attack(spec, model, forward_context=forward_context)

    def run(
        self, trainer: pl.Trainer, model: torch.nn.Module, x: Tensor, y: Tensor
    ) -> dict[str, float]:
        """``dataprops/adv/<name>/<quantity>`` for every attack, on ``x``/``y``."""
        forward_context = trainer.precision_plugin.forward_context
        device = next((p.device for p in model.parameters()), x.device)
        x, y = x.to(device), y.to(device)
        metrics: dict[str, float] = {}
        for name, spec in self.attacks.items():
            attack = self._bind(name, spec, model, forward_context)
            result = robustness(model, x, y, attack, forward_context=forward_context)
            for quantity in (
                "clean_loss",
                "adv_loss",
                "loss_increase",
                "clean_acc",
                "robust_acc",
                "success_rate",
            ):
                metrics[f"dataprops/adv/{name}/{quantity}"] = float(getattr(result, quantity))
        return metrics
