"""RobustnessMonitor: the paper's adversarial-robustness probe, every few epochs."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from lightning_dataprops import names
from lightning_dataprops._warnings import warn_each_time
from lightning_dataprops.callbacks._base import DataPropsCallback, DataPropsOptions
from lightning_dataprops.callbacks._data_source import (
    FALLBACK_FORWARD_BATCH,
    dataset_of,
    fit_dataset,
    fit_loader,
    forward_batch_size,
)
from lightning_dataprops.callbacks._deprecated import deprecated_attribute, deprecated_keywords
from lightning_dataprops.callbacks._failures import MeasurementFailedWarning
from lightning_dataprops.callbacks._forward import eager_module, eager_stance
from lightning_dataprops.data.find_normalize import find_normalize, fitting_normalization
from lightning_dataprops.functional._device import model_device
from lightning_dataprops.functional._validation import nonfinite_items
from lightning_dataprops.functional.attacks import (
    PAPER_EPS,
    NoInputGradientError,
    PixelSpaceModel,
    check_input_gradient,
    make_attack,
    robustness,
)
from lightning_dataprops.functional.model_guard import untouched
from lightning_dataprops.functional.model_outputs import describe_output, forward_fn_hint
from lightning_dataprops.functional.targets import unlabelled_mask

Normalization = tuple[Sequence[float], Sequence[float]]
DEFAULT_ATTACKS: dict[str, Any] = {"fgsm": "fgsm", "pgd": "pgd"}
"""FGSM at the paper's eps = 2/255, and a short PGD at the same eps."""
_RANGE_TOLERANCE = 1e-3
"""Inputs this far outside the pixel range (after undoing a normalisation) count as inside."""


