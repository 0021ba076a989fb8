"""The one target normalisation used by every path (functional, sampling, metrics, callbacks, CLI).

The rule depends on the dtype, never on the values, so the same data gives the same kind of
target everywhere:

- integer (or bool) dtype: class ids;
- floating dtype: regression values, unless the caller says ``target_type="class"`` (the values
  must then be whole numbers);
- one-hot rows ``(n, C)`` (every entry 0 or 1, exactly one 1 per row): class ids ``argmax``;
  an all-zero row among integer one-hot rows (or with ``target_type="class"``) has no class:
  it is unlabelled, like ``-1``;
  probability rows too, but only with ``target_type="class"`` (otherwise they are vectors);
- ``(n, 1)`` is flattened to ``(n,)``;
- strings (class names, e.g. ``np.array(["cat", "dog"])``) with ``target_type="class"`` are class
  ids numbered in the sorted order of the distinct names, the numbering the command line gives
  image-folder classes (:func:`class_ids_from_names`); with ``"auto"`` they are a clear error
  that says so (a string is not a number);
- anything else (NaN, complex, mixed objects, 3-d targets, integer vectors that are not one-hot)
  is a clear error.

Negative class ids are not classes: ``-1`` is scikit-learn's "unlabelled" and the usual
``ignore_index``. Such rows stay in :attr:`Targets.values` (aligned with the inputs) but are
flagged in :attr:`Targets.labelled`, left out of :attr:`Targets.n_classes`, and every measurement
that uses labels (``K_F``, the sharp-label check, the robustness probe) leaves them out;
measurements without labels (``d_data``) keep them.

Whole-number floats (ages 20-79 stored as ``float32``) therefore stay regression targets. File
loaders that know their arrays hold labels convert them to integer class ids themselves.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from lightning_dataprops._warnings import warn_from_rank_zero

__all__ = [
    "TARGET_TYPES",
    "FloatClassIdsWarning",
    "TargetType",
    "Targets",
    "as_target_tensor",
    "class_ids_from_names",
    "item_class_id",
    "normalize_targets",
    "unlabelled_mask",
]

TargetType = Literal["auto", "class", "regression"]
TARGET_TYPES: tuple[str, ...] = ("auto", "class", "regression")
FEW_VALUES = 20
"""Floating targets with at most this many distinct whole-number values may be class ids."""


class FloatClassIdsWarning(UserWarning):
    """Floating-point targets hold a few whole-number values, as class ids stored as floats
    do, and are read as regression values (``target_type="auto"``): ``K_F`` then weighs each
    pair by ``|y_i - y_j|``, not by a change of class. Cast them with ``.long()`` or pass
    ``target_type="class"``; ``target_type="regression"`` says they are values."""


@dataclass(frozen=True)
class Targets:
    """Normalised targets.

    Attributes:
        values: ``(n,)`` int64 class ids when ``kind == "class"``; else floating regression values
            ``(n,)`` or ``(n, t)`` (float32 or float64; half precision is widened to float32,
            integers to float64, which holds them exactly up to 2**53).
        kind: ``"class"`` or ``"regression"``.
        n_classes: number of distinct class ids of the labelled rows, ``None`` for regression.
        labelled: ``(n,)`` bool, ``False`` on rows whose class id is negative (unlabelled);
            ``None`` when every row is labelled (always for regression).
        class_names: for targets given as strings, the name of each class id (sorted).
    """

    values: Tensor
    kind: str
    n_classes: int | None
    labelled: Tensor | None = None
    class_names: tuple[str, ...] | None = None

    @property
    def is_class(self) -> bool:
        """Whether the targets are class ids."""
        return self.kind == "class"

    @property
    def n_unlabelled(self) -> int:
        """Rows with a negative class id (left out of every measurement that uses labels)."""
        return 0 if self.labelled is None else int((~self.labelled).sum())

    def labelled_indices(self) -> Tensor | None:
        """Indices of the labelled rows, or ``None`` when every row is labelled."""
        return None if self.labelled is None else self.labelled.nonzero().flatten()


def unlabelled_mask(class_ids: Tensor) -> Tensor:
    """``(n,)`` bool: which class ids mean "no label" (the negative ones, e.g. ``-1``).

    The package's one rule for ignore ids; :func:`normalize_targets` applies it.

    Example:
        >>> import torch
        >>> unlabelled_mask(torch.tensor([0, -1, 2, -100])).tolist()
        [False, True, False, True]
    """
    return class_ids < 0


def class_ids_from_names(names: Any, name: str = "targets") -> tuple[Tensor, tuple[str, ...]]:
    """Class names (strings) as int64 class ids, numbered in the sorted order of the names.

    The same numbering as the command line's image folders (one subfolder per class, class ids
    in sorted folder-name order).

    Args:
        names: a sequence or array of strings, one per sample.
        name: how error messages call the targets.

    Returns:
        ``(class_ids, classes)``: ``(n,)`` int64 ids and the sorted distinct names.

    Raises:
        TypeError: some entries are not strings (e.g. ``None`` or numbers among the names).

    Example:
        >>> ids, classes = class_ids_from_names(["dog", "cat", "dog"])
        >>> ids.tolist(), classes
        ([1, 0, 1], ('cat', 'dog'))
    """
    array = np.asarray(names, dtype=object).reshape(-1)
    bad = [value for value in array.tolist() if not isinstance(value, str)]
    if bad:
        raise TypeError(
            f"{name} mix class names with other values (e.g. {bad[0]!r}); pass only strings "
            "(class names), or integer class ids (negative ids mark unlabelled samples)."
        )
    classes, inverse = np.unique(array.astype(str), return_inverse=True)
    return torch.from_numpy(inverse.astype(np.int64).reshape(-1)), tuple(classes.tolist())


def _string_names(y: Any) -> Any | None:
    """``y`` as an array of names when it holds strings (numpy, list, tuple), else ``None``."""
    if isinstance(y, (Tensor, str)):
        return None
    try:
        array = np.asarray(y)
    except (TypeError, ValueError):
        return None
    if array.dtype.kind in "US":
        return array
    if array.dtype == object and array.size and isinstance(array.reshape(-1)[0], str):
        return array
    return None


def as_target_tensor(y: Any, name: str = "targets") -> Tensor:
    """A CPU tensor of targets (tensor, numpy array, list); TypeError when not numeric."""
    if isinstance(y, Tensor):
        return y.detach().cpu()
    if isinstance(y, str):
        raise TypeError(f"{name} is a string ({y!r}); map the labels to integer class ids first.")
    array = np.asarray(y)
    if array.dtype == object and array.size:
        # An object array of numbers (e.g. a pandas column of ints): their numeric array.
        with contextlib.suppress(TypeError, ValueError):
            numbers = np.array(array.tolist())
            if numbers.dtype.kind in "biuf" and numbers.shape == array.shape:
                array = numbers
    if array.dtype == object or array.dtype.kind in "USVM":
        raise TypeError(
            f"{name} are not numeric (dtype {array.dtype}); map them to integer class ids (or "
            "float values) first."
        )
    return torch.from_numpy(np.array(array, copy=True))


def _is_one_hot(values: Tensor) -> bool:
    if values.ndim != 2 or values.shape[1] < 2 or values.shape[0] == 0:
        return False
    binary = (values == 0) | (values == 1)
    return bool(binary.all()) and bool((values.sum(dim=1) == 1).all())


def _one_hot_with_empty_rows(values: Tensor, target_type: str) -> bool:
    """One-hot rows where some rows are all zero (no class: unlabelled), for integer rows or
    ``target_type="class"``; float rows with an empty row stay regression vectors in "auto"."""
    if values.is_floating_point() and target_type != "class":
        return False
    if values.ndim != 2 or values.shape[1] < 2 or values.shape[0] == 0:
        return False
    binary = (values == 0) | (values == 1)
    sums = values.sum(dim=1)
    return bool(binary.all()) and bool((sums <= 1).all())


def _is_probability(values: Tensor) -> bool:
    rows = values.to(torch.float64)
    return bool((rows >= 0).all()) and bool(((rows.sum(dim=1) - 1.0).abs() <= 1e-4).all())


def _regression_values(targets: Tensor, name: str) -> Tensor:
    """Regression targets as float32/float64; integers as float64, refused where inexact."""
    if targets.dtype in (torch.float32, torch.float64):
        return targets
    if targets.is_floating_point():
        return targets.to(torch.float32)
    values = targets.to(torch.float64)
    if not bool((values.to(targets.dtype) == targets).all()):
        raise ValueError(
            f"{name} are integers beyond 2**53 that float64 cannot hold exactly, so their "
            "differences (which K_F divides) would be rounded; subtract an offset first (e.g. "
            "y - y.min(): K_F depends only on differences) or pass float values."
        )
    return values


def normalize_targets(
    y: Any,
    n: int | None = None,
    target_type: str = "auto",
    *,
    name: str = "targets",
    min_classes: int = 0,
    warn_class_ids: bool = False,
) -> Targets:
    """Normalise a stack of targets (one per sample) by the package's one rule.

    Args:
        y: targets ``(n,)``, ``(n, 1)`` or ``(n, C)``: a tensor, numpy array or list.
        n: the number of samples the targets must match (``None``: not checked).
        target_type: ``"auto"`` (integer dtype or one-hot rows: classes; floating dtype:
            regression), ``"class"`` (also: strings are class names) or ``"regression"``.
        name: how error messages call the targets.
        min_classes: class targets whose labelled rows (non-negative ids) hold fewer distinct
            ids raise (label sharpness needs 2).
        warn_class_ids: with ``target_type="auto"``, warn (:class:`FloatClassIdsWarning`) when
            ``(n,)`` floating targets hold 3 to :data:`FEW_VALUES` whole-number values, each
            about twice or more: class ids stored as floats, read as regression values. The
            ``K_F`` computations set it; sampling does not, so one measurement says it once.

    Returns:
        :class:`Targets`.

    Raises:
        ValueError: scalar or 3-d targets, a length other than ``n``, NaN or infinite values,
            fractional values with ``target_type="class"``, integer vectors that are not
            one-hot, fewer than ``min_classes`` classes among the labelled rows (also: no
            labelled row at all), an unknown ``target_type``, integer regression targets
            beyond ``2**53`` (float64 would round them).
        TypeError: complex or object targets, strings without ``target_type="class"``, strings
            mixed with other values.

    Example:
        >>> import torch
        >>> normalize_targets(torch.tensor([20.0, 35.0, 79.0])).kind  # float ages: regression
        'regression'
        >>> normalize_targets(torch.tensor([[0, 1], [1, 0]])).values.tolist()  # one-hot rows
        [1, 0]
        >>> normalize_targets(torch.tensor([2.0, 0.0]), target_type="class").values.tolist()
        [2, 0]
        >>> normalize_targets(torch.tensor([0, -1, 1])).n_unlabelled  # -1: unlabelled
        1
        >>> normalize_targets(["dog", "cat", "dog"], target_type="class").values.tolist()
        [1, 0, 1]
    """
    if target_type not in TARGET_TYPES:
        raise ValueError(f"target_type must be one of {list(TARGET_TYPES)}, got {target_type!r}.")
    names = _string_names(y)
    class_names: tuple[str, ...] | None = None
    if names is not None:
        if target_type != "class":
            raise TypeError(
                f"{name} are not numeric (dtype {names.dtype}): class names? Pass "
                "target_type='class' (command line: --targets class) to number them in "
                "sorted order, as the command line numbers image-folder classes, or map them to "
                "integer class ids first."
            )
        if names.ndim == 2 and names.shape[1] == 1:
            names = names[:, 0]
        if names.ndim != 1:
            raise ValueError(
                f"{name} are strings of shape {names.shape}; pass one class name per sample."
            )
        targets, class_names = class_ids_from_names(names, name)
    else:
        targets = as_target_tensor(y, name)
    if targets.is_complex():
        raise TypeError(f"{name} are complex ({targets.dtype}); pass real class ids or values.")
    if targets.ndim == 0:
        raise ValueError(f"{name} is a scalar; pass one target per sample, shape (n_samples,).")
    if n is not None and int(targets.shape[0]) != n:
        raise ValueError(
            f"the inputs have {n} samples but {name} has {int(targets.shape[0])}; pass one "
            "target per input (mismatched lengths)."
        )
    if targets.ndim > 2:
        raise ValueError(
            f"{name} have shape {tuple(targets.shape)}; pass (n,) class ids or values, (n, 1), "
            "(n, C) one-hot rows or (n, t) regression vectors (target_fn= can reduce them)."
        )
    if targets.ndim == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if targets.dtype == torch.bool:
        targets = targets.to(torch.int64)
    if targets.is_floating_point() and not bool(torch.isfinite(targets).all()):
        bad = int((~torch.isfinite(targets)).reshape(targets.shape[0], -1).any(dim=1).sum())
        raise ValueError(
            f"{name} contain NaN or infinite values ({bad} sample(s)); remove or fix them."
        )
    if targets.ndim == 2 and target_type != "regression":
        if _is_one_hot(targets) or (target_type == "class" and _is_probability(targets)):
            targets = targets.argmax(dim=1)
        elif _one_hot_with_empty_rows(targets, target_type):
            targets = torch.where(targets.sum(dim=1) == 1, targets.argmax(dim=1), -1)
        elif target_type == "class":
            raise ValueError(
                f"target_type='class' but {name} are (n, {targets.shape[1]}) vectors that are "
                "neither one-hot nor probability rows; pass (n,) class ids or one-hot rows."
            )
        elif not targets.is_floating_point():
            raise ValueError(
                f"{name} are (n, {targets.shape[1]}) integer vectors that are not one-hot rows "
                "(multi-label targets are not supported); pass (n,) class ids, one-hot rows, "
                "or target_type='regression' for vector-valued targets."
            )
    kind = target_type
    if kind == "auto":
        kind = "regression" if targets.is_floating_point() else "class"
        if warn_class_ids and kind == "regression" and targets.ndim == 1:
            _warn_if_class_ids(targets, name)
    if kind == "regression":
        return Targets(_regression_values(targets, name), "regression", None)
    if targets.is_floating_point() and not bool((targets == targets.round()).all()):
        raise ValueError(
            f"target_type='class' needs whole-number class ids but {name} have fractional "
            "values; use target_type='regression' for continuous targets."
        )
    labels = targets.to(torch.int64)
    unlabelled = unlabelled_mask(labels)
    n_unlabelled = int(unlabelled.sum())
    kept = labels[~unlabelled] if n_unlabelled else labels
    n_classes = int(torch.unique(kept).numel())
    if n_classes < min_classes:
        total = int(labels.shape[0])
        if n_unlabelled == total and total:
            raise ValueError(
                f"All {total} samples of {name} are unlabelled (negative class ids such as -1): "
                f"this needs labelled samples of at least {min_classes} classes. Pass class ids "
                ">= 0, or measure d_data alone: dataset_properties(x) without targets."
            )
        first = int(kept[0]) if kept.numel() else None
        which = "labelled samples" if n_unlabelled else "samples"
        left_out = f" ({n_unlabelled} unlabelled samples left out)" if n_unlabelled else ""
        raise ValueError(
            f"All {int(kept.shape[0])} {which} have the same label ({first}){left_out}: "
            f"this needs at least {min_classes} classes. Sample more classes (a subset taken "
            "from a dataset sorted by label, such as its first N items, holds one class), or "
            "measure d_data alone: dataset_properties(x) without targets."
        )
    labelled = ~unlabelled if n_unlabelled else None
    return Targets(labels, "class", n_classes, labelled, class_names)


def _warn_if_class_ids(targets: Tensor, name: str) -> None:
    """Say so when ``(n,)`` floating targets look like class ids: 3 to :data:`FEW_VALUES`
    whole-number values, each held by two samples on average (with two values the regression
    and the class ``K_F`` are the same)."""
    if not bool((targets == targets.round()).all()):
        return
    values = torch.unique(targets)
    if not 3 <= values.numel() <= min(FEW_VALUES, targets.shape[0] // 2):
        return
    shown = ", ".join(f"{float(v):g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
    warn_from_rank_zero(
        f"{name} are floating-point with {values.numel()} whole-number values ({shown}): they "
        "are read as regression values, so K_F weighs each pair by |y_i - y_j| instead of a "
        "change of class. If they are class ids, cast them with .long() or pass "
        "target_type='class' (dataprops measure: --targets class); pass "
        "target_type='regression' (--targets regression) to say they are values.",
        FloatClassIdsWarning,
        stacklevel=4,
    )


def item_class_id(target: Tensor, target_type: str = "auto") -> int | None:
    """Class id of one item's target (0-d or 1-d), or ``None`` when it is a regression target.

    Same rule as :func:`normalize_targets`: integer dtype or a one-hot vector is a class;
    floats are regression unless ``target_type="class"``.

    Example:
        >>> import torch
        >>> item_class_id(torch.tensor(3)), item_class_id(torch.tensor(3.0))
        (3, None)
    """
    if target_type == "regression":
        return None
    if target.ndim == 1 and target.numel() >= 2:
        if _is_one_hot(target[None]):
            return int(target.argmax())
        empty = not (target.is_floating_point() and target_type != "class")
        return -1 if empty and bool((target == 0).all()) else None
    value = target.reshape(())
    if not value.is_floating_point():
        return int(value)
    if target_type == "class" and bool(torch.isfinite(value)) and float(value) == int(value):
        return int(value)
    return None
