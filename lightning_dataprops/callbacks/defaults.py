"""``default_callbacks()``: the default set of dataprops callbacks in one line."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from lightning_dataprops.callbacks._base import DataPropsOptions
from lightning_dataprops.callbacks.dataset_properties import DatasetPropertiesMonitor
from lightning_dataprops.callbacks.forecast import ScalingForecastMonitor
from lightning_dataprops.callbacks.representation_id import RepresentationIDMonitor

SHARED: tuple[str, ...] = tuple(DataPropsOptions.__dataclass_fields__)
"""Options that go into the one :class:`DataPropsOptions` every callback gets."""

ROUTES: dict[str, tuple[str, str]] = {
    # option name -> (callback, its parameter)
    "max_samples": ("properties", "max_samples"),
    "top_pairs": ("properties", "top_pairs"),
    "warn_sharp_labels": ("properties", "warn_sharp_labels"),
    "alert_wait_s": ("properties", "alert_wait_s"),
    "n_train": ("properties", "n_train"),
    "repr_samples": ("d_repr", "n_samples"),
    "layers": ("d_repr", "layers"),
    "every_n_epochs": ("d_repr", "every_n_epochs"),
    "pool": ("d_repr", "pool"),
    "batch_size": ("d_repr", "batch_size"),
    "layer_call": ("d_repr", "layer_call"),
    "adversarial_every_n_epochs": ("robustness", "every_n_epochs"),
    "adversarial_samples": ("robustness", "n_samples"),
    "attacks": ("robustness", "attacks"),
    "attack_eps": ("robustness", "eps"),
    "data_range": ("robustness", "data_range"),
    "normalization": ("robustness", "normalization"),
    "scaling_constant": ("forecast", "scaling_constant"),
    "target_loss": ("forecast", "target_loss"),
    "val_loss_key": ("forecast", "val_loss_key"),
    "train_loss_key": ("forecast", "train_loss_key"),
    "calibration_csv": ("forecast", "calibration_csv"),
}
"""Where each of today's option names goes (``k`` goes to both measuring callbacks)."""

VALID_OPTIONS = tuple(sorted((*SHARED, *ROUTES, "k")))


def default_callbacks(**options: Any) -> list[Callback]:
    """The default dataprops callbacks, each option routed to the callback it belongs to.

    Returns, in this order: :class:`DatasetPropertiesMonitor` (``d_data``, ``K_F`` at fit
    start), :class:`RepresentationIDMonitor` (``d_repr`` of the penultimate layer every epoch),
    ``RobustnessMonitor`` (FGSM and PGD every 5 epochs) and :class:`ScalingForecastMonitor`
    (the scaling-law forecast, last so that it sees the epoch's values). See
    ``docs/callbacks.md`` for what each logs and costs.

    Args:
        **options: the shared options (``seed``, ``input_key``, ``target_key``, ``input_fn``,
            ``target_fn``, ``forward_fn``, ``progress``, ``memory_budget_mb``,
            ``overhead_budget``) go into one :class:`DataPropsOptions`; ``k`` to both
            measuring callbacks; the others to their callback: ``max_samples``, ``top_pairs``,
            ``warn_sharp_labels``, ``alert_wait_s``,
            ``n_train`` (dataset properties); ``repr_samples``, ``layers``, ``every_n_epochs``,
            ``pool``, ``batch_size``, ``layer_call`` (d_repr); ``adversarial_every_n_epochs``,
            ``adversarial_samples``, ``attacks``, ``attack_eps``, ``data_range``,
            ``normalization`` (robustness); ``scaling_constant``, ``target_loss``,
            ``val_loss_key``, ``train_loss_key``, ``calibration_csv`` (forecast).
            ``every_n_epochs=0`` leaves d_repr out, ``adversarial_every_n_epochs=0`` the
            robustness probe.

    Raises:
        TypeError: an unknown option name (the message lists the valid ones).

    Example:
        >>> from lightning_dataprops import default_callbacks
        >>> [type(c).__name__ for c in default_callbacks(adversarial_every_n_epochs=0)]
        ['DatasetPropertiesMonitor', 'RepresentationIDMonitor', 'ScalingForecastMonitor']
    """
    unknown = sorted(set(options) - set(VALID_OPTIONS))
    if unknown:
        raise TypeError(
            f"default_callbacks() got unknown option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(VALID_OPTIONS)}."
        )
    shared = DataPropsOptions(**{key: options[key] for key in SHARED if key in options})
    routed: dict[str, dict[str, Any]] = {
        "properties": {},
        "d_repr": {},
        "robustness": {},
        "forecast": {},
    }
    for key, value in options.items():
        if key in ROUTES:
            callback, parameter = ROUTES[key]
            routed[callback][parameter] = value
    if "k" in options:
        routed["properties"]["k"] = routed["d_repr"]["k"] = options["k"]
    callbacks: list[Callback] = [DatasetPropertiesMonitor(shared, **routed["properties"])]
    if routed["d_repr"].get("every_n_epochs", 1) != 0:
        callbacks.append(RepresentationIDMonitor(shared, **routed["d_repr"]))
    if routed["robustness"].get("every_n_epochs", 5) != 0:
        from lightning_dataprops.callbacks.robustness import RobustnessMonitor

        callbacks.append(RobustnessMonitor(options=shared, **routed["robustness"]))
    callbacks.append(ScalingForecastMonitor(shared, **routed["forecast"]))
    return callbacks
