"""Old option names keep working for one release, with a ``DeprecationWarning``.

Example:
    >>> import warnings
    >>> from lightning_dataprops.callbacks._deprecated import renamed
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     renamed({"n_samples": 5}, {"n_samples": "max_samples"}, "Monitor")
    {'max_samples': 5}
    >>> caught[0].category.__name__
    'DeprecationWarning'
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any


def renamed(
    given: Mapping[str, Any], aliases: Mapping[str, str], owner: str, *, stacklevel: int = 3
) -> dict[str, Any]:
    """``given`` with every deprecated name in ``aliases`` (old -> new) replaced by its new name.

    Each old name warns once per call (``DeprecationWarning``); giving both names is a
    ``TypeError``. Names that are not aliases pass through unchanged.
    """
    result = dict(given)
    for old, new in aliases.items():
        if old not in result:
            continue
        if new in result:
            raise TypeError(f"{owner}: give {new!r} only ({old!r} is its deprecated old name).")
        warnings.warn(
            f"{owner}: {old!r} is deprecated and will be removed in the next release; use {new!r}.",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        result[new] = result.pop(old)
    return result


def deprecated_keywords(
    given: Mapping[str, Any], aliases: Mapping[str, str], owner: str
) -> dict[str, Any]:
    """The ``**deprecated`` keywords of a callback's ``__init__``, under their new names;
    a keyword that is no alias is a ``TypeError``, as Python raises for unknown arguments."""
    unknown = sorted(set(given) - set(aliases))
    if unknown:
        raise TypeError(f"{owner}.__init__() got unexpected keyword argument(s) {unknown}.")
    return renamed(given, aliases, owner, stacklevel=4)


def deprecated_attribute(owner: object, old: str, new: str) -> None:
    """Warn that attribute ``old`` of ``owner`` is now ``new``."""
    warnings.warn(
        f"{type(owner).__name__}.{old} is deprecated and will be removed in the next release; "
        f"use .{new}.",
        DeprecationWarning,
        stacklevel=3,
    )
