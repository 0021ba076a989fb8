"""``default_callbacks()``: the default set of dataprops callbacks in one line.

The routing is derived from the callbacks' signatures: a parameter that only one default
callback takes keeps its name; a name that several take (``max_samples``, ``every_n_epochs``)
gets the callback's prefix (``repr_``, ``robustness_``; the fit-start monitor keeps the bare
name), except ``k`` and ``normalization``, which go to every callback that takes them (the
prefixed name overrides them for one callback). :data:`RENAMED` gives a few
parameters a clearer name; :data:`DEPRECATED` maps today's old names for one release.
"""

from __future__ import annotations

import inspect
from typing import Any

from lightning.pytorch.callbacks import Callback

from lightning_dataprops.callbacks._base import DataPropsCallback, DataPropsOptions
from lightning_dataprops.callbacks._deprecated import renamed
from lightning_dataprops.callbacks.dataset_properties import DatasetPropertiesMonitor
from lightning_dataprops.callbacks.forecast import ScalingForecastMonitor
from lightning_dataprops.callbacks.representation_id import RepresentationIDMonitor
from lightning_dataprops.callbacks.robustness import RobustnessMonitor

DEFAULT_SET: tuple[tuple[type[DataPropsCallback], str], ...] = (
    (DatasetPropertiesMonitor, ""),
    (RobustnessMonitor, "robustness_"),
    (RepresentationIDMonitor, "repr_"),
    (ScalingForecastMonitor, "forecast_"),
)
"""The default callbacks, in order, with the prefix their clashing parameter names get.

Lightning runs the callbacks' hooks in list order. At an epoch end where both are due, the
robustness probe (rarer, dearer, and unconditional the first time) runs before d_repr, so
that d_repr's budget decision counts the probe's cost (after it, a full budget had ended a
5-epoch CIFAR-like fit at 4.8% with the first probe on top); the forecast runs last, after
the d_repr it reads."""

SHARED: tuple[str, ...] = tuple(DataPropsOptions.__dataclass_fields__)
"""Options that go into the one :class:`DataPropsOptions` every callback gets."""

BROADCAST: tuple[str, ...] = ("k", "normalization")
"""Parameters given once to every default callback that takes them."""

RENAMED: dict[tuple[type[DataPropsCallback], str], str] = {
    (RobustnessMonitor, "eps"): "robustness_eps",
    (RobustnessMonitor, "name"): "robustness_name",
}
"""Parameters that are unique but too vague alone in ``default_callbacks``."""

DEPRECATED: dict[str, str] = {
    "every_n_epochs": "repr_every_n_epochs",
    "repr_samples": "repr_max_samples",
    "adversarial_every_n_epochs": "robustness_every_n_epochs",
    "adversarial_samples": "robustness_max_samples",
    "attack_eps": "robustness_eps",
}
"""Old option names (one more release, with a ``DeprecationWarning``) -> new ones."""


def parameters(cls: type[DataPropsCallback]) -> list[str]:
    """The keyword parameters of a callback's ``__init__`` (``options`` and ``**`` left out)."""
    return [
        name
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name not in ("self", "options") and parameter.kind is parameter.KEYWORD_ONLY
    ]


def _routes() -> dict[str, tuple[type[DataPropsCallback], str]]:
    counts: dict[str, int] = {}
    for cls, _ in DEFAULT_SET:
        for name in parameters(cls):
            counts[name] = counts.get(name, 0) + 1
    routes: dict[str, tuple[type[DataPropsCallback], str]] = {}
    for cls, prefix in DEFAULT_SET:
        for name in parameters(cls):
            option = RENAMED.get((cls, name))
            if option is None:
                clash = counts[name] > 1 and name not in BROADCAST
                option = prefix + name if clash else name
            if name in BROADCAST and counts[name] > 1:
                routes[prefix + name] = (cls, name)  # a per-callback override
                if option in routes:
                    continue
            if option in routes and name not in BROADCAST:
                raise TypeError(f"default_callbacks: two parameters would be named {option!r}.")
            routes.setdefault(option, (cls, name))
    return routes


ROUTES: dict[str, tuple[type[DataPropsCallback], str]] = _routes()
"""Option name -> (callback class, its parameter); derived from the signatures at import."""