class RobustnessMonitor(DataPropsCallback):
    r"""The paper's robustness probe: attack a fixed batch every ``every_n_epochs`` epochs.

    At fit setup it draws a fixed, seeded, class-stratified batch of ``max_samples`` items from the
    validation dataset (the training dataset when there is no validation data; the loaders are
    never iterated), and checks what can be checked before training: class targets are present,
    and the model's outputs through ``options.forward_fn`` are logits of shape ``(n, C)``. At the
    end of every ``every_n_epochs``-th training epoch (after its validation) it attacks that batch
    with each attack and logs clean against attacked loss and accuracy (Konz & Mazurowski, ICLR
    2024: FGSM, L-inf, eps = 2/255 on pixels in [0, 1], model in eval mode; ``loss_increase``
    correlates with the label sharpness K_F).

    **Pixel space.** ``eps`` is in pixel units of ``[0, 1]`` images. When the Dataset normalises
    its images (``Normalize(mean, std)`` inside it or its transform, the usual pipeline), the
    probe reads normalised inputs: it undoes the normalisation, attacks the pixels with ``eps``,
    clips to ``[0, 1]`` and feeds the model re-normalised inputs, in the clean and the attacked
    evaluation alike. ``normalization="auto"`` finds such a ``Normalize`` (torchvision-style:
    ``.mean``/``.std``) and says so once; ``normalization=(mean, std)`` states it. When nothing
    is known and the inputs are not in ``[0, 1]``, a warning says that eps is in input units.

    Every forward pass goes through the callbacks' one forward path (``options.forward_fn``, the
    trainer's precision context, compiled modules run eagerly). The model, its BatchNorm
    statistics, parameter grads, hooks and the global random states are left untouched, so the
    training trajectory is the same with and without the probe. A failure inside an attack never
    ends training: a ``MeasurementFailedWarning`` says why, that attack is disabled for the fit
    and the other attacks are still logged. In ``setup`` one input gradient is taken on two
    samples: a model that gives none, so that no attack can move its inputs (a linear probe whose
    frozen encoder runs under ``torch.no_grad()`` inside ``forward``), gets one
    ``MeasurementFailedWarning`` before the first step saying what to change, and the probe is
    disabled for that fit.

    Logged metrics (to every logger and to ``trainer.callback_metrics``), for each attack name:

    - ``dataprops/adv/<attack>/clean_loss``: mean cross-entropy on the clean batch;
    - ``dataprops/adv/<attack>/adv_loss``: mean cross-entropy on the attacked batch;
    - ``dataprops/adv/<attack>/loss_increase``: ``adv_loss - clean_loss``, the paper's measure;
    - ``dataprops/adv/<attack>/clean_acc``: accuracy on the clean batch;
    - ``dataprops/adv/<attack>/robust_acc``: accuracy on the attacked batch;
    - ``dataprops/adv/<attack>/success_rate``: share of the clean-correct samples flipped;
    - ``dataprops/time/adv``: seconds spent on the probe.

    Cost: per probe, one forward and backward per attack step on ``max_samples`` inputs (FGSM: 1,
    PGD: ``pgd_steps``) plus two evaluation forwards per attack, in passes of the training
    loader's batch size (64 when it has none).

    Args:
        options: shared options (seed, item keys, ``forward_fn``, progress).
        every_n_epochs: probe every this many training epochs (0: never, the callback is
            disabled).
        max_samples: size of the fixed batch (fewer when the dataset is smaller). Deprecated
            name: ``n_samples``.
        attacks: name -> ``"fgsm"``/``"pgd"``, a torchattacks attack (an instance, rebound to
            the pixel-space model, or a factory such as
            ``functools.partial(torchattacks.PGD, eps=4/255)``) or any ``attack(x, y) -> x_adv``
            on pixel-space inputs. Names become metric names (no ``/``). Default FGSM and PGD.
        eps: L-inf budget of the built-in attacks, in pixel units (paper: 2/255).
        pgd_steps: steps of the built-in PGD (step size ``2.5 * eps / steps``).
        data_range: the valid pixel range the attacked inputs are clipped to; ``"auto"``:
            ``(0, 1)`` when the (un-normalised) batch lies in it, else the batch's own range.
        normalization: ``"auto"`` (detect a ``Normalize`` in the Dataset), ``(mean, std)`` (the
            data read from the Dataset is normalised with these), or ``None`` (the data is in
            pixel space).
        name: distinguishes the checkpoint state of several monitors in one trainer.

    Raises:
        ValueError: on bad arguments (at construction), and in ``setup`` when the data or the
            model's outputs cannot be probed (say what to change).

    Example:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_dataprops.callbacks import RobustnessMonitor
        >>> trainer = Trainer(callbacks=[RobustnessMonitor(every_n_epochs=2)], logger=False)
    """

    STATE_VERSION = 1
    MONITORED_PREFIX = f"{names.PREFIX}/adv/"
    TIMED_WORK = ("adv",)

    def __init__(
        self,
        options: DataPropsOptions | None = None,
        *,
        every_n_epochs: int = 5,
        max_samples: int = 64,
        attacks: Mapping[str, Any] | None = None,
        eps: float = PAPER_EPS,
        pgd_steps: int = 3,
        data_range: tuple[float, float] | Literal["auto"] = "auto",
        normalization: Normalization | Literal["auto"] | None = "auto",
        name: str | None = None,
        **deprecated: Any,
    ) -> None:
        super().__init__(options)
        max_samples = deprecated_keywords(
            deprecated, {"n_samples": "max_samples"}, "RobustnessMonitor"
        ).get("max_samples", max_samples)
        _check_arguments(every_n_epochs, max_samples, eps, pgd_steps, data_range, normalization)
        self.attacks = dict(DEFAULT_ATTACKS if attacks is None else attacks)
        if not self.attacks:
            raise ValueError("attacks is empty: give at least one, or set every_n_epochs=0.")
        for attack_name in self.attacks:
            if not isinstance(attack_name, str) or not attack_name or "/" in attack_name:
                raise ValueError(
                    f"Attack names become metric names: {attack_name!r} must be a non-empty "
                    "string without '/'."
                )
        self.every_n_epochs = every_n_epochs
        self.max_samples = max_samples
        self.eps = float(eps)
        self.pgd_steps = pgd_steps
        self.data_range = data_range
        self.normalization = normalization
        self.name = name
        self.history: list[dict[str, Any]] = []
        self.batch: tuple[Tensor, Tensor] | None = None
        """The fixed batch in pixel space ``(x, y)``, drawn in ``setup``."""
        self._chunk = FALLBACK_FORWARD_BATCH
        """Inputs attacked per pass: the training loader's batch size (an attack runs a
        backward pass, as training does)."""
        self.pixel_range: tuple[float, float] | None = None
        """The range attacked inputs are clipped to."""
        self.stats: Normalization | None = None
        """``(mean, std)`` the probe undoes and re-applies, or ``None``."""

    @property
    def n_samples(self) -> int:
        """Deprecated name of :attr:`max_samples`."""
        deprecated_attribute(self, "n_samples", "max_samples")
        return self.max_samples

    def _state_key_parts(self) -> dict[str, Any]:
        return {"name": self.name} if self.name is not None else {}

    # ------------------------------------------------------------------ setup
    def _setup_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Per fit: drawn again from this fit's data (a resumed fit gets its history back from the
        # checkpoint, which Lightning loads after setup).
        self.batch = None
        self.stats = None
        self.pixel_range = None
        self.history = []
        if not self.every_n_epochs:
            return
        train_loader = fit_loader(trainer, "train")  # its batch size sets the attack's passes
        dataset = fit_dataset(trainer, "val")
        if dataset is None:
            dataset = dataset_of(train_loader)
        if dataset is None:
            raise ValueError(
                "RobustnessMonitor found no data: define val_dataloader() or train_dataloader() "
                "on the LightningModule or DataModule, or pass dataloaders to fit()."
            )
        self._chunk = forward_batch_size(None, train_loader)
        sample = self.sample(dataset, self.max_samples)
        targets = sample.targets
        if targets is None or targets.is_floating_point() or targets.ndim != 1:
            found = "none" if targets is None else f"{targets.dtype}, {tuple(targets.shape)}"
            warn_each_time(
                f"RobustnessMonitor: the data has no class targets (found {found}); the "
                "robustness probe needs class ids and is disabled for this fit. Give target_key "
                "or target_fn in DataPropsOptions if the labels are elsewhere in each item."
            )
            return  # no batch: disabled for this fit only
        inputs = sample.inputs
        nonfinite = nonfinite_items(inputs, sample.indices)
        if nonfinite is not None:
            bad, said = nonfinite
            if bad.numel() == len(inputs):
                warn_each_time(f"RobustnessMonitor: {said}; the probe is disabled for this fit.")
                return
            warn_each_time(
                f"RobustnessMonitor: {said}; they are left out of the probe. Fix or remove those "
                "items (a corrupt file, a transform dividing by zero)."
            )
            finite = torch.ones(len(inputs), dtype=torch.bool)
            finite[bad.cpu()] = False
            inputs, targets = inputs[finite], targets[finite]
        unlabelled = unlabelled_mask(targets)
        if bool(unlabelled.any()):
            left_out, total = int(unlabelled.sum()), int(targets.numel())
            if left_out == total:
                warn_each_time(
                    f"RobustnessMonitor: all {total} probe samples have a negative class id "
                    "(unlabelled, e.g. -1); the robustness probe needs labelled samples and is "
                    "disabled for this fit."
                )
                return
            rank_zero_info(
                f"RobustnessMonitor: {left_out} of {total} probe samples have a negative class "
                "id (unlabelled, e.g. -1) and are left out; the probe attacks the "
                f"{total - left_out} labelled ones."
            )
            inputs, targets = inputs[~unlabelled], targets[~unlabelled]
        self.stats = self._resolve_normalization(dataset, inputs)
        model = self._pixel_model(trainer, pl_module)
        pixels = model.to_pixels(inputs)
        self.pixel_range = self._resolve_range(pixels)
        low, high = self.pixel_range
        self.batch = (pixels.clamp(low, high), targets)
        if self._check_outputs(model, pl_module):
            self._check_input_gradient(model, pl_module)

    def _resolve_normalization(self, dataset: Any, inputs: Tensor) -> Normalization | None:
        if self.normalization != "auto":
            return self.normalization
        fix = "normalization (robustness_normalization in default_callbacks)"
        found = fitting_normalization(find_normalize(dataset), inputs, "RobustnessMonitor", fix)
        if found is not None:
            rank_zero_info(
                f"RobustnessMonitor: the dataset normalises its inputs (mean={found[0]}, "
                f"std={found[1]}); the probe attacks in pixel space, eps={self.eps:.6g} of the "
                "[0, 1] pixel range, and feeds the model re-normalised inputs."
            )
        return found

    def _resolve_range(self, pixels: Tensor) -> tuple[float, float]:
        low, high = float(pixels.min()), float(pixels.max())
        tolerance = _RANGE_TOLERANCE
        if self.data_range != "auto":
            lo, hi = self.data_range
            if low < lo - tolerance * (hi - lo) or high > hi + tolerance * (hi - lo):
                raise ValueError(
                    f"RobustnessMonitor: the probe's inputs lie in [{low:.4g}, {high:.4g}] "
                    f"(after undoing normalization={self.stats}), outside data_range={lo, hi}. "
                    "Give the range the pixels really have, or the Dataset's normalization."
                )
            return float(lo), float(hi)
        if low >= -tolerance and high <= 1 + tolerance:
            return 0.0, 1.0
        if self.stats is not None:
            warn_each_time(
                f"RobustnessMonitor: undoing normalization={self.stats} gives inputs in "
                f"[{low:.4g}, {high:.4g}], not [0, 1]; eps={self.eps:.6g} is in those units. "
                "Check the (mean, std), or set data_range= and eps= for that pixel range."
            )
        else:
            warn_each_time(
                f"RobustnessMonitor: the inputs lie in [{low:.4g}, {high:.4g}], not [0, 1], and "
                f"no normalisation is known: eps={self.eps:.6g} is in input units, not 2/255 of "
                "the pixel range. If the Dataset normalises, pass "
                "normalization=(mean, std); for pixels in another range (e.g. 0-255) set "
                "data_range=(low, high) and eps in those units (e.g. 2.0)."
            )
        return low, high

    def _pixel_model(self, trainer: pl.Trainer, pl_module: nn.Module) -> PixelSpaceModel:
        mean, std = self.stats if self.stats is not None else (None, None)
        # The original of a compiled module (compiled submodules run eagerly under
        # eager_stance around every pass of the probe).
        return PixelSpaceModel(eager_module(pl_module), self.forward(trainer), mean=mean, std=std)

    def _check_outputs(self, model: PixelSpaceModel, pl_module: nn.Module) -> bool:
        """Outputs through ``forward_fn`` must be ``(n, C)`` logits covering the class ids;
        ``False`` when the model cannot run yet (the first probe checks)."""
        assert self.batch is not None
        x, y = self.batch
        device = model_device(pl_module)
        try:
            with untouched(model, autograd=False), eager_stance():
                logits = model(x[:2].to(device))
        except ValueError:
            raise
        except Exception as error:  # e.g. weights that configure_model() creates later
            self._refuse_failing_forward_fn(error, x[:2].to(device), pl_module)
            rank_zero_info(
                f"RobustnessMonitor: could not check the model's outputs before training "
                f"({type(error).__name__}: {error}); the first probe will."
            )
            return False
        if logits.ndim != 2:
            raise ValueError(
                f"RobustnessMonitor: the model's output has shape {tuple(logits.shape)}; the "
                "probe needs logits of shape (n, n_classes). Pass DataPropsOptions(forward_fn="
                "...) returning them, or leave this callback out for non-classifiers."
            )
        n_classes = int(logits.shape[1])
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= n_classes:
            raise ValueError(
                f"RobustnessMonitor: the targets hold class ids {low}..{high} but the model has "
                f"{n_classes} outputs; class ids must lie in 0..{n_classes - 1}."
            )
        return True

    def _refuse_failing_forward_fn(self, error: Exception, x: Tensor, pl_module: nn.Module) -> None:
        """``forward_fn`` failed: if the model itself runs on ``x``, the fault is the
        ``forward_fn``'s (a tuple's index on a dict output): a ``ValueError`` that shows what the
        model returns and the call that picks its logits."""
        if self.options.forward_fn is None:
            return
        try:
            model = eager_module(pl_module)
            with untouched(model, autograd=False), eager_stance(), torch.no_grad():
                output = model(x)
        except Exception:
            return  # the model cannot run yet either: the first probe checks
        raise ValueError(
            f"RobustnessMonitor: forward_fn raised {type(error).__name__}: {error}, on the "
            f"model's output, {describe_output(output)}. Pass a forward_fn that returns the "
            f"logits from it, e.g. forward_fn={forward_fn_hint(output)}."
        ) from error

    def _check_input_gradient(self, model: PixelSpaceModel, pl_module: nn.Module) -> None:
        """One input gradient on two samples, before the first step: a model that no attack can
        differentiate (a linear probe whose frozen encoder runs under ``no_grad``) is said now,
        and the probe is disabled for this fit; training goes on."""
        assert self.batch is not None
        x, y = self.batch
        device = model_device(pl_module)
        try:
            with eager_stance():
                check_input_gradient(model, x[:2].to(device), y[:2].to(device))
        except NoInputGradientError as error:
            self.batch = None
            self.disabled["robustness probe"] = f"{type(error).__name__}: {error}"
            warn_each_time(
                "RobustnessMonitor: the model gives no gradient with respect to its inputs, so "
                "no attack can move them; the robustness probe is disabled for the rest of this "
                f"fit and training continues. {error}",
                MeasurementFailedWarning,
            )
        except Exception as error:  # the first probe meets it, guarded
            rank_zero_info(
                f"RobustnessMonitor: could not check the model's input gradient before training "
                f"({type(error).__name__}: {error}); the first probe will."
            )

    # ------------------------------------------------------------------ probe
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Runs after the epoch's validation (val_check_interval = 1.0).
        if not self.active or trainer.sanity_checking or not self.every_n_epochs:
            return
        if self.batch is None:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        metrics = self.budgeted(trainer, self.TIMED_WORK[0], self._probe, trainer, pl_module)
        if metrics:
            self.history.append({"epoch": trainer.current_epoch, "metrics": metrics})
            self.log_metrics(trainer, metrics)

    def _probe(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        started = time.perf_counter()
        assert self.batch is not None
        model = self._pixel_model(trainer, pl_module)
        device = model_device(pl_module)
        x, y = (tensor.to(device) for tensor in self.batch)
        metrics: dict[str, float] = {}
        with untouched(model), eager_stance():
            for attack_name, spec in self.attacks.items():
                result = self.guarded(f"attack {attack_name!r}", self._attack, model, spec, x, y)
                if result is not None:
                    for quantity in names.ADVERSARIAL_QUANTITIES:
                        value = float(getattr(result, quantity))
                        metrics[names.adversarial(attack_name, quantity)] = value
        if metrics:
            metrics[names.seconds(self.TIMED_WORK[0])] = time.perf_counter() - started
        return metrics

    def _attack(self, model: PixelSpaceModel, spec: Any, x: Tensor, y: Tensor) -> Any:
        if isinstance(spec, str):
            settings: dict[str, Any] = {"eps": self.eps, "data_range": self.pixel_range}
            if spec.strip().lower() == "pgd":
                generator = torch.Generator(device="cpu").manual_seed(self.options.seed)
                settings.update(steps=self.pgd_steps, generator=generator)
            bound = make_attack(spec, model, **settings)
        else:
            bound = make_attack(_rebound(spec, model), model)
        return robustness(model, x, y, bound, batch_size=self._chunk)

    # ------------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))


def _rebound(spec: Any, model: nn.Module) -> Any:
    """A copy of an attack object built on the user's model, bound to the pixel-space model.

    torchattacks objects call ``self.model(x)`` directly; on the copy that is the pixel-space
    model, so the attack sees pixels, ``forward_fn`` and the precision context like the others.
    The user's object is not changed.
    """
    inner = getattr(spec, "model", None)
    if not isinstance(inner, nn.Module) or callable(getattr(spec, "func", None)):
        return spec
    rebound = copy.copy(spec)
    if callable(getattr(rebound, "set_model", None)):
        rebound.set_model(model)
    else:
        rebound.model = model
    return rebound


def _check_arguments(
    every_n_epochs: Any,
    max_samples: Any,
    eps: Any,
    pgd_steps: Any,
    data_range: Any,
    normalization: Any,
) -> None:
    for label, value, minimum in (
        ("every_n_epochs", every_n_epochs, 0),
        ("max_samples", max_samples, 1),
        ("pgd_steps", pgd_steps, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{label} must be an integer >= {minimum}, got {value!r}.")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < float("inf"):
        raise ValueError(f"eps must be a finite number >= 0 (pixel units), got {eps!r}.")
    if data_range != "auto" and (
        not isinstance(data_range, (tuple, list))
        or len(data_range) != 2
        or not float(data_range[0]) < float(data_range[1])
    ):
        raise ValueError(f"data_range must be 'auto' or (low, high), got {data_range!r}.")
    if normalization not in ("auto", None) and (
        not isinstance(normalization, (tuple, list)) or len(normalization) != 2
    ):
        raise ValueError(
            "normalization must be 'auto', None, or (mean, std) with one value per channel, "
            f"got {normalization!r}."
        )
