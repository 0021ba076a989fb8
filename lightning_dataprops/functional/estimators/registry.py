"""The estimator registry: a name -> a function of one :class:`Neighbours` object.

A new intrinsic-dimension estimator is one file holding its function and one
:func:`register_estimator` line; it is then computed from the same exact neighbour pass as every
other (``dataset_properties(x, estimators=(name,))``) and logged as ``dataprops/d_data_<name>``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lightning_dataprops.functional.estimators.neighbours import Neighbours

__all__ = [
    "Estimate",
    "EstimatorFn",
    "EstimatorSpec",
    "available_estimators",
    "get_estimator",
    "register_estimator",
    "unregister_estimator",
]


@dataclass(frozen=True)
class Estimate:
    """What an estimator may return instead of a bare float.

    Attributes:
        value: the intrinsic dimension (finite, > 0).
        stderr: its standard error, if the estimator knows one.
        variant: the estimator's form (e.g. ``"mackay_ghahramani"``), for the record.
        k: neighbours used (default: those the estimator was registered with).
        n_ties: samples whose neighbour distances were tied (discrete data).
        note: a sentence the user should read with the value (e.g. a fallback taken).
        details: further named numbers (e.g. the estimate at each scale).
    """

    value: float
    stderr: float | None = None
    variant: str = ""
    k: int | None = None
    n_ties: int = 0
    note: str | None = None
    details: Mapping[str, float] = field(default_factory=dict)


EstimatorFn = Callable[[Neighbours], float | Estimate]
"""An estimator: ``fn(neighbours) -> float | Estimate``."""


@dataclass(frozen=True)
class EstimatorSpec:
    """A registered estimator.

    Attributes:
        name: its name (results are keyed by it; logged as ``dataprops/d_data_<name>``).
        fn: the function of one :class:`Neighbours` object.
        k: neighbours it needs; ``None``: the call's ``k``.
        description: one line for documentation and reports.
    """

    name: str
    fn: EstimatorFn
    k: int | None = None
    description: str = ""

    def neighbours_needed(self, k: int) -> int:
        """Neighbours per sample this estimator needs when the call asks for ``k``."""
        return k if self.k is None else self.k

    def run(self, neighbours: Neighbours) -> Estimate:
        """Call the estimator and check its answer: a finite, positive dimension."""
        raw = self.fn(neighbours)
        found = raw if isinstance(raw, Estimate) else Estimate(value=float(raw))
        if not (isinstance(found.value, int | float) and math.isfinite(found.value)) or (
            found.value <= 0
        ):
            raise ValueError(
                f"The intrinsic-dimension estimator {self.name!r} returned {found.value!r}; an "
                "estimator must return a finite dimension > 0. Check its formula on these data."
            )
        k = found.k if found.k is not None else self.neighbours_needed(neighbours.k)
        return Estimate(
            value=float(found.value),
            stderr=found.stderr,
            variant=found.variant or self.name,
            k=k,
            n_ties=found.n_ties,
            note=found.note,
            details=dict(found.details),
        )


_REGISTRY: dict[str, EstimatorSpec] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register_estimator(
    name: str,
    fn: EstimatorFn,
    *,
    k: int | None = None,
    description: str = "",
    overwrite: bool = False,
) -> EstimatorSpec:
    """Register an intrinsic-dimension estimator under ``name``.

    Args:
        name: lower-case letters, digits and ``_``, starting with a letter (it becomes the
            logged name ``dataprops/d_data_<name>``).
        fn: ``fn(neighbours) -> float | Estimate``; ``neighbours`` is a :class:`Neighbours`
            object holding at least ``k`` neighbours per sample (more when another chosen
            estimator needs more: slice ``neighbours.distances[:, :k]``).
        k: neighbours per sample it needs (``None``: the call's ``k``, ``neighbours.k``).
        description: one line saying what it computes.
        overwrite: replace an estimator already registered under ``name``.

    Returns:
        The :class:`EstimatorSpec` registered.

    Raises:
        ValueError: a bad name, ``k < 1``, or a name already taken (without ``overwrite``).

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional import dataset_properties, register_estimator
        >>> def my_twonn(nb):  # TwoNN's closed form, written by hand
        ...     return (nb.n - 1) / float(torch.log(nb.distances[:, 1] / nb.distances[:, 0]).sum())
        >>> spec = register_estimator("my_twonn", my_twonn, k=2, overwrite=True)
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(500, 2, generator=g)
        >>> props = dataset_properties(x, k=5, estimators=("my_twonn",))
        >>> props.estimates["my_twonn"].value == props.d_data_twonn
        True
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"Estimator names are lower-case letters, digits and '_' starting with a letter "
            f"(they become the logged name dataprops/d_data_<name>); got {name!r}."
        )
    if not callable(fn):
        raise TypeError(f"fn must be callable (fn(neighbours) -> float), got {type(fn).__name__}.")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise ValueError(f"k must be an int >= 1 or None (the call's k), got {k!r}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"An estimator named {name!r} is already registered; pick another name or pass "
            "overwrite=True."
        )
    spec = EstimatorSpec(name=name, fn=fn, k=k, description=description)
    _REGISTRY[name] = spec
    return spec


def unregister_estimator(name: str) -> None:
    """Remove a registered estimator (``KeyError`` if there is none by that name)."""
    del _REGISTRY[name]


def get_estimator(name: str) -> EstimatorSpec:
    """The :class:`EstimatorSpec` registered under ``name``.

    Raises:
        ValueError: no estimator by that name (the message lists those available).
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown estimator {name!r} (intrinsic dimension); registered: "
            f"{', '.join(available_estimators())}. Add one with register_estimator(name, fn)."
        ) from None


def available_estimators() -> tuple[str, ...]:
    """The names of the registered estimators, in registration order."""
    return tuple(_REGISTRY)


def describe(spec: EstimatorSpec) -> dict[str, Any]:
    """A JSON-ready description of a registered estimator."""
    return {"name": spec.name, "k": spec.k, "description": spec.description}