VALID_OPTIONS = tuple(sorted({*SHARED, *ROUTES}))


def option_name(cls: type[DataPropsCallback], parameter: str) -> str:
    """The ``default_callbacks`` option that reaches ``parameter`` of ``cls``.

    Example:
        >>> from lightning_dataprops.callbacks import RobustnessMonitor
        >>> option_name(RobustnessMonitor, "every_n_epochs")
        'robustness_every_n_epochs'
    """
    for option, route in ROUTES.items():
        if route == (cls, parameter) and (parameter not in BROADCAST or option == parameter):
            return option
    for option, route in ROUTES.items():
        if route == (cls, parameter):
            return option
    raise KeyError(f"{cls.__name__} has no parameter {parameter!r}.")


def default_callbacks(**options: Any) -> list[Callback]:
    """The default dataprops callbacks, each option routed to the callback it belongs to.

    Returns, in this order: :class:`DatasetPropertiesMonitor` (``d_data``, ``K_F`` at fit
    start), ``RobustnessMonitor`` (FGSM and PGD every 5 epochs), :class:`RepresentationIDMonitor`
    (``d_repr`` of what the output head reads, every epoch) and :class:`ScalingForecastMonitor`
    (the scaling-law forecast, last so that it sees the epoch's values); the probe runs before
    d_repr so that, at an epoch end where both are due, d_repr's overhead-budget decision
    counts the probe's cost (:data:`DEFAULT_SET`). See
    ``docs/callbacks.md`` for what each logs and costs.

    Args:
        **options: the shared options (``seed``, ``input_key``, ``target_key``, ``input_fn``,
            ``target_fn``, ``forward_fn``, ``progress``, ``memory_budget_mb``, ``max_stream_items``,
            ``overhead_budget``) go into one :class:`DataPropsOptions`; ``k`` to both
            measuring callbacks (``repr_k`` overrides it for d_repr); ``normalization`` (the
            Dataset's ``Normalize(mean, std)``, ``"auto"`` or ``None``) to the fit-start
            monitor and the robustness probe (``robustness_normalization`` overrides it for
            the probe); every other parameter of
            a callback under its own name, or prefixed where several callbacks share the name:
            ``max_samples`` (dataset properties), ``repr_max_samples``,
            ``repr_every_n_epochs``, ``robustness_max_samples``,
            ``robustness_every_n_epochs``, plus ``robustness_eps`` and ``robustness_name``
            (see :data:`VALID_OPTIONS`). ``*_every_n_epochs=0`` means never measure: that
            callback is left out. Old names (:data:`DEPRECATED`) still work, with a
            ``DeprecationWarning``.

    Raises:
        TypeError: an unknown option name (the message lists the valid ones).

    Example:
        >>> from lightning_dataprops import default_callbacks
        >>> [type(c).__name__ for c in default_callbacks(robustness_every_n_epochs=0)]
        ['DatasetPropertiesMonitor', 'RepresentationIDMonitor', 'ScalingForecastMonitor']
    """
    options = renamed(options, DEPRECATED, "default_callbacks()")
    unknown = sorted(set(options) - set(VALID_OPTIONS))
    if unknown:
        raise TypeError(
            f"default_callbacks() got unknown option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(VALID_OPTIONS)}."
        )
    shared = DataPropsOptions(**{key: options[key] for key in SHARED if key in options})
    routed: dict[type[DataPropsCallback], dict[str, Any]] = {cls: {} for cls, _ in DEFAULT_SET}
    for name in BROADCAST:  # first, so that a prefixed override wins
        if name in options:
            for cls, _ in DEFAULT_SET:
                if name in parameters(cls):
                    routed[cls][name] = options[name]
    for key, value in options.items():
        if key in ROUTES and key not in BROADCAST:
            cls, parameter = ROUTES[key]
            routed[cls][parameter] = value
    callbacks: list[Callback] = []
    for cls, _ in DEFAULT_SET:
        if routed[cls].get("every_n_epochs", 1) == 0:
            continue  # 0: never measure, so the callback is left out
        callbacks.append(cls(shared, **routed[cls]))
    return callbacks
