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
  :class:`RobustnessResult`;
* :class:`PixelSpaceModel`: a model seen from pixel space (normalisation and ``forward_fn``
  inside), so that any attack's eps is in pixel units when the data is normalised;
* :func:`check_input_gradient`: one forward and backward pass that tells, before any attack,
  whether the model gives an input gradient at all. A model that does not (a linear probe whose
  frozen encoder runs under ``torch.no_grad()``) makes every attack, built-in or third-party,
  raise :class:`NoInputGradientError`, a ``ValueError`` that says what to change.

Every attack leaves the model as it found it: the gradient is taken with
``torch.autograd.grad`` with respect to the inputs only (parameter ``.grad`` stays exactly as
before, ``None`` included), the model runs in eval mode and every module's training flag is
restored afterwards (also on error), and the global random number generators are left as they
were (:func:`lightning_dataprops.functional.model_guard.untouched`).
Attacks work when called under ``torch.no_grad()`` or ``torch.inference_mode()`` (Lightning's
validation loops): they re-enable autograd locally and clone inference-mode inputs.
"""

from lightning_dataprops.functional.attacks._validation import NoInputGradientError
from lightning_dataprops.functional.attacks.adapters import BoundAttack, make_attack
from lightning_dataprops.functional.attacks.builtin import (
    ATTACKS,
    check_input_gradient,
    fgsm,
    pgd,
)
from lightning_dataprops.functional.attacks.pixel_space import PixelSpaceModel
from lightning_dataprops.functional.attacks.robustness import RobustnessResult, robustness
from lightning_dataprops.functional.constants import PAPER_EPS

__all__ = [
    "ATTACKS",
    "PAPER_EPS",
    "BoundAttack",
    "NoInputGradientError",
    "PixelSpaceModel",
    "RobustnessResult",
    "check_input_gradient",
    "fgsm",
    "make_attack",
    "pgd",
    "robustness",
]
